"""The wild-bootstrap noise floor against independent noise realisations, and the
repeated-measurement consistency statistics against analytic values."""
from __future__ import annotations

import numpy as np
import pytest

from alps.imaging import dti, noise
from alps.imaging.index import alps_from_roi_tensors
from alps.imaging.roi import ROI_NAMES


def toshiba_like_scheme():
    """One b0 + 12 directions at b = 1500: (0, ±2, 1)/√5 and its cyclic permutations — the
    scheme of the real Toshiba scans."""
    dirs = []
    for a, b in ((2, 1), (-2, 1), (1, 2), (-1, 2)):
        v = np.array([0.0, a, b]) / np.sqrt(5)
        dirs += [v, np.roll(v, 1), np.roll(v, 2)]
    g = np.vstack([[0, 0, 0], dirs])
    return np.r_[0.0, np.full(12, 1500.0)], g


PROJ = np.diag([0.55e-3, 0.40e-3, 1.10e-3])   # fibre along z
ASSOC = np.diag([0.55e-3, 1.05e-3, 0.42e-3])  # fibre along y


def _rois(n_vox):
    """A (4, n_vox, 1) grid: one row of voxels per ROI, unit weights."""
    weights, tensors = {}, np.zeros((4, n_vox, 1, 3, 3))
    for i, name in enumerate(ROI_NAMES):
        w = np.zeros((4, n_vox, 1))
        w[i] = 1.0
        weights[name] = w
        tensors[i] = PROJ if name.startswith("proj") else ASSOC
    return weights, tensors


def _signal(tensors, bvals, g, rng, snr, s0=1000.0):
    clean = s0 * np.exp(-bvals * np.einsum("ni,...ij,nj->...n", g, tensors, g))
    sigma = s0 / snr
    return np.abs(clean + rng.normal(0, sigma, clean.shape) + 1j * rng.normal(0, sigma, clean.shape))


def _alps(signal, bvals, g, weights):
    q = dti.wls_fit(signal.reshape(-1, len(bvals)), bvals, g).reshape(signal.shape[:3] + (3, 3))
    return alps_from_roi_tensors({n: q[weights[n] > 0].mean(0) for n in ROI_NAMES})["alps"]


@pytest.mark.parametrize("snr", [15.0, 30.0])
def test_wild_bootstrap_sd_matches_independent_noise(snr):
    """The leverage-adjusted bootstrap SD of ALPS, from one noisy scan at a time, matches the SD
    over independent noise realisations; raw residuals understate it (by ~√2 on 13 volumes)."""
    bvals, g = toshiba_like_scheme()
    weights, tensors = _rois(3)
    rng = np.random.default_rng(7)
    true_sd = np.std([_alps(_signal(tensors, bvals, g, rng, snr), bvals, g, weights) for _ in range(600)],
                     ddof=1)
    adj, raw = [], []
    for k in range(30):
        sig = _signal(tensors, bvals, g, rng, snr)
        for lev, out in ((True, adj), (False, raw)):
            boot = noise.bootstrap_roi_alps(sig, bvals, g, weights, np.eye(3), n_boot=200, seed=k, leverage=lev)
            out.append(boot["alps"].std(ddof=1))
    ratio_adj, ratio_raw = np.mean(adj) / true_sd, np.mean(raw) / true_sd
    assert 0.85 < ratio_adj < 1.15, (ratio_adj, true_sd)
    assert ratio_raw < 0.8, ratio_raw


def test_leverages_of_the_toshiba_scheme():
    bvals, g = toshiba_like_scheme()
    X = dti.design_matrix(bvals, g)
    h = noise.leverages(X, np.ones((1, len(bvals))))[0]
    assert h[0] == pytest.approx(1.0)              # the single b0 fixes ln S0
    assert h[1:] == pytest.approx(np.full(12, 0.5))  # 6 tensor parameters from 12 directions
    assert h.sum() == pytest.approx(X.shape[1])    # trace of the hat matrix = number of parameters


def test_bootstrap_is_seeded_and_centred():
    bvals, g = toshiba_like_scheme()
    weights, tensors = _rois(3)
    sig = _signal(tensors, bvals, g, np.random.default_rng(3), 25.0)
    a = noise.bootstrap_roi_alps(sig, bvals, g, weights, np.eye(3), n_boot=50, seed=11)
    b = noise.bootstrap_roi_alps(sig, bvals, g, weights, np.eye(3), n_boot=50, seed=11)
    assert a.equals(b)
    assert list(a.columns) == ["replicate", "alps_L", "alps_R", "alps"]
    point = _alps(sig, bvals, g, weights)
    assert abs(a["alps"].mean() - point) < 3 * a["alps"].std(ddof=1) / np.sqrt(50) + 0.01


def test_bootstrap_rejects_bad_input():
    bvals, g = toshiba_like_scheme()
    weights, tensors = _rois(2)
    sig = _signal(tensors, bvals, g, np.random.default_rng(0), 25.0)
    with pytest.raises(ValueError, match="missing ROI weights"):
        noise.bootstrap_roi_alps(sig, bvals, g, {"proj_L": weights["proj_L"]}, np.eye(3))
    with pytest.raises(ValueError, match="volumes but"):
        noise.wild_bootstrap_signals(sig.reshape(-1, 13), bvals[:-1], g[:-1])
    with pytest.raises(ValueError, match="n_boot"):
        noise.wild_bootstrap_signals(sig.reshape(-1, 13), bvals, g, n_boot=1)


def test_spread_consistency_analytic():
    # Q of (0, 1, -1) with unit SDs is 2 on 2 df: p = exp(-1)
    r = noise.spread_consistency([0.0, 1.0, -1.0], 1.0).iloc[0]
    assert r["cochran_q"] == pytest.approx(2.0)
    assert r["df"] == 2 and r["spread"] == pytest.approx(2.0)
    assert r["p_value"] == pytest.approx(np.exp(-1.0))
    # the mean range of 5 standard normals is d2(5) = 2.3259; scale-equivariant
    r5 = noise.spread_consistency(np.zeros(5), 0.03, target=0.08).iloc[0]
    assert r5["expected_spread"] == pytest.approx(2.3259 * 0.03, rel=0.01)
    assert r5["cochran_q"] == 0.0 and r5["p_value"] == pytest.approx(1.0)
    assert r5["p_spread_ge_observed"] == 1.0
    assert 0.0 < r5["p_spread_le_target"] < 1.0
    # inverse-variance weighted mean
    r2 = noise.spread_consistency([1.0, 2.0], [1.0, 2.0]).iloc[0]
    assert r2["weighted_mean"] == pytest.approx((1 + 2 / 4) / (1 + 1 / 4))
    assert np.isnan(r2["target"]) and np.isnan(r2["p_spread_le_target"])


@pytest.mark.parametrize("bad, match", [(([1.0], 1.0), "at least two"), (([1.0, 2.0], 0.0), "positive"),
                                        (([1.0, np.nan], 1.0), "finite")])
def test_spread_consistency_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        noise.spread_consistency(*bad)


def _multishell_rois(model, n_vox):
    """A (4·n_vox, 1, 1) grid of the four ROIs with the multi-shell phantom's planted signal: kurtosis
    0.6 (dki) or free water 0.15 (fwdti), shells where the model holds, one-hot ROI weights."""
    from alps.validation.multishell import _scheme, phantom_signal, roi_tensors

    bvals, g = _scheme((1000, 2000) if model == "dki" else (500, 1000), 20, 3, 0)
    D = roi_tensors(1.5)
    kw = {"kurtosis": 0.6} if model == "dki" else {"free_water": 0.15}
    clean = np.concatenate([np.tile(phantom_signal(D[n], bvals, g, **kw), (n_vox, 1)) for n in ROI_NAMES])
    weights = {n: np.zeros((4 * n_vox, 1, 1)) for n in ROI_NAMES}
    for i, n in enumerate(ROI_NAMES):
        weights[n][i * n_vox:(i + 1) * n_vox] = 1.0
    return bvals, g, clean, weights


def test_the_estimators_refit_with_the_pipeline_s_fits():
    """The replicates are refitted by the very functions of stage 1."""
    from alps.imaging import estimators, shells
    from alps.io.gradients import voxel_to_fsl

    bvals, g, clean, _ = _multishell_rois("dki", 2)
    aff = np.diag([-2.0, 2.0, 2.0, 1.0])  # an x flip: the FSL convention's case
    data = clean[:, None, None, :]
    mask = np.ones(data.shape[:3], bool)
    q, _ = shells.fit_model_tensor(data, bvals, voxel_to_fsl(g, aff), aff, mask, model="dki")
    assert np.array_equal(estimators.fit_tensors(clean, bvals, g, model="dki"), q)
    ref = dti.fit_tensor(data, bvals, voxel_to_fsl(g, aff), aff, mask, method="OLS").tensor[mask]
    assert np.array_equal(estimators.fit_tensors(clean, bvals, g, model="dti", fit_method="OLS"), ref)
    assert np.array_equal(estimators.fit_tensors(clean, bvals, g), dti.wls_fit(clean, bvals, g))
