"""Study designs other than the reproduced study's run through the statistics notebooks (03-07) to a
report, on table-only cohorts (planted per-subject ALPS, no imaging: seconds, not minutes).

Designs (config/design-*.yaml): four groups of another disease (AD/MCI/SCD/HC), two groups only
(PD/HC, no contrast, no mediation) and no clinical scores (regression, correlations and mediation
skipped with a note in the tables, figures and report, not errors). The study's own design is run by
the smoke series (make test) and checked value by value in test_stats.py.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alps import paths, stats
from alps.build import report
from alps.build.nbrun import run_notebook
from alps.config import ParameterError
from alps.stats.design import StudyDesign, from_profile

import design_fixtures as dfx

EFFECTS = {
    "design-ad": {"AD": -0.15, "MCI": -0.08, "SCD": -0.03, "HC": 0.0},
    "design-two-groups": {"PD": -0.10, "HC": 0.0},
    "design-no-clinical": {"SVD": -0.12, "iNPH": -0.20, "HC": 0.0},
}


def _run_series(profile, root):
    """What Make runs for notebooks 03-07 and the report (same parameters), on a table-only cohort."""
    design = from_profile(profile)
    data = root / "data"
    sites = {"n_sites": 2, "imbalance": 0.6} if profile == "design-ad" else {}  # one multi-site cohort
    files = dfx.write_design_cohort(data, design, n_per_group=20, effects=EFFECTS[profile], seed=5, **sites)
    out = root / "results"
    tab, nb = out / "tables", out / "notebooks"
    tab.mkdir(parents=True)
    (tab / "alps.tsv").write_bytes(files["alps"].read_bytes())
    common = {"alps_table": str(tab / "alps.tsv"), "participants": str(files["participants"])}
    t = {k: str(tab / f"{k}.{ext}") for k, ext in (
        ("demographics", "csv"), ("group_tests", "csv"), ("posthoc", "csv"), ("ancova", "csv"),
        ("exclusions", "csv"), ("regression", "csv"), ("regression_model", "csv"), ("correlations", "csv"),
        ("mediation", "csv"), ("reproduction", "csv"), ("key_numbers", "json"), ("truth_check", "csv"))}
    runs = {
        "03_group_tests": {**common, "demographics_csv": t["demographics"], "group_tests_csv": t["group_tests"],
                           "posthoc_csv": t["posthoc"], "ancova_csv": t["ancova"], "exclusions_csv": t["exclusions"],
                           "harmonisation_csv": str(tab / "harmonisation.csv")},
        "04_regression": {**common, "regression_csv": t["regression"], "regression_model_csv": t["regression_model"]},
        "05_correlation": {**common, "correlations_csv": t["correlations"]},
        "06_mediation": {**common, "truth_table": str(files["truth"]), "mediation_csv": t["mediation"],
                         "reproduction_csv": t["reproduction"], "key_numbers_json": t["key_numbers"],
                         "truth_check_csv": t["truth_check"]},
        "07_figures": {"tables_dir": str(tab), "figures_dir": str(out / "figures"),
                       "derivatives_dir": str(out / "derivatives" / "alps"), "data_dir": str(data),
                       **common, "posthoc_csv": t["posthoc"], "regression_csv": t["regression"],
                       "correlations_csv": t["correlations"], "mediation_csv": t["mediation"],
                       "harmonisation_csv": str(tab / "harmonisation.csv"), "truth_table": str(files["truth"]),
                       "rotation_sweep_csv": None},
    }
    for name, params in runs.items():
        run_notebook(name, nb / f"{name}.ipynb", profile=profile, parameters=params)
    page = report.build_report(out, profile=profile, data_dir=data)
    return design, out, page.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["design-ad", "design-two-groups", "design-no-clinical"])
def test_design_runs_through_the_notebooks_to_a_report(profile, tmp_path):
    design, out, html = _run_series(profile, tmp_path)
    tab = out / "tables"
    gt = pd.read_csv(tab / "group_tests.csv")
    assert [c for c in gt.columns if c.startswith("n_")] == [f"n_{g}" for g in design.labels]
    # the planted group gradient is what the tables measure
    planted = EFFECTS[profile]
    if profile == "design-ad":  # two sites recruiting unequal shares: the order holds after ComBat
        h = pd.read_csv(tab / "harmonisation.csv")
        means = h.groupby("group")["alps_harmonised"].mean().to_dict()
    else:
        means = {g: gt.loc[gt.dv == "alps", f"mean_{g}"].iloc[0] for g in design.labels}
    assert sorted(means, key=means.get) == sorted(planted, key=planted.get)
    ph = pd.read_csv(tab / "posthoc.csv")
    k = len(design.labels)
    assert len(ph[ph.dv == "alps"]) == k * (k - 1) // 2
    t1 = pd.read_csv(tab / "demographics.csv")
    assert set(design.clinical_names) <= set(t1.variable)
    key = json.loads((tab / "key_numbers.json").read_text())
    if profile != "design-ad":
        assert key["measured"]["alps_order"] == " > ".join(sorted(planted, key=lambda g: -planted[g]))
    for name, note in design.skipped().items():
        table = {"regression": "regression.csv", "correlations": "correlations.csv",
                 "mediation": "mediation.csv"}[name]
        assert pd.read_csv(tab / table)["note"].iloc[0] == note
        assert note in html
    if design.regression is not None and profile != "design-ad":  # (site-confounded there)
        terms = pd.read_csv(tab / "regression.csv").set_index("term")
        for v in design.regression.predictors:
            if v in design.clinical_names and v != (design.mediation.y if design.mediation else None):
                assert terms.loc[v, "b"] < 0 and terms.loc[v, "p"] < 0.05, v  # planted slope < 0
    harm = pd.read_csv(tab / "harmonisation.csv")
    if profile == "design-ad":  # two sites: harmonised values, site means equalised
        assert harm["site"].nunique() == 2 and {"alps_harmonised", "dxx_proj_L"} - set(harm.columns) <= {"dxx_proj_L"}
        spread = {c: np.ptp(harm.groupby("site")[c].mean()) for c in ("alps", "alps_harmonised")}
        assert spread["alps_harmonised"] < spread["alps"]
    else:
        assert harm["note"].iloc[0].startswith("single site")
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "figS4_harmonisation.png" in figs
    assert "fig2_groups.png" in figs and "fig5_mediation.png" in figs
    assert "No per-subject derivatives" in (out / "notebooks" / "07_figures.ipynb").read_text()
    for g in design.labels:
        assert design.name_of(g) in html or g in html


def test_default_design_is_the_study_and_bad_designs_are_refused():
    study = from_profile("default")
    assert study.labels == ("MO", "VM", "HC") and study.reference == "HC" and study.patients == ("MO", "VM")
    assert study.contrast_tuple() == ("subtype", "VM", "MO") and study.display_order == ("MO", "HC", "VM")
    assert study.published["proportion_mediated"] == 0.7953 and study.skipped() == {}
    base = {"groups": ["A", "B"]}
    for mapping, message in [
        ({**base, "covarites": []}, r"unknown parameter 'covarites' \(did you mean 'covariates'\?\); allowed: groups"),
        ({**base, "mediation": {"x": "a", "y": "b", "z": 1}}, r"design.mediation: unknown parameter 'z'; allowed: x, y"),
        ({**base, "reference": "C"}, r"design.reference: unknown group 'C'"),
        ({"groups": ["A"]}, r"need at least 2 groups"),
        ({**base, "regression": {"predictors": ["mmse"]}}, r"predictor\(s\) \['mmse'\] are not clinical"),
        ({**base, "multiple_comparisons": {"dunn": "tukey"}}, r"'dunn' must be one of"),
        ({**base, "multiple_comparisons": {"posthoc": "holm"}}, r"unknown parameter 'posthoc'; allowed: correlations, dunn"),
        ({}, r"'groups' is required"),
    ]:
        with pytest.raises(ParameterError, match=message):
            StudyDesign.from_mapping(mapping)
    with pytest.raises(Exception, match="frozen|cannot assign"):
        study.reference = "MO"


def test_every_shipped_profile_has_a_valid_design():
    for path in sorted(paths.CONFIG_DIR.glob("*.yaml")):
        assert len(from_profile(path.stem).labels) >= 2, path


def test_posthoc_corrections_follow_the_design_policy():
    from alps import stats

    design = from_profile("design-ad")
    df = dfx.make_design_cohort(design, n_per_group=15, effects=EFFECTS["design-ad"], seed=2)
    holm = stats.posthoc(df, dv="alps", test="dunn", **design.posthoc_kwargs()).table
    bonf = stats.posthoc(df, dv="alps", test="dunn", **{**design.posthoc_kwargs(), "p_adjust": "bonferroni"}).table
    np.testing.assert_allclose(bonf.p_adj, np.minimum(1, holm.p * len(holm)), rtol=1e-12)
    m = len(holm)
    order = np.argsort(holm.p.to_numpy())
    by_hand = np.maximum.accumulate(np.minimum(1, (m - np.arange(m)) * holm.p.to_numpy()[order]))
    np.testing.assert_allclose(holm.p_adj.to_numpy()[order], by_hand, rtol=1e-12)


def test_report_formats_numbers_and_names_quantities_in_words():
    study = from_profile("default")
    assert report.fmt_number(0.00049, p_value=True) == "< 0.001" and report.fmt_number(0.0123456) == "0.0123"
    assert report.fmt_number(1.2974701645710394) == "1.3" and report.fmt_number(40.0) == "40"
    assert report.fmt_number(float("nan")) == "—" and report.fmt_number("MO > HC > VM") == "MO > HC > VM"
    q = {h.key: h for h in stats.headline_quantities(study)}
    assert report.quantity_label(q["reg_b_duration"], study) == "regression coefficient of headache duration (years)"
    assert report.quantity_label(q["r_vm_dhi"], study) == ("correlation of ALPS with dizziness handicap (DHI) "
                                                          "(0-100), Vestibular migraine")
    assert report.quantity_label(q["n_HC"], study) == "number of subjects, Healthy controls"
    assert report.quantity_label(q["reg_b_subtype"], study) == "regression coefficient of VM vs MO (subtype)"
    assert report.quantity_label(q["r_vm_dhi_method"], study).startswith("method of the correlation of ALPS with")


def _design_with_groups(labels, headline_group):
    return StudyDesign.from_mapping({
        "groups": [{"label": g, "name": f"group {g}"} for g in labels], "reference": labels[-1],
        "clinical": [{"name": "dhi", "label": "dizziness handicap", "unit": "0-100"}],
        "correlations": {"groups": list(labels[:2]), "variables": ["dhi"], "partial_covariates": [],
                         "headline": [[g, "dhi"] for g in headline_group]}})


def test_headline_quantities_keep_group_labels_with_underscores_and_case(tmp_path):
    """Headline keys were parsed back with split("_", 1) by the report: a group label with an
    underscore lost its words, and two labels differing only in case shared one key (one value
    overwrote the other). Records keep group and variable; keys are only names."""
    design = _design_with_groups(["AD_early", "AD_late", "HC"], ["AD_early"])
    tab = tmp_path / "tables"
    tab.mkdir()
    pd.DataFrame({"quantity": ["r_ad_early_dhi"], "paper": [""], "truth": [""], "measured": [-0.5]}).to_csv(
        tab / "reproduction.csv", index=False)
    assert "correlation of ALPS with dizziness handicap (0-100), group AD_early" in report.headline_html(tmp_path, design)
    cased = _design_with_groups(["mo", "MO", "HC"], ["mo", "MO"])
    keys = [q.key for q in stats.headline_quantities(cased) if q.statistic == "r"]
    assert keys == ["r_mo_dhi", "r_MO_dhi"]
