"""Targets and outliers of eddy-current and motion correction: each volume predicted from the
others (leave one out), and slices whose signal falls below their prediction.

*Prediction.* A diffusion-weighted volume is predicted by the tensor fitted to every other volume
(weighted least squares on ``y = ln S`` with the weights ``W`` of :func:`alps.imaging.dti.wls_coefficients`).
For a linear least-squares fit the leave-one-out prediction needs no refit (e.g. Hastie, Tibshirani
& Friedman, *Elements of Statistical Learning*, eq. 7.64): with the weighted hat matrix's diagonal
``h_n = w_n x_nᵀ (XᵀWX)⁻¹ x_n`` and the full fit ``ŷ``,

.. math:: \\hat y_{(-n)} = (\\hat y_n - h_n y_n) / (1 - h_n)

(exact for the fixed weights; the weights themselves come from the OLS fit of every volume). A
b = 0 volume is predicted by the mean of the other b = 0 volumes. The prediction has the volume's
own contrast, unlike the b = 0 image ``eddy_correct`` and :func:`alps.imaging.preprocess.motion_correct`
register to, which is why FSL eddy (a Gaussian process) and eddymotion/nifreeze (dipy models)
register to predictions (Andersson & Sotiropoulos 2016, NeuroImage 125:1063).

*Outliers* (FSL eddy's ``--repol``, Andersson et al. 2016, NeuroImage 141:556): for each
diffusion-weighted volume ``n`` and acquired slice ``z`` with at least ``min_voxels`` brain voxels,
the mean difference ``m_nz`` between the volume and its prediction (both in the volume's own
space); ``z_nz = (m_nz − median_n m_nz) √N_z / σ`` with ``σ`` the pooled robust SD (1.4826 × MAD)
of the numerators over all slices and volumes; a slice is an outlier when ``z_nz < −nstd`` (signal
lost, as through-plane motion during the diffusion encoding does).

*Replacement.* Replacing a measurement by its leave-one-out prediction leaves the least-squares
fit of the others unchanged — the replaced point lies on that fit — so a replaced slice is, for a
tensor fit, a slice left out of the fit in those voxels (exactly for fixed weights). That is why
outliers are replaced rather than whole volumes dropped: an outlier slice costs the fit that
direction in that slice only, and the gradient table stays one table for the whole image. The
price: a replaced value has no residual, so a bootstrap of the residuals treats it as measured and
errs small there (the pipeline should say so in ``se_note``).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import eddy_transform as ET
from .dti import design_matrix, wls_coefficients

#: at most this leverage is used in the leave-one-out formula (a direction the others cannot
#: predict at all would otherwise divide by ~0).
MAX_LEVERAGE = 0.95


def loo_tensor_prediction(signal, bvals, bvecs_vox, *, columns=None, min_signal: float = 1e-3, chunk: int = 100_000):
    """Leave-one-out WLS tensor prediction of every volume of ``signal`` ``(M, N)``.

    Parameters
    ----------
    signal : (M, N) voxel signals
    bvals : (N,)
    bvecs_vox : (N, 3) unit directions in the frame of the voxels (voxel axes)
    columns : the volumes to predict (default all); the others are only fitted

    Returns
    -------
    (M, N) float32: entry ``n`` is the signal the tensor fitted without volume ``n`` predicts (the
    columns not predicted hold the full fit's prediction).
    """
    X = design_matrix(bvals, bvecs_vox)
    n_vol = X.shape[0]
    if n_vol - 1 < X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(f"a leave-one-out tensor prediction needs at least {X.shape[1] + 1} volumes "
                         f"spanning the tensor (b = 0 and 6 non-collinear directions), got {n_vol}")
    columns = np.arange(n_vol) if columns is None else np.atleast_1d(np.asarray(columns, int))
    for n in columns:
        if np.linalg.matrix_rank(np.delete(X, n, axis=0)) < X.shape[1]:
            raise ValueError(f"without volume {n} the other volumes do not determine a tensor "
                             "(too few directions for a leave-one-out prediction)")
    out = np.empty(np.shape(signal), np.float32)
    sig = np.asarray(signal)
    for start in range(0, sig.shape[0], chunk):
        block = np.asarray(sig[start:start + chunk], np.float64)
        beta, w2 = wls_coefficients(block, X, min_signal=min_signal)
        y = np.log(np.maximum(block, min_signal))
        XX = (X[:, :, None] * X[:, None, :]).reshape(n_vol, -1)
        Ainv = np.linalg.inv((w2 @ XX).reshape(-1, X.shape[1], X.shape[1]))
        h = w2 * np.einsum("ni,min->mn", X, Ainv @ X.T)
        h = np.minimum(h, MAX_LEVERAGE)
        yhat = beta @ X.T
        loo = yhat.copy()
        loo[:, columns] = (yhat[:, columns] - h[:, columns] * y[:, columns]) / (1.0 - h[:, columns])
        # a prediction is a signal: never above 1.5x the largest of the voxel's measurements (in the
        # background, where the log-linear fit of noise is meaningless, it could be anything)
        top = np.log(1.5 * np.maximum(block.max(axis=1, keepdims=True), min_signal))
        out[start:start + chunk] = np.exp(np.minimum(loo, top))
    return out


def loo_mean(signal) -> np.ndarray:
    """Mean of the other columns of ``signal`` ``(M, N)`` for each column (N ≥ 2)."""
    sig = np.asarray(signal, np.float64)
    n = sig.shape[1]
    if n < 2:
        raise ValueError("a leave-one-out mean needs at least two volumes")
    return ((sig.sum(axis=1, keepdims=True) - sig) / (n - 1)).astype(np.float32)


def slice_outliers(observed, predicted, mask, *, slice_axis: int = 2, nstd: float = 4.0,
                   min_voxels: int = 100):
    """Slices of the volumes whose signal falls below their prediction (module docstring).

    Parameters
    ----------
    observed, predicted : (X, Y, Z, N) the volumes and their predictions, each in its own
        (acquired) space; only the columns to be checked (diffusion-weighted volumes)
    mask : (X, Y, Z) bool brain mask
    slice_axis : voxel axis of the acquired slices
    nstd : a slice is an outlier when its score is below ``−nstd``
    min_voxels : slices with fewer brain voxels are not scored

    Returns
    -------
    outlier : (N, n_slices) bool
    score : (N, n_slices) float, the standardised score (NaN where not scored)
    """
    obs = np.moveaxis(np.asarray(observed, np.float32), slice_axis, 2)
    pred = np.moveaxis(np.asarray(predicted, np.float32), slice_axis, 2)
    m = np.moveaxis(np.asarray(mask, bool), slice_axis, 2)
    n_vox = m.sum(axis=(0, 1))
    scored = n_vox >= int(min_voxels)
    n_vol, n_sl = obs.shape[-1], obs.shape[2]
    score = np.full((n_vol, n_sl), np.nan)
    if not scored.any() or n_vol < 3:
        return np.zeros((n_vol, n_sl), bool), score
    diff = (obs - pred) * m[..., None]
    mean = diff.sum(axis=(0, 1)).T / np.maximum(n_vox, 1)[None, :]     # (N, n_slices)
    centred = (mean - np.median(mean, axis=0, keepdims=True)) * np.sqrt(n_vox)[None, :]
    vals = centred[:, scored]
    mad = np.median(np.abs(vals - np.median(vals)))
    sigma = 1.4826 * mad if mad > 0 else float(np.std(vals)) or 1.0
    score[:, scored] = vals / sigma
    outlier = np.zeros((n_vol, n_sl), bool)
    outlier[:, scored] = score[:, scored] < -float(nstd)
    return outlier, score


def _in_volume_space(coef, tr, geom, points):
    """Prediction (B-spline coefficients on the reference grid) seen in the volume's own space at
    its voxel positions ``points``."""
    y = ET.inverse(tr, geom, points)
    _, jac = ET.forward(tr, geom, y)
    return ndimage.map_coordinates(coef, y.T, order=3, mode="nearest", prefilter=False) / jac


def _coef(vol):
    return ndimage.spline_filter(np.asarray(vol, np.float32), order=3, mode="nearest")


def detect_outliers(acquired, pred, transforms, geom, mask, dw, slice_axis, nstd, min_voxels):
    """Outlier slices (N, n_slices) of the diffusion-weighted volumes, in their own space."""
    pts = np.argwhere(mask).astype(float)
    idx = tuple(pts.astype(int).T)
    n_sl = acquired.shape[slice_axis]
    flags = np.zeros((acquired.shape[-1], n_sl), bool)
    scores = np.full((acquired.shape[-1], n_sl), np.nan)
    vols = np.flatnonzero(dw)
    obs = np.zeros(acquired.shape[:3] + (len(vols),), np.float32)
    prd = np.zeros_like(obs)
    for c, n in enumerate(vols):
        obs[idx + (c,)] = acquired[idx + (n,)]
        prd[idx + (c,)] = _in_volume_space(_coef(pred[..., n]), transforms[n], geom, pts)
    f, s = slice_outliers(obs, prd, mask, slice_axis=slice_axis, nstd=nstd, min_voxels=min_voxels)
    flags[vols], scores[vols] = f, s
    return flags, scores


def replace_outliers(acquired, pred, transforms, geom, flags, slice_axis):
    """The acquired series with every flagged slice replaced by its prediction (in the volume's space)."""
    work = acquired.copy()
    shape = acquired.shape[:3]
    coefs = {}
    for n, z in zip(*np.nonzero(flags)):
        if n not in coefs:
            coefs[n] = _coef(pred[..., n])
        sl = [slice(None)] * 3
        sl[slice_axis] = slice(int(z), int(z) + 1)
        pts = np.argwhere(np.ones(shape, bool)[tuple(sl)]).astype(float)
        pts[:, slice_axis] += z
        work[tuple(pts.astype(int).T) + (n,)] = _in_volume_space(coefs[n], transforms[n], geom, pts)
    return work
