"""The one place the statistics libraries are called and their output renamed to :mod:`alps.stats`'
snake_case columns: scipy (Tukey HSD), pingouin (Games-Howell, ANCOVA, partial correlation),
scikit-posthocs (Dunn), statsmodels (OLS; multiple-comparison corrections in :mod:`.effects`).

Every function takes plain arrays / DataFrames and returns plain numbers or DataFrames with the
columns named here, so a library's renaming (pingouin 0.7 renamed ``p-unc`` to ``p_unc``) is
absorbed in this module only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["tukey_hsd", "games_howell", "dunn_p", "ancova_table", "partial_corr", "ols_coef"]


def _pick(df: pd.DataFrame, *names):
    """The first of ``names`` that is a column of ``df`` (library versions differ)."""
    for n in names:
        if n in df.columns:
            return df[n]
    raise KeyError(f"none of {names} in {list(df.columns)}")


def tukey_hsd(samples: dict, *, alpha: float = 0.05) -> dict:
    """Tukey HSD by :func:`scipy.stats.tukey_hsd`: ``{(a, b): {p_adj, ci_low, ci_high}}`` for every
    ordered pair of the groups (``mean_a - mean_b``, simultaneous ``1 - alpha`` CI)."""
    from scipy import stats as sps

    labels = list(samples)
    res = sps.tukey_hsd(*[samples[g] for g in labels])
    ci = res.confidence_interval(confidence_level=1 - alpha)
    out = {}
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            if i != j:
                out[(a, b)] = {"p_adj": float(res.pvalue[i, j]), "ci_low": float(ci.low[i, j]),
                               "ci_high": float(ci.high[i, j])}
    return out


def games_howell(samples: dict) -> dict:
    """Games-Howell by :func:`pingouin.pairwise_gameshowell`: ``{(a, b): {mean_diff, se, statistic,
    df, p_adj}}`` (``a - b``; both orders of each pair)."""
    import pingouin as pg

    data = pd.DataFrame({"g": np.repeat(list(samples), [len(v) for v in samples.values()]),
                         "y": np.concatenate(list(samples.values()))})
    res = pg.pairwise_gameshowell(data=data, dv="y", between="g")
    out = {}
    for a, b, diff, se, t, df, p in zip(res["A"], res["B"], res["diff"], res["se"], res["T"], res["df"],
                                        _pick(res, "pval", "p_val", "p-val")):
        row = {"mean_diff": float(diff), "se": float(se), "statistic": float(t), "df": float(df), "p_adj": float(p)}
        out[(a, b)] = row
        out[(b, a)] = {**row, "mean_diff": -row["mean_diff"], "statistic": -row["statistic"]}
    return out


def dunn_p(samples: dict) -> dict:
    """Unadjusted two-sided p of Dunn's test (tie-corrected) by :func:`scikit_posthocs.posthoc_dunn`:
    ``{(a, b): p}``."""
    import scikit_posthocs as skp

    data = pd.DataFrame({"g": np.repeat(list(samples), [len(v) for v in samples.values()]),
                         "y": np.concatenate(list(samples.values()))})
    mat = skp.posthoc_dunn(data, val_col="y", group_col="g", p_adjust=None)
    return {(a, b): float(mat.loc[a, b]) for a in samples for b in samples if a != b}


def ancova_table(data: pd.DataFrame, *, dv: str, between: str, covariates) -> pd.DataFrame:
    """ANCOVA (Type II sums of squares) by :func:`pingouin.ancova`; columns ``term, ss, df, f, p,
    partial_eta2`` (rows: ``between``, each covariate, ``residual``)."""
    import pingouin as pg

    res = pg.ancova(data=data, dv=dv, between=between, covar=list(covariates) or None)
    out = pd.DataFrame({"term": res["Source"].astype(str), "ss": res["SS"].astype(float),
                        "df": res["DF"].astype(float), "f": res["F"].astype(float),
                        "p": _pick(res, "p_unc", "p-unc").astype(float), "partial_eta2": res["np2"].astype(float)})
    out.loc[out["term"] == "Residual", "term"] = "residual"
    return out


def partial_corr(data: pd.DataFrame, *, x: str, y: str, covariates, method: str) -> tuple[float, float]:
    """Partial correlation ``(r, p)`` of x and y given the covariates by :func:`pingouin.partial_corr`
    (``method`` ``pearson`` or ``spearman``)."""
    import pingouin as pg

    res = pg.partial_corr(data=data, x=x, y=y, covar=list(covariates), method=method)
    return float(res["r"].iloc[0]), float(_pick(res, "p_val", "p-val").iloc[0])


def ols_coef(X, y, j: int, *, alpha: float = 0.05) -> tuple[float, float, float, float, float]:
    """Coefficient ``j`` of ``y ~ X`` (X includes the constant) by :class:`statsmodels.api.OLS`:
    ``(b, se, p, ci_low, ci_high)`` with classical standard errors and a t-based CI."""
    import statsmodels.api as sm

    fit = sm.OLS(np.asarray(y, float), np.asarray(X, float)).fit()
    ci = np.asarray(fit.conf_int(alpha=alpha))
    return (float(fit.params[j]), float(fit.bse[j]), float(fit.pvalues[j]), float(ci[j, 0]), float(ci[j, 1]))
