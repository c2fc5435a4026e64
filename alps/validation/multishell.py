"""Multi-shell validation: the ALPS index of each tensor model against planted truth.

A tiny phantom of the four ALPS ROIs (:data:`alps.imaging.roi.ROI_NAMES`), each a block of
voxels with one known tensor in template axes — projection fibres (SCR) along z, association
fibres (SLF) along y, the perivascular excess on Dxx set so that the Gaussian tensors have the
planted index — whose signal has the simulator's non-Gaussian terms
(:mod:`alps.simulation.signal`: isotropic kurtosis ``K``, free-water fraction ``f``). The
volumes and fits are the pipeline's (:func:`alps.imaging.shells.select_volumes`,
:func:`alps.imaging.dti.fit_tensor`, :func:`alps.imaging.shells.fit_model_tensor`).

Planted truths, per scenario:

* ``alps_planted`` — the index of the tissue's Gaussian tensors ``D`` (what DKI recovers with
  kurtosis, and free-water-eliminated DTI with free water);
* ``alps_planted_b1000`` — the index of the apparent tensor ``D − (b MD² K / 6) I`` a single-shell
  b = 1000 DTI fit sees (the protocol the index was defined on; without free water only).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..imaging import dti, shells
from ..imaging.index import alps_from_roi_tensors
from ..imaging.roi import ROI_NAMES
from ..io.gradients import scheme, voxel_to_fsl
from ..simulation.signal import D_FREE

__all__ = ["roi_tensors", "phantom_signal", "multishell_bias", "METHODS", "SCENARIOS"]

#: method -> (tensor model, largest b fitted: None = the model's default range, ``MODEL_MAX_BVAL``)
METHODS = {"dti_default": ("dti", None), "dti_all_shells": ("dti", np.inf), "dki": ("dki", None),
           "dki_all_shells": ("dki", np.inf), "fwdti": ("fwdti", None), "fwdti_all_shells": ("fwdti", np.inf)}
#: scenario -> (kurtosis, free-water fraction)
SCENARIOS = {"gaussian": (0.0, 0.0), "kurtosis": (0.6, 0.0), "free_water": (0.0, 0.2)}


def roi_tensors(alps: float = 1.5, *, lam_par: float = 1.6e-3, lam_perp: float = 0.4e-3) -> dict:
    """Template-axis tensors of the four ROIs with index ``alps``: proj ``diag(p, l⊥, l∥)``, assoc
    ``diag(p, l∥, l⊥)`` with ``p = alps · l⊥`` (ALPS = mean(Dxx) / mean(Dyy_proj, Dzz_assoc))."""
    p = alps * lam_perp
    proj = np.diag([p, lam_perp, lam_par])
    assoc = np.diag([p, lam_par, lam_perp])
    return {n: (proj if n.startswith("proj") else assoc) for n in ROI_NAMES}


def phantom_signal(D, bvals, bvecs, *, kurtosis: float = 0.0, free_water: float = 0.0,
                   d_free: float = D_FREE, s0: float = 1000.0) -> np.ndarray:
    """Noise-free signal (N,) of tensor ``D`` (3, 3): the simulator's model
    ``S0 [(1 − f) exp(−b gᵀDg + b² MD² K / 6) + f exp(−b d_free)]`` (float64)."""
    b = np.asarray(bvals, float)
    g = np.asarray(bvecs, float)
    md = np.trace(D) / 3.0
    tissue = np.exp(-b * np.einsum("ni,ij,nj->n", g, D, g) + b ** 2 * md ** 2 * kurtosis / 6.0)
    return s0 * ((1.0 - free_water) * tissue + free_water * np.exp(-b * d_free))


def _scheme(shell_values, n_dirs, n_b0, seed):
    bv, bg = [np.zeros(n_b0)], [np.zeros((n_b0, 3))]
    for i, b in enumerate(shell_values):
        vals, vecs = scheme(n_b0=1, n_dirs=n_dirs, bval=float(b), seed=seed + i)
        bv.append(vals[vals > 0])
        bg.append(vecs[vals > 0])
    return np.concatenate(bv), np.concatenate(bg)


def multishell_bias(*, scenario: str = "kurtosis", kurtosis: float | None = None, free_water: float | None = None,
                    alps: float = 1.5, shell_values=(1000, 2000, 3000), n_dirs: int = 30, n_b0: int = 3,
                    snr: float | None = None, n_voxels: int = 50, seed: int = 0,
                    methods=("dti_default", "dti_all_shells", "dki", "fwdti")
                    ) -> pd.DataFrame:
    """Fit every method to the phantom and compare its index with the planted ones.

    Parameters
    ----------
    scenario : a key of :data:`SCENARIOS` (its ``kurtosis``/``free_water`` unless given)
    snr : b = 0 SNR of Rician noise (None: noise-free)
    n_voxels : voxels per ROI (noise replicates)

    Returns
    -------
    DataFrame, one row per method: ``scenario, kurtosis, free_water, snr, method, bvals_used,
    alps, alps_planted, alps_planted_b1000, bias, bias_b1000, rel_bias, rel_bias_b1000``
    (``bias = alps − planted``; NaN rows, ``bvals_used`` empty, for a model the scheme cannot fit
    within its shells).
    """
    k0, f0 = SCENARIOS[scenario]
    k = k0 if kurtosis is None else float(kurtosis)
    f = f0 if free_water is None else float(free_water)
    bvals, g = _scheme(shell_values, n_dirs, n_b0, seed)
    rng = np.random.default_rng(seed)
    D = roi_tensors(alps)
    sig = np.concatenate([np.tile(phantom_signal(D[n], bvals, g, kurtosis=k, free_water=f), (n_voxels, 1))
                          for n in ROI_NAMES])
    if snr:
        sigma = 1000.0 / snr
        sig = np.hypot(sig + sigma * rng.standard_normal(sig.shape), sigma * rng.standard_normal(sig.shape))
    affine = np.eye(4)
    bvecs_fsl = voxel_to_fsl(g, affine)
    data = sig[:, None, None, :].astype(np.float32)
    mask = np.ones(data.shape[:3], bool)
    planted = alps_from_roi_tensors(D)["alps"]
    planted_b1000 = np.nan
    if f == 0:
        app = {n: D[n] - 1000.0 * (np.trace(D[n]) / 3) ** 2 * k / 6 * np.eye(3) for n in ROI_NAMES}
        planted_b1000 = alps_from_roi_tensors(app)["alps"]
    rows = []
    for method in methods:
        model, max_b = METHODS[method]
        row = {"scenario": scenario, "kurtosis": k, "free_water": f, "snr": snr if snr else np.inf,
               "method": method, "alps_planted": planted, "alps_planted_b1000": planted_b1000}
        try:
            idx, info = shells.select_volumes(bvals, model=model, max_bval=max_b)
        except Exception:
            rows.append({**row, "bvals_used": "", "alps": np.nan})
            continue
        if model == "dti":
            q = dti.fit_tensor(data[..., idx], bvals[idx], bvecs_fsl[idx], affine, mask).tensor[mask]
        else:
            q, _ = shells.fit_model_tensor(data[..., idx], bvals[idx], bvecs_fsl[idx], affine, mask, model=model)
        means = {n: q[i * n_voxels:(i + 1) * n_voxels].mean(axis=0) for i, n in enumerate(ROI_NAMES)}
        rows.append({**row, "bvals_used": info["bvals_used"], "alps": alps_from_roi_tensors(means)["alps"]})
    return with_bias(pd.DataFrame(rows))


def with_bias(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``bias = alps - alps_planted``, ``bias_b1000 = alps - alps_planted_b1000`` and
    both relative to their planted value (``rel_bias``, ``rel_bias_b1000``)."""
    df = df.copy()
    df["bias"] = df["alps"] - df["alps_planted"]
    df["bias_b1000"] = df["alps"] - df["alps_planted_b1000"]
    df["rel_bias"] = df["bias"] / df["alps_planted"]
    df["rel_bias_b1000"] = df["bias_b1000"] / df["alps_planted_b1000"]
    return df
