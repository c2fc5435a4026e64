"""Pre-processing of a diffusion series before the tensor fit.

Stages (each a plain function on arrays; :func:`alps.pipeline.preprocess_subject` composes them):

* :func:`brain_mask` — dipy ``median_otsu`` on the mean b = 0 image (always on);
* :func:`denoise_mppca` — MP-PCA denoising (Veraart et al. 2016), dipy ``localpca.mppca``;
  **off by default**;
* :func:`remove_gibbs` — sub-voxel-shift Gibbs-ringing removal (Kellner et al. 2016), dipy
  ``gibbs_removal`` along the slice axis; **off by default**;
* :func:`motion_correct` — per-volume affine registration of every volume to the first b = 0
  (dipy ``motion_correction``) with the b-vectors rotated by each volume's rotation; **off by
  default**: on the real Toshiba scans in ``../shared`` it increased the spread of ALPS across
  tilts (few, low-SNR volumes make per-volume registration noisy).

Order when enabled: Gibbs removal before denoising is *not* what MRtrix recommends; we follow the
recommended order **denoise → Gibbs → motion**.
"""
from __future__ import annotations

import numpy as np

from .gradients import B0_THRESHOLD, fsl_to_voxel, voxel_to_fsl


def mean_b0(data, bvals) -> np.ndarray:
    """Mean of the b ≤ 50 volumes."""
    b0 = np.asarray(bvals) <= B0_THRESHOLD
    return np.asarray(data[..., b0], dtype=np.float32).mean(axis=-1)


def brain_mask(data, bvals, *, median_radius: int = 2, numpass: int = 1, dilate: int = 1) -> np.ndarray:
    """Brain mask from the mean b0 with dipy ``median_otsu``.

    Defaults (``median_radius=2, numpass=1, dilate=1``) suit 2–3 mm clinical DTI; the mask is
    deliberately generous (one voxel dilation) since it only limits the tensor fit and serves
    as a registration/QC aid; ALPS ROIs come from the template.
    """
    from dipy.segment.mask import median_otsu

    b0 = mean_b0(data, bvals)
    _, mask = median_otsu(b0, median_radius=median_radius, numpass=numpass, dilate=dilate)
    mask = np.asarray(mask, bool)
    if mask.sum() < 100:
        raise ValueError(f"brain mask has only {int(mask.sum())} voxels; check the b0 image")
    return mask


def denoise_mppca(data, mask=None, *, patch_radius: int = 2) -> np.ndarray:
    """MP-PCA denoising (dipy ``mppca``) of a 4D series; returns float32."""
    from dipy.denoise.localpca import mppca

    out = mppca(np.asarray(data, np.float32), mask=mask, patch_radius=patch_radius, suppress_warning=True)
    return np.asarray(out, np.float32)


def slice_axis(affine) -> int:
    """Voxel axis most aligned with world z: the acquisition slice axis of axial scans.

    Without slice-timing/sidecar information the slice axis of sagittal or coronal acquisitions
    cannot be told from the affine alone; pass ``axis`` to :func:`remove_gibbs` explicitly then.
    """
    lin = np.asarray(affine, float)[:3, :3]
    cols = lin / np.linalg.norm(lin, axis=0)
    return int(np.argmax(np.abs(cols[2])))


def remove_gibbs(data, *, axis: int = 2) -> np.ndarray:
    """Gibbs-ringing removal (dipy ``gibbs_removal``) with 2D processing in the slice plane."""
    from dipy.denoise.gibbs import gibbs_removal

    out = gibbs_removal(np.array(data, np.float32, copy=True), slice_axis=axis, inplace=True)
    return np.asarray(out, np.float32)


def motion_correct(data, affine, bvals, bvecs_fsl):
    """Per-volume affine motion correction with b-vector rotation.

    Parameters
    ----------
    data : (X, Y, Z, N)
    affine : 4x4
    bvals : (N,)
    bvecs_fsl : (N, 3) FSL-convention b-vectors (as stored)

    Returns
    -------
    corrected : (X, Y, Z, N) float32
    bvecs_fsl : (N, 3) rotated b-vectors, FSL convention.

    Each volume's registration affine ``M`` (dipy maps *static* (reference) world points to
    moving world points) gives the rotation ``R = polar(M[:3,:3])``; the gradient applied to a
    volume that moved by ``R`` is seen in the reference frame as ``Rᵀ g`` — we rotate the
    world-frame gradient by ``R^T`` and convert back to FSL voxel convention.
    """
    from dipy.align import motion_correction
    from dipy.core.gradients import gradient_table

    from .gradients import voxel_to_world, world_to_voxel
    from .tensor import polar_rotation

    bvals = np.asarray(bvals, float)
    vox = fsl_to_voxel(bvecs_fsl, affine)
    gtab = gradient_table(bvals, bvecs=vox, b0_threshold=B0_THRESHOLD)
    reg_img, reg_affines = motion_correction(np.asarray(data, np.float32), gtab, affine=affine)
    corrected = np.asarray(reg_img.get_fdata(), np.float32)
    world = voxel_to_world(vox, affine)
    out = world.copy()
    for n in range(len(bvals)):
        if bvals[n] <= B0_THRESHOLD:
            continue
        m = np.asarray(reg_affines[..., n] if np.ndim(reg_affines) == 3 else reg_affines[n])
        rot = polar_rotation(m[:3, :3])
        out[n] = rot.T @ world[n]
    new_vox = world_to_voxel(out, affine)
    return corrected, voxel_to_fsl(new_vox, affine)
