"""Diffusion-tensor fit (dipy ``TensorModel``, weighted least squares by default).

The b-vectors are converted from the FSL convention with :func:`alps.gradients.fsl_to_voxel`,
so the fitted tensor is expressed in the image's **voxel axes** (i, j, k) — exactly what FSL
``dtifit`` outputs. :func:`alps.tensor.voxel_to_world` turns it into world (RAS+) axes and the
registration's rotation into template axes (:mod:`alps.measure`).

Outputs of :func:`fit_tensor` (a :class:`TensorMaps`): the full tensor ``(X, Y, Z, 3, 3)`` in
mm²/s, FA, MD, eigenvalues/eigenvectors and a colour-FA map. The tensor is saved on disk as a
6-volume NIfTI in :data:`alps.tensor.SIX_ORDER` (``Dxx, Dxy, Dxz, Dyy, Dyz, Dzz``).
"""
from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from . import tensor as T
from .gradients import B0_THRESHOLD, fsl_to_voxel

FIT_METHODS = ("WLS", "OLS", "NLLS", "RESTORE")


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
    method : 'WLS' (default), 'OLS', 'NLLS' or 'RESTORE'
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
    gtab = gradient_table(np.asarray(bvals, float), bvecs=bvecs_vox, b0_threshold=B0_THRESHOLD)
    model = TensorModel(gtab, fit_method=method)
    vox = data[mask]
    vox = np.maximum(vox, 1e-3)  # log of non-positive signal is undefined for (W)LS
    fit = model.fit(vox)
    q = np.asarray(fit.quadratic_form, float)
    q = np.where(np.isfinite(q), q, 0.0)
    return maps_from_tensor(q, mask, affine)


def maps_from_tensor(q, mask, affine) -> TensorMaps:
    """Build :class:`TensorMaps` from in-mask tensors ``q`` (M, 3, 3) (or a full field)."""
    mask = np.asarray(mask, bool)
    shape = mask.shape
    q = np.asarray(q, np.float64)
    if q.shape[:3] == shape:
        q = q[mask]
    full = np.zeros(shape + (3, 3), np.float64)
    full[mask] = q
    ev, evec = T.eig(q)
    fa_m, md_m = T.fa_md(q)
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
