"""Noise floor of the ALPS index: wild bootstrap of the tensor fit, and whether repeated
measurements of one head differ by more than their noise.

Wild bootstrap (Whitcher et al. 2008; Davidson & Flachaire 2008)
---------------------------------------------------------------
With ``y = ln S`` (N volumes) and the log-linear DTI model ``y = X β + ε`` fitted by two-pass WLS
(:func:`alps.imaging.dti.wls_fit`, weights ``w = Ŝ²``), the fitted values ``ŷ = X β̂`` and residuals
``r = y − ŷ`` give replicates

.. math:: y^*_n = \\hat y_n + v_n\\, \\frac{r_n}{\\sqrt{1 - h_n}}, \\qquad v_n = \\pm 1
          \\text{ with probability } \\tfrac12,

refitted by WLS. ``h_n`` are the leverages of the weighted fit,
``h_n = w_n x_nᵀ (Xᵀ W X)⁻¹ x_n`` (diagonal of ``W^{1/2} X (XᵀWX)⁻¹ XᵀW^{1/2}``, with the
weights ``w`` of the fit's second pass). The leverage
term matters: residuals are on average smaller than the errors by ``√(1 − p/N)``, and with
few volumes ``p/N`` is large — 7 parameters from 13 volumes (one b0 + 12 directions, the real
Toshiba scans) leave the b0 with ``h = 1`` and the 12 directions with ``h ≈ 0.5``, so the
unadjusted residuals understate the noise SD by a factor of about √2
(``tests/test_noise.py`` checks both against independent noise realisations). Volumes with
``h ≥ 1 − 1e-6`` have a zero residual and are left at their fitted value.

The bootstrap is voxel-wise independent (noise is resampled per voxel and volume), so it gives
the part of the ALPS variability due to thermal noise in the ROI voxels for a *fixed* ROI; the
registration's own variability is not in it.

Consistency of repeated measurements
------------------------------------
For values ``x_i`` with noise SDs ``σ_i`` (e.g. one head scanned with several slab tilts),
:func:`spread_consistency` gives Cochran's ``Q = Σ (x_i − x̄_w)² / σ_i²`` (``x̄_w`` the
inverse-variance weighted mean), which is χ² with ``n − 1`` degrees of freedom when the values
differ by noise alone, and the distribution of the spread (max − min) under noise alone by Monte
Carlo: its mean, its 95th percentile and the probability that it stays within a target. For
equal ``σ`` the mean spread of five values is ``d₂(5) σ = 2.326 σ``.

References
----------
Whitcher B, Tuch DS, Wisco JJ, Sorensen AG, Wang L. Using the wild bootstrap to quantify
uncertainty in diffusion tensor imaging. Hum Brain Mapp 2008;29:346-362. doi:10.1002/hbm.20395
Davidson R, Flachaire E. The wild bootstrap, tamed at last. J Econometrics 2008;146:162-169.
Cochran WG. The combination of estimates from different experiments. Biometrics 1954;10:101-129.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import dti, estimators
from . import tensor as T
from .index import alps_from_roi_tensors
from .roi import ROI_NAMES

#: columns of :func:`spread_consistency`.
CONSISTENCY_COLUMNS = ["n", "spread", "weighted_mean", "cochran_q", "df", "p_value", "expected_spread",
                       "spread_q95", "p_spread_ge_observed", "target", "p_spread_le_target"]


def leverages(X, w2) -> np.ndarray:
    """Leverages ``h`` (M, N) of a weighted least-squares fit with design ``X`` (N, p) and
    per-voxel weights ``w2`` (M, N): ``h_n = w_n x_nᵀ (Xᵀ W X)⁻¹ x_n``."""
    X = np.asarray(X, float)
    w2 = np.atleast_2d(np.asarray(w2, float))
    A = np.einsum("mn,ni,nj->mij", w2, X, X)
    Ainv_xt = np.linalg.solve(A, np.broadcast_to(X.T, (w2.shape[0],) + X.T.shape))  # (M, p, N)
    return w2 * np.einsum("ni,min->mn", X, Ainv_xt)


def wild_bootstrap_signals(signal, bvals, bvecs, *, n_boot: int = 200, seed: int = 0, leverage: bool = True,
                           min_signal: float = 1e-3) -> np.ndarray:
    """Wild-bootstrap replicates of voxel signals around their WLS tensor fit (module docstring).

    Parameters
    ----------
    signal : (M, N) voxel signals
    bvals : (N,) s/mm²
    bvecs : (N, 3) directions in the frame the tensor is fitted in (e.g. voxel axes)
    n_boot : number of replicates
    seed : seed of the Rademacher signs
    leverage : divide residuals by ``√(1 − h)`` (default; ``False`` = raw residuals, which
        understate the noise when the number of volumes is small)

    Returns
    -------
    (n_boot, M, N) replicate signals
    """
    signal = np.asarray(signal, float)
    if signal.ndim != 2:
        raise ValueError(f"signal must be (voxels, volumes), got shape {signal.shape}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    X = dti.design_matrix(bvals, bvecs)
    if X.shape[0] != signal.shape[1]:
        raise ValueError(f"{signal.shape[1]} volumes but {X.shape[0]} b-values/b-vectors")
    beta, w2 = dti.wls_coefficients(signal, X, min_signal=min_signal)
    yhat = beta @ X.T
    resid = np.log(np.maximum(signal, min_signal)) - yhat
    if leverage:
        h = leverages(X, w2)  # the weights the WLS pass used
        full = h >= 1 - 1e-6
        resid = np.where(full, 0.0, resid / np.sqrt(np.where(full, 1.0, 1.0 - h)))
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(int(n_boot),) + resid.shape)
    return np.exp(yhat[None] + signs * resid[None])


def bootstrap_roi_alps(signal, bvals, bvecs, weights, rotation, *, n_boot: int = 200, seed: int = 0,
                       leverage: bool = True, model: str = "dti", fit_method: str = "WLS",
                       b0_threshold: float = 50.0) -> pd.DataFrame:
    """Wild-bootstrap distribution of the ALPS index for fixed ROI weights.

    Parameters
    ----------
    signal : (X, Y, Z, N) DWI data: the volumes the tensors were fitted on
    bvals : (N,)
    bvecs : (N, 3) in the image's **voxel** axes (:func:`alps.io.gradients.fsl_to_voxel`)
    weights : dict ROI name → (X, Y, Z) weights (:func:`alps.imaging.measure.roi_weights`)
    rotation : (3, 3) voxel axes → template axes (``registration.rotation @ polar(affine)``, as in
        :func:`alps.imaging.measure.measure`)
    n_boot, seed, leverage : see :func:`wild_bootstrap_signals`
    model, fit_method, b0_threshold : the estimator (tensor model and DTI fit method) the index was
        computed with; the replicates are resampled around its fit and refitted by it
        (:mod:`alps.imaging.estimators`; the default, DTI by WLS, is :func:`wild_bootstrap_signals`
        and :func:`alps.imaging.dti.wls_fit`)

    Returns
    -------
    DataFrame, one row per replicate: ``replicate``, ``alps_L``, ``alps_R``, ``alps`` (template
    axes, ROI-mean tensors weighted as in :func:`alps.imaging.measure.measure`).
    """
    signal = np.asarray(signal)
    missing = [n for n in ROI_NAMES if n not in weights]
    if missing:
        raise ValueError(f"missing ROI weights: {missing}")
    sel = np.zeros(signal.shape[:3], bool)
    for name in ROI_NAMES:
        w = np.asarray(weights[name])
        if w.shape != signal.shape[:3]:
            raise ValueError(f"ROI {name}: weights of shape {w.shape}, image grid is {signal.shape[:3]}")
        sel |= w > 0
    if not sel.any():
        raise ValueError("all ROI weights are zero")
    if estimators.is_default(model, fit_method):
        reps = wild_bootstrap_signals(signal[sel], bvals, bvecs, n_boot=n_boot, seed=seed, leverage=leverage)
        B, M, N = reps.shape
        q = dti.wls_fit(reps.reshape(B * M, N), bvals, bvecs).reshape(B, M, 3, 3)
    else:
        if n_boot < 2:
            raise ValueError(f"n_boot must be at least 2, got {n_boot}")
        fit = estimators.fitted(signal[sel], bvals, bvecs, model=model, fit_method=fit_method, b0_threshold=b0_threshold)
        if not leverage:
            fit = estimators.Fitted(fit.yhat, fit.resid, np.zeros_like(fit.leverage), fit.log)
        reps = fit.replicates(n_boot=n_boot, seed=seed)
        B, M, N = reps.shape
        q = estimators.fit_tensors(reps.reshape(B * M, N), bvals, bvecs, model=model, fit_method=fit_method,
                                   b0_threshold=b0_threshold).reshape(B, M, 3, 3)
    rot = np.asarray(rotation, float)
    means = {}
    for name in ROI_NAMES:
        w = np.asarray(weights[name], float)[sel]
        means[name] = T.rotate(np.tensordot(q, w, axes=(1, 0)) / w.sum(), rot)  # (B, 3, 3)
    rows = []
    for b in range(B):
        r = alps_from_roi_tensors({n: means[n][b] for n in ROI_NAMES})
        rows.append({"replicate": b, "alps_L": r["alps_L"], "alps_R": r["alps_R"], "alps": r["alps"]})
    return pd.DataFrame(rows)


def bootstrap_scan(dwi, registration, weights, *, axes: str = "template", n_boot: int = 200, seed: int = 0,
                   leverage: bool = True) -> pd.DataFrame:
    """:func:`bootstrap_roi_alps` for a loaded scan: ``dwi`` an :class:`alps.io.DWI` (FSL
    b-vectors, converted to voxel axes here), ``registration`` its subject → template
    :class:`alps.imaging.registration.Registration` (for the template-axis rotation), ``weights`` its
    native-grid ROI weights; ``axes='scanner'`` bootstraps the scanner (voxel) axis index
    instead (``alps_scanner*`` of :func:`alps.imaging.measure.measure`, columns still ``alps_L`` ...)."""
    from ..io.gradients import fsl_to_voxel

    if axes == "template":
        rot = registration.rotation @ T.polar_rotation(np.asarray(dwi.affine)[:3, :3])
    elif axes == "scanner":
        rot = np.eye(3)
    else:
        raise ValueError(f"axes must be 'template' or 'scanner', got {axes!r}")
    return bootstrap_roi_alps(dwi.data, dwi.bvals, fsl_to_voxel(dwi.bvecs, dwi.affine), weights, rot,
                              n_boot=n_boot, seed=seed, leverage=leverage)


def spread_consistency(values, sds, *, target: float | None = None, n_sim: int = 200_000,
                       seed: int = 0) -> pd.DataFrame:
    """Do repeated measurements differ by more than their noise? (module docstring)

    Parameters
    ----------
    values : (n,) measurements of one quantity (e.g. ALPS of one head in n acquisitions)
    sds : (n,) or scalar noise SD of each measurement
    target : optional spread to compare with
    n_sim : Monte-Carlo draws of the noise-only spread
    seed : seed of those draws

    Returns
    -------
    DataFrame with one row: ``n``; ``spread`` (max − min of ``values``); ``weighted_mean``
    (inverse-variance); ``cochran_q`` and ``df`` (= n − 1) and ``p_value`` (χ² upper tail:
    small when the values differ by more than noise); ``expected_spread`` and ``spread_q95``
    (mean and 95th percentile of the spread under noise alone); ``p_spread_ge_observed``
    (probability of a noise-only spread at least as large as the observed one); ``target`` and
    ``p_spread_le_target`` (probability that noise alone keeps the spread within the target;
    NaN without a target).
    """
    from scipy.stats import chi2

    x = np.asarray(values, float).ravel()
    s = np.broadcast_to(np.asarray(sds, float), x.shape).astype(float)
    if x.size < 2:
        raise ValueError(f"need at least two values, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(s))):
        raise ValueError("values and sds must be finite")
    if np.any(s <= 0):
        raise ValueError(f"noise SDs must be positive, got {s.tolist()}")
    w = 1.0 / s ** 2
    mean = float((w * x).sum() / w.sum())
    q = float((w * (x - mean) ** 2).sum())
    df = x.size - 1
    sim = np.random.default_rng(seed).normal(size=(int(n_sim), x.size)) * s
    sim_spread = sim.max(1) - sim.min(1)
    spread = float(x.max() - x.min())
    row = {"n": int(x.size), "spread": spread, "weighted_mean": mean, "cochran_q": q, "df": df,
           "p_value": float(chi2.sf(q, df)), "expected_spread": float(sim_spread.mean()),
           "spread_q95": float(np.quantile(sim_spread, 0.95)),
           "p_spread_ge_observed": float((sim_spread >= spread).mean()),
           "target": float(target) if target is not None else float("nan"),
           "p_spread_le_target": float((sim_spread <= target).mean()) if target is not None else float("nan")}
    return pd.DataFrame([row], columns=CONSISTENCY_COLUMNS)
