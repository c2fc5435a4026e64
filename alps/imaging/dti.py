"""Diffusion-tensor fit (dipy ``TensorModel``, weighted least squares by default).

The b-vectors are converted from the FSL convention with :func:`alps.io.gradients.fsl_to_voxel`,
so the fitted tensor is expressed in the image's **voxel axes** (i, j, k) — exactly what FSL
``dtifit`` outputs. :func:`alps.imaging.tensor.voxel_to_world` turns it into world (RAS+) axes and the
registration's rotation into template axes (:mod:`alps.imaging.measure`).

Outputs of :func:`fit_tensor` (a :class:`TensorMaps`): the full tensor ``(X, Y, Z, 3, 3)`` in
mm²/s, FA, MD, eigenvalues/eigenvectors and a colour-FA map. The tensor is saved on disk as a
6-volume NIfTI in :data:`alps.imaging.tensor.SIX_ORDER` (``Dxx, Dxy, Dxz, Dyy, Dyz, Dzz``).
"""
from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from . import tensor as T
from ..io.gradients import B0_THRESHOLD, fsl_to_voxel

FIT_METHODS = ("WLS", "OLS", "NLLS", "RESTORE", "DIPY-WLS")


def design_matrix(bvals, bvecs) -> np.ndarray:
    """Log-linear DTI design matrix, columns ``Dxx, Dxy, Dxz, Dyy, Dyz, Dzz, ln S0``.

    .. math:: \\ln S_n = \\ln S_0 - b_n\\, g_n^T D g_n
    """
    b = np.asarray(bvals, float)
    g = np.asarray(bvecs, float)
    return np.column_stack([-b * g[:, 0] ** 2, -2 * b * g[:, 0] * g[:, 1], -2 * b * g[:, 0] * g[:, 2],
                            -b * g[:, 1] ** 2, -2 * b * g[:, 1] * g[:, 2], -b * g[:, 2] ** 2,
                            np.ones_like(b)])


def wls_fit(signal, bvals, bvecs, *, min_signal: float = 1e-3, chunk: int = 200_000, return_eig: bool = False):
    """Vectorised weighted-least-squares tensor fit (Chung et al. 2006; dipy's ``WLS``).

    Two passes on ``y = ln S``: OLS ``β₀ = X⁺y``, then
    ``β = (Xᵀ W X)⁻¹ Xᵀ W y`` with ``W = diag(exp(2 X β₀))`` (predicted signal squared),
    solved as batched 7×7 normal equations; eigenvalues are floored at ``1e-6 / max|X|`` as
    dipy's ``eig_from_lo_tri`` does. Gives dipy 1.12 ``TensorModel(fit_method='WLS')`` to
    ~1e-13 mm²/s (tests/test_dti.py) at several times its speed.

    Parameters
    ----------
    signal : (M, N) array of voxel signals
    bvals : (N,), bvecs : (N, 3) in the frame the tensor is wanted in (voxel axes here)

    Returns
    -------
    (M, 3, 3) tensors; with ``return_eig`` also their eigenvalues (M, 3, descending) and
    eigenvectors (M, 3, 3, columns), which the fit computes anyway.
    """
    X = design_matrix(bvals, bvecs)
    floor = 1e-6 / -X.min()
    out = np.empty((signal.shape[0], 3, 3))
    ev_out = np.empty((signal.shape[0], 3)) if return_eig else None
    vec_out = np.empty((signal.shape[0], 3, 3)) if return_eig else None
    for start in range(0, signal.shape[0], chunk):
        beta, _ = wls_coefficients(signal[start:start + chunk], X, min_signal=min_signal)
        evals, evecs = np.linalg.eigh(T.from_six(beta[:, :6]))
        evals = np.maximum(evals, floor)
        out[start:start + chunk] = T.from_eig(evals, evecs)
        if return_eig:
            ev_out[start:start + chunk] = evals[:, ::-1]
            vec_out[start:start + chunk] = evecs[:, :, ::-1]
    if return_eig:
        return out, ev_out, vec_out
    return out


def wls_coefficients(signal, X, *, min_signal: float = 1e-3):
    """The two-pass WLS solution of :func:`wls_fit` before any eigenvalue floor.

    Parameters
    ----------
    signal : (M, N) voxel signals
    X : (N, 7) design matrix (:func:`design_matrix`)

    Returns
    -------
    beta : (M, 7) — ``Dxx, Dxy, Dxz, Dyy, Dyz, Dzz, ln S0`` (unfloored)
    w2 : (M, N) — the weights ``exp(2 X β₀)`` (OLS-predicted signal squared) of the second pass
    """
    X = np.asarray(X, np.float64)
    XX = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], 49)
    y = np.log(np.maximum(np.asarray(signal, np.float64), min_signal))
    w2 = np.exp(2.0 * (y @ np.linalg.pinv(X).T) @ X.T)
    A = (w2 @ XX).reshape(-1, 7, 7)
    rhs = (w2 * y) @ X
    return np.linalg.solve(A, rhs[..., None])[..., 0], w2


@dataclass
class TensorMaps:
    """Tensor-fit products on the DWI grid; ``tensor`` is in voxel axes."""

    tensor: np.ndarray      # (X, Y, Z, 3, 3) voxel axes, mm²/s
    fa: np.ndarray          # (X, Y, Z)
    md: np.ndarray          # (X, Y, Z)
    evals: np.ndarray       # (X, Y, Z, 3) descending
    evecs: np.ndarray       # (X, Y, Z, 3, 3) columns = eigenvectors (voxel axes)
    mask: np.ndarray        # (X, Y, Z) bool
    affine: np.ndarray

    def color_fa(self, frame: str = "world") -> np.ndarray:
        """Colour FA ``|e1| * FA`` (RGB, float in [0, 1]); ``frame`` 'voxel' or 'world' axes."""
        return color_fa(self.fa, self.evecs[..., :, 0], affine=self.affine if frame == "world" else None)


def color_fa(fa, v1, affine=None) -> np.ndarray:
    """RGB = FA·|v1|. With ``affine``, ``v1`` (voxel axes) is first rotated to world axes."""
    v1 = np.asarray(v1, float)
    if affine is not None:
        v1 = v1 @ T.polar_rotation(np.asarray(affine)[:3, :3]).T
    return np.clip(np.abs(v1) * np.asarray(fa, float)[..., None], 0, 1).astype(np.float32)


def fit_tensor(data, bvals, bvecs_fsl, affine, mask=None, *, method: str = "WLS") -> TensorMaps:
    """Fit the diffusion tensor voxel-wise.

    Parameters
    ----------
    data : (X, Y, Z, N) array
    bvals : (N,)
    bvecs_fsl : (N, 3) FSL-convention b-vectors as stored beside the image
    affine : 4x4 image affine (decides the FSL x flip)
    mask : (X, Y, Z) bool, optional — voxels to fit (others are zero)
    method : 'WLS' (default; :func:`wls_fit`, numerically dipy's WLS), or dipy's 'OLS',
        'NLLS', 'RESTORE', 'DIPY-WLS'
    """
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel

    method = method.upper()
    if method not in FIT_METHODS:
        raise ValueError(f"unknown tensor fit method {method!r}; choose one of {FIT_METHODS}")
    data = np.asarray(data, np.float32)
    shape = data.shape[:3]
    if mask is None:
        mask = np.ones(shape, bool)
    mask = np.asarray(mask, bool)
    bvecs_vox = fsl_to_voxel(bvecs_fsl, affine)
    if method == "WLS":
        q, ev, vec = wls_fit(data[mask], bvals, bvecs_vox, return_eig=True)
        ok = np.isfinite(q).all(axis=(1, 2)) & np.isfinite(ev).all(axis=1) & np.isfinite(vec).all(axis=(1, 2))
        if ok.all():
            return maps_from_tensor(q, mask, affine, eig=(ev, vec))
        return maps_from_tensor(np.where(np.isfinite(q), q, 0.0), mask, affine)
    method = "WLS" if method == "DIPY-WLS" else method
    gtab = gradient_table(np.asarray(bvals, float), bvecs=bvecs_vox, b0_threshold=B0_THRESHOLD)
    model = TensorModel(gtab, fit_method=method)
    vox = data[mask]
    vox = np.maximum(vox, 1e-3)  # log of non-positive signal is undefined for (W)LS
    fit = model.fit(vox)
    q = np.asarray(fit.quadratic_form, float)
    q = np.where(np.isfinite(q), q, 0.0)
    return maps_from_tensor(q, mask, affine)


def maps_from_tensor(q, mask, affine, *, eig=None) -> TensorMaps:
    """Build :class:`TensorMaps` from in-mask tensors ``q`` (M, 3, 3) (or a full field);
    ``eig`` = (eigenvalues (M, 3) descending, eigenvectors (M, 3, 3)) of ``q`` if already known."""
    mask = np.asarray(mask, bool)
    shape = mask.shape
    q = np.asarray(q, np.float64)
    if q.shape[:3] == shape:
        q = q[mask]
    full = np.zeros(shape + (3, 3), np.float64)
    full[mask] = q
    ev, evec = eig if eig is not None else T.eig(q)
    fa_m, md_m = T.fa_md_from_evals(ev)
    evals = np.zeros(shape + (3,), np.float64)
    evecs = np.zeros(shape + (3, 3), np.float64)
    evals[mask] = ev
    evecs[mask] = evec
    fa = np.zeros(shape, np.float32)
    md = np.zeros(shape, np.float32)
    fa[mask] = fa_m
    md[mask] = md_m
    return TensorMaps(tensor=full, fa=fa, md=md, evals=evals, evecs=evecs, mask=mask,
                      affine=np.asarray(affine, float))


def tensor_image(tensor, affine) -> nib.Nifti1Image:
    """6-volume NIfTI (``Dxx, Dxy, Dxz, Dyy, Dyz, Dzz``, voxel axes) of a tensor field."""
    img = nib.Nifti1Image(T.to_six(tensor).astype(np.float32), affine)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = b"DTI tensor (Dxx,Dxy,Dxz,Dyy,Dyz,Dzz) voxel axes mm2/s"
    return img


def load_tensor_image(path):
    """Read a 6-volume tensor NIfTI → ``(X, Y, Z, 3, 3)`` float64 array and affine."""
    img = nib.load(str(path))
    six = np.asarray(img.dataobj, dtype=np.float64)
    if six.ndim != 4 or six.shape[3] != 6:
        raise ValueError(f"{path}: expected a 6-volume tensor image, got shape {six.shape}")
    return T.from_six(six), img.affine
