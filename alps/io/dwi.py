"""Loading and validating one diffusion series (NIfTI + FSL ``.bval``/``.bvec``).

Everything that can be checked before any computation is checked here or in :mod:`alps.io.bids`
(discovery), with an error that names the offending file:

* files: missing (or a broken symbolic link, e.g. un-fetched git-annex/DataLad content),
  unreadable (permissions), not a regular file (:func:`check_input_files`);
* image: empty, corrupt or truncated ``.nii.gz``; a ``.nii.gz`` that is not gzip-compressed or
  whose content is not NIfTI; complex/RGB data; not 4D; fewer than 7 volumes; NaN/Inf voxels;
  an all-zero image or volume; a non-finite, non-invertible or sheared affine
  (:class:`InputError`);
* gradients: missing/malformed ``.bval``/``.bvec``, count mismatch with the image, no b = 0
  volume, non-unit b-vectors for b > 0 (:class:`alps.io.GradientError`, raised by
  :func:`alps.io.gradients.read_bvals_bvecs`);
* dataset: see :mod:`alps.io.bids`.

b-vectors are kept **as stored** (FSL convention, relative to the image axes);
:func:`alps.io.gradients.fsl_to_voxel` converts them for the tensor fit (:mod:`alps.imaging.dti`).
"""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import InputError
from .files import check_readable, strip_nii
from .gradients import B0_THRESHOLD, read_bvals_bvecs

__all__ = ["DWI", "load_dwi", "load_image", "check_affine", "gradient_files_for", "MIN_VOLUMES"]

#: fewest volumes a tensor fit can use (one b = 0 and six directions).
MIN_VOLUMES = 7

#: relative tolerance on the shear of an affine (off-diagonal of the normalised metric tensor).
SHEAR_TOL = 1e-3


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
        return self.bvals <= B0_THRESHOLD


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
def gradient_files_for(dwi_path) -> tuple[Path, Path]:
    """The ``.bval``/``.bvec`` files beside a DWI (same stem)."""
    dwi_path = Path(dwi_path)
    stem = strip_nii(dwi_path)
    return dwi_path.with_name(stem + ".bval"), dwi_path.with_name(stem + ".bvec")


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


def load_image(path) -> nib.Nifti1Image:
    """Open a NIfTI image after the file checks (:func:`alps.io.files.check_readable`) and a
    sniff of its bytes, so that a mis-named, truncated or non-NIfTI file gets an error naming it."""
    path = Path(path)
    check_readable(path, "image file")
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


def load_dwi(dwi_path, bval_path=None, bvec_path=None, *, b0_threshold: float = B0_THRESHOLD) -> DWI:
    """Load and validate a DWI series with its FSL gradient table.

    Parameters
    ----------
    dwi_path : path-like
        4D NIfTI (``.nii`` or ``.nii.gz``).
    bval_path, bvec_path : path-like, optional
        Default: same stem as the image with ``.bval``/``.bvec``.
    b0_threshold : float
        b-values at or below this are b = 0 (gradient checks).

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
    img = load_image(dwi_path)
    shape = img.shape
    if len(shape) != 4:
        raise InputError(f"{dwi_path}: expected a 4D diffusion series, got a {len(shape)}D image of shape {shape}")
    if min(shape) < 1:
        raise InputError(f"{dwi_path}: image has an empty dimension (shape {shape})")
    if shape[3] < MIN_VOLUMES:
        raise InputError(f"{dwi_path}: {shape[3]} volume(s); a tensor fit needs at least {MIN_VOLUMES} (one b0 + six directions)")
    dtype = img.get_data_dtype()
    if dtype.kind not in "iuf" or dtype.fields is not None:
        raise InputError(f"{dwi_path}: unsupported voxel data type {dtype} (need real-valued magnitude data, "
                         "not complex or RGB)")
    affine = check_affine(img.affine, dwi_path)
    # gradients first: cheap, and the count check needs no voxel data
    bvals, bvecs = read_bvals_bvecs(bval_path, bvec_path, n_volumes=shape[3], b0_threshold=b0_threshold)
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
