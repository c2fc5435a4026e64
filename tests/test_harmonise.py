"""ComBat harmonisation (alps.stats.harmonise, neuroCombat) on a table-only multi-site cohort with
planted additive and multiplicative site effects (tests/design_fixtures.py): harmonised group effects
recover the planted ones, unharmonised ones do not (sites recruit unequal shares of each group)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alps import stats
from alps.stats.design import from_profile

import design_fixtures as dfx

EFFECTS = {"SVD": -0.12, "iNPH": -0.20, "HC": 0.0}


def _effects(h, col):
    m = h.groupby("group")[col].mean()
    return np.array([m[g] - m["HC"] for g in ("SVD", "iNPH")])


def test_harmonised_group_effects_recover_the_planted_ones_and_raw_ones_do_not():
    design = from_profile("design-no-clinical")
    planted = np.array([EFFECTS["SVD"], EFFECTS["iNPH"]])
    raw_err, harm_err, true_err = [], [], []
    for seed in range(6):
        df = dfx.make_design_cohort(design, n_per_group=30, effects=EFFECTS, seed=seed, n_sites=3, imbalance=0.7)
        h = stats.harmonise(df, columns=["alps", "alps_L", "alps_R"], covariates=design.covariates).table
        h["alps_true"] = df["alps_true"].to_numpy()
        true_err.append(_effects(h, "alps_true") - planted)
        raw_err.append(_effects(h, "alps") - planted)
        harm_err.append(_effects(h, "alps_harmonised") - planted)
    rmse = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in
            (("true", true_err), ("raw", raw_err), ("harmonised", harm_err))}
    assert rmse["raw"] > 0.08            # site confounding: raw effects are off by ~0.1 ALPS
    assert rmse["harmonised"] < 0.04     # ComBat brings them back near the planted ones
    assert rmse["harmonised"] < rmse["raw"] / 3


def test_harmonisation_removes_site_means_and_keeps_rows():
    design = from_profile("design-no-clinical")
    df = dfx.make_design_cohort(design, n_per_group=30, effects=EFFECTS, seed=1, n_sites=3)  # balanced sites
    res = stats.harmonise(df, columns=["alps"], covariates=design.covariates)
    h = res.table
    assert list(h["participant_id"]) == list(df["participant_id"])
    # the sites and columns are typed fields of the frozen record (they were DataFrame.attrs, which
    # pandas operations drop: e.g. pd.concat([h]) lost them)
    assert res.sites == ("site1", "site2", "site3") and res.columns == ("alps",) and not h.attrs
    raw_spread = np.ptp(h.groupby("site")["alps"].mean())
    harm_spread = np.ptp(h.groupby("site")["alps_harmonised"].mean())
    assert raw_spread > 0.15 and harm_spread < 0.03
    resid = {c: h[c] - h.groupby("group")[c].transform("mean") for c in ("alps", "alps_harmonised")}
    ratio = {c: (lambda sd: sd.max() / sd.min())(r.groupby(h["site"]).std()) for c, r in resid.items()}
    planted = max(dfx.SITE_SCALE[:3]) / min(dfx.SITE_SCALE[:3])   # 1.6 / 0.7
    assert ratio["alps"] > 0.7 * planted and ratio["alps_harmonised"] < 1.35


def test_harmonise_refuses_bad_input():
    design = from_profile("design-no-clinical")
    df = dfx.make_design_cohort(design, n_per_group=10, effects=EFFECTS, seed=1, n_sites=2)
    with pytest.raises(stats.StatsInputError, match="missing column.*'site'"):
        stats.harmonise(df.drop(columns="site"), columns=["alps"])
    with pytest.raises(stats.StatsInputError, match="at least 2 sites"):
        stats.harmonise(df.assign(site="a"), columns=["alps"])
    bad = df.copy()
    bad.loc[3, "age"] = np.nan
    with pytest.raises(stats.StatsInputError, match=str(bad.loc[3, "participant_id"])):
        stats.harmonise(bad, columns=["alps"])
    assert stats.harmonise.__module__ == "alps.stats.harmonise"
    assert pd.api.types.is_float_dtype(stats.harmonise(df, columns=["alps"]).table["alps_harmonised"])
