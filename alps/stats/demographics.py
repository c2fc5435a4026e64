"""Table 1: per-group summaries and the fitting omnibus test."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from ._prepare import (
    _check_groups,
    _groups,
    _numeric,
    _require_columns,
    _shapiro_p,
)
from .effects import fisher_exact_rx2


def _fmt(x, digits):
    return f"{x:.{digits}f}"


def demographics(df, *, group_col: str = "group", groups=None,
                 continuous=("age",), categorical=("sex",),
                 alpha: float = 0.05, digits: int = 2, id_col: str = "participant_id"
                 ) -> pd.DataFrame:
    r"""Table 1: per-group summaries and the fitting omnibus test, one row per variable.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    group_col, groups : keyword-only
        Grouping column and the groups (and their order) to tabulate (None: every label in order
        of appearance).
    continuous, categorical : sequence of str, keyword-only
        Numeric variables (age and the design's clinical variables) and categorical variables
        (``sex``) to summarise.
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
        ``groups_tested`` (comma-separated labels), ``test``, ``statistic``, ``df1``, ``df2``, ``p``,
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
    groups = _groups(df, groups, group_col, where)
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
                res = sps.f_oneway(*big)
                stat, df1, df2, p = res.statistic, len(big) - 1, sum(len(s) for s in big) - len(big), res.pvalue
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
    return pd.DataFrame(rows).reindex(columns=cols)
