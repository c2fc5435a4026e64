"""Atomic file writing — the one writer every product of :mod:`alps` goes through.

Every file is written to a temporary file in its own directory and renamed over the target
(``os.replace``, atomic on POSIX), so an interrupted run never leaves a file that looks
finished. Temporary names are ``.<name>.<8 random hex digits><suffix>`` (hidden; unique to each
writer; a killed run's are removed by the next run that owns ``<name>``,
:func:`alps.pipeline.records.clean_stale_temporaries`). Files get the usual permissions
(``0o666 & ~umask``, applied by the kernel when the temporary file is created), not ``mkstemp``'s
private 0600; the process umask is never changed.

Every function takes the **target path first**, then the content, and creates missing parent
directories. Table formats (kept exactly, tables are compared byte for byte between runs):

* ``.tsv`` — tab-separated, ``n/a`` for missing values (BIDS), pandas' default float repr;
* ``.csv`` — comma-separated, empty cells for missing values;
* ``float_format`` (e.g. ``"%.10g"``) where a writer wants fixed precision.
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
from pathlib import Path

__all__ = ["write_bytes", "write_text", "write_json", "write_table", "write_with", "save_nifti",
           "save_figure", "json_default", "json_safe", "is_temporary", "temporary_target"]

#: names of the temporary files made here: ``.<target name>.<8 hex digits><suffix>`` (older runs: 8
#: ``mkstemp`` characters).
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>\.[A-Za-z0-9.]+)$")


def is_temporary(name: str, target: str | None = None) -> bool:
    """Is ``name`` a temporary file of this module (for ``target``, if given)?"""
    m = TEMP_NAME.match(name)
    return bool(m) and (target is None or m.group("target") == target)


def temporary_target(name: str) -> str | None:
    """The name of the file that the temporary ``name`` was to become, or None when ``name`` is
    not a temporary of this module."""
    m = TEMP_NAME.match(name)
    return m.group("target") if m else None


def _temp_for(path: Path, suffix: str) -> tuple[int, str]:
    """Create the temporary file of ``path`` (``O_EXCL``, mode ``0o666``: the kernel applies the
    umask, so the process umask is never read or changed — changing it races with threads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def _publish(tmp: str, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _suffix_of(path: Path) -> str:
    return ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; parent directories are created."""
    path = Path(path)
    fd, tmp = _temp_for(path, ".tmp")
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


def json_default(obj):
    """``json.dumps(default=...)`` for numpy scalars/arrays and paths."""
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_safe(obj):
    """``obj`` with every non-finite float (NaN, ±inf, which JSON cannot hold) replaced by
    ``None`` (written as ``null``), recursively through dicts and lists."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj, *, sort_keys: bool = True, strict: bool = False) -> Path:
    """Write JSON atomically (2-space indent, trailing newline; numpy values converted).

    ``strict=True`` writes non-finite floats as ``null`` (:func:`json_safe`) and refuses any
    other value JSON cannot represent, instead of writing the non-standard ``NaN``.
    """
    if strict:
        text = json.dumps(json_safe(obj), indent=2, sort_keys=sort_keys, allow_nan=False,
                          default=json_default)
    else:
        text = json.dumps(obj, indent=2, sort_keys=sort_keys, default=json_default)
    return write_text(path, text + "\n")


def write_table(path, df, *, float_format: str | None = None) -> Path:
    """Write a DataFrame as ``.tsv`` (tab, ``n/a`` for missing) or ``.csv`` (comma, empty cells),
    chosen by the file's extension, atomically; no index column."""
    path = Path(path)
    if path.suffix == ".tsv":
        kw = dict(sep="\t", na_rep="n/a")
    elif path.suffix == ".csv":
        kw = {}
    else:
        raise ValueError(f"{path}: table files must end in .tsv or .csv")
    if float_format is not None:
        kw.update(float_format=float_format, lineterminator="\n")
    return write_text(path, df.to_csv(index=False, **kw))


def write_with(path, writer, *, suffix: str | None = None) -> Path:
    """Atomically write through ``writer(tmp_path)``, for libraries that want a file name
    (nibabel, matplotlib). ``suffix`` defaults to the target's extension (``.nii.gz`` kept whole),
    so that the library picks the right format from the temporary name."""
    path = Path(path)
    fd, tmp = _temp_for(path, _suffix_of(path) if suffix is None else suffix)
    os.close(fd)
    try:
        writer(tmp)
        return _publish(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def save_nifti(path, img) -> Path:
    """Save a nibabel image atomically."""
    import nibabel as nib

    return write_with(path, lambda tmp: nib.save(img, tmp))


def save_figure(path, fig, **savefig_kw) -> Path:
    """Save a matplotlib figure atomically; the format is the file's extension."""
    fmt = Path(path).suffix.lstrip(".")
    return write_with(path, lambda tmp: fig.savefig(tmp, format=fmt, **savefig_kw))
