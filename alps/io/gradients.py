"""Gradient tables: reading, validating and converting FSL-convention b-vectors.

FSL convention
--------------
FSL (and ``dcm2niix``) write b-vectors relative to the **image voxel axes**, but with FSL's
radiological voxel convention: when the image affine has a positive determinant (neurological
storage, e.g. RAS/LAS-with-flip images as most converters write them), FSL internally flips the
first voxel axis, so the stored x component is the negative of the component along voxel axis i.
MRtrix3 (``mrconvert -fslgrad``) and dipy users must undo it; :func:`fsl_to_voxel` does so and
:func:`voxel_to_fsl` is its inverse (used by the simulator to write what a scanner export
would).

References: FSL FDT user guide ("bvecs"); Jenkinson M. et al., FSL; MRtrix3 documentation,
"Diffusion gradient scheme handling".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import GradientError

#: b-values at or below this are treated as b = 0 (s/mm²).
B0_THRESHOLD = 50.0
#: tolerance on |g| = 1 for b > 0.
UNIT_TOL = 0.05


def _affine_flips_x(affine) -> bool:
    return float(np.linalg.det(np.asarray(affine, float)[:3, :3])) > 0


def fsl_to_voxel(bvecs, affine):
    """FSL-convention b-vectors ``(N, 3)`` → directions along the stored voxel axes (i, j, k).

    Negates x when ``det(affine[:3, :3]) > 0`` (see module docstring).
    """
    bvecs = np.array(bvecs, dtype=float, copy=True)
    if _affine_flips_x(affine):
        bvecs[:, 0] *= -1
    return bvecs


def voxel_to_fsl(bvecs, affine):
    """Inverse of :func:`fsl_to_voxel` (the flip is its own inverse)."""
    return fsl_to_voxel(bvecs, affine)


def read_bvals_bvecs(bval_path, bvec_path, *, n_volumes: int | None = None,
                     b0_threshold: float = B0_THRESHOLD):
    """Read and validate FSL ``.bval`` / ``.bvec`` files.

    Accepts bvecs stored as 3 rows x N (FSL) or N rows x 3.

    Parameters
    ----------
    bval_path, bvec_path : path-like
    n_volumes : int, optional
        Number of volumes of the matching DWI; the counts must agree.
    b0_threshold : float
        b-values at or below this are b = 0 (default :data:`B0_THRESHOLD`).

    Returns
    -------
    bvals : ndarray (N,)
    bvecs : ndarray (N, 3)
        As stored (FSL convention); rows with b ≤ :data:`B0_THRESHOLD` are set to zero.

    Raises
    ------
    GradientError
        Naming the file and the problem: missing, empty, non-numeric, wrong shape, count
        mismatch, negative b, no b = 0 volume, zero or non-unit vectors for b > 0.
    """
    bval_path, bvec_path = Path(bval_path), Path(bvec_path)
    for p in (bval_path, bvec_path):
        if not p.is_file():
            raise GradientError(f"{p}: gradient file not found")
        if p.stat().st_size == 0:
            raise GradientError(f"{p}: gradient file is empty")
    try:
        bvals = np.loadtxt(bval_path, dtype=float, ndmin=2)
    except ValueError as exc:
        raise GradientError(f"{bval_path}: b-values are not numeric ({exc})") from exc
    try:
        bvecs = np.loadtxt(bvec_path, dtype=float, ndmin=2)
    except ValueError as exc:
        raise GradientError(f"{bvec_path}: b-vectors are not numeric ({exc})") from exc
    if bvals.ndim != 2 or min(bvals.shape) != 1:
        raise GradientError(f"{bval_path}: expected one row (or column) of b-values, got shape {bvals.shape}")
    bvals = bvals.ravel()
    if bvecs.shape[0] == 3 and bvecs.shape[1] != 3:
        bvecs = bvecs.T
    elif bvecs.shape == (3, 3):
        bvecs = bvecs.T  # FSL layout is rows = x, y, z
    elif bvecs.shape[1] != 3:
        raise GradientError(f"{bvec_path}: expected 3 rows (x, y, z) of b-vectors, got shape {bvecs.shape}")
    if len(bvals) != len(bvecs):
        raise GradientError(
            f"{bvec_path}: {len(bvecs)} b-vectors but {bval_path.name} has {len(bvals)} b-values")
    if n_volumes is not None and len(bvals) != n_volumes:
        raise GradientError(
            f"{bval_path}: {len(bvals)} b-values but the image has {n_volumes} volumes")
    if not np.all(np.isfinite(bvals)) or not np.all(np.isfinite(bvecs)):
        raise GradientError(f"{bval_path} / {bvec_path}: NaN or Inf in the gradient table")
    if np.any(bvals < 0):
        raise GradientError(f"{bval_path}: negative b-values {bvals[bvals < 0]}")
    b0 = bvals <= b0_threshold
    if not b0.any():
        raise GradientError(f"{bval_path}: no b=0 volume (all b > {b0_threshold:g} s/mm²)")
    if b0.all():
        raise GradientError(f"{bval_path}: no diffusion-weighted volume (all b ≤ {b0_threshold:g})")
    norms = np.linalg.norm(bvecs[~b0], axis=1)
    bad = np.flatnonzero(np.abs(norms - 1) > UNIT_TOL)
    if bad.size:
        idx = np.flatnonzero(~b0)[bad]
        raise GradientError(
            f"{bvec_path}: b-vectors for b > 0 must be unit length; volumes {idx.tolist()} have "
            f"|g| = {np.round(norms[bad], 3).tolist()}")
    bvecs = bvecs.copy()
    bvecs[b0] = 0
    bvecs[~b0] /= norms[:, None]
    return bvals, bvecs


def bvecs_text(bvecs) -> str:
    """FSL ``.bvec`` text: three rows (x, y, z), ``%.6f``, no negative zeros."""
    bvecs = np.asarray(bvecs, float).reshape(-1, 3) + 0.0
    return "\n".join(" ".join(f"{v:.6f}" for v in row) for row in bvecs.T) + "\n"


def bvals_text(bvals) -> str:
    """FSL ``.bval`` text: one row, ``%g``."""
    return " ".join(f"{b:g}" for b in np.asarray(bvals, float).ravel()) + "\n"


def write_bvals_bvecs(bvals, bvecs, bval_path, bvec_path) -> None:
    """Write FSL text files atomically: one row of b-values; three rows (x, y, z) of b-vectors
    (:func:`bvals_text`, :func:`bvecs_text`). ``bvals=None`` writes only the ``.bvec``."""
    from .. import atomic

    if bvals is not None:
        atomic.write_text(bval_path, bvals_text(bvals))
    atomic.write_text(bvec_path, bvecs_text(bvecs))


def scheme(*, n_b0: int = 5, n_dirs: int = 32, bval: float = 1000.0, seed: int = 0):
    """A diffusion scheme: ``n_b0`` b=0 volumes (interleaved) and ``n_dirs`` directions
    approximately uniform on the hemisphere (electrostatic repulsion, dipy ``disperse_charges``).

    Returns
    -------
    bvals : ndarray (N,), bvecs : ndarray (N, 3) unit directions in the frame they are given in.
    """
    from dipy.core.sphere import HemiSphere, disperse_charges

    if n_b0 < 1 or n_dirs < 6:
        raise ValueError("a tensor scheme needs at least one b0 and six directions")
    rng = np.random.default_rng(seed)
    theta = np.arccos(rng.uniform(-1, 1, n_dirs))
    phi = rng.uniform(0, 2 * np.pi, n_dirs)
    hemi = HemiSphere(theta=theta, phi=phi)
    hemi, _ = disperse_charges(hemi, 2000, const=0.05)
    dirs = hemi.vertices / np.linalg.norm(hemi.vertices, axis=1, keepdims=True)
    n = n_b0 + n_dirs
    b0_pos = np.round(np.linspace(0, n - 1, n_b0)).astype(int)
    bvals = np.full(n, float(bval))
    bvecs = np.zeros((n, 3))
    bvals[b0_pos] = 0
    bvecs[np.setdiff1d(np.arange(n), b0_pos)] = dirs
    return bvals, bvecs
