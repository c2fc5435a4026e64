"""Small samples (issue 22, items 4 and 5): one rule of minimum sizes shared by the statistics and
the README, analyses the data cannot support skipped with a note (not an error), and a caution
in the tables when a fit rests on too few subjects or on single influential ones."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.outliers_influence import OLSInfluence
import statsmodels.api as sm

from alps import paths
from alps import stats as st
from alps.stats import sizes
from alps.stats.design import from_profile

import stats_fixtures as fx

STUDY = from_profile("default")
REG = STUDY.regression_kwargs()
MED = STUDY.mediation_kwargs()

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def big():
    return fx.make_cohort(40, 40, 20, seed=3)


def _patients(df, n_mo, n_vm=None):
    """The first ``n_mo`` MO and ``n_vm`` (default: as many) VM patients, and the controls."""
    n_vm = n_mo if n_vm is None else n_vm
    return pd.concat([df[df.group == "MO"].head(n_mo), df[df.group == "VM"].head(n_vm), df[df.group == "HC"]])


# ------------------------------------------------------------------ the one rule of minimum sizes

def test_each_analysis_runs_from_its_minimum_size_and_not_below(big):
    """The sizes the functions enforce are those of alps.stats.sizes.minimum_n, exactly."""
    p = len(dict.fromkeys(REG["predictors"] + REG["covariates"])) + 1
    need = sizes.minimum_n("regression", n_parameters=p)
    assert need == p + 3 == 9
    assert st.regression(_patients(big, 5, 4), **REG).model.n[0] == need
    with pytest.raises(st.InsufficientData, match=r"n = 8 \(need ≥ 9 = 6 parameters \+ 3\)"):
        st.regression(_patients(big, 4), **REG)
    need = sizes.minimum_n("mediation", n_covariates=len(MED["covariates"]))
    vm = big[big.group == "VM"]
    assert st.mediation(vm.head(need), n_boot=200, **MED).table.n[0] == need
    with pytest.raises(st.InsufficientData, match="too few subjects"):
        st.mediation(vm.head(need - 1), n_boot=200, **MED)
    need = sizes.minimum_n("correlation")
    cor = st.correlations(vm.head(need), groups=("VM",), y=("dhi", "psqi"), partial_covariates=()).table
    assert cor.r.notna().all()
    with pytest.raises(st.InsufficientData, match="no pair computed"):
        st.correlations(vm.head(need - 1), groups=("VM",), y=("dhi", "psqi"), partial_covariates=())
    two = sizes.minimum_n("correlation", n_covariates=2)
    cor = st.correlations(vm.head(two - 1), groups=("VM",), y=("dhi",), partial_covariates=("age", "sex")).table
    part = cor.set_index("kind").loc["partial"]
    assert np.isnan(part.r) and part.caution.startswith("not computed: too few subjects: n = 5 (need ≥ 6)")
    assert np.isfinite(cor.set_index("kind").loc["bivariate", "r"])
    with pytest.raises(st.InsufficientData, match="too few subjects"):
        st.group_tests(big.groupby("group").head(sizes.MIN_PER_GROUP - 1), **STUDY.group_kwargs())
    assert len(st.group_tests(big.groupby("group").head(sizes.MIN_PER_GROUP), **STUDY.group_kwargs()).table) == 3


def test_a_group_without_subjects_is_insufficient_data_not_a_crash(big):
    with pytest.raises(st.InsufficientData, match=r"\['HC'\] have no subjects"):
        st.group_tests(big[big.group != "HC"], **STUDY.group_kwargs())
    only_mo = big[big.group == "MO"]
    with pytest.raises(st.InsufficientData, match="constant"):  # the subtype contrast: all MO
        st.regression(only_mo, **{**REG, "groups": ("MO",)})
    # invalid input is still an error of its own kind, not a skipped analysis
    with pytest.raises(st.StatsInputError) as exc:
        st.regression(big.drop(columns="age"), **REG)
    assert not isinstance(exc.value, st.InsufficientData)


def test_readme_states_the_codes_rule():
    """The README's minimum sizes are the code's rule for the default design, verbatim."""
    text = re.sub(r"\s+", " ", (paths.REPO_ROOT / "README.md").read_text())
    assert sizes.describe_minimum_sizes(STUDY) in text
    assert "9 patients for the regression" not in text


def test_headline_numbers_leave_out_what_the_data_cannot_support(big):
    small = _patients(big, 3)  # 6 patients: too few for the regression, 3 VM: too few for the mediation
    records = st.headline_numbers(small, STUDY, n_boot=200, seed=1)
    h = st.headline_values(records)
    assert "mean_alps_VM" in h and "omnibus_p" in h
    assert not any(k.startswith("reg_") for k in h) and "indirect" not in h
    assert "r_vm_duration" not in h  # 3 VM < 4 for a correlation
    check = st.truth_intervals(small, records, STUDY, n_boot=200, seed=1)
    assert set(check.quantity) == {f"mean_alps_{g}" for g in STUDY.labels}


def test_skipped_table_is_the_design_skips_note_table():
    t = st.skipped_table("regression", "regression: too few subjects: n = 3 (need ≥ 7 = 4 parameters + 3)")
    assert list(t.columns) == ["note"]
    assert st.table_note(t) == "regression skipped: too few subjects: n = 3 (need ≥ 7 = 4 parameters + 3)"
    assert st.table_note(st.group_tests(fx.make_cohort(5, 5, 5, seed=1), **STUDY.group_kwargs()).table) is None


# ------------------------------------------------------------------ cautions

def test_small_regression_carries_a_caution_and_names_influential_patients(big):
    """7 patients, 3 regressors (residual df 3, as the lab's regression of issue 22): cautioned;
    Cook's distances checked against statsmodels; one planted outlier with D > 1 named."""
    kw = {**REG, "predictors": ("duration_years", "attacks_per_month"), "covariates": ("age",)}
    d = big[big.group == "VM"].head(7).copy()
    d.loc[d.index[0], "alps"] += 0.4  # a gross outlier on the first patient
    model = st.regression(d, **{**kw, "groups": ("VM",), "contrast": None}).model.iloc[0]
    assert model.df_resid == 3
    X = sm.add_constant(d[["duration_years", "attacks_per_month", "age"]].to_numpy(float))
    cooks = OLSInfluence(sm.OLS(d["alps"].to_numpy(float), X).fit()).cooks_distance[0]
    ids = d.participant_id.to_numpy()
    order = np.argsort(-cooks)
    expected = [f"{ids[i]} ({cooks[i]:.2f})" for i in order if cooks[i] > 4 / 7]
    assert model.influential == "; ".join(expected)
    assert "residual df 3 < 10" in model.caution and "2.33 subjects per predictor < 10" in model.caution
    big_d = [f"{ids[i]} ({cooks[i]:.2f})" for i in order if cooks[i] > 1]
    assert big_d and f"Cook's D > 1: {', '.join(big_d)}" in model.caution
    # the study's regression on 80 patients: nothing to caution
    full = st.regression(big, **REG).model.iloc[0]
    assert full.caution == "" and full.df_resid == 74


def test_correlation_and_mediation_cautions(big):
    vm = big[big.group == "VM"]
    cor = st.correlations(vm.head(8), groups=("VM",), y=("dhi",), partial_covariates=("age", "sex")).table
    c = cor.set_index("kind")
    assert c.loc["bivariate", "caution"] == "residual df 6 < 10"
    assert c.loc["partial", "caution"] == "residual df 4 < 10; 2.67 subjects per predictor < 10 (Harrell 2015)"
    assert (st.correlations(vm, groups=("VM",), y=("dhi",), partial_covariates=()).table.caution == "").all()
    med = st.mediation(vm.head(9), n_boot=200, **MED).table
    assert (med.caution == "residual df 6 < 10; 4.5 subjects per predictor < 10 (Harrell 2015)").all()
    assert (st.mediation(vm, n_boot=200, **MED).table.caution == "").all()
