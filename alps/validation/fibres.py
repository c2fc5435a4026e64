"""Do two scans of one head agree on fibre orientation? A test of gradient-table handling on
real repeated scans (:func:`fibre_field_agreement`)."""
from __future__ import annotations

import numpy as np


def fibre_field_agreement(tensor_a, affine_a, tensor_b, affine_b, b_to_a, *, mask_b=None,
                          fa_threshold: float = 0.45) -> dict:
    """How well two scans of one head agree on fibre *orientation*, in one world frame.

    A test of gradient-table handling on real repeated scans (e.g. one head with differently
    tilted slabs): if both tables are interpreted correctly, the principal eigenvectors of scan
    ``b`` equal those of scan ``a`` at the same anatomy, once ``a``'s tensors are carried into
    ``b``'s world frame by the head motion. A table read in the wrong frame (slab or scanner axes
    swapped, an oblique rotation applied twice or not at all) shows up as a systematic extra
    rotation of the whole fibre field — which sign-flip/permutation checks
    (:mod:`alps.imaging.gradcheck`) cannot see.

    For every voxel ``v`` of ``b`` (inside ``mask_b``) with FA ≥ ``fa_threshold`` in both scans,
    ``a``'s world-axis tensor is sampled (trilinear, per component) at ``x_a = M x_b`` with
    ``M = b_to_a`` and expressed in ``b``'s world axes, ``D = Rᵀ D_a R`` (``R`` the polar factor
    of ``M``). With ``e_a``, ``e_b`` the principal eigenvectors, the fitted *extra* rotation is

    .. math:: \\hat Q = \\arg\\max_Q \\frac{1}{n}\\sum_v (e_b \\cdot Q e_a)^2 ,

    found by Nelder–Mead over rotation vectors from four starts; ``Q = I`` is what correct tables
    give (up to noise and interpolation).

    Parameters
    ----------
    tensor_a, tensor_b : ndarray (X, Y, Z, 3, 3), in their images' **voxel** axes
    affine_a, affine_b : 4x4 voxel → world (RAS mm)
    b_to_a : 4x4 rigid map of world points of ``b`` to world points of ``a`` (the head motion)
    mask_b : bool (X, Y, Z) on ``b``'s grid, optional
    fa_threshold : FA both scans must reach

    Returns
    -------
    dict with ``n_voxels``; ``median_angle_deg`` (median angle between ``e_a`` and ``e_b``);
    ``cos2_identity`` and ``cos2_best`` (mean ``(e_b·Qe_a)²`` at ``Q = I`` and at ``Q̂``);
    ``extra_rotation_deg`` (angle of ``Q̂``) and ``extra_rotvec_deg`` (its rotation vector).
    """
    from scipy.ndimage import map_coordinates
    from scipy.optimize import minimize
    from scipy.spatial.transform import Rotation

    from ..imaging.tensor import fa_md, polar_rotation, rotate, voxel_to_world

    affine_a, affine_b, m = (np.asarray(x, float) for x in (affine_a, affine_b, b_to_a))
    for name, x in (("affine_a", affine_a), ("affine_b", affine_b), ("b_to_a", m)):
        if x.shape != (4, 4):
            raise ValueError(f"{name} must be 4x4, got {x.shape}")
    ta = voxel_to_world(np.asarray(tensor_a, float), affine_a)
    tb = voxel_to_world(np.asarray(tensor_b, float), affine_b)
    fa_b = np.nan_to_num(fa_md(tb)[0])
    sel = fa_b >= fa_threshold
    if mask_b is not None:
        if np.shape(mask_b) != sel.shape:
            raise ValueError(f"mask_b has shape {np.shape(mask_b)}, tensor_b grid is {sel.shape}")
        sel &= np.asarray(mask_b, bool)
    ijk = np.argwhere(sel)
    xyz_a = (ijk @ affine_b[:3, :3].T + affine_b[:3, 3]) @ m[:3, :3].T + m[:3, 3]
    vox_a = np.linalg.solve(affine_a[:3, :3], (xyz_a - affine_a[:3, 3]).T)
    sampled = np.empty((len(ijk), 3, 3))
    for i in range(3):
        for j in range(i, 3):
            sampled[:, i, j] = sampled[:, j, i] = map_coordinates(ta[..., i, j], vox_a, order=1, cval=0.0)
    sampled = rotate(sampled, polar_rotation(m[:3, :3]).T)
    keep = np.nan_to_num(fa_md(sampled)[0]) >= fa_threshold
    if keep.sum() < 10:
        raise ValueError(f"only {int(keep.sum())} voxels reach FA {fa_threshold} in both scans: "
                         "do the images overlap (check b_to_a)?")
    ea = np.linalg.eigh(sampled[keep])[1][..., -1]
    eb = np.linalg.eigh(tb[tuple(ijk[keep].T)])[1][..., -1]

    def cos2(rotvec):
        return float(np.mean(np.sum(eb * (ea @ Rotation.from_rotvec(rotvec).as_matrix().T), -1) ** 2))

    starts = [np.zeros(3)] + [np.radians(10.0) * np.eye(3)[k] for k in range(3)]
    best = min((minimize(lambda r: -cos2(r), x0, method="Nelder-Mead",
                         options={"xatol": 1e-5, "fatol": 1e-10}) for x0 in starts), key=lambda r: r.fun)
    angle = np.degrees(np.arccos(np.clip(np.abs(np.sum(ea * eb, -1)), 0.0, 1.0)))
    return {"n_voxels": int(keep.sum()), "median_angle_deg": float(np.median(angle)),
            "cos2_identity": cos2(np.zeros(3)), "cos2_best": -float(best.fun),
            "extra_rotation_deg": float(np.degrees(np.linalg.norm(best.x))),
            "extra_rotvec_deg": [float(v) for v in np.degrees(best.x)]}
