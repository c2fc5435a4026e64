"""Statistics of the DTI-ALPS study: Table 1, group tests, regression, correlations, mediation.

This is the only module of :mod:`alps` that imports :mod:`pingouin` or :mod:`statsmodels`;
their output columns are renamed here, so every function returns tidy DataFrames with stable
snake_case columns (documented per function).

Conventions
-----------
* Data are the first positional argument (a merged cohort table from
  :func:`alps.io_tables.merge_cohort`); every option is keyword-only; random seeds are
  parameters.
* Inputs are validated (missing columns, unknown group labels, too few subjects, missing
  values) and problems raise :class:`StatsInputError` (a :class:`ValueError`) with a message
  naming the column / labels / participant ids.
* Missing values: ``nan_policy='raise'`` (default) raises naming the subjects;
  ``nan_policy='omit'`` drops them, emits a :class:`UserWarning` and records them in
  ``result.attrs['exclusions']`` (a list of ``{participant_id, group, analysis, reason}``
  records; :func:`exclusions` turns it into a DataFrame). Values that are missing *by design*
  (e.g. ``dhi`` outside VM, clinical variables in HC) are not exclusions: the analysis is
  simply restricted to the groups where the variable exists.
* Coding: ``subtype`` = 1 for VM, 0 for MO; ``sex`` = 0 for F, 1 for M.

References
----------
Hou et al., Chin J Magn Reson Imaging 2026 (the reproduced study);
Welch (1951) Biometrika 38:330; Games & Howell (1976) J Educ Stat 1:113; Dunn (1964)
Technometrics 6:241; Holm (1979) Scand J Stat 6:65; Benjamini & Hochberg (1995) JRSS-B 57:289;
Hedges & Olkin (1985) Statistical Methods for Meta-Analysis; Olejnik & Algina (2003) Psychol
Methods 8:434 (eta2/omega2); Long & Ervin (2000) Am Stat 54:217 (HC3); Breusch & Pagan (1979)
Econometrica 47:1287; Efron & Tibshirani (1993) An Introduction to the Bootstrap (BC interval);
Preacher & Hayes (2008) Behav Res Methods 40:879 (bootstrap mediation).
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import pingouin as pg
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.outliers_influence import OLSInfluence, variance_inflation_factor

from .io_tables import GROUPS

__all__ = [
    "StatsInputError", "PAPER_VALUES", "exclusions", "demographics", "group_tests", "posthoc",
    "ancova", "regression", "correlations", "mediation", "headline_numbers",
    "reproduction_table", "fisher_exact_rx2", "bh_fdr", "bc_interval", "hedges_g",
]

#: Published values of Hou et al., Chin J Magn Reson Imaging 2026 (abstract). These are
#: citations of the paper, typed in from the abstract — not results of this code.
PAPER_VALUES: dict = {
    "n_MO": 40,
    "n_VM": 40,
    "n_HC": 20,
    "alps_order": "MO > HC > VM",
    "reg_b_subtype": -0.055,
    "reg_p_subtype": 0.002,
    "reg_b_duration": -0.003,
    "reg_p_duration": 0.001,
    "reg_b_frequency": -0.053,
    "reg_p_frequency": 0.001,
    "r_vm_duration": -0.714,
    "p_vm_duration": "<0.001",
    "r_vm_dhi": -0.564,
    "p_vm_dhi": 0.002,
    "proportion_mediated": 0.7953,
}

CLINICAL_VARS = ("duration_years", "attacks_per_month", "vas", "hit6", "psqi", "dhi")


class StatsInputError(ValueError):
    """Invalid input to an :mod:`alps.stats` function (message says what and who)."""


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------

def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, str):
        return (x,)
    return tuple(x)


def _require_columns(df, cols, where: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise StatsInputError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise StatsInputError(f"{where}: missing column(s) {missing}; available: "
                              f"{list(df.columns)}")


def _check_groups(df, group_col: str, groups, where: str) -> None:
    _require_columns(df, [group_col], where)
    labels = set(df[group_col].dropna().astype(str))
    unknown = sorted(labels - set(GROUPS))
    if unknown:
        raise StatsInputError(f"{where}: unknown group label(s) {unknown} in '{group_col}'; "
                              f"expected a subset of {list(GROUPS)}")
    req_unknown = sorted(set(groups) - set(GROUPS))
    if req_unknown:
        raise StatsInputError(f"{where}: requested unknown group(s) {req_unknown}; "
                              f"expected a subset of {list(GROUPS)}")
    if df[group_col].isna().any():
        raise StatsInputError(f"{where}: missing group label for {_ids(df[df[group_col].isna()])}")
    absent = [g for g in groups if g not in labels]
    if absent:
        raise StatsInputError(f"{where}: group(s) {absent} have no subjects")


def _ids(df, id_col="participant_id") -> list:
    if id_col in df.columns:
        return df[id_col].astype(str).tolist()
    return [f"row {i}" for i in df.index]


def _numeric(df, cols, where: str) -> pd.DataFrame:
    out = df.copy()
    for c in cols:
        try:
            out[c] = pd.to_numeric(out[c], errors="raise").astype(float)
        except (ValueError, TypeError) as exc:
            bad = pd.to_numeric(out[c], errors="coerce").isna() & out[c].notna()
            raise StatsInputError(f"{where}: column '{c}' is not numeric for "
                                  f"{_ids(out[bad])}") from exc
    return out


def _code_sex(series: pd.Series, where: str) -> pd.Series:
    """F -> 0, M -> 1 (already-numeric 0/1 accepted)."""
    if pd.api.types.is_numeric_dtype(series):
        bad = series.notna() & ~series.isin([0, 1])
        if bad.any():
            raise StatsInputError(f"{where}: numeric 'sex' must be 0 (F) or 1 (M)")
        return series.astype(float)
    s = series.astype("string").str.strip().str.upper()
    coded = s.map({"F": 0.0, "M": 1.0})
    bad = s.notna() & coded.isna()
    if bad.any():
        raise StatsInputError(f"{where}: 'sex' must be F or M, got {sorted(set(s[bad]))}")
    return coded.astype(float)


def _prepare(df, cols, *, where, group_col="group", groups=None, id_col="participant_id",
             nan_policy="raise", derive=()):
    """Subset to ``groups``, derive coded columns, check numeric, handle NaNs.

    Returns (clean_df, exclusion_records).
    """
    if nan_policy not in ("raise", "omit"):
        raise StatsInputError(f"{where}: nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    groups = tuple(groups) if groups is not None else None
    base = [c for c in cols if c not in derive]
    _require_columns(df, base + ([group_col] if groups is not None else []), where)
    if groups is not None:
        _check_groups(df, group_col, groups, where)
        df = df[df[group_col].isin(groups)]
    df = df.copy()
    if "subtype" in derive:
        df["subtype"] = (df[group_col] == "VM").astype(float)
    if "sex" in cols:
        df["sex"] = _code_sex(df["sex"], where)
    df = _numeric(df, [c for c in cols], where)
    miss = df[list(cols)].isna().any(axis=1)
    records = []
    if miss.any():
        bad = df[miss]
        detail = {pid: [c for c in cols if pd.isna(row[c])]
                  for pid, (_, row) in zip(_ids(bad, id_col), bad.iterrows())}
        if nan_policy == "raise":
            raise StatsInputError(
                f"{where}: missing values (NaN) in " + "; ".join(
                    f"{p}: {v}" for p, v in detail.items())
                + " — fix the data or pass nan_policy='omit' to exclude and report them")
        for pid, (_, row) in zip(_ids(bad, id_col), bad.iterrows()):
            records.append({"participant_id": pid,
                            "group": row.get(group_col, np.nan),
                            "analysis": where,
                            "reason": "missing " + ", ".join(detail[pid])})
        warnings.warn(f"{where}: excluded {len(records)} subject(s) with missing values: "
                      + "; ".join(f"{r['participant_id']} ({r['reason']})" for r in records),
                      UserWarning, stacklevel=3)
        df = df[~miss]
    return df, records


def _attach(result: pd.DataFrame, records) -> pd.DataFrame:
    result.attrs["exclusions"] = list(records)
    return result


def exclusions(result: pd.DataFrame) -> pd.DataFrame:
    """Subjects excluded by an :mod:`alps.stats` function (from ``result.attrs``).

    Returns a DataFrame with columns ``participant_id, group, analysis, reason``.
    """
    recs = result.attrs.get("exclusions", []) if hasattr(result, "attrs") else []
    return pd.DataFrame(recs, columns=["participant_id", "group", "analysis", "reason"])


def _shapiro_p(x) -> float:
    x = np.asarray(x, float)
    if len(x) < 3 or np.ptp(x) == 0:
        return float("nan")
    return float(sps.shapiro(x).pvalue)


# --------------------------------------------------------------------------------------------
# small building blocks (exported for tests)
# --------------------------------------------------------------------------------------------

def hedges_g(a, b) -> float:
    r"""Hedges' g of ``mean(a) - mean(b)``.

    :math:`g = J \cdot (\bar a - \bar b)/s_p`, with pooled SD
    :math:`s_p = \sqrt{((n_a-1)s_a^2 + (n_b-1)s_b^2)/(n_a+n_b-2)}` and small-sample correction
    :math:`J = 1 - 3/(4(n_a+n_b) - 9)` (Hedges & Olkin 1985).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    sp = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    j = 1 - 3 / (4 * (na + nb) - 9)
    return float(j * (a.mean() - b.mean()) / sp) if sp > 0 else float("nan")


def bh_fdr(p) -> np.ndarray:
    r"""Benjamini-Hochberg adjusted p-values (NaNs kept as NaN, not counted in m).

    :math:`p_{(i)}^{adj} = \min_{j \ge i} \min(1, m\,p_{(j)}/j)`.
    """
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = sps.false_discovery_control(p[ok], method="bh")
    return out


def bc_interval(boot, estimate: float, *, alpha: float = 0.05) -> tuple[float, float]:
    r"""Bias-corrected (BC) bootstrap interval (Efron & Tibshirani 1993, §14.3).

    :math:`z_0 = \Phi^{-1}(\#\{\theta^*_b < \hat\theta\}/B)`; the limits are the
    :math:`\Phi(2z_0 + z_{\alpha/2})` and :math:`\Phi(2z_0 + z_{1-\alpha/2})` quantiles of the
    bootstrap distribution (no acceleration term). Non-finite replicates are ignored.
    """
    boot = np.asarray(boot, float)
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    prop = np.mean(boot < estimate)
    prop = min(max(prop, 0.5 / len(boot)), 1 - 0.5 / len(boot))
    z0 = sps.norm.ppf(prop)
    lo = sps.norm.cdf(2 * z0 + sps.norm.ppf(alpha / 2))
    hi = sps.norm.cdf(2 * z0 + sps.norm.ppf(1 - alpha / 2))
    return float(np.quantile(boot, lo)), float(np.quantile(boot, hi))


def fisher_exact_rx2(table) -> float:
    """Exact (Freeman-Halton) p-value of an r x 2 contingency table.

    Enumerates every table with the observed margins; p is the total hypergeometric
    probability of tables no more probable than the observed one (as ``scipy.stats.fisher_exact``
    does for 2 x 2, two-sided).
    """
    t = np.asarray(table, int)
    if t.ndim != 2 or t.shape[1] != 2:
        raise StatsInputError(f"fisher_exact_rx2: need an r x 2 table, got shape {t.shape}")
    rows = t.sum(axis=1)
    col0 = int(t[:, 0].sum())
    n = int(rows.sum())
    logc = lambda a, b: math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)  # noqa
    denom = logc(n, col0)

    def logp(cells):
        return sum(logc(int(r), int(k)) for r, k in zip(rows, cells)) - denom

    p_obs = logp(t[:, 0])
    total = 0.0

    def rec(i, remaining, acc):
        nonlocal total
        if i == len(rows) - 1:
            if 0 <= remaining <= rows[i]:
                lp = logp(acc + [remaining])
                if lp <= p_obs + 1e-7:
                    total += math.exp(lp)
            return
        for k in range(0, min(int(rows[i]), remaining) + 1):
            rec(i + 1, remaining - k, acc + [k])

    rec(0, col0, [])
    return float(min(1.0, total))


def _anova_ss(samples):
    allv = np.concatenate(samples)
    grand = allv.mean()
    ssb = sum(len(s) * (s.mean() - grand) ** 2 for s in samples)
    ssw = sum(((s - s.mean()) ** 2).sum() for s in samples)
    return ssb, ssw, len(samples) - 1, len(allv) - len(samples)


# --------------------------------------------------------------------------------------------
# Table 1
# --------------------------------------------------------------------------------------------

def _fmt(x, digits):
    return f"{x:.{digits}f}"


def demographics(df, *, group_col: str = "group", groups=GROUPS,
                 continuous=("age",) + CLINICAL_VARS, categorical=("sex",),
                 alpha: float = 0.05, digits: int = 2, id_col: str = "participant_id"
                 ) -> pd.DataFrame:
    r"""Table 1: per-group summaries and the fitting omnibus test, one row per variable.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    group_col, groups : keyword-only
        Grouping column and the groups (and their order) to tabulate.
    continuous, categorical : sequence of str, keyword-only
        Numeric variables and categorical variables (``sex``) to summarise.
    alpha : float
        Level of the Shapiro-Wilk normality check.
    digits : int
        Decimals of the formatted summaries.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable, summary`` (``mean_sd``, ``median_iqr``, ``count`` or ``n``), one
        formatted column per group (``"mean ± SD"``, ``"median [Q1, Q3]"`` or ``"F/M"`` counts;
        ``"n/a"`` where the variable is not measured), ``n_<group>`` (non-missing counts),
        ``groups_tested`` (``"MO,VM,HC"``), ``test``, ``statistic``, ``df1``, ``df2``, ``p``,
        ``shapiro_min_p``.

    Notes
    -----
    A group "has" a variable when it has ≥ 1 non-missing value; only those groups are tested.
    Normality rule: mean ± SD and a parametric test when the Shapiro-Wilk p ≥ ``alpha`` in every
    tested group (groups with n < 3 count as non-normal); otherwise median [IQR] and a rank test.
    ≥ 3 groups: one-way ANOVA (:math:`F = (SS_b/(k-1))/(SS_w/(N-k))`) or Kruskal-Wallis H;
    2 groups: Student t or Mann-Whitney U (two-sided); 1 group: descriptive only
    (``test = "none"``). Sex: Pearson chi-square (no continuity correction) when every expected
    count ≥ 5, otherwise the exact Fisher/Freeman-Halton test (:func:`fisher_exact_rx2`).
    Missing values are ignored per variable (reported in ``n_<group>``).
    """
    where = "demographics"
    groups = tuple(groups)
    _check_groups(df, group_col, groups, where)
    _require_columns(df, list(continuous) + list(categorical), where)
    d = df[df[group_col].isin(groups)]
    d = _numeric(d, list(continuous), where)
    rows = []
    row = {"variable": "n", "summary": "n"}
    for g in groups:
        row[g] = str(int((d[group_col] == g).sum()))
        row[f"n_{g}"] = int((d[group_col] == g).sum())
    rows.append(row)
    for var in continuous:
        samples = {g: d.loc[d[group_col] == g, var].dropna().to_numpy(float) for g in groups}
        tested = [g for g in groups if len(samples[g]) > 0]
        sh = {g: _shapiro_p(samples[g]) for g in tested}
        normal = bool(tested) and all(np.isfinite(sh[g]) and sh[g] >= alpha for g in tested)
        row = {"variable": var, "summary": "mean_sd" if normal else "median_iqr"}
        for g in groups:
            s = samples[g]
            row[f"n_{g}"] = len(s)
            if len(s) == 0:
                row[g] = "n/a"
            elif normal:
                sd = s.std(ddof=1) if len(s) > 1 else float("nan")
                row[g] = f"{_fmt(s.mean(), digits)} ± {_fmt(sd, digits)}"
            else:
                q1, med, q3 = np.quantile(s, [0.25, 0.5, 0.75])
                row[g] = f"{_fmt(med, digits)} [{_fmt(q1, digits)}, {_fmt(q3, digits)}]"
        row["groups_tested"] = ",".join(tested)
        row["shapiro_min_p"] = min(sh.values()) if sh else float("nan")
        test, stat, df1, df2, p = "none", np.nan, np.nan, np.nan, np.nan
        big = [samples[g] for g in tested if len(samples[g]) >= 2]
        if len(tested) >= 3 and len(big) == len(tested):
            if normal:
                ssb, ssw, df1, df2 = _anova_ss(big)
                stat = (ssb / df1) / (ssw / df2)
                p = sps.f.sf(stat, df1, df2)
                test = "anova"
            else:
                res = sps.kruskal(*big)
                test, stat, df1, p = "kruskal", res.statistic, len(big) - 1, res.pvalue
        elif len(tested) == 2 and len(big) == 2:
            if normal:
                res = sps.ttest_ind(big[0], big[1])
                test, stat, df1, p = "t_test", res.statistic, len(big[0]) + len(big[1]) - 2, \
                    res.pvalue
            else:
                res = sps.mannwhitneyu(big[0], big[1], alternative="two-sided")
                test, stat, p = "mann_whitney", res.statistic, res.pvalue
        row.update(test=test, statistic=float(stat), df1=float(df1), df2=float(df2), p=float(p))
        rows.append(row)
    for var in categorical:
        s = d[var].astype("string").str.strip()
        levels = sorted(s.dropna().unique())
        row = {"variable": var, "summary": "count"}
        table = []
        for g in groups:
            sg = s[d[group_col] == g].dropna()
            counts = [int((sg == lv).sum()) for lv in levels]
            table.append(counts)
            row[g] = "/".join(str(c) for c in counts)
            row[f"n_{g}"] = int(len(sg))
        row["summary"] = "count " + "/".join(levels)
        row["groups_tested"] = ",".join(groups)
        row["shapiro_min_p"] = np.nan
        t = np.array(table)
        test, stat, df1, p = "none", np.nan, np.nan, np.nan
        if t.shape[1] >= 2 and (t.sum(axis=1) > 0).all():
            chi2, p_chi, dof, expected = sps.chi2_contingency(t, correction=False)
            if (expected >= 5).all():
                test, stat, df1, p = "chi2", chi2, dof, p_chi
            elif t.shape[1] == 2:
                test, stat, df1, p = "fisher_exact", np.nan, np.nan, fisher_exact_rx2(t)
            else:  # pragma: no cover - >2 levels with sparse cells
                test, stat, df1, p = "chi2", chi2, dof, p_chi
        row.update(test=test, statistic=float(stat), df1=float(df1), df2=np.nan, p=float(p))
        rows.append(row)
    cols = (["variable", "summary"] + list(groups) + [f"n_{g}" for g in groups]
            + ["groups_tested", "test", "statistic", "df1", "df2", "p", "shapiro_min_p"])
    return _attach(pd.DataFrame(rows).reindex(columns=cols), [])


# --------------------------------------------------------------------------------------------
# group comparisons
# --------------------------------------------------------------------------------------------

def _choose_test(samples, alpha):
    sh = [_shapiro_p(s) for s in samples]
    shapiro_min = float(np.nanmin(sh)) if np.isfinite(sh).any() else float("nan")
    normal = all(np.isfinite(p) and p >= alpha for p in sh)
    lev = float(sps.levene(*samples, center="median").pvalue)
    if not normal:
        return "kruskal", shapiro_min, lev
    return ("anova" if lev >= alpha else "welch_anova"), shapiro_min, lev


def _group_samples(d, dv, groups, group_col, where, min_per_group=3):
    samples = [d.loc[d[group_col] == g, dv].to_numpy(float) for g in groups]
    small = {g: len(s) for g, s in zip(groups, samples) if len(s) < min_per_group}
    if small:
        raise StatsInputError(f"{where}: too few subjects for '{dv}' (need ≥ {min_per_group} "
                              f"per group): {small}")
    return samples


def group_tests(df, *, dv=("alps", "alps_L", "alps_R"), groups=GROUPS, group_col: str = "group",
                alpha: float = 0.05, test: str | None = None, nan_policy: str = "raise",
                id_col: str = "participant_id") -> pd.DataFrame:
    r"""Omnibus comparison of each dependent variable across groups.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    dv : str or sequence of str, keyword-only
        Dependent variables (one output row each).
    groups : sequence of str
        Groups compared (≥ 2, each with ≥ 3 subjects).
    alpha : float
        Level of the assumption checks.
    test : {None, 'anova', 'welch_anova', 'kruskal'}
        Force a test; ``None`` chooses it: Kruskal-Wallis if any group's Shapiro-Wilk p <
        ``alpha``; else ANOVA if Levene (Brown-Forsythe, median-centred) p ≥ ``alpha``, else
        Welch's ANOVA.
    nan_policy : {'raise', 'omit'}
        See module docstring.

    Returns
    -------
    pandas.DataFrame
        One row per dv; columns ``dv, test, statistic, df1, df2, p, eta2, omega2, eta2_h,
        shapiro_min_p, levene_p, n`` and ``n_<g>, mean_<g>, sd_<g>`` per group.

    Notes
    -----
    With :math:`SS_b = \sum_j n_j(\bar y_j - \bar y)^2`, :math:`SS_w = \sum_j\sum_i(y_{ij} -
    \bar y_j)^2`, :math:`SS_t = SS_b + SS_w`, :math:`MS_w = SS_w/(N-k)`:
    ANOVA :math:`F = (SS_b/(k-1))/MS_w`; :math:`\eta^2 = SS_b/SS_t`;
    :math:`\omega^2 = (SS_b - (k-1)MS_w)/(SS_t + MS_w)` (reported for every test as descriptive
    effect sizes). Welch's ANOVA: Welch (1951), via ``pingouin.welch_anova``. Kruskal-Wallis H
    (tie-corrected, ``scipy.stats.kruskal``) with :math:`\eta^2_H = (H - k + 1)/(N - k)`
    (Tomczak & Tomczak 2014) in ``eta2_h``.
    """
    where = "group_tests"
    dvs, groups = _as_tuple(dv), tuple(groups)
    if len(groups) < 2:
        raise StatsInputError(f"{where}: need at least 2 groups, got {groups}")
    if test not in (None, "anova", "welch_anova", "kruskal"):
        raise StatsInputError(f"{where}: unknown test {test!r}")
    d, recs = _prepare(df, list(dvs), where=where, group_col=group_col, groups=groups,
                       id_col=id_col, nan_policy=nan_policy)
    rows = []
    for v in dvs:
        samples = _group_samples(d, v, groups, group_col, where)
        chosen, shapiro_min, lev = _choose_test(samples, alpha)
        chosen = test or chosen
        ssb, ssw, k1, dfw = _anova_ss(samples)
        sst, msw = ssb + ssw, ssw / dfw
        eta2 = ssb / sst if sst > 0 else np.nan
        omega2 = (ssb - k1 * msw) / (sst + msw) if sst > 0 else np.nan
        eta2_h = np.nan
        if chosen == "anova":
            stat, df1, df2 = (ssb / k1) / msw, k1, dfw
            p = sps.f.sf(stat, df1, df2)
        elif chosen == "welch_anova":
            sub = pd.DataFrame({"g": np.repeat(groups, [len(s) for s in samples]),
                                "y": np.concatenate(samples)})
            w = pg.welch_anova(data=sub, dv="y", between="g")
            w = w.rename(columns={"ddof1": "df1", "ddof2": "df2", "F": "statistic",
                                  "p_unc": "p", "p-unc": "p"})
            stat, df1, df2, p = (float(w.loc[0, c]) for c in ("statistic", "df1", "df2", "p"))
        else:
            res = sps.kruskal(*samples)
            stat, df1, df2, p = res.statistic, k1, np.nan, res.pvalue
            n_tot = sum(len(s) for s in samples)
            eta2_h = (stat - len(samples) + 1) / (n_tot - len(samples))
        row = {"dv": v, "test": chosen, "statistic": float(stat), "df1": float(df1),
               "df2": float(df2), "p": float(p), "eta2": eta2, "omega2": omega2,
               "eta2_h": eta2_h, "shapiro_min_p": shapiro_min, "levene_p": lev,
               "n": int(sum(len(s) for s in samples))}
        for g, s in zip(groups, samples):
            row.update({f"n_{g}": len(s), f"mean_{g}": s.mean(), f"sd_{g}": s.std(ddof=1)})
        rows.append(row)
    return _attach(pd.DataFrame(rows), recs)


_POSTHOC_FOR = {"anova": "tukey", "welch_anova": "games_howell", "kruskal": "dunn"}


def posthoc(df, *, dv=("alps", "alps_L", "alps_R"), groups=GROUPS, group_col: str = "group",
            alpha: float = 0.05, test: str | None = None, nan_policy: str = "raise",
            id_col: str = "participant_id") -> pd.DataFrame:
    r"""Pairwise post hoc comparisons matching the omnibus test of :func:`group_tests`.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    dv, groups, group_col, alpha, nan_policy : keyword-only
        As in :func:`group_tests`; the test is chosen by the same rule (ANOVA → Tukey HSD,
        Welch → Games-Howell, Kruskal-Wallis → Dunn with Holm adjustment).
    test : {None, 'tukey', 'games_howell', 'dunn'}
        Force the post hoc test.

    Returns
    -------
    pandas.DataFrame
        One row per dv × pair (pairs in ``itertools.combinations(groups, 2)`` order); columns
        ``dv, test, group_a, group_b, mean_a, mean_b, mean_diff, se, statistic, df, p, p_adj,
        hedges_g, ci_low, ci_high``. ``mean_diff = mean_a - mean_b``; ``hedges_g`` is
        :func:`hedges_g` (a vs b); ``p`` is unadjusted, ``p_adj`` family-wise adjusted.

    Notes
    -----
    * Tukey HSD: :math:`se = \sqrt{MS_w(1/n_a + 1/n_b)}`, :math:`t = \Delta/se`, ``df`` =
      N − k, ``p`` from :math:`t_{N-k}`, ``p_adj`` = P(Q > √2|t|) with Q studentized range
      (k, N−k); CI :math:`\Delta \pm q_{1-\alpha,k,N-k}\,se/\sqrt2`.
    * Games-Howell: :math:`se = \sqrt{s_a^2/n_a + s_b^2/n_b}`, Welch-Satterthwaite df per pair,
      ``p`` Welch t, ``p_adj`` and CI as Tukey with the pair's df.
    * Dunn (1964): mean ranks over the pooled sample, :math:`se = \sqrt{(N(N+1)/12 - T)(1/n_a +
      1/n_b)}` with tie term :math:`T = \sum(t^3 - t)/(12(N-1))`, :math:`z = (\bar R_a - \bar
      R_b)/se` (``statistic``; ``se`` is in rank units), ``p`` two-sided normal, ``p_adj`` Holm
      (within dv); ``df``, ``ci_low``, ``ci_high`` are NaN.
    """
    where = "posthoc"
    dvs, groups = _as_tuple(dv), tuple(groups)
    if test not in (None, "tukey", "games_howell", "dunn"):
        raise StatsInputError(f"{where}: unknown test {test!r}")
    if len(groups) < 2:
        raise StatsInputError(f"{where}: need at least 2 groups")
    d, recs = _prepare(df, list(dvs), where=where, group_col=group_col, groups=groups,
                       id_col=id_col, nan_policy=nan_policy)
    k = len(groups)
    rows = []
    for v in dvs:
        samples = dict(zip(groups, _group_samples(d, v, groups, group_col, where)))
        chosen = test or _POSTHOC_FOR[_choose_test(list(samples.values()), alpha)[0]]
        ssb, ssw, _, dfw = _anova_ss(list(samples.values()))
        msw = ssw / dfw
        if chosen == "dunn":
            allv = np.concatenate(list(samples.values()))
            ranks = sps.rankdata(allv)
            n_tot = len(allv)
            _, tcounts = np.unique(allv, return_counts=True)
            tie = (tcounts ** 3 - tcounts).sum() / (12 * (n_tot - 1))
            start, mean_rank = 0, {}
            for g in groups:
                mean_rank[g] = ranks[start:start + len(samples[g])].mean()
                start += len(samples[g])
        block = []
        for ga, gb in itertools.combinations(groups, 2):
            a, b = samples[ga], samples[gb]
            na, nb = len(a), len(b)
            diff = a.mean() - b.mean()
            row = {"dv": v, "test": chosen, "group_a": ga, "group_b": gb,
                   "mean_a": a.mean(), "mean_b": b.mean(), "mean_diff": diff,
                   "hedges_g": hedges_g(a, b)}
            if chosen in ("tukey", "games_howell"):
                if chosen == "tukey":
                    se = math.sqrt(msw * (1 / na + 1 / nb))
                    dfp = dfw
                else:
                    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
                    se = math.sqrt(va + vb)
                    dfp = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
                t = diff / se
                qcrit = sps.studentized_range.ppf(1 - alpha, k, dfp)
                row.update(se=se, statistic=t, df=dfp, p=2 * sps.t.sf(abs(t), dfp),
                           p_adj=float(min(1.0, sps.studentized_range.sf(abs(t) * math.sqrt(2),
                                                                         k, dfp))),
                           ci_low=diff - qcrit * se / math.sqrt(2),
                           ci_high=diff + qcrit * se / math.sqrt(2))
            else:
                se = math.sqrt((n_tot * (n_tot + 1) / 12 - tie) * (1 / na + 1 / nb))
                z = (mean_rank[ga] - mean_rank[gb]) / se
                row.update(se=se, statistic=z, df=np.nan, p=2 * sps.norm.sf(abs(z)),
                           ci_low=np.nan, ci_high=np.nan)
            block.append(row)
        if chosen == "dunn":
            for r, padj in zip(block, _holm([r["p"] for r in block])):
                r["p_adj"] = padj
        rows.extend(block)
    cols = ["dv", "test", "group_a", "group_b", "mean_a", "mean_b", "mean_diff", "se",
            "statistic", "df", "p", "p_adj", "hedges_g", "ci_low", "ci_high"]
    return _attach(pd.DataFrame(rows, columns=cols), recs)


def _holm(p):
    p = np.asarray(p, float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        adj[idx] = running
    return adj


def _ols_rss(X, y):
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r), beta


def ancova(df, *, dv="alps", covariates=("age", "sex"), groups=GROUPS, group_col: str = "group",
           nan_policy: str = "raise", id_col: str = "participant_id") -> pd.DataFrame:
    r"""ANCOVA: group effect on ``dv`` adjusted for covariates (Type II sums of squares).

    Model :math:`y = \beta_0 + \sum_g \gamma_g D_g + \sum_c \beta_c x_c + \varepsilon` (group
    dummies, first group is the reference; ``sex`` coded F=0/M=1), no interactions.

    Returns
    -------
    pandas.DataFrame
        One row per dv × term (``group``, each covariate, ``residual``); columns ``dv, term,
        ss, df, f, p, partial_eta2`` plus adjusted means ``adj_mean_<g>`` (on the group row:
        predictions at the covariate means) and ``n``.

    Notes
    -----
    Type II SS of a term = RSS(model without the term) − RSS(full model);
    :math:`F = (SS/df)/(RSS_{full}/df_{resid})`; partial :math:`\eta^2 = SS/(SS + RSS_{full})`.
    Without interactions Type II equals Type III for the group term.
    """
    where = "ancova"
    dvs, covs, groups = _as_tuple(dv), _as_tuple(covariates), tuple(groups)
    rows = []
    d, recs = _prepare(df, list(dvs) + list(covs), where=where, group_col=group_col,
                       groups=groups, id_col=id_col, nan_policy=nan_policy)
    for v in dvs:
        _group_samples(d, v, groups, group_col, where, min_per_group=2)
        y = d[v].to_numpy(float)
        n = len(y)
        dummies = np.column_stack([(d[group_col] == g).to_numpy(float) for g in groups[1:]])
        C = d[list(covs)].to_numpy(float) if covs else np.empty((n, 0))
        const = np.ones((n, 1))
        X = np.column_stack([const, dummies, C])
        p_full = X.shape[1]
        if n - p_full < 2:
            raise StatsInputError(f"{where}: too few subjects ({n}) for {p_full} parameters")
        if np.linalg.matrix_rank(X) < p_full:
            raise StatsInputError(f"{where}: design matrix is rank deficient (constant or "
                                  f"collinear covariate among {list(covs)}?)")
        rss, beta = _ols_rss(X, y)
        dfr = n - p_full
        terms = [("group", np.column_stack([const, C]), len(groups) - 1)]
        for j, c in enumerate(covs):
            keep = [i for i in range(C.shape[1]) if i != j]
            terms.append((c, np.column_stack([const, dummies, C[:, keep]]), 1))
        cmeans = C.mean(axis=0) if covs else np.empty(0)
        for name, Xr, dft in terms:
            rss_r, _ = _ols_rss(Xr, y)
            ss = rss_r - rss
            f = (ss / dft) / (rss / dfr)
            row = {"dv": v, "term": name, "ss": ss, "df": float(dft), "f": f,
                   "p": float(sps.f.sf(f, dft, dfr)), "partial_eta2": ss / (ss + rss), "n": n}
            if name == "group":
                for gi, g in enumerate(groups):
                    dm = np.zeros(len(groups) - 1)
                    if gi > 0:
                        dm[gi - 1] = 1
                    row[f"adj_mean_{g}"] = float(np.concatenate([[1.0], dm, cmeans]) @ beta)
            rows.append(row)
        rows.append({"dv": v, "term": "residual", "ss": rss, "df": float(dfr), "f": np.nan,
                     "p": np.nan, "partial_eta2": np.nan, "n": n})
    return _attach(pd.DataFrame(rows), recs)


# --------------------------------------------------------------------------------------------
# regression
# --------------------------------------------------------------------------------------------

class Regression(NamedTuple):
    """Result of :func:`regression`: ``terms`` and ``model`` DataFrames."""

    terms: pd.DataFrame
    model: pd.DataFrame


def regression(df, *, outcome: str = "alps",
               predictors=("subtype", "duration_years", "attacks_per_month"),
               covariates=("age", "sex"), groups=("MO", "VM"), group_col: str = "group",
               robust: str = "auto", alpha: float = 0.05, nan_policy: str = "raise",
               id_col: str = "participant_id") -> Regression:
    r"""Multiple OLS regression of ``outcome`` in patients.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    outcome : str, keyword-only
        Dependent variable.
    predictors, covariates : sequence of str
        Regressors (all entered together; covariates are just labelled as such). ``subtype`` is
        derived from ``group`` (VM = 1, MO = 0); ``sex`` is coded F = 0, M = 1.
    groups : sequence of str
        Groups included (default the patients, MO and VM).
    robust : {'auto', 'never', 'always'}
        HC3 heteroskedasticity-consistent standard errors (Long & Ervin 2000): ``auto`` uses
        them when the Breusch-Pagan p < ``alpha``.

    Returns
    -------
    Regression
        ``(terms, model)`` named tuple.
        ``terms``: one row per term (``Intercept`` first) with ``term, role`` (``intercept`` /
        ``predictor`` / ``covariate``), ``b, se, beta, t, p, ci_low, ci_high, vif``.
        ``model``: one row with ``outcome, n, r2, r2_adj, f, f_p, df_model, df_resid,
        shapiro_p, breusch_pagan_p, max_cooks_d, n_cooks_gt_4n, robust_se`` (``"HC3"`` or
        ``"none"``).

    Notes
    -----
    :math:`\hat b = (X^\top X)^{-1}X^\top y`; classical :math:`se = \sqrt{\operatorname{diag}
    ((X^\top X)^{-1})\hat\sigma^2}`, :math:`\hat\sigma^2 = RSS/(n-p)`; ``t = b/se`` with
    ``df_resid`` df, CI :math:`b \pm t_{1-\alpha/2}\,se`. Standardised
    :math:`\beta = b\,\mathrm{sd}(x)/\mathrm{sd}(y)`. VIF of term j = :math:`1/(1-R_j^2)`.
    With HC3 the se, t, p, CIs and the model F (a Wald test) use the robust covariance.
    Diagnostics: Shapiro-Wilk p of the residuals; Breusch-Pagan LM test p (regressors = X);
    Cook's distance, count of subjects with :math:`D_i > 4/n`.
    """
    where = "regression"
    preds, covs, groups = _as_tuple(predictors), _as_tuple(covariates), tuple(groups)
    if robust not in ("auto", "never", "always"):
        raise StatsInputError(f"{where}: robust must be 'auto', 'never' or 'always'")
    regs = list(dict.fromkeys(preds + covs))
    if outcome in regs:
        raise StatsInputError(f"{where}: outcome '{outcome}' is also a regressor")
    derive = ("subtype",) if "subtype" in regs and "subtype" not in df.columns else ()
    d, recs = _prepare(df, [outcome] + regs, where=where, group_col=group_col, groups=groups,
                       id_col=id_col, nan_policy=nan_policy, derive=derive)
    n, p = len(d), len(regs) + 1
    if n < p + 3:
        raise StatsInputError(f"{where}: too few subjects: n = {n} for {p} parameters "
                              f"(need ≥ {p + 3})")
    const_cols = [c for c in regs if d[c].nunique() < 2]
    if const_cols:
        raise StatsInputError(f"{where}: regressor(s) {const_cols} are constant in groups "
                              f"{list(groups)}")
    y = d[outcome].to_numpy(float)
    X = sm.add_constant(d[regs].to_numpy(float), has_constant="add")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise StatsInputError(f"{where}: regressors {regs} are perfectly collinear")
    fit = sm.OLS(y, X).fit()
    bp_p = float(het_breuschpagan(fit.resid, X)[1])
    use_hc3 = robust == "always" or (robust == "auto" and bp_p < alpha)
    rfit = fit.get_robustcov_results(cov_type="HC3") if use_hc3 else fit
    ci = np.asarray(rfit.conf_int(alpha=alpha))
    sd_y = y.std(ddof=1)
    names = ["Intercept"] + regs
    terms = pd.DataFrame({
        "term": names,
        "role": ["intercept"] + ["predictor" if c in preds else "covariate" for c in regs],
        "b": np.asarray(rfit.params),
        "se": np.asarray(rfit.bse),
        "beta": [np.nan] + [float(fit.params[i + 1] * d[c].std(ddof=1) / sd_y)
                            for i, c in enumerate(regs)],
        "t": np.asarray(rfit.tvalues),
        "p": np.asarray(rfit.pvalues),
        "ci_low": ci[:, 0],
        "ci_high": ci[:, 1],
        "vif": [np.nan] + [float(variance_inflation_factor(X, i + 1)) for i in range(len(regs))],
    })
    cooks = OLSInfluence(fit).cooks_distance[0]
    model = pd.DataFrame([{
        "outcome": outcome, "n": n, "r2": float(fit.rsquared), "r2_adj": float(fit.rsquared_adj),
        "f": float(np.squeeze(rfit.fvalue)), "f_p": float(np.squeeze(rfit.f_pvalue)),
        "df_model": float(fit.df_model), "df_resid": float(fit.df_resid),
        "shapiro_p": _shapiro_p(fit.resid), "breusch_pagan_p": bp_p,
        "max_cooks_d": float(np.max(cooks)), "n_cooks_gt_4n": int(np.sum(cooks > 4 / n)),
        "robust_se": "HC3" if use_hc3 else "none",
    }])
    return Regression(_attach(terms, recs), _attach(model, recs))


# --------------------------------------------------------------------------------------------
# correlations
# --------------------------------------------------------------------------------------------

def _residualise(v, Z):
    beta, *_ = np.linalg.lstsq(Z, v, rcond=None)
    return v - Z @ beta


def _fisher_ci(r, n, k, alpha):
    se_n = n - 3 - k
    if se_n <= 0 or not np.isfinite(r) or abs(r) >= 1:
        return float("nan"), float("nan")
    z = np.arctanh(r)
    h = sps.norm.ppf(1 - alpha / 2) / math.sqrt(se_n)
    return float(np.tanh(z - h)), float(np.tanh(z + h))


def _corr_p(r, dof):
    if dof <= 0 or not np.isfinite(r):
        return float("nan")
    if abs(r) >= 1:
        return 0.0
    t = r * math.sqrt(dof / (1 - r * r))
    return float(2 * sps.t.sf(abs(t), dof))


def correlations(df, *, groups=("VM", "MO"), x: str = "alps",
                 y=("duration_years", "attacks_per_month", "dhi", "vas", "hit6", "psqi"),
                 partial_covariates=("age", "sex"), method: str = "auto", alpha: float = 0.05,
                 group_col: str = "group", nan_policy: str = "raise",
                 id_col: str = "participant_id") -> pd.DataFrame:
    r"""Bivariate and partial correlations of ``x`` with each ``y`` within each group.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    groups : sequence of str, keyword-only
        Groups analysed separately.
    x : str
        The variable correlated with every ``y`` (ALPS).
    y : sequence of str
        Clinical variables. A ``y`` that is entirely missing in a group (e.g. ``dhi`` in MO) is
        skipped for that group (not measured by design); partial missingness follows
        ``nan_policy`` (pairwise: only subjects missing ``x``, that ``y`` or a covariate).
    partial_covariates : sequence of str
        Covariates of the partial correlations (``sex`` coded F=0/M=1; a covariate constant
        within a group is dropped and the ``covariates`` column says which were used). Empty →
        no partial rows.
    method : {'auto', 'pearson', 'spearman'}
        ``auto``: Pearson when the Shapiro-Wilk p ≥ ``alpha`` for both x and y in that group,
        otherwise Spearman. The partial correlation uses the same method (Spearman: on ranks
        of x, y and covariates).

    Returns
    -------
    pandas.DataFrame
        One row per group × kind × y; columns ``group, kind`` (``bivariate``/``partial``),
        ``x, y, method, covariates, n, r, ci_low, ci_high, p, p_fdr, shapiro_x_p,
        shapiro_y_p``.

    Notes
    -----
    Partial r: Pearson r of the residuals of x and y after OLS on ``[1, covariates]``;
    :math:`t = r\sqrt{(n-2-k)/(1-r^2)}` with n − 2 − k df (k covariates).
    CI: Fisher z, :math:`\tanh(\operatorname{atanh} r \pm z_{1-\alpha/2}/\sqrt{n-3-k})`
    (k = 0 for bivariate; for Spearman this is the usual approximation).
    Bivariate p: ``scipy.stats.pearsonr`` / ``spearmanr`` (t approximation).
    ``p_fdr``: Benjamini-Hochberg within each family = group × kind (:func:`bh_fdr`).
    """
    where = "correlations"
    groups, ys, covs = tuple(groups), _as_tuple(y), _as_tuple(partial_covariates)
    if method not in ("auto", "pearson", "spearman"):
        raise StatsInputError(f"{where}: method must be 'auto', 'pearson' or 'spearman'")
    if nan_policy not in ("raise", "omit"):
        raise StatsInputError(f"{where}: nan_policy must be 'raise' or 'omit'")
    _require_columns(df, [x, *ys, *covs, group_col], where)
    _check_groups(df, group_col, groups, where)
    rows, recs = [], []
    for g in groups:
        dg = df[df[group_col] == g]
        for yv in ys:
            if dg[yv].isna().all():
                continue  # not measured in this group by design
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                d, r_ = _prepare(dg, [x, yv, *covs], where=f"{where} ({g}: {x} ~ {yv})",
                                 group_col=group_col, groups=None, id_col=id_col,
                                 nan_policy=nan_policy)
            for w in caught:
                warnings.warn(str(w.message), UserWarning, stacklevel=2)
            recs.extend(r_)
            n = len(d)
            if n < 4:
                raise StatsInputError(f"{where}: too few subjects in {g} for {x} ~ {yv}: "
                                      f"n = {n} (need ≥ 4)")
            xv, yy = d[x].to_numpy(float), d[yv].to_numpy(float)
            shx, shy = _shapiro_p(xv), _shapiro_p(yy)
            if method == "auto":
                m = "pearson" if (np.isfinite(shx) and np.isfinite(shy) and shx >= alpha
                                  and shy >= alpha) else "spearman"
            else:
                m = method
            if np.ptp(xv) == 0 or np.ptp(yy) == 0:
                raise StatsInputError(f"{where}: {x} or {yv} is constant in {g}")
            res = (sps.pearsonr if m == "pearson" else sps.spearmanr)(xv, yy)
            r = float(res.statistic)
            lo, hi = _fisher_ci(r, n, 0, alpha)
            base = {"group": g, "x": x, "y": yv, "method": m, "n": n, "shapiro_x_p": shx,
                    "shapiro_y_p": shy}
            rows.append({**base, "kind": "bivariate", "covariates": "", "r": r,
                         "ci_low": lo, "ci_high": hi, "p": float(res.pvalue)})
            if covs:
                used = [c for c in covs if d[c].nunique() > 1]
                k = len(used)
                if n - 3 - k < 1:
                    raise StatsInputError(f"{where}: too few subjects in {g} for partial "
                                          f"{x} ~ {yv} | {used}: n = {n} (need ≥ {k + 4})")
                Z = d[used].to_numpy(float)
                xx, yyy = xv, yy
                if m == "spearman":
                    xx, yyy = sps.rankdata(xv), sps.rankdata(yy)
                    Z = np.column_stack([sps.rankdata(c) for c in Z.T]) if k else Z
                Z = np.column_stack([np.ones(n), Z])
                rx, ry = _residualise(xx, Z), _residualise(yyy, Z)
                rp = float(np.corrcoef(rx, ry)[0, 1])
                lo, hi = _fisher_ci(rp, n, k, alpha)
                rows.append({**base, "kind": "partial", "covariates": ",".join(used), "r": rp,
                             "ci_low": lo, "ci_high": hi, "p": _corr_p(rp, n - 2 - k)})
    cols = ["group", "kind", "x", "y", "method", "covariates", "n", "r", "ci_low", "ci_high",
            "p", "p_fdr", "shapiro_x_p", "shapiro_y_p"]
    out = pd.DataFrame(rows)
    if out.empty:
        raise StatsInputError(f"{where}: no variable of {list(ys)} is measured in {list(groups)}")
    out["p_fdr"] = np.nan
    for _, idx in out.groupby(["group", "kind"], sort=False).groups.items():
        out.loc[idx, "p_fdr"] = bh_fdr(out.loc[idx, "p"].to_numpy())
    kind_order = {"bivariate": 0, "partial": 1}
    out["_g"] = out["group"].map({g: i for i, g in enumerate(groups)})
    out["_k"] = out["kind"].map(kind_order)
    out = out.sort_values(["_g", "_k"], kind="stable").drop(columns=["_g", "_k"])
    return _attach(out.reset_index(drop=True)[cols], recs)


# --------------------------------------------------------------------------------------------
# mediation
# --------------------------------------------------------------------------------------------

def _batched_ols(X, y):
    """Coefficients of y ~ X for a stack of designs X (B, n, p) and y (B, n)."""
    XtX = np.einsum("bnp,bnq->bpq", X, X)
    Xty = np.einsum("bnp,bn->bp", X, y)
    try:
        return np.linalg.solve(XtX, Xty[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("bpq,bq->bp", np.linalg.pinv(XtX), Xty)


def _ols_table(X, y, j, alpha):
    """Coefficient j of y ~ X with classical se, p and t-based CI."""
    n, p = X.shape
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    dfr = n - p
    s2 = resid @ resid / dfr
    cov = np.linalg.inv(X.T @ X) * s2
    se = math.sqrt(cov[j, j])
    t = beta[j] / se
    h = sps.t.ppf(1 - alpha / 2, dfr) * se
    return float(beta[j]), se, float(2 * sps.t.sf(abs(t), dfr)), beta[j] - h, beta[j] + h


def mediation(df, *, x: str = "duration_years", m: str = "alps", y: str = "dhi",
              covariates=(), groups=("VM",), group_col: str = "group", n_boot: int = 5000,
              seed: int = 20260505, alpha: float = 0.05, min_abs_total: float = 0.0,
              nan_policy: str = "raise", id_col: str = "participant_id") -> pd.DataFrame:
    r"""Simple mediation x → m → y (ALPS mediating duration → DHI) with BC bootstrap CIs.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    x, m, y : str, keyword-only
        Exposure, mediator, outcome.
    covariates : sequence of str
        Entered in every regression (``sex`` coded F=0/M=1).
    groups : sequence of str
        Groups included (default VM only).
    n_boot : int
        Bootstrap resamples (cases resampled with replacement); ≥ 200 required, a
        :class:`UserWarning` below 5000 (use ≥ 5000 for reported results).
    seed : int
        Seed of ``numpy.random.default_rng``; the result is a deterministic function of it.
    alpha : float
        1 − confidence level.
    min_abs_total : float
        |c| below this counts as "tiny" for the proportion-mediated warning.

    Returns
    -------
    pandas.DataFrame
        Rows ``a, b, c, c_prime, indirect, proportion_mediated``; columns ``path, estimate, se,
        ci_low, ci_high, p, ci_method, n, n_boot, seed, x, m, y, warning``.

    Notes
    -----
    OLS fits (C = covariates): :math:`m = i_1 + a x + C` ; :math:`y = i_2 + c' x + b m + C` ;
    :math:`y = i_3 + c x + C`. For OLS on the same cases :math:`c = c' + ab` exactly.
    a, b, c, c′: classical OLS se, t-test p, t-based CI (``ci_method = "t"``).
    ``indirect`` = :math:`ab`; ``proportion_mediated`` = :math:`ab/c`. For both: ``se`` = SD of
    the bootstrap replicates, CI = bias-corrected percentile interval (:func:`bc_interval`,
    ``ci_method = "bc_bootstrap"``), ``p`` = two-sided bootstrap p
    :math:`2\min(P^*(\theta^*\le0), P^*(\theta^*\ge0))`, floored at 1/``n_boot`` (the
    resolution of the bootstrap; read it as "p < 1/n_boot") (indirect only; NaN for the ratio).
    The ``warning`` column (and a :class:`UserWarning`) flags the proportion mediated when the
    total effect's CI includes 0 or :math:`|c|` < ``min_abs_total``: the ratio is then
    unstable and should not be interpreted. Note: ``pingouin.mediation_analysis`` reports as
    "Y ~ M" the regression of y on m *without* x; here ``b`` is adjusted for x (Preacher &
    Hayes 2008), which is the b in :math:`ab`.
    """
    where = "mediation"
    covs = _as_tuple(covariates)
    if len({x, m, y}) < 3:
        raise StatsInputError(f"{where}: x, m and y must be distinct, got {x}, {m}, {y}")
    if int(n_boot) < 200:
        raise StatsInputError(f"{where}: n_boot = {n_boot} is too small (need ≥ 200; "
                              f"≥ 5000 for reported results)")
    if int(n_boot) < 5000:
        warnings.warn(f"{where}: n_boot = {n_boot} < 5000; fine for a smoke test, too few for "
                      f"reported bias-corrected CIs", UserWarning, stacklevel=2)
    d, recs = _prepare(df, [x, m, y, *covs], where=where, group_col=group_col,
                       groups=tuple(groups), id_col=id_col, nan_policy=nan_policy)
    n = len(d)
    p_max = 3 + len(covs)
    if n < p_max + 5:
        raise StatsInputError(f"{where}: too few subjects: n = {n} (need ≥ {p_max + 5})")
    for c in (x, m, y, *covs):
        if d[c].nunique() < 2:
            raise StatsInputError(f"{where}: '{c}' is constant in {list(groups)}")
    X = d[x].to_numpy(float)
    M = d[m].to_numpy(float)
    Y = d[y].to_numpy(float)
    C = d[list(covs)].to_numpy(float) if covs else np.empty((n, 0))
    one = np.ones(n)
    Xa = np.column_stack([one, X, C])          # m ~ x (+C): a = coef 1
    Xb = np.column_stack([one, X, M, C])       # y ~ x + m (+C): c' = coef 1, b = coef 2
    a_ = _ols_table(Xa, M, 1, alpha)
    cp_ = _ols_table(Xb, Y, 1, alpha)
    b_ = _ols_table(Xb, Y, 2, alpha)
    c_ = _ols_table(Xa, Y, 1, alpha)
    ind = a_[0] * b_[0]
    prop = ind / c_[0] if c_[0] != 0 else float("nan")

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_boot), n))
    Xa_b, Xb_b = Xa[idx], Xb[idx]
    a_b = _batched_ols(Xa_b, M[idx])[:, 1]
    coef_b = _batched_ols(Xb_b, Y[idx])
    ind_b = a_b * coef_b[:, 2]
    c_b = _batched_ols(Xa_b, Y[idx])[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        prop_b = ind_b / c_b
    ind_ci = bc_interval(ind_b, ind, alpha=alpha)
    prop_ci = bc_interval(prop_b, prop, alpha=alpha)
    ind_p = float(min(1.0, max(1.0 / len(ind_b),
                               2 * min(np.mean(ind_b <= 0), np.mean(ind_b >= 0)))))

    warn = ""
    if (c_[3] <= 0 <= c_[4]) or abs(c_[0]) < min_abs_total or c_[0] == 0:
        warn = (f"total effect c = {c_[0]:.4g} (95% CI {c_[3]:.4g} to {c_[4]:.4g}) includes 0 "
                f"or is tiny: the proportion mediated (ab/c) is unstable and should not be "
                f"interpreted")
        warnings.warn(f"{where}: {warn}", UserWarning, stacklevel=2)
    rows = [
        ("a", *a_, "t", ""),
        ("b", *b_, "t", ""),
        ("c", *c_, "t", ""),
        ("c_prime", *cp_, "t", ""),
        ("indirect", ind, float(np.nanstd(ind_b, ddof=1)), ind_p, *ind_ci, "bc_bootstrap", ""),
        ("proportion_mediated", prop, float(np.nanstd(prop_b[np.isfinite(prop_b)], ddof=1)),
         np.nan, *prop_ci, "bc_bootstrap", warn),
    ]
    out = pd.DataFrame(rows, columns=["path", "estimate", "se", "p", "ci_low", "ci_high",
                                      "ci_method", "warning"])
    out["n"], out["n_boot"], out["seed"] = n, int(n_boot), seed
    out["x"], out["m"], out["y"] = x, m, y
    out = out[["path", "estimate", "se", "ci_low", "ci_high", "p", "ci_method", "n", "n_boot",
               "seed", "x", "m", "y", "warning"]]
    return _attach(out, recs)


# --------------------------------------------------------------------------------------------
# headline numbers and the reproduction table
# --------------------------------------------------------------------------------------------

def headline_numbers(df, *, n_boot: int = 5000, seed: int = 20260505,
                     covariates=("age", "sex"), nan_policy: str = "omit") -> dict:
    """Every headline quantity of the study computed on a merged cohort table.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table (participants + an ALPS table).
    n_boot, seed : keyword-only
        Bootstrap settings of the mediation.
    covariates : sequence of str
        Covariates of the regression (the study's default: age, sex).
    nan_policy : {'omit', 'raise'}
        Passed to every analysis.

    Returns
    -------
    dict
        ``n_MO, n_VM, n_HC``; ``mean_alps_MO/HC/VM``; ``alps_order`` (e.g. ``"MO > HC > VM"``);
        ``omnibus_test``, ``omnibus_p`` (of :func:`group_tests` on ``alps``);
        ``reg_b_subtype, reg_p_subtype, reg_b_duration, reg_p_duration, reg_b_frequency,
        reg_p_frequency`` (:func:`regression` with ``covariates``; ``reg_robust_se``);
        ``r_vm_duration, p_vm_duration, r_vm_dhi, p_vm_dhi`` and their ``*_method``
        (bivariate, :func:`correlations` rule); ``indirect``, ``proportion_mediated``,
        ``proportion_mediated_ci_low/high`` (:func:`mediation`, VM, no covariates).
        Plain Python floats/ints/str (JSON-serialisable).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gt = group_tests(df, dv="alps", nan_policy=nan_policy).iloc[0]
        reg_res = regression(df, covariates=covariates, nan_policy=nan_policy)
        reg = reg_res.terms.set_index("term")
        cor = correlations(df, groups=("VM",), y=("duration_years", "dhi"),
                           partial_covariates=(), nan_policy=nan_policy).set_index("y")
        med = mediation(df, n_boot=n_boot, seed=seed, nan_policy=nan_policy).set_index("path")
    means = {g: float(gt[f"mean_{g}"]) for g in GROUPS}
    out = {f"n_{g}": int(gt[f"n_{g}"]) for g in GROUPS}
    out.update({f"mean_alps_{g}": means[g] for g in GROUPS})
    out["alps_order"] = " > ".join(sorted(GROUPS, key=lambda g: -means[g]))
    out["omnibus_test"] = str(gt["test"])
    out["omnibus_p"] = float(gt["p"])
    for key, term in (("subtype", "subtype"), ("duration", "duration_years"),
                      ("frequency", "attacks_per_month")):
        out[f"reg_b_{key}"] = float(reg.loc[term, "b"])
        out[f"reg_p_{key}"] = float(reg.loc[term, "p"])
    out["reg_robust_se"] = str(reg_res.model.loc[0, "robust_se"])
    for key, var in (("duration", "duration_years"), ("dhi", "dhi")):
        out[f"r_vm_{key}"] = float(cor.loc[var, "r"])
        out[f"p_vm_{key}"] = float(cor.loc[var, "p"])
        out[f"r_vm_{key}_method"] = str(cor.loc[var, "method"])
    out["indirect"] = float(med.loc["indirect", "estimate"])
    out["proportion_mediated"] = float(med.loc["proportion_mediated", "estimate"])
    out["proportion_mediated_ci_low"] = float(med.loc["proportion_mediated", "ci_low"])
    out["proportion_mediated_ci_high"] = float(med.loc["proportion_mediated", "ci_high"])
    return out


def reproduction_table(measured: dict, truth: dict | None = None) -> pd.DataFrame:
    """Side-by-side table of the paper's values, the simulation truth and the measured values.

    Parameters
    ----------
    measured : dict
        :func:`headline_numbers` of the measured cohort.
    truth : dict or None
        :func:`headline_numbers` of the ground-truth ALPS (simulation), or ``None`` (real data).

    Returns
    -------
    pandas.DataFrame
        Columns ``quantity, paper, truth, measured`` (object dtype: numbers or strings such as
        ``"<0.001"``); rows: the keys of :data:`PAPER_VALUES` first, then the other keys of
        ``measured``/``truth`` in order. ``paper`` is NaN where the abstract gives no value.
    """
    if not isinstance(measured, dict):
        raise StatsInputError("reproduction_table: measured must be a dict")
    if truth is not None and not isinstance(truth, dict):
        raise StatsInputError("reproduction_table: truth must be a dict or None")
    keys = list(PAPER_VALUES)
    for k in list(measured) + list(truth or {}):
        if k not in keys:
            keys.append(k)
    rows = [{"quantity": k, "paper": PAPER_VALUES.get(k, np.nan),
             "truth": (truth or {}).get(k, np.nan) if truth is not None else np.nan,
             "measured": measured.get(k, np.nan)} for k in keys]
    return pd.DataFrame(rows, columns=["quantity", "paper", "truth", "measured"], dtype=object)
