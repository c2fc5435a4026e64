"""Atomic file writing: every product is written to a temporary file in its own directory and
renamed over the target (``os.replace``, atomic on POSIX), so an interrupted run never leaves a
file that looks finished. Temporary names are ``.<name>.<random><suffix>`` (hidden, recognised
and removed by :func:`alps.pipeline.clean_stale_temporaries`). Files get the usual permissions
(``0o666 & ~umask``), not ``mkstemp``'s private 0600.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_for(path: Path, suffix: str) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)


def _publish(tmp: str, path: Path) -> Path:
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
    return path


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def write_bytes(path, data: bytes, *, suffix: str = ".tmp") -> Path:
    """Write ``data`` to ``path`` atomically; parent directories are created."""
    path = Path(path)
    fd, tmp = _temp_for(path, suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return _publish(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def write_text(path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, *, default=None) -> Path:
    """Write JSON (indented, sorted keys) atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=default) + "\n")


def write_with(path, writer, *, suffix: str | None = None) -> Path:
    """Atomically write through ``writer(tmp_path)``, for libraries that want a file name
    (nibabel, matplotlib). ``suffix`` defaults to the target's extension (``.nii.gz`` kept whole)."""
    path = Path(path)
    if suffix is None:
        suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = _temp_for(path, suffix)
    os.close(fd)
    try:
        writer(tmp)
        return _publish(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
