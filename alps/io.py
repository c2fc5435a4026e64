"""Finding, loading and validating diffusion inputs (BIDS datasets or single DWI files).

Everything that can be checked before any computation is checked here, with an error that names
the offending file:

* files: missing (or a broken symbolic link, e.g. un-fetched git-annex/DataLad content),
  unreadable (permissions), not a regular file (:func:`check_input_files`);
* image: empty, corrupt or truncated ``.nii.gz``; a ``.nii.gz`` that is not gzip-compressed or
  whose content is not NIfTI; complex/RGB data; not 4D; fewer than 7 volumes; NaN/Inf voxels;
  an all-zero image or volume; a non-finite, non-invertible or sheared affine
  (:class:`InputError`);
* gradients: missing/malformed ``.bval``/``.bvec``, count mismatch with the image, no b = 0
  volume, non-unit b-vectors for b > 0 (:class:`alps.gradients.GradientError`, raised by
  :func:`alps.gradients.read_bvals_bvecs`);
* dataset: two DWI runs for one subject/session, a file whose ``sub-`` label differs from its
  folder (recorded on the :class:`SubjectInput` as ``error`` so that the cohort runner fails only
  that subject; ``discover(..., strict=True)`` raises instead).

b-vectors are kept **as stored** (FSL convention, relative to the image axes);
:func:`alps.gradients.fsl_to_voxel` converts them for the tensor fit (:mod:`alps.dti`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import nibabel as nib
import numpy as np

from . import atomic

from .gradients import GradientError, read_bvals_bvecs

__all__ = [
    "InputError", "GradientError", "SubjectInput", "DWI", "discover", "load_dwi", "check_input_files",
    "check_affine", "sha256", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
    "atomic_save_nifti",
]

#: relative tolerance on the shear of an affine (off-diagonal of the normalised metric tensor).
SHEAR_TOL = 1e-3


class InputError(ValueError):
    """An input image or dataset is missing, malformed or unusable (the message names the file)."""


@dataclass(frozen=True)
class SubjectInput:
    """One diffusion scan to process: the DWI and its gradient files."""

    participant_id: str          # "sub-XX"
    dwi: Path
    bval: Path
    bvec: Path
    session_id: str | None = None  # "ses-YY" or None
    sidecar: Path | None = None    # BIDS .json, if present (never read by the pipeline)
    error: str | None = None       # a problem found at discovery (duplicate run, misplaced file)

    @property
    def key(self) -> str:
        """Unique output prefix: ``sub-XX`` or ``sub-XX_ses-YY``."""
        return self.participant_id if not self.session_id else f"{self.participant_id}_{self.session_id}"


@dataclass
class DWI:
    """A loaded, validated diffusion series."""

    data: np.ndarray          # float32 (X, Y, Z, N)
    affine: np.ndarray        # 4x4 voxel -> world (RAS+ mm)
    bvals: np.ndarray         # (N,)
    bvecs: np.ndarray         # (N, 3) FSL convention (as stored), zero rows for b0
    path: Path
    header: nib.Nifti1Header = field(repr=False, default=None)

    @property
    def zooms(self):
        return tuple(float(z) for z in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def b0_mask(self):
        from .gradients import B0_THRESHOLD

        return self.bvals <= B0_THRESHOLD


# ----------------------------------------------------------------------------- file utilities
def sha256(path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory + ``os.replace``."""
    return atomic.write_bytes(path, data)


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_nifti(img, path) -> Path:
    """Save a NIfTI image atomically (temporary file with the same suffix, then ``os.replace``)."""
    return atomic.write_with(path, lambda tmp: nib.save(img, tmp))


def atomic_write_tsv(df, path) -> Path:
    """Write a pandas DataFrame as TSV atomically (``n/a`` for missing values, BIDS style)."""
    return atomic_write_text(path, df.to_csv(sep="\t", index=False, na_rep="n/a"))


# ----------------------------------------------------------------------------- affine checks
def check_affine(affine, path="<image>") -> np.ndarray:
    """Validate an image affine: finite, invertible, no shear. Returns it as float 4x4.

    A sheared affine (voxel axes not mutually orthogonal) has no well-defined tensor frame: the
    voxel-axis tensor cannot be rotated into world axes by a rotation. Such images must be
    resampled first.
    """
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputError(f"{path}: image affine is not a finite 4x4 matrix")
    lin = affine[:3, :3]
    sv = np.linalg.svd(lin, compute_uv=False)
    if sv.min() <= 1e-6 * max(sv.max(), 1e-12):
        raise InputError(f"{path}: image affine is not invertible (singular values {np.round(sv, 6).tolist()})")
    metric = lin.T @ lin
    d = np.sqrt(np.diag(metric))
    corr = metric / np.outer(d, d)
    off = np.abs(corr - np.eye(3)).max()
    if off > SHEAR_TOL:
        raise InputError(
            f"{path}: image affine is sheared (voxel axes not orthogonal; max |cos| = {off:.4f}); "
            "resample the image to an orthogonal grid first")
    return affine


# ----------------------------------------------------------------------------- loading
def _strip_nii(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def gradient_files_for(dwi_path) -> tuple[Path, Path]:
    """The ``.bval``/``.bvec`` files beside a DWI (same stem)."""
    dwi_path = Path(dwi_path)
    stem = _strip_nii(dwi_path)
    return dwi_path.with_name(stem + ".bval"), dwi_path.with_name(stem + ".bvec")


def _check_readable(path: Path, what: str, exc_type=None) -> None:
    """Existence / type / permission / size checks of one input file, naming it."""
    exc_type = exc_type or InputError
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


def check_input_files(item: "SubjectInput") -> None:
    """Cheap checks before hashing/loading: the DWI and its gradient files exist, are regular,
    readable, non-empty files (errors name the file). Raises :class:`InputError` /
    :class:`GradientError`."""
    _check_readable(Path(item.dwi), "image file")
    _check_readable(Path(item.bval), "gradient file (.bval)", GradientError)
    _check_readable(Path(item.bvec), "gradient file (.bvec)", GradientError)


_NIFTI_MAGICS = (b"n+1\0", b"ni1\0", b"n+2\0", b"ni2\0")


def _sniff(path: Path) -> None:
    """Recognise files that are not (gzip'ed) NIfTI before nibabel gives a cryptic error."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    is_gz = head == b"\x1f\x8b"
    if path.name.endswith(".gz") and not is_gz:
        with open(path, "rb") as fh:
            start = fh.read(24)
        raise InputError(f"{path}: named .gz but not gzip-compressed (starts with {start!r}); "
                         "a plain-text or mis-named file?")
    try:
        with (gzip.open(path, "rb") if is_gz else open(path, "rb")) as fh:
            hdr = fh.read(544)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: corrupt gzip stream ({type(exc).__name__}: {exc})") from exc
    if len(hdr) < 348:
        raise InputError(f"{path}: truncated: {len(hdr)} bytes, shorter than a NIfTI header (348)")
    magic1, magic2 = hdr[344:348], hdr[4:8]
    if magic1 not in _NIFTI_MAGICS and magic2 not in _NIFTI_MAGICS:
        raise InputError(f"{path}: not a NIfTI image (no NIfTI magic in the header; "
                         f"content starts with {hdr[:24]!r})")


def _load_image(path: Path) -> nib.Nifti1Image:
    _check_readable(path, "image file")
    _sniff(path)
    try:
        img = nib.load(str(path))
    except Exception as exc:  # ImageFileError, gzip errors, header errors
        raise InputError(f"{path}: not a readable NIfTI image ({type(exc).__name__}: {exc})") from exc
    return img


def _read_data(img, path: Path) -> np.ndarray:
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as exc:
        raise InputError(f"{path}: image data is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    return data


def load_dwi(dwi_path, bval_path=None, bvec_path=None) -> DWI:
    """Load and validate a DWI series with its FSL gradient table.

    Parameters
    ----------
    dwi_path : path-like
        4D NIfTI (``.nii`` or ``.nii.gz``).
    bval_path, bvec_path : path-like, optional
        Default: same stem as the image with ``.bval``/``.bvec``.

    Raises
    ------
    InputError
        Image problems (see module docstring).
    GradientError
        Gradient-table problems.
    """
    dwi_path = Path(dwi_path)
    dflt_bval, dflt_bvec = gradient_files_for(dwi_path)
    bval_path = Path(bval_path) if bval_path else dflt_bval
    bvec_path = Path(bvec_path) if bvec_path else dflt_bvec
    img = _load_image(dwi_path)
    shape = img.shape
    if len(shape) != 4:
        raise InputError(f"{dwi_path}: expected a 4D diffusion series, got a {len(shape)}D image of shape {shape}")
    if min(shape) < 1:
        raise InputError(f"{dwi_path}: image has an empty dimension (shape {shape})")
    if shape[3] < 7:
        raise InputError(f"{dwi_path}: {shape[3]} volume(s); a tensor fit needs at least 7 (one b0 + six directions)")
    dtype = img.get_data_dtype()
    if dtype.kind not in "iuf" or dtype.fields is not None:
        raise InputError(f"{dwi_path}: unsupported voxel data type {dtype} (need real-valued magnitude data, "
                         "not complex or RGB)")
    affine = check_affine(img.affine, dwi_path)
    # gradients first: cheap, and the count check needs no voxel data
    bvals, bvecs = read_bvals_bvecs(bval_path, bvec_path, n_volumes=shape[3])
    data = _read_data(img, dwi_path)
    if not np.all(np.isfinite(data)):
        n_bad = int((~np.isfinite(data)).sum())
        raise InputError(f"{dwi_path}: {n_bad} NaN/Inf voxel values")
    flat = data.reshape(-1, shape[3])
    zero_vols = np.flatnonzero(~np.any(flat != 0, axis=0))
    if zero_vols.size == shape[3]:
        raise InputError(f"{dwi_path}: image is entirely zero (all {shape[3]} volumes)")
    if zero_vols.size:
        raise InputError(f"{dwi_path}: volume(s) {zero_vols.tolist()} are entirely zero")
    return DWI(data=data, affine=affine, bvals=bvals, bvecs=bvecs, path=dwi_path, header=img.header)


# ----------------------------------------------------------------------------- discovery
_BIDS_LABEL = re.compile(r"[^A-Za-z0-9]")


def _entity(name: str, key: str):
    m = re.search(rf"(?:^|_){key}-([A-Za-z0-9]+)", name)
    return m.group(1) if m else None


def _normalise_labels(labels):
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [labels]
    out = []
    for lab in labels:
        lab = str(lab)
        out.append(lab[4:] if lab.startswith("sub-") else lab)
    return out


#: BIDS suffixes that are certainly not diffusion series (single-file input check).
_NON_DWI_SUFFIXES = {"T1w", "T2w", "FLAIR", "PD", "PDw", "T2starw", "bold", "sbref", "epi", "phasediff",
                     "magnitude", "magnitude1", "magnitude2", "fieldmap", "asl", "m0scan", "dseg", "mask",
                     "angio", "cbv", "physio", "events"}


def discover(input_path, *, participant_label=None, bval=None, bvec=None, strict: bool = True
             ) -> list[SubjectInput]:
    """List the diffusion scans to process.

    Parameters
    ----------
    input_path : path-like
        A BIDS dataset root (``sub-*/[ses-*/]dwi/*_dwi.nii[.gz]``) or one DWI file.
    participant_label : str or list of str, optional
        BIDS subject labels to keep (with or without ``sub-``); others are ignored. A requested
        label with no DWI is an error.
    bval, bvec : path-like, optional
        Gradient files for a single-file input (default: beside the image, same stem).
    strict : bool
        Per-scan problems found here — more than one DWI for a subject/session, a file whose
        ``sub-``/``ses-`` label differs from its folder — raise :class:`InputError` when True
        (default); when False they are recorded in :attr:`SubjectInput.error` (one item per
        affected subject/session) so that a cohort runner fails only that scan.

    Returns
    -------
    list of SubjectInput, sorted by key. Existence of gradient files is checked later
    (:func:`check_input_files`); their content by :func:`load_dwi`.

    Raises
    ------
    InputError
        Missing input, no DWI found, unknown labels, a non-diffusion single file; with
        ``strict`` also the per-scan problems above.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise InputError(f"{input_path}: input not found")
    labels = _normalise_labels(participant_label)
    if input_path.is_file():
        if not (input_path.name.endswith(".nii.gz") or input_path.name.endswith(".nii")):
            raise InputError(f"{input_path}: expected a .nii or .nii.gz DWI file")
        stem = _strip_nii(input_path)
        suffix = stem.rsplit("_", 1)[-1] if "_" in stem else ""
        if suffix in _NON_DWI_SUFFIXES:
            raise InputError(f"{input_path}: BIDS suffix '_{suffix}' is not a diffusion image (expected *_dwi)")
        sub = _entity(stem, "sub") or _BIDS_LABEL.sub("", stem) or "01"
        ses = _entity(stem, "ses")
        if labels is not None and sub not in labels:
            raise InputError(f"{input_path}: participant label(s) {labels} do not match this file (sub-{sub})")
        dbval, dbvec = gradient_files_for(input_path)
        bval_p = Path(bval) if bval else dbval
        bvec_p = Path(bvec) if bvec else dbvec
        side = input_path.with_name(stem + ".json")
        return [SubjectInput(f"sub-{sub}", input_path, bval_p, bvec_p,
                             f"ses-{ses}" if ses else None, side if side.is_file() else None)]
    if bval or bvec:
        raise InputError("--bval/--bvec are only for a single DWI file input, not a BIDS dataset")
    files = sorted(list(input_path.glob("sub-*/dwi/*_dwi.nii.gz")) + list(input_path.glob("sub-*/dwi/*_dwi.nii"))
                   + list(input_path.glob("sub-*/ses-*/dwi/*_dwi.nii.gz"))
                   + list(input_path.glob("sub-*/ses-*/dwi/*_dwi.nii")))
    if not files:
        raise InputError(f"{input_path}: no BIDS diffusion images (sub-*/[ses-*/]dwi/*_dwi.nii[.gz]) found")
    out: dict[str, SubjectInput] = {}
    problems: dict[str, list[str]] = {}

    def problem(key, msg):
        if strict:
            raise InputError(msg)
        problems.setdefault(key, []).append(msg)

    for f in files:
        stem = _strip_nii(f)
        sub = _entity(stem, "sub")
        if sub is None:
            continue
        rel = f.relative_to(input_path).parts
        folder_sub = rel[0][4:]
        folder_ses = rel[1][4:] if len(rel) == 4 else None
        ses = _entity(stem, "ses")
        if labels is not None and sub not in labels and folder_sub not in labels:
            continue
        bval_p, bvec_p = gradient_files_for(f)
        # BIDS inheritance: top-level dwi.bval/bvec
        if not bval_p.is_file() and (input_path / "dwi.bval").is_file():
            bval_p = input_path / "dwi.bval"
        if not bvec_p.is_file() and (input_path / "dwi.bvec").is_file():
            bvec_p = input_path / "dwi.bvec"
        side = f.with_name(stem + ".json")
        if sub != folder_sub or ses != folder_ses:
            # misplaced file: file it under its folder's key and fail that scan
            item = SubjectInput(f"sub-{folder_sub}", f, bval_p, bvec_p,
                                f"ses-{folder_ses}" if folder_ses else None, side if side.is_file() else None)
            problem(item.key, f"{f}: file labels (sub-{sub}{', ses-' + ses if ses else ''}) do not match "
                              f"its folder ({'/'.join(rel[:-2])}); misplaced or mis-named file")
        else:
            item = SubjectInput(f"sub-{sub}", f, bval_p, bvec_p, f"ses-{ses}" if ses else None,
                                side if side.is_file() else None)
        if item.key in out:
            problem(item.key, f"{f}: more than one DWI for {item.key} (also {out[item.key].dwi.name}); "
                              "select one run per subject/session")
            continue
        out[item.key] = item
    for key, msgs in problems.items():
        out[key] = replace(out[key], error="; ".join(msgs))
    if labels is not None:
        found = {s.participant_id[4:] for s in out.values()}
        missing = [lab for lab in labels if lab not in found]
        if missing:
            raise InputError(f"{input_path}: no DWI found for participant label(s) {missing}")
    if not out:
        raise InputError(f"{input_path}: no diffusion images matched")
    return [out[k] for k in sorted(out)]


def input_hashes(item: SubjectInput) -> dict[str, str]:
    """SHA-256 of the DWI, bval and bvec files of one scan (provenance)."""
    return {"dwi": sha256(item.dwi), "bval": sha256(item.bval), "bvec": sha256(item.bvec)}
