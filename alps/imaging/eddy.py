"""Eddy-current and motion correction of a diffusion series, pip-only (numpy/scipy).

Each volume is registered to a prediction of itself from the other volumes, as FSL eddy and
eddymotion/nifreeze do, rather than to the b = 0 image whose contrast differs
(:mod:`alps.imaging.eddy_predict`): the diffusion-weighted volumes to a leave-one-out WLS tensor
prediction, extra b = 0 volumes to the mean of the others (the first b = 0 defines the reference
frame). The transform is limited to what head motion and eddy currents do
(:mod:`alps.imaging.eddy_transform`): rigid motion, plus for the diffusion-weighted volumes an
eddy-current displacement along the phase-encoding axis (linear — shear/scale — by default,
quadratic as FSL eddy's default ``--flm``); the registration is least squares with an intensity gain
(:mod:`alps.imaging.eddy_register`).

Passes (``sigmas_vox``: one per pass, the Gaussian smoothing in voxels; FSL eddy's ``--fwhm``):
predict every volume from the current corrected series → register every volume (as acquired) to its
prediction, starting from the previous pass's transform → resample every volume once from the
acquired data (cubic B-spline, Jacobian intensity correction) and turn its b-vector by the
rotation. From the last pass on, slices whose signal falls below their prediction are found in
each volume's own space and, with ``outliers='replace'``, replaced by the prediction before the
volume is resampled (FSL eddy's ``--repol``; why replace and not drop:
:mod:`alps.imaging.eddy_predict`).

b-vectors: the transform maps reference points to where the head is in volume ``n``; the head
there is the reference head turned by ``R``, so ``S_n = S0 exp(−b gᵀ R D Rᵀ g)`` and in the
reference frame the applied gradient is ``Rᵀ g`` (world axes), written back in the FSL convention
(:mod:`alps.io.gradients`). The eddy-current terms do not turn the gradient.

Phase encoding: ``pe_axis`` is the voxel axis (0, 1, 2 = i, j, k) of ``PhaseEncodingDirection``
(the sign does not matter here). ``None`` (unknown): a displacement field of its own along each
in-plane axis (i and j; BIDS' default slice axis is k), which holds the true one whatever it is,
at the cost of three (or nine) more parameters per volume.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial.transform import Rotation

from ..io.gradients import B0_THRESHOLD, fsl_to_voxel, voxel_to_fsl
from . import eddy_transform as ET
from .eddy_predict import detect_outliers, loo_mean, loo_tensor_prediction, replace_outliers
from .eddy_register import prepare, prepare_target, register_volume
from .eddy_report import SUMMARY_COLUMNS, parameters_table, summarise  # noqa: F401 (SUMMARY_COLUMNS: re-exported)
from .dti import design_matrix
from .tensor import vectors_voxel_to_world, vectors_world_to_voxel

OUTLIER_MODES = ("replace", "flag", "off")
#: default smoothing (voxels) of the coarse passes before the unsmoothed ones
SIGMAS_VOX = (1.0,)
#: sample points of the registration: the brain mask dilated by this many voxels, at most MAX_POINTS
MASK_DILATE = 2
MAX_POINTS = 20000
#: at most this many rounds of outlier detection (worst slice per position each round)
MAX_OUTLIER_ROUNDS = 6
#: relative singular-value cut-off of the eddy-current gradient model's least squares (visible_update)
EC_RCOND = 0.05


@dataclass(frozen=True)
class EddyCorrection:
    """Result of :func:`correct_eddy_motion` (a typed record between stages).

    ``data`` (X, Y, Z, N) float32 corrected series on the input grid; ``bvecs`` (N, 3) its b-vectors
    (FSL convention, turned by each volume's rotation); ``parameters`` one row per volume
    (:func:`parameters_table`); ``outlier_slices`` (N, n_slices) bool along ``settings['slice_axis']``;
    ``transforms`` each volume's :class:`~alps.imaging.eddy_transform.VolumeTransform`; ``geometry``
    what they act on; ``settings`` what was done (model, phase-encoding axis and where it came from,
    passes, outlier mode); ``times_s`` seconds per stage.
    """

    data: np.ndarray
    bvecs: np.ndarray
    parameters: pd.DataFrame
    outlier_slices: np.ndarray
    transforms: tuple
    geometry: ET.Geometry
    settings: dict
    times_s: dict

    def rigid_matrices(self) -> np.ndarray:
        """(N, 4, 4) world (RAS mm) head motion of each volume: reference point → volume."""
        return np.stack([t.rigid_matrix(self.geometry) for t in self.transforms])

    def summary(self) -> dict:
        """Per-scan numbers (:data:`alps.imaging.eddy_report.SUMMARY_COLUMNS`) over the volumes."""
        return summarise(self.parameters, self.settings)


def _validate(data, affine, bvals, bvecs, mask, pe_axis, slice_axis, model, outliers, sigmas):
    if np.ndim(data) != 4:
        raise ValueError(f"eddy correction needs a 4D series, got shape {np.shape(data)}")
    n = np.shape(data)[-1]
    if np.shape(bvals) != (n,) or np.shape(bvecs) != (n, 3):
        raise ValueError(f"{n} volumes but {np.shape(bvals)} b-values and {np.shape(bvecs)} b-vectors")
    if np.shape(mask) != np.shape(data)[:3] or not np.asarray(mask, bool).any():
        raise ValueError(f"mask of shape {np.shape(mask)} does not fit the image {np.shape(data)[:3]} or is empty")
    if np.shape(affine) != (4, 4) or abs(np.linalg.det(np.asarray(affine, float)[:3, :3])) < 1e-9:
        raise ValueError("affine must be a non-singular 4x4 matrix")
    if slice_axis not in (0, 1, 2):
        raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis!r}")
    if pe_axis is not None and (pe_axis not in (0, 1, 2) or pe_axis == slice_axis):
        raise ValueError(f"phase-encoding axis must be an in-plane voxel axis (0, 1, 2, not the slice axis "
                         f"{slice_axis}) or None, got {pe_axis!r}")
    ET.ec_terms(model)
    if outliers not in OUTLIER_MODES:
        raise ValueError(f"outliers must be one of {OUTLIER_MODES}, got {outliers!r}")
    if any(s < 0 for s in sigmas):  # () is allowed: no coarse passes, only the unsmoothed ones
        raise ValueError(f"sigmas_vox must be non-negative smoothing widths, got {sigmas!r}")


def _sample_points(mask, max_points):
    grown = ndimage.binary_dilation(np.asarray(mask, bool), iterations=MASK_DILATE)
    y = np.argwhere(grown).astype(float)
    step = int(np.ceil(len(y) / max_points))
    return y[::step]


def _gradients_ref(transforms, g_world, b0):
    """World-axis gradients in the reference frame, ``Rᵀ g`` per volume."""
    out = g_world.copy()
    for n, tr in enumerate(transforms):
        if not b0[n]:
            out[n] = tr.rotation.T @ g_world[n]
    return out


def predict_signal(signal, bvals, g_ref_vox, b0) -> np.ndarray:
    """Leave-one-out prediction ``(M, N)`` of every volume's signal ``(M, N)`` (the corrected series
    at M voxels): the WLS tensor prediction for diffusion-weighted volumes, the mean of the other
    b = 0 volumes for a b = 0 volume (the reference b = 0 itself when it is the only one)."""
    pred = loo_tensor_prediction(signal, bvals, g_ref_vox, columns=np.flatnonzero(~b0))
    if b0.sum() >= 2:
        pred[:, b0] = loo_mean(signal[:, b0])
    else:
        pred[:, b0] = signal[:, b0]
    return pred


def _params(tr) -> np.ndarray:
    """A transform as one vector in mm: translation, rotation vector × 100 mm, eddy-current terms."""
    return np.r_[tr.translation, 100.0 * Rotation.from_matrix(tr.rotation).as_rotvec(), tr.ec.ravel()]


def _transform(v, like) -> ET.VolumeTransform:
    return ET.VolumeTransform(Rotation.from_rotvec(v[3:6] / 100.0).as_matrix(), v[:3].copy(), v[6:].reshape(like.ec.shape))


def visible_update(theta, theta_hat, bvals, g_ref_vox, g_applied_vox, *, ec: bool):
    """New parameters of the diffusion-weighted volumes from one pass of registrations (rows: volumes).

    What a registration to leave-one-out tensor predictions can see: the log tensor model's rows span
    the quadratic forms of the gradient direction, so a parameter pattern over the volumes that is a
    quadratic form ``q(g_n)`` (a constant included: a shift shared by all volumes) is reproduced by
    every prediction and never seen. Linearised, a pass started at ``θ`` returns
    ``θ̂ − θ ≈ κ D (I − H)(θ_true − θ)`` (``H`` the hat matrix of the tensor design over these volumes,
    ``D = diag(1/(1 − h))``, ``κ ≈ 0.6`` on the 12-direction phantom where the prediction blurs the
    misaligned others). So:

    * head motion: only the visible part moves, ``θ ← θ + (I − H) diag(1 − h)(θ̂ − θ)``; the invisible
      part stays at its start, 0 (the minimum-norm estimate: with 12 directions 6 of the 12 degrees
      of freedom of each parameter are not corrected, with 30 directions 6 of 30);
    * eddy currents are proportional to the applied gradient, ``c_n = K g_n`` (odd in ``g``, so not a
      quadratic form): ``K`` solves ``D (I − H) G K = (θ̂ − θ)_c + D (I − H) c`` in least squares and
      ``c = G K`` — FSL eddy's second-level model ``--slm linear``, which also restores the part of the
      pattern no registration sees. No intercept: a coefficient common to all volumes that no gradient
      explains is not eddy current (and could not be seen). Directions of ``K`` whose pattern is itself
      a quadratic form are not seen either (singular values below :data:`EC_RCOND` of the largest are
      dropped: the minimum-norm ``K``); on the Toshiba/Canon 12-direction scheme one of the three is
      (``g_x + g_y + g_z`` is the same for every direction), on the Philips and Siemens schemes none.
    """
    X = design_matrix(bvals, g_ref_vox)
    H = X @ np.linalg.pinv(X)
    lev = np.minimum(np.diag(H), 0.95)
    Q = np.eye(len(lev)) - H
    d = theta_hat - theta
    new = theta.copy()
    new[:, :6] = theta[:, :6] + Q @ ((1.0 - lev)[:, None] * d[:, :6])
    if ec and theta.shape[1] > 6:
        G = np.asarray(g_applied_vox, float)
        A = Q @ G / (1.0 - lev)[:, None]
        rhs = d[:, 6:] + (Q @ theta[:, 6:]) / (1.0 - lev)[:, None]
        K, *_ = np.linalg.lstsq(A, rhs, rcond=EC_RCOND)
        new[:, 6:] = G @ K
    return new


def correct_eddy_motion(data, affine, bvals, bvecs_fsl, mask, *, pe_axis: int | None = None, slice_axis: int = 2,
                        model: str = "linear", sigmas_vox=SIGMAS_VOX, max_passes: int = 8, tol_mm: float = 0.05,
                        outliers: str = "replace", outlier_nstd: float = 4.0, min_slice_voxels: int = 100,
                        b0_threshold: float = B0_THRESHOLD, max_points: int = MAX_POINTS, centre=None,
                        _init=None) -> EddyCorrection:
    """Eddy-current and motion correction of one diffusion series (module docstring).

    Parameters
    ----------
    data : (X, Y, Z, N) the series as acquired
    affine : (4, 4) its affine (voxel → RAS mm)
    bvals : (N,) s/mm²
    bvecs_fsl : (N, 3) b-vectors as stored (FSL convention, :mod:`alps.io.gradients`)
    mask : (X, Y, Z) brain mask (e.g. :func:`alps.imaging.preprocess.brain_mask`)
    pe_axis : voxel axis of the phase encoding (from ``PhaseEncodingDirection``), None if unknown
    slice_axis : voxel axis of the acquired slices (``SliceEncodingDirection``; BIDS default k = 2)
    model : eddy-current model of the diffusion-weighted volumes: 'linear' (default), 'quadratic' or
        'rigid' (head motion only)
    sigmas_vox : Gaussian smoothing (voxels) of the coarse passes, one pass each, before the
        unsmoothed ones
    max_passes, tol_mm : unsmoothed passes: at most this many, fewer once no parameter moves by more
        than ``tol_mm`` (mm; rotations and eddy-current terms at 100 mm)
    outliers : 'replace' (default) outlier slices by their prediction, 'flag' them only, or 'off'
    outlier_nstd, min_slice_voxels : outlier threshold and the fewest brain voxels a scored slice has
        (FSL eddy: 4 SDs, 250 voxels of 2 mm data; 100 voxels of 3 mm are about 250 of 2 mm in-plane)
    b0_threshold : b ≤ this is b = 0
    max_points : the registration samples at most this many voxels of the dilated mask (regular stride)
    centre : world point (mm) the rotations and the eddy-current polynomial are centred on (default:
        the mask's centroid); changes the parameters' values, not the correction

    Returns
    -------
    EddyCorrection
    """
    _validate(data, affine, bvals, bvecs_fsl, mask, pe_axis, slice_axis, model, outliers, tuple(sigmas_vox))
    times = {"predict": 0.0, "register": 0.0, "resample": 0.0, "outliers": 0.0}
    acquired = np.asarray(data, np.float32)
    affine = np.asarray(affine, float)
    bvals = np.asarray(bvals, float)
    b0 = bvals <= b0_threshold
    dw = ~b0
    if not b0.any() or not dw.any():
        raise ValueError("eddy correction needs b = 0 and diffusion-weighted volumes")
    mask = np.asarray(mask, bool)
    shape = acquired.shape[:3]
    pe_axes = (int(pe_axis),) if pe_axis is not None else tuple(a for a in (0, 1, 2) if a != slice_axis)
    if centre is None:
        centre = affine[:3, :3] @ np.argwhere(mask).mean(axis=0) + affine[:3, 3]
    geom = ET.Geometry(affine, shape, centre, pe_axes, model)
    first_b0 = int(np.flatnonzero(b0)[0])
    free = [n for n in range(len(bvals)) if n != first_b0]
    g_world = vectors_voxel_to_world(fsl_to_voxel(bvecs_fsl, affine), affine)
    g_vox_applied = fsl_to_voxel(bvecs_fsl, affine)
    region = ndimage.binary_dilation(mask, iterations=MASK_DILATE + 2)
    region_pts = np.argwhere(region).astype(float)
    y = _sample_points(mask, max_points)
    models = ["rigid" if b0[n] else model for n in range(len(bvals))]
    transforms = [ET.VolumeTransform.identity(geom, m) for m in models] if _init is None else list(_init)
    n_vol = len(bvals)
    gains, costs = np.ones(n_vol), np.zeros(n_vol)
    flags = np.zeros((n_vol, shape[slice_axis]), bool)
    scores = np.full(flags.shape, np.nan)
    work = acquired
    cache, history = {}, []
    relax = {"omega": 1.0, "last": None}

    def coefs(sigma):
        """B-spline coefficients of the (outlier-replaced) acquired volumes, smoothed by ``sigma`` voxels."""
        if sigma not in cache:
            cache[sigma] = [prepare(work[..., n], sigma * geom.vox.mean(), geom.vox) for n in range(n_vol)]
        return cache[sigma]

    def corrected_at(points):
        """The corrected series ``(M, N)`` at reference-grid points (each volume resampled once from
        the acquired data: cubic B-spline, Jacobian intensity correction)."""
        t = time.perf_counter()
        c = coefs(0.0)
        out = np.empty((len(points), n_vol), np.float32)
        for n in range(n_vol):
            x, jac = ET.forward(transforms[n], geom, points)
            out[:, n] = jac * ndimage.map_coordinates(c[n], x.T, order=3, mode="nearest", prefilter=False)
        times["resample"] += time.perf_counter() - t
        return out

    def predict_at(points):
        sig = corrected_at(points)
        t = time.perf_counter()
        g_vox = vectors_world_to_voxel(_gradients_ref(transforms, g_world, b0), affine)
        pred = predict_signal(sig, bvals, g_vox, b0)
        times["predict"] += time.perf_counter() - t
        return pred

    def as_volumes(points, values):
        vol = np.zeros(shape + (n_vol,), np.float32)
        vol[tuple(points.astype(int).T)] = values
        return vol

    def one_pass(sigma):
        """Register every volume to its prediction from the current transforms, then update."""
        nonlocal transforms
        if sigma > 0:   # smoothed targets need the prediction around every sample point
            grid = ET.grid_points(shape)
            pred = as_volumes(grid, predict_at(grid))
            targets = np.stack([prepare_target(pred[..., n], sigma * geom.vox.mean(), geom.vox)[tuple(y.astype(int).T)]
                                for n in range(n_vol)], axis=1)
        else:
            targets = predict_at(y)
        t = time.perf_counter()
        reg = list(transforms)
        for n in free:
            reg[n], gains[n], costs[n], _ = register_volume(coefs(sigma)[n], targets[:, n], geom, y,
                                                            init=transforms[n], gain=gains[n])
        idx = np.flatnonzero(dw)
        theta = np.array([_params(transforms[n]) for n in idx])
        g_ref = vectors_world_to_voxel(_gradients_ref(transforms, g_world, b0), affine)[idx]
        step = visible_update(theta, np.array([_params(reg[n]) for n in idx]), bvals[idx], g_ref,
                              g_vox_applied[idx], ec=model != "rigid") - theta
        if relax["last"] is not None and float(np.sum(step * relax["last"])) < 0:
            relax["omega"] = max(relax["omega"] / 2, 0.125)     # the update reversed: damp it
        relax["last"] = step
        new = theta + relax["omega"] * step
        out = list(reg)          # extra b = 0 volumes: registered to the mean of the others
        for i, n in enumerate(idx):
            out[n] = _transform(new[i], transforms[n])
        change = float(np.abs(new - theta).max()) if len(idx) else 0.0
        transforms = out
        times["register"] += time.perf_counter() - t
        history.append(round(change, 4))
        return change

    def find_outliers():
        """Worst first: a lost slice brightens every prediction that weighs it negatively (and, through
        the resampling, its neighbours'), so each round flags, per slice position, only the volume
        scoring lowest below −``outlier_nstd``, replaces every flagged slice by its prediction and
        predicts again; slices no longer below the threshold once the others are replaced are
        unflagged (FSL eddy also re-detects at every iteration)."""
        nonlocal work, flags, scores
        found = np.zeros_like(flags)
        for _ in range(MAX_OUTLIER_ROUNDS):
            pred = as_volumes(region_pts, predict_at(region_pts))
            t = time.perf_counter()
            below, scores = detect_outliers(acquired, pred, transforms, geom, mask, dw, slice_axis, outlier_nstd,
                                            min_slice_voxels)
            new = below & ~found
            worst = np.argmin(np.where(new, scores, np.inf), axis=0)
            add = np.zeros_like(found)
            cols = np.flatnonzero(new.any(axis=0))
            add[worst[cols], cols] = True
            times["outliers"] += time.perf_counter() - t
            if not add.any():
                break
            found |= add
            work = replace_outliers(acquired, pred, transforms, geom, found, slice_axis)
            cache.clear()
        flags = below & found
        work = replace_outliers(acquired, pred, transforms, geom, flags, slice_axis) if outliers == "replace" else acquired
        cache.clear()

    def converge():
        for _ in range(max_passes):
            if one_pass(0.0) < tol_mm:
                break

    for sigma in sigmas_vox:
        one_pass(float(sigma))
    converge()
    if outliers != "off":
        find_outliers()
        if flags.any() and outliers == "replace":
            converge()
            find_outliers()
    corrected = corrected_at(ET.grid_points(shape)).reshape(shape + (n_vol,))
    g_new = _gradients_ref(transforms, g_world, b0)
    bvecs = voxel_to_fsl(vectors_world_to_voxel(g_new, affine), affine)
    bvecs[b0] = np.asarray(bvecs_fsl, float)[b0]
    settings = {"model": model, "pe_axis": pe_axis, "pe_axes": list(pe_axes),
                "pe_axis_label": ET.AXES[pe_axis] if pe_axis is not None else "unknown (i+j)",
                "slice_axis": slice_axis, "sigmas_vox": [float(v) for v in sigmas_vox], "max_passes": max_passes, "outliers": outliers,
                "outlier_nstd": outlier_nstd, "min_slice_voxels": min_slice_voxels,
                "reference_volume": first_b0, "n_sample_points": int(len(y)), "pass_changes_mm": history}
    table = parameters_table(transforms, gains, costs, geom, bvals, b0, models, flags, scores, mask)
    return EddyCorrection(corrected, bvecs, table, flags, tuple(transforms), geom, settings,
                          {k: round(v, 3) for k, v in times.items()})
