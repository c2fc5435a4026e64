"""File-level helpers of the input layer: hashing, readability checks, NIfTI file names."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import InputError


def sha256(path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def strip_nii(path) -> str:
    """File name without ``.nii.gz`` / ``.nii`` (or its last suffix)."""
    path = Path(path)
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def check_readable(path, what: str, exc_type=None) -> None:
    """Existence / type / permission / size checks of one input file; the error names it.

    Raises ``exc_type`` (default :class:`InputError`) for a broken symbolic link (e.g.
    un-fetched git-annex/DataLad content), a missing path, a directory, an unreadable or an
    empty file.
    """
    exc_type = exc_type or InputError
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise exc_type(f"{path}: {what} is a broken symbolic link (target {os.readlink(path)!r} "
                       "missing; un-fetched git-annex/DataLad content?)")
    if not path.exists():
        raise exc_type(f"{path}: {what} not found")
    if not path.is_file():
        raise exc_type(f"{path}: {what} is not a regular file")
    if not os.access(path, os.R_OK):
        raise exc_type(f"{path}: {what} is not readable (permission denied)")
    if path.stat().st_size == 0:
        raise exc_type(f"{path}: {what} is empty")
