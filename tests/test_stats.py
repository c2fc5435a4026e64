"""Tests of alps.stats and alps.io.tables against independent computations."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as sps

from alps.io import tables as io
from alps import stats as st

import stats_fixtures as fx
from alps.stats.design import from_profile

#: the reproduced study's design (config/default.yaml): its analyses' arguments
STUDY = from_profile("default")
REG = STUDY.regression_kwargs()
COR = STUDY.correlation_kwargs()
MED = STUDY.mediation_kwargs()

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    return fx.write_cohort(tmp_path_factory.mktemp("cohort"), seed=0)


@pytest.fixture(scope="module")
def cohort(cohort_files):
    df, ex = io.load_cohort(cohort_files["alps"], cohort_files["participants"])
    return df, ex


@pytest.fixture(scope="module")
def truth_df():
    """The planted cohort itself (no failures, no measurement noise)."""
    return fx.make_cohort(40, 40, 20, seed=3)


def _groups(df, dv="alps", groups=("MO", "VM", "HC")):
    return [df.loc[df.group == g, dv].to_numpy(float) for g in groups]


# ------------------------------------------------------------------------------- io_tables

def test_merge_reports_exclusions(cohort_files, cohort):
    df, ex = cohort
    expected = set(cohort_files["failed"]) | set(cohort_files["orphan"])
    assert set(ex.participant_id) == expected
    assert list(ex.columns) == list(io.EXCLUSION_COLUMNS)
    assert not df.participant_id.isin(expected).any()
    assert len(df) == 100 - len(cohort_files["failed"])
    assert ex.set_index("participant_id").loc["sub-XX999", "reason"] == "not in participants table"


def test_merge_reports_participant_without_alps(cohort_files):
    alps = io.load_alps(cohort_files["alps"])
    part = io.load_participants(cohort_files["participants"])
    alps = alps[alps.participant_id != "sub-VM003"]
    with pytest.warns(UserWarning, match="sub-VM003"):
        df, ex = io.merge_cohort(alps, part)
    row = ex.set_index("participant_id").loc["sub-VM003"]
    assert row["reason"] == "no row in the ALPS table" and row["group"] == "VM"
    assert "sub-VM003" not in set(df.participant_id)


def test_truth_table_without_status(cohort_files):
    t = io.load_alps(cohort_files["truth"])
    assert (t.status == "ok").all()
    df, ex = io.merge_cohort(t, io.load_participants(cohort_files["participants"]))
    assert len(df) == 100 and ex.empty


def test_io_validation(tmp_path, cohort_files):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        io.load_participants(tmp_path / "nope.tsv")
    with pytest.raises(FileNotFoundError, match="missing_alps.tsv"):
        io.load_alps(tmp_path / "missing_alps.tsv")
    part = pd.read_csv(cohort_files["participants"], sep="\t", dtype=str, keep_default_na=False)

    def write(d, name):
        p = tmp_path / name
        d.to_csv(p, sep="\t", index=False)
        return p

    with pytest.raises(ValueError, match=r"missing required column.*'dhi'"):
        io.load_participants(write(part.drop(columns="dhi"), "a.tsv"), numeric=STUDY.numeric_columns)
    dup = pd.concat([part, part.iloc[[0]]])
    with pytest.raises(ValueError, match="duplicate participant_id.*sub-MO001"):
        io.load_participants(write(dup, "b.tsv"))
    bad = part.copy()
    bad.loc[3, "group"] = "MA"
    with pytest.raises(ValueError, match=r"unknown group label.*'MA'.*sub-MO004"):
        io.load_participants(write(bad, "c.tsv"), groups=STUDY.labels)
    bad = part.copy()
    bad.loc[5, "psqi"] = "seven"
    with pytest.raises(ValueError, match=r"'psqi'.*seven.*sub-MO006"):
        io.load_participants(write(bad, "d.tsv"), numeric=STUDY.numeric_columns)
    alps = pd.read_csv(cohort_files["alps"], sep="\t", dtype=str, keep_default_na=False)
    with pytest.raises(ValueError, match=r"missing required column.*alps_R"):
        io.load_alps(write(alps.drop(columns="alps_R"), "e.tsv"))


def test_load_alps_sessions(cohort_files, tmp_path):
    """A multi-session ALPS table needs a session choice; the chosen one is analysed, and
    participants without it are reported by merge_cohort, not dropped silently."""
    alps = pd.read_csv(cohort_files["alps"], sep="\t", dtype=str, keep_default_na=False)
    one = alps.assign(session_id="ses-01")
    two = alps.iloc[3:].assign(session_id="ses-02")
    two["alps"] = "1.0"
    path = tmp_path / "ses.tsv"
    pd.concat([one, two]).to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"several sessions.*session=.*ses-01.*ses-02"):
        io.load_alps(path)
    s1 = io.load_alps(path, session="ses-01")
    assert len(s1) == len(alps) and (s1["session_id"] == "ses-01").all()
    s2 = io.load_alps(path, session="ses-02")
    assert len(s2) == len(alps) - 3 and (s2["alps"] == 1.0).all()
    with pytest.raises(ValueError, match=r"no row of session 'ses-03'"):
        io.load_alps(path, session="ses-03")
    with pytest.raises(ValueError, match="no session_id values"):
        io.load_alps(cohort_files["alps"], session="ses-01")
    # a single-session table with a session_id column loads as before
    one.to_csv(tmp_path / "one.tsv", sep="\t", index=False)
    assert len(io.load_alps(tmp_path / "one.tsv")) == len(alps)
    with pytest.warns(UserWarning):
        _, base = io.load_cohort(cohort_files["alps"], cohort_files["participants"])
    with pytest.warns(UserWarning):
        _, exc = io.load_cohort(path, cohort_files["participants"], session="ses-02")
    missing = set(alps["participant_id"].iloc[:3])  # no ses-02 row: reported, not dropped silently
    assert missing <= set(exc["participant_id"])
    assert set(exc["participant_id"]) - set(base["participant_id"]) <= missing


def test_partial_sessions_policy_and_true_reasons(tmp_path):
    """A dataset where only some participants have sessions: ``strict`` lists those without the
    chosen one with the sessions they have, ``only-scan`` uses an only scan; a failed scan is
    excluded with its own error, not as a missing row."""
    alps = pd.DataFrame({"participant_id": ["sub-01", "sub-01", "sub-02", "sub-03", "sub-03", "sub-04"],
                         "session_id": ["ses-01", "ses-02", "", "ses-02", "ses-03", "ses-01"],
                         "status": ["ok", "ok", "ok", "ok", "ok", "failed"],
                         "error": ["", "", "", "", "", "sub-04_dwi.bval: no b=0 volume"],
                         "alps_L": [1.5] * 6, "alps_R": [1.6] * 6, "alps": [1.55] * 6})
    alps.loc[5, ["alps_L", "alps_R", "alps"]] = np.nan
    part = pd.DataFrame({"participant_id": ["sub-01", "sub-02", "sub-03", "sub-04"], "group": ["MO", "VM", "HC", "HC"],
                         "sex": ["F", "M", "F", "M"], "age": [30, 31, 32, 33]})
    for c in io.NUMERIC_PARTICIPANT_COLUMNS[1:]:
        part[c] = "n/a"
    a, pt = tmp_path / "alps.tsv", tmp_path / "participants.tsv"
    alps.to_csv(a, sep="\t", index=False)
    part.to_csv(pt, sep="\t", index=False)
    with pytest.warns(UserWarning, match="scan failed"):
        df, ex = io.load_cohort(a, pt, session="ses-01")
    why = ex.set_index("participant_id")["reason"]
    assert list(df["participant_id"]) == ["sub-01"]
    assert why["sub-02"].startswith("no scan of ses-01 (has: no session")
    assert why["sub-03"].startswith("no scan of ses-01 (has: ses-02, ses-03")
    assert why["sub-04"] == "scan failed: sub-04_dwi.bval: no b=0 volume"
    with pytest.warns(UserWarning):
        df, ex = io.load_cohort(a, pt, session="ses-01", session_policy="only-scan")
    assert list(df["participant_id"]) == ["sub-01", "sub-02"]  # sub-02's only scan is used
    assert ex.set_index("participant_id")["reason"]["sub-03"].startswith("no scan of ses-01; 2 other scans")
    with pytest.raises(ValueError, match="session policy 'any' unknown"):
        io.load_alps(a, session="ses-01", session_policy="any")
    # who the session choice left out is a typed field of the returned record, not DataFrame.attrs
    # (before: pd.concat / merge of the table dropped it, and the reason became "no row in the ALPS
    # table")
    chosen = io.load_alps_sessions(a, session="ses-01")
    assert isinstance(chosen, io.SessionSelection) and not chosen.table.attrs
    assert sorted(chosen.excluded) == ["sub-02", "sub-03"]
    with pytest.warns(UserWarning):
        _, ex = io.merge_cohort(pd.concat([chosen.table]), io.load_participants(pt),
                                session_excluded=chosen.excluded)
    assert ex.set_index("participant_id")["reason"]["sub-03"].startswith("no scan of ses-01 (has: ses-02, ses-03")


def test_write_table_atomic(tmp_path):
    from alps import atomic

    df = pd.DataFrame({"a": [1.5, np.nan], "b": ["x", "y"]})
    p = atomic.write_table(tmp_path / "x" / "y" / "t.csv", df)
    assert p.read_text() == "a,b\n1.5,x\n,y\n"  # CSV: empty cells for missing values
    assert [f.name for f in p.parent.iterdir()] == ["t.csv"]
    q = atomic.write_table(tmp_path / "t.tsv", df)
    assert q.read_text() == "a\tb\n1.5\tx\nn/a\ty\n"  # TSV: BIDS n/a
    with pytest.raises(ValueError, match="must end in .tsv or .csv"):
        atomic.write_table(tmp_path / "t.txt", df)


# ------------------------------------------------------------------------------- group tests

def test_anova_against_sums_of_squares(truth_df):
    res = st.group_tests(truth_df, dv="alps", test="anova").table.iloc[0]
    s = _groups(truth_df)
    allv = np.concatenate(s)
    ssb = sum(len(x) * (x.mean() - allv.mean()) ** 2 for x in s)
    ssw = sum(((x - x.mean()) ** 2).sum() for x in s)
    k, n = 3, len(allv)
    f = (ssb / (k - 1)) / (ssw / (n - k))
    assert res.statistic == pytest.approx(f, rel=1e-10)
    assert res.statistic == pytest.approx(sps.f_oneway(*s).statistic, rel=1e-10)
    assert res.p == pytest.approx(sps.f_oneway(*s).pvalue, rel=1e-8)
    assert (res.df1, res.df2) == (2, n - 3)
    assert res.eta2 == pytest.approx(ssb / (ssb + ssw))
    msw = ssw / (n - k)
    assert res.omega2 == pytest.approx((ssb - (k - 1) * msw) / (ssb + ssw + msw))
    assert res.mean_VM == pytest.approx(s[1].mean()) and res.sd_HC == pytest.approx(s[2].std(ddof=1))


def test_welch_and_kruskal(truth_df):
    s = _groups(truth_df)
    w = st.group_tests(truth_df, dv="alps", test="welch_anova").table.iloc[0]
    # Welch (1951) by hand
    n = np.array([len(x) for x in s]); m = np.array([x.mean() for x in s])
    v = np.array([x.var(ddof=1) for x in s]); wt = n / v
    mw = (wt * m).sum() / wt.sum(); k = 3
    lam = ((1 - wt / wt.sum()) ** 2 / (n - 1)).sum()
    f = ((wt * (m - mw) ** 2).sum() / (k - 1)) / (1 + 2 * (k - 2) * lam / (k ** 2 - 1))
    assert w.statistic == pytest.approx(f, rel=1e-8)
    assert w.df2 == pytest.approx((k ** 2 - 1) / (3 * lam), rel=1e-8)
    kw = st.group_tests(truth_df, dv="alps", test="kruskal").table.iloc[0]
    ref = sps.kruskal(*s)
    assert kw.statistic == pytest.approx(ref.statistic) and kw.p == pytest.approx(ref.pvalue)
    assert kw.eta2_h == pytest.approx((ref.statistic - 2) / (len(truth_df) - 3))


def test_automatic_test_choice():
    rng = np.random.default_rng(1)
    g = np.repeat(["MO", "VM", "HC"], 30)
    q = sps.norm.ppf((np.arange(30) + 0.5) / 30)  # exactly normal-shaped samples
    normal = pd.DataFrame({"participant_id": [f"s{i}" for i in range(90)], "group": g,
                           "alps": np.concatenate([1.3 + 0.05 * q, 1.28 + 0.05 * q[::-1],
                                                   1.31 + 0.05 * q])})
    assert st.group_tests(normal, dv="alps").table.test[0] == "anova"
    hetero = normal.copy()
    hetero.loc[hetero.group == "HC", "alps"] = 1.3 + 0.4 * q
    assert st.group_tests(hetero, dv="alps").table.test[0] == "welch_anova"
    assert st.posthoc(hetero, dv="alps").table.test[0] == "games_howell"
    skew = normal.copy()
    skew["alps"] = 1 + rng.exponential(0.2, 90)
    assert st.group_tests(skew, dv="alps").table.test[0] == "kruskal"
    assert st.posthoc(skew, dv="alps").table.test[0] == "dunn"


def test_tukey_against_scipy_and_pingouin(truth_df):
    ph = st.posthoc(truth_df, dv="alps", test="tukey").table
    s = dict(zip(("MO", "VM", "HC"), _groups(truth_df)))
    ref = sps.tukey_hsd(s["MO"], s["VM"], s["HC"])
    ci = ref.confidence_interval(0.95)
    idx = {"MO": 0, "VM": 1, "HC": 2}
    pgt = pg.pairwise_tukey(truth_df, dv="alps", between="group")
    for _, r in ph.iterrows():
        i, j = idx[r.group_a], idx[r.group_b]
        assert r.mean_diff == pytest.approx(s[r.group_a].mean() - s[r.group_b].mean())
        assert r.p_adj == pytest.approx(ref.pvalue[i, j], abs=1e-6)
        assert r.ci_low == pytest.approx(ci.low[i, j], rel=1e-5)
        assert r.ci_high == pytest.approx(ci.high[i, j], rel=1e-5)
        row = pgt[((pgt.A == r.group_a) & (pgt.B == r.group_b))
                  | ((pgt.A == r.group_b) & (pgt.B == r.group_a))].iloc[0]
        assert r.se == pytest.approx(row["se"], rel=1e-8)
        a, b = s[r.group_a], s[r.group_b]
        sp = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1))
                       / (len(a) + len(b) - 2))
        g = (1 - 3 / (4 * (len(a) + len(b)) - 9)) * (a.mean() - b.mean()) / sp
        assert r.hedges_g == pytest.approx(g)
        assert abs(r.hedges_g) == pytest.approx(abs(row["hedges"]), rel=1e-6)


def test_games_howell_against_pingouin(truth_df):
    ph = st.posthoc(truth_df, dv="alps", test="games_howell").table
    ref = pg.pairwise_gameshowell(truth_df, dv="alps", between="group")
    pcol = "pval" if "pval" in ref.columns else "p_val"
    for _, r in ph.iterrows():
        row = ref[((ref.A == r.group_a) & (ref.B == r.group_b))
                  | ((ref.A == r.group_b) & (ref.B == r.group_a))].iloc[0]
        assert r.df == pytest.approx(row["df"], rel=1e-8)
        assert abs(r.statistic) == pytest.approx(abs(row["T"]), rel=1e-8)
        assert r.p_adj == pytest.approx(row[pcol], abs=1e-4)


def test_dunn_holm_by_hand(truth_df):
    ph = st.posthoc(truth_df, dv="alps", test="dunn").table
    d = truth_df[["group", "alps"]]
    rank = sps.rankdata(d.alps)
    n = len(d)
    for _, r in ph.iterrows():
        ra, rb = rank[d.group == r.group_a], rank[d.group == r.group_b]
        se = math.sqrt(n * (n + 1) / 12 * (1 / len(ra) + 1 / len(rb)))  # no ties here
        z = (ra.mean() - rb.mean()) / se
        assert r.statistic == pytest.approx(z, rel=1e-10)
        assert r.p == pytest.approx(2 * sps.norm.sf(abs(z)))
    p = ph.p.to_numpy()
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    assert ph.p_adj.to_numpy()[order] == pytest.approx(holm)


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # pingouin.ancova under pandas 3.1
def test_ancova_against_pingouin(truth_df):
    res = st.ancova(truth_df, dv="alps", covariates=("age", "sex")).table
    d = truth_df.assign(sex=(truth_df.sex == "M").astype(float))
    ref = pg.ancova(d, dv="alps", between="group", covar=["age", "sex"])
    ref = ref.set_index("Source")
    for term, src in (("group", "group"), ("age", "age"), ("sex", "sex")):
        r = res.set_index("term").loc[term]
        assert r.ss == pytest.approx(ref.loc[src, "SS"], rel=1e-8)
        assert r.f == pytest.approx(ref.loc[src, "F"], rel=1e-8)
    assert set(res.term) == {"group", "age", "sex", "residual"}


# ------------------------------------------------------------------------------- regression

def _design(df):
    p = df[df.group.isin(["MO", "VM"])]
    X = np.column_stack([np.ones(len(p)), (p.group == "VM").astype(float), p.duration_years,
                         p.attacks_per_month, p.age, (p.sex == "M").astype(float)])
    return p, X, p.alps.to_numpy(float)


def test_regression_against_lstsq(truth_df):
    res = st.regression(truth_df, robust="never", **REG)
    terms, model = res.terms, res.model
    p, X, y = _design(truth_df)
    b, *_ = np.linalg.lstsq(X, y, rcond=None)
    e = y - X @ b
    n, k = X.shape
    s2 = e @ e / (n - k)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ X)) * s2)
    assert terms.b.to_numpy() == pytest.approx(b, rel=1e-8)
    assert terms.se.to_numpy() == pytest.approx(se, rel=1e-8)
    assert terms.t.to_numpy() == pytest.approx(b / se, rel=1e-8)
    sd = X[:, 1:].std(axis=0, ddof=1)
    assert terms.beta.to_numpy()[1:] == pytest.approx(b[1:] * sd / y.std(ddof=1), rel=1e-8)
    r2 = 1 - e @ e / ((y - y.mean()) ** 2).sum()
    assert model.r2[0] == pytest.approx(r2) and model.n[0] == n
    assert model.df_resid[0] == n - k and model.robust_se[0] == "none"
    # VIF by auxiliary regressions
    for j in range(1, k):
        others = np.delete(X, j, axis=1)
        bj, *_ = np.linalg.lstsq(others, X[:, j], rcond=None)
        rj = X[:, j] - others @ bj
        r2j = 1 - rj @ rj / ((X[:, j] - X[:, j].mean()) ** 2).sum()
        assert terms.vif[j] == pytest.approx(1 / (1 - r2j), rel=1e-8)
    assert list(terms.columns) == ["term", "role", "b", "se", "beta", "t", "p", "ci_low",
                                   "ci_high", "vif"]


def test_regression_recovers_planted_effects(truth_df):
    terms = st.regression(truth_df, **REG).terms.set_index("term")
    for term, true in (("subtype", fx.B_SUBTYPE), ("duration_years", fx.B_DURATION),
                       ("attacks_per_month", fx.B_FREQUENCY), ("age", fx.B_AGE)):
        assert terms.loc[term, "ci_low"] <= true <= terms.loc[term, "ci_high"], term
    assert terms.loc["duration_years", "p"] < 1e-6


def test_regression_hc3_when_heteroskedastic():
    rng = np.random.default_rng(5)
    n = 120
    g = np.where(np.arange(n) < 60, "MO", "VM")
    dur = rng.uniform(1, 20, n)
    df = pd.DataFrame({"participant_id": [f"s{i}" for i in range(n)], "group": g,
                       "duration_years": dur, "attacks_per_month": rng.uniform(1, 10, n),
                       "age": rng.uniform(20, 60, n), "sex": rng.choice(["F", "M"], n)})
    df["alps"] = 1.4 - 0.01 * dur + rng.normal(0, 1, n) * 0.004 * dur ** 1.5
    res = st.regression(df, **REG)
    terms, model = res.terms, res.model
    assert model.breusch_pagan_p[0] < 0.05 and model.robust_se[0] == "HC3"
    p, X, y = _design(df)
    b, *_ = np.linalg.lstsq(X, y, rcond=None)
    e = y - X @ b
    xtx_inv = np.linalg.inv(X.T @ X)
    h = np.einsum("ij,jk,ik->i", X, xtx_inv, X)
    cov = xtx_inv @ (X.T * (e ** 2 / (1 - h) ** 2)) @ X @ xtx_inv
    assert terms.se.to_numpy() == pytest.approx(np.sqrt(np.diag(cov)), rel=1e-8)


# ------------------------------------------------------------------------------- correlations

def test_correlations_against_scipy_and_hand(truth_df):
    res = st.correlations(truth_df, groups=("VM",), y=("duration_years", "hit6"),
                          method="pearson").table
    vm = truth_df[truth_df.group == "VM"]
    biv = res[res.kind == "bivariate"].set_index("y")
    r, p = sps.pearsonr(vm.alps, vm.duration_years)
    assert biv.loc["duration_years", "r"] == pytest.approx(r)
    assert biv.loc["duration_years", "p"] == pytest.approx(p)
    n = len(vm)
    z, h = np.arctanh(r), 1.959963984540054 / math.sqrt(n - 3)
    assert biv.loc["duration_years", "ci_low"] == pytest.approx(np.tanh(z - h))
    assert biv.loc["duration_years", "ci_high"] == pytest.approx(np.tanh(z + h))
    # partial r by residualisation, and pingouin
    Z = np.column_stack([np.ones(n), vm.age, (vm.sex == "M").astype(float)])
    rx = vm.alps - Z @ np.linalg.lstsq(Z, vm.alps, rcond=None)[0]
    ry = vm.duration_years - Z @ np.linalg.lstsq(Z, vm.duration_years, rcond=None)[0]
    rp = np.corrcoef(rx, ry)[0, 1]
    part = res[res.kind == "partial"].set_index("y")
    assert part.loc["duration_years", "r"] == pytest.approx(rp)
    ref = pg.partial_corr(vm.assign(sexn=(vm.sex == "M").astype(float)), x="alps",
                          y="duration_years", covar=["age", "sexn"])
    assert part.loc["duration_years", "r"] == pytest.approx(ref["r"].iloc[0], rel=1e-6)
    pcol = [c for c in ref.columns if c.startswith("p")][-1]
    assert part.loc["duration_years", "p"] == pytest.approx(ref[pcol].iloc[0], rel=1e-6)
    zp, hp = np.arctanh(rp), 1.959963984540054 / math.sqrt(n - 3 - 2)
    assert part.loc["duration_years", "ci_low"] == pytest.approx(np.tanh(zp - hp))


def test_bh_fdr_by_hand_and_families(truth_df):
    p = np.array([0.01, 0.04, 0.03, 0.20, 0.001])
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    adj[order] = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    assert st.bh_fdr(p) == pytest.approx(np.minimum(adj, 1))
    res = st.correlations(truth_df, **COR).table
    for (g, k), sub in res.groupby(["group", "kind"]):
        assert sub.p_fdr.to_numpy() == pytest.approx(st.bh_fdr(sub.p.to_numpy()))
    # dhi is VM-only: skipped in MO, present in VM
    assert "dhi" in set(res[res.group == "VM"].y) and "dhi" not in set(res[res.group == "MO"].y)
    assert {"group", "x", "y", "method", "n", "r", "ci_low", "ci_high", "p", "p_fdr",
            "kind"} <= set(res.columns)


def test_adjusted_p_values_are_named_for_the_correction(truth_df):
    """A Holm or Bonferroni correction was written into a column named p_fdr."""
    from alps.stats.effects import adjust_p

    for method, col in (("holm", "p_holm"), ("bonferroni", "p_bonferroni"), ("fdr_bh", "p_fdr")):
        res = st.correlations(truth_df, **{**COR, "p_adjust": method}).table
        assert col in res.columns and not ({"p_fdr", "p_holm", "p_bonferroni"} - {col}) & set(res.columns), method
        for _, sub in res.groupby(["group", "kind"]):
            assert sub[col].to_numpy() == pytest.approx(adjust_p(sub.p.to_numpy(), method))
    with pytest.raises(st.StatsInputError, match="p_adjust must be one of"):
        st.correlations(truth_df, **{**COR, "p_adjust": "fdr"})


def test_correlation_method_rule():
    rng = np.random.default_rng(2)
    n = 40
    df = pd.DataFrame({"participant_id": [f"s{i}" for i in range(n)], "group": "VM",
                       "alps": rng.normal(1.3, 0.05, n), "age": rng.uniform(20, 60, n),
                       "sex": rng.choice(["F", "M"], n)})
    df["normal_y"] = rng.normal(size=n)
    df["skewed_y"] = rng.exponential(size=n) ** 2
    res = st.correlations(df, groups=("VM",), y=("normal_y", "skewed_y")).table.set_index(["kind", "y"])
    assert res.loc[("bivariate", "skewed_y"), "method"] == "spearman"
    rho = sps.spearmanr(df.alps, df.skewed_y).statistic
    assert res.loc[("bivariate", "skewed_y"), "r"] == pytest.approx(rho)
    sh = sps.shapiro(df.normal_y).pvalue >= 0.05 and sps.shapiro(df.alps).pvalue >= 0.05
    assert res.loc[("bivariate", "normal_y"), "method"] == ("pearson" if sh else "spearman")


# ------------------------------------------------------------------------------- mediation

def _mediation_data(seed=0, n=60, a=-0.01, b=-200.0, cp=0.5):
    rng = np.random.default_rng(seed)
    x = rng.uniform(1, 20, n)
    m = 1.3 + a * x + rng.normal(0, 0.03, n)
    y = 40 + b * (m - 1.25) + cp * x + rng.normal(0, 8, n)
    return pd.DataFrame({"participant_id": [f"s{i}" for i in range(n)], "group": "VM",
                         "duration_years": x, "alps": m, "dhi": y,
                         "age": rng.uniform(20, 60, n)})


def test_mediation_paths_and_identity():
    df = _mediation_data()
    res = st.mediation(df, n_boot=2000, seed=1, **MED).table.set_index("path")
    one = np.ones(len(df))
    x, m, y = df.duration_years.to_numpy(), df.alps.to_numpy(), df.dhi.to_numpy()
    a = np.linalg.lstsq(np.column_stack([one, x]), m, rcond=None)[0][1]
    cpb = np.linalg.lstsq(np.column_stack([one, x, m]), y, rcond=None)[0]
    c = np.linalg.lstsq(np.column_stack([one, x]), y, rcond=None)[0][1]
    assert res.loc["a", "estimate"] == pytest.approx(a)
    assert res.loc["b", "estimate"] == pytest.approx(cpb[2])
    assert res.loc["c_prime", "estimate"] == pytest.approx(cpb[1])
    assert res.loc["c", "estimate"] == pytest.approx(c)
    assert c == pytest.approx(cpb[1] + a * cpb[2], rel=1e-10)  # OLS identity c = c' + ab
    assert res.loc["indirect", "estimate"] == pytest.approx(a * cpb[2])
    assert res.loc["proportion_mediated", "estimate"] == pytest.approx(a * cpb[2] / c)
    assert list(st.mediation(df, n_boot=1000, seed=1, **MED).table.columns[:9]) == [
        "path", "estimate", "se", "ci_low", "ci_high", "p", "ci_method", "n", "n_boot"]


def test_mediation_bc_bootstrap_by_hand_and_pingouin():
    df = _mediation_data(seed=4)
    n_boot, seed = 3000, 11
    res = st.mediation(df, n_boot=n_boot, seed=seed, **MED).table.set_index("path")
    # hand implementation: same resampling scheme, loop of lstsq fits
    rng = np.random.default_rng(seed)
    n = len(df)
    idx = rng.integers(0, n, size=(n_boot, n))
    x, m, y = df.duration_years.to_numpy(), df.alps.to_numpy(), df.dhi.to_numpy()
    ab = np.empty(n_boot)
    for i, ii in enumerate(idx):
        one = np.ones(n)
        a = np.linalg.lstsq(np.column_stack([one, x[ii]]), m[ii], rcond=None)[0][1]
        b = np.linalg.lstsq(np.column_stack([one, x[ii], m[ii]]), y[ii], rcond=None)[0][2]
        ab[i] = a * b
    est = res.loc["indirect", "estimate"]
    z0 = sps.norm.ppf(np.mean(ab < est))
    lo = np.quantile(ab, sps.norm.cdf(2 * z0 - 1.959963984540054))
    hi = np.quantile(ab, sps.norm.cdf(2 * z0 + 1.959963984540054))
    assert res.loc["indirect", "ci_low"] == pytest.approx(lo, rel=1e-8)
    assert res.loc["indirect", "ci_high"] == pytest.approx(hi, rel=1e-8)
    assert res.loc["indirect", "se"] == pytest.approx(ab.std(ddof=1), rel=1e-8)
    # pingouin (independent resampling): agreement within Monte-Carlo tolerance
    ref = pg.mediation_analysis(df, x="duration_years", m="alps", y="dhi", n_boot=n_boot,
                                seed=seed).set_index("path")
    assert ref.loc["Indirect", "coef"] == pytest.approx(est, rel=1e-8)
    lo_col = [c for c in ref.columns if "2.5" in c][0]
    hi_col = [c for c in ref.columns if "97.5" in c][0]
    width = hi - lo
    assert ref.loc["Indirect", lo_col] == pytest.approx(lo, abs=0.15 * width)
    assert ref.loc["Indirect", hi_col] == pytest.approx(hi, abs=0.15 * width)
    # reproducible with the seed
    again = st.mediation(df, n_boot=n_boot, seed=seed, **MED).table.set_index("path")
    assert again.loc["indirect", "ci_low"] == res.loc["indirect", "ci_low"]


def test_mediation_recovers_planted_indirect_effect():
    df = _mediation_data(seed=9, n=200)
    res = st.mediation(df, n_boot=2000, seed=3, **MED).table.set_index("path")
    true_indirect = -0.01 * -200.0
    assert res.loc["indirect", "ci_low"] <= true_indirect <= res.loc["indirect", "ci_high"]
    assert res.loc["indirect", "ci_low"] > 0
    assert res.loc["proportion_mediated", "warning"] == ""


def test_mediation_warns_when_total_effect_null():
    df = _mediation_data(seed=1, cp=-2.0)  # c = c' + ab ≈ -2 + 2 = 0
    with pytest.warns(UserWarning, match="proportion mediated"):
        res = st.mediation(df, n_boot=1000, seed=1, **MED).table.set_index("path")
    assert "unstable" in res.loc["proportion_mediated", "warning"]


def test_bc_interval_reduces_to_percentile_when_unbiased():
    boot = np.random.default_rng(0).normal(size=20001)
    lo, hi = st.bc_interval(boot, float(np.median(boot)))
    assert lo == pytest.approx(np.quantile(boot, 0.025), abs=1e-3)
    assert hi == pytest.approx(np.quantile(boot, 0.975), abs=1e-3)


# ------------------------------------------------------------------------------- Table 1

def test_demographics(truth_df):
    t1 = st.demographics(truth_df, **STUDY.demographics_kwargs()).set_index("variable")
    assert t1.loc["n", "n_MO"] == 40 and t1.loc["n", "HC"] == "20"
    assert t1.loc["dhi", "test"] == "none" and t1.loc["dhi", "MO"] == "n/a"
    assert t1.loc["duration_years", "groups_tested"] == "MO,VM"
    assert t1.loc["duration_years", "test"] in ("t_test", "mann_whitney")
    assert t1.loc["psqi", "test"] in ("anova", "kruskal")
    ages = _groups(truth_df, "age")
    if t1.loc["age", "test"] == "anova":
        assert t1.loc["age", "p"] == pytest.approx(sps.f_oneway(*ages).pvalue)
    else:
        assert t1.loc["age", "p"] == pytest.approx(sps.kruskal(*ages).pvalue)
    tab = pd.crosstab(truth_df.group, truth_df.sex).loc[["MO", "VM", "HC"]]
    chi = sps.chi2_contingency(tab.to_numpy(), correction=False)
    if t1.loc["sex", "test"] == "chi2":
        assert t1.loc["sex", "p"] == pytest.approx(chi.pvalue)


def test_fisher_exact_rx2():
    for table in ([[3, 7], [8, 2]], [[1, 9], [11, 3]], [[0, 5], [5, 0]]):
        assert st.fisher_exact_rx2(table) == pytest.approx(sps.fisher_exact(table).pvalue)
    # 3 x 2: probabilities of all tables sum to 1, so p of the most probable table is 1
    p = st.fisher_exact_rx2([[6, 1], [8, 0], [2, 3]])
    assert 0 < p < 1


# ------------------------------------------------------------------------------- validation

def test_validation_errors(truth_df):
    with pytest.raises(st.StatsInputError, match=r"missing column.*'alps_X'"):
        st.group_tests(truth_df, dv="alps_X")
    bad = truth_df.copy()
    bad.loc[0, "group"] = "CM"
    with pytest.raises(st.StatsInputError, match=r"unknown group label.*'CM'"):
        STUDY.check_cohort(bad)
    with pytest.raises(st.StatsInputError, match="unknown group"):
        st.regression(truth_df, **{**REG, "groups": ("MO", "XX")})
    nan = truth_df.copy()
    nan.loc[nan.participant_id == "sub-VM005", "alps"] = np.nan
    with pytest.raises(st.StatsInputError, match=r"missing values.*sub-VM005"):
        st.group_tests(nan, dv="alps")
    with pytest.raises(st.StatsInputError, match=r"sub-VM005"):
        st.regression(nan, **REG)
    tiny = truth_df.groupby("group").head(2)
    with pytest.raises(st.StatsInputError, match="too few subjects"):
        st.group_tests(tiny, dv="alps")
    with pytest.raises(st.StatsInputError, match="too few subjects"):
        st.regression(tiny, **REG)
    with pytest.raises(st.StatsInputError, match="too few subjects"):
        st.mediation(tiny, n_boot=1000, **MED)
    with pytest.raises(st.StatsInputError, match="n_boot"):
        st.mediation(truth_df, n_boot=10, **MED)
    with pytest.warns(UserWarning, match="n_boot = 500 < 5000"):
        st.mediation(truth_df, n_boot=500, **MED)
    with pytest.raises(st.StatsInputError, match="missing column"):
        st.correlations(truth_df.drop(columns="psqi"), **COR)
    with pytest.raises(st.StatsInputError, match="has no subjects|have no subjects"):
        st.group_tests(truth_df[truth_df.group != "HC"], dv="alps", **STUDY.group_kwargs())


def test_nan_omit_reports_exclusions(truth_df):
    nan = truth_df.copy()
    nan.loc[nan.participant_id == "sub-VM005", "dhi"] = np.nan
    with pytest.warns(UserWarning, match="sub-VM005"):
        res = st.mediation(nan, n_boot=1000, seed=1, nan_policy="omit", **MED)
    ex = res.exclusions
    assert ex.participant_id.tolist() == ["sub-VM005"] and "dhi" in ex.reason[0]
    assert res.table.n[0] == 39
    cor = st.correlations(nan, groups=("VM",), y=("dhi", "psqi"), nan_policy="omit")
    assert cor.exclusions.participant_id.tolist() == ["sub-VM005"]
    assert cor.table.set_index(["kind", "y"]).loc[("bivariate", "psqi"), "n"] == 40


def test_exclusions_survive_what_pandas_does_to_the_table(truth_df):
    """The exclusions are a typed field of the returned frozen record, not ``DataFrame.attrs``
    (experimental in pandas: ``pd.concat``, ``merge`` and others drop or mix them). Before, the
    notebooks found them on the table, where a concat, a merge or a skipped-analysis table lost
    them without a word."""
    nan = truth_df.copy()
    nan.loc[nan.participant_id == "sub-VM005", "dhi"] = np.nan
    nan.loc[nan.participant_id == "sub-MO003", "age"] = np.nan
    with pytest.warns(UserWarning):
        gt = st.group_tests(nan, dv="alps", nan_policy="omit", groups=("MO", "VM"))
        anc = st.ancova(nan, dv="alps", nan_policy="omit", groups=("MO", "VM"))
        cor = st.correlations(nan, groups=("VM",), y=("dhi",), nan_policy="omit")
        reg = st.regression(nan, nan_policy="omit", **REG)
    assert isinstance(gt, st.Result) and isinstance(reg, st.Regression)
    assert list(gt.exclusions.columns) == list(st.EXCLUSION_COLUMNS) and gt.exclusions.empty  # nothing missing in alps
    assert anc.exclusions.participant_id.tolist() == ["sub-MO003"] and "age" in anc.exclusions.reason[0]
    assert reg.exclusions.participant_id.tolist() == ["sub-MO003"]
    # what the notebooks do to the tables no longer touches who was excluded
    both = pd.concat([anc.table, cor.table], ignore_index=True).merge(gt.table, how="left", on="dv")
    assert not both.attrs and not anc.table.attrs and not reg.terms.attrs
    stacked = st.exclusions(gt, anc, cor, reg)  # one row per subject and analysis
    assert stacked.participant_id.tolist() == ["sub-MO003", "sub-VM005", "sub-MO003"]
    assert stacked.analysis.iloc[-1] == "regression" and stacked.analysis.nunique() == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        anc.exclusions = st.exclusions()
    skipped = st.Result.skipped("ANCOVA", st.InsufficientData("too few"))
    assert st.table_note(skipped.table) and skipped.exclusions.empty


# ------------------------------------------------------------------------------- headline

def test_headline_and_reproduction_table(truth_df):
    records = st.headline_numbers(truth_df, STUDY, n_boot=1000, seed=1)
    assert [(q.statistic, q.group, q.variable, q.key) for q in records] == \
        [(q.statistic, q.group, q.variable, q.key) for q in st.headline_quantities(STUDY)]
    h = st.headline_values(records)
    by = {(q.statistic, q.group, q.variable): q.value for q in records}
    assert by[("r", "VM", "dhi")] == h["r_vm_dhi"] and by[("reg_b", None, "duration_years")] == h["reg_b_duration"]
    for k in ("mean_alps_MO", "mean_alps_HC", "mean_alps_VM", "omnibus_p", "reg_b_subtype",
              "reg_p_subtype", "reg_b_duration", "reg_p_duration", "reg_b_frequency",
              "reg_p_frequency", "r_vm_duration", "r_vm_dhi", "proportion_mediated"):
        assert isinstance(h[k], float) and np.isfinite(h[k]), k
    assert h["alps_order"] == "MO > HC > VM"  # planted gradient
    assert h["reg_b_subtype"] == pytest.approx(
        st.regression(truth_df, **REG).terms.set_index("term").loc["subtype", "b"])
    tab = st.reproduction_table(records, None, published=STUDY.published)
    assert list(tab.columns) == ["quantity", "paper", "truth", "measured"]
    assert tab.quantity.tolist()[:len(STUDY.published)] == list(STUDY.published)
    assert tab.set_index("quantity").loc["r_vm_dhi", "paper"] == -0.564
    assert tab.truth.isna().all()
    tab2 = st.reproduction_table(records, records, published=STUDY.published)
    assert tab2.set_index("quantity").loc["reg_b_duration", "truth"] == h["reg_b_duration"]
