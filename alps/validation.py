"""Validation experiments with a known truth: the head-rotation sweep.

One simulated subject (:mod:`alps.simulate`, identity scale, high SNR) is written with the head
rotated by each angle about x, y and z (0, ±a for every ``a`` in ``angles``) and run through the
pipeline. An orientation-robust index is flat across poses (spread = max − min ≈ noise); the
classic scanner-axis index is not, because a tilt mixes Dyy/Dzz into Dxx.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def sweep_poses(angles) -> list[tuple[str, tuple[float, float, float]]]:
    """``[(label, (rx, ry, rz)), ...]``: the identity, then ±a about each axis for a in ``angles``."""
    poses = [("rot0", (0.0, 0.0, 0.0))]
    for axis, name in enumerate("xyz"):
        for a in angles:
            if float(a) == 0:
                continue
            for sign in (+1, -1):
                r = [0.0, 0.0, 0.0]
                r[axis] = sign * float(a)
                poses.append((f"rot{name}{'p' if sign > 0 else 'm'}{int(round(abs(a)))}", tuple(r)))
    return poses


def simulate_pose_subject(bids_root, pid: str, rot_deg, *, snr: float = 100.0, alps=(1.5, 1.5),
                          seed: int = 1, orientation: str = "LAS", oblique: bool = False, fields=None):
    """Write one simulated subject with head rotation ``rot_deg`` (degrees about x, y, z) into a
    BIDS tree; returns the oracle ALPS dict of its template-space field."""
    from .gradients import write_bvals_bvecs
    from .phantom import make_template_fields
    from .simulate import Pose, simulate_subject, write_nifti_gz

    fields = fields or make_template_fields()
    img, bvals, bvecs, extras = simulate_subject(
        fields, Pose(tuple(float(v) for v in rot_deg)), {"alps_L": alps[0], "alps_R": alps[1]},
        snr=snr, seed=seed, orientation=orientation, oblique=oblique)
    d = Path(bids_root) / f"sub-{pid}" / "dwi"
    d.mkdir(parents=True, exist_ok=True)
    write_nifti_gz(img, d / f"sub-{pid}_dwi.nii.gz")
    write_bvals_bvecs(bvals, bvecs, d / f"sub-{pid}_dwi.bval", d / f"sub-{pid}_dwi.bvec")
    return extras["oracle"]


def rotation_sweep(work_dir, *, angles=(5, 10, 15), snr: float = 100.0, seed: int = 1,
                   n_jobs: int = 1, progress: bool = True, **pipeline_params) -> pd.DataFrame:
    """Run the rotation sweep in ``work_dir`` (``bids/`` and ``derivatives/`` are created there).

    Returns
    -------
    DataFrame, one row per pose: ``participant_id, rot_x_deg, rot_y_deg, rot_z_deg, status,
    truth_alps, alps_L, alps_R, alps, alps_scanner_L, alps_scanner_R, alps_scanner, reg_corr``.
    Resumable: poses already processed with the same inputs and parameters are reused.
    """
    from .phantom import make_template_fields
    from .pipeline import run_cohort

    work = Path(work_dir)
    bids = work / "bids"
    fields = make_template_fields()
    truth = {}
    for pid, rot in sweep_poses(angles):
        truth[f"sub-{pid}"] = (rot, simulate_pose_subject(bids, pid, rot, snr=snr, seed=seed, fields=fields))
    df = run_cohort(bids, work / "derivatives", n_jobs=n_jobs, progress=progress, **pipeline_params)
    rows = []
    for _, r in df.iterrows():
        rot, oracle = truth[r["participant_id"]]
        rows.append({"participant_id": r["participant_id"], "rot_x_deg": rot[0], "rot_y_deg": rot[1],
                     "rot_z_deg": rot[2], "status": r["status"], "truth_alps": oracle["alps"],
                     **{k: r.get(k) for k in ("alps_L", "alps_R", "alps", "alps_scanner_L",
                                               "alps_scanner_R", "alps_scanner", "reg_corr")}})
    return pd.DataFrame(rows)


def sweep_spreads(sweep: pd.DataFrame) -> pd.DataFrame:
    """Spread (max − min), SD and mean bias vs truth of each index across the poses of a sweep."""
    ok = sweep[sweep["status"] == "ok"]
    rows = []
    for col in ("alps", "alps_L", "alps_R", "alps_scanner", "alps_scanner_L", "alps_scanner_R"):
        v = ok[col].astype(float)
        rows.append({"index": col, "n_poses": len(v), "spread": v.max() - v.min(), "sd": v.std(ddof=1),
                     "mean_bias": float((v - ok["truth_alps"]).mean())})
    return pd.DataFrame(rows)


def downsample2(data, affine):
    """Halve the resolution of a 3D/4D image by averaging 2×2×2 voxel blocks (odd edges dropped).

    Returns ``(data, affine)``: the new voxel centre is the centre of its block, so the affine's
    linear part doubles and its origin moves half an old voxel along each axis.
    """
    import numpy as np

    d = np.asarray(data, np.float32)
    s = [x // 2 * 2 for x in d.shape[:3]]
    d = d[: s[0], : s[1], : s[2]].reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2, *d.shape[3:])
    d = d.mean(axis=(1, 3, 5))
    aff = np.array(affine, float, copy=True)
    aff[:3, :3] *= 2
    aff[:3, 3] += np.asarray(affine, float)[:3, :3] @ [0.5, 0.5, 0.5]
    return d, aff


def fibre_field_agreement(tensor_a, affine_a, tensor_b, affine_b, b_to_a, *, mask_b=None,
                          fa_threshold: float = 0.45) -> dict:
    """How well two scans of one head agree on fibre *orientation*, in one world frame.

    A test of gradient-table handling on real repeated scans (e.g. one head with differently
    tilted slabs): if both tables are interpreted correctly, the principal eigenvectors of scan
    ``b`` equal those of scan ``a`` at the same anatomy, once ``a``'s tensors are carried into
    ``b``'s world frame by the head motion. A table read in the wrong frame (slab or scanner axes
    swapped, an oblique rotation applied twice or not at all) shows up as a systematic extra
    rotation of the whole fibre field — which sign-flip/permutation checks
    (:mod:`alps.gradcheck`) cannot see.

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
    import numpy as np
    from scipy.ndimage import map_coordinates
    from scipy.optimize import minimize
    from scipy.spatial.transform import Rotation

    from .tensor import fa_md, polar_rotation, rotate, voxel_to_world

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
