"""The one place the statistics libraries are called and their output renamed to :mod:`alps.stats`'
snake_case columns: pingouin (Welch ANOVA, Games-Howell, ANCOVA, partial correlation, ICC),
statsmodels (OLS with its diagnostics, multiple-comparison corrections), scikit-posthocs (Dunn),
neuroCombat (ComBat) and scipy's Tukey HSD. (scipy.stats' plain tests — Shapiro-Wilk, Levene,
F, Kruskal-Wallis, t, χ², Pearson/Spearman — return plain numbers and are called where they are
used.)

Every function takes plain arrays / DataFrames and returns plain numbers, dicts or DataFrames with
the names used here, so a library's renaming (pingouin 0.7 renamed ``p-unc`` to ``p_unc``) is
absorbed in this module only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["tukey_hsd", "welch_anova", "games_howell", "dunn_p", "ancova_table", "partial_corr", "ols_coef", "ols",
           "multipletests_p", "intraclass_corr", "combat"]


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


def welch_anova(samples: dict) -> tuple[float, float, float, float]:
    """Welch's ANOVA by :func:`pingouin.welch_anova`: ``(F, df1, df2, p)``."""
    import pingouin as pg

    data = pd.DataFrame({"g": np.repeat(list(samples), [len(v) for v in samples.values()]),
                         "y": np.concatenate(list(samples.values()))})
    w = pg.welch_anova(data=data, dv="y", between="g")
    w = w.rename(columns={"ddof1": "df1", "ddof2": "df2", "F": "statistic", "p_unc": "p", "p-unc": "p"})
    return tuple(float(w.loc[0, c]) for c in ("statistic", "df1", "df2", "p"))


def ols(X, y, *, alpha: float = 0.05, robust: str = "auto") -> dict:
    """Ordinary least squares of ``y`` on ``X`` (its first column the constant) by statsmodels,
    with its diagnostics.

    The classical fit gives the Breusch-Pagan p of its residuals; HC3 standard errors are used when
    ``robust == 'always'``, or ``'auto'`` and that p < ``alpha``. Returns a dict: ``b, se, t, p``
    (per column, of the fit used), ``ci`` ((k, 2), ``1 - alpha``), ``b_classical`` (the classical
    coefficients), ``r2, r2_adj, f, f_p, df_model, df_resid``, ``resid``, ``breusch_pagan_p``,
    ``hc3`` (bool), ``vif`` (per column but the constant) and ``cooks_d`` (per observation).
    """
    import statsmodels.api as sm
    from statsmodels.stats.diagnostic import het_breuschpagan
    from statsmodels.stats.outliers_influence import OLSInfluence, variance_inflation_factor

    X, y = np.asarray(X, float), np.asarray(y, float)
    fit = sm.OLS(y, X).fit()
    bp_p = float(het_breuschpagan(fit.resid, X)[1])
    hc3 = robust == "always" or (robust == "auto" and bp_p < alpha)
    rfit = fit.get_robustcov_results(cov_type="HC3") if hc3 else fit
    return {"b": np.asarray(rfit.params), "se": np.asarray(rfit.bse), "t": np.asarray(rfit.tvalues),
            "p": np.asarray(rfit.pvalues), "ci": np.asarray(rfit.conf_int(alpha=alpha)),
            "b_classical": np.asarray(fit.params), "r2": float(fit.rsquared), "r2_adj": float(fit.rsquared_adj),
            "f": float(np.squeeze(rfit.fvalue)), "f_p": float(np.squeeze(rfit.f_pvalue)),
            "df_model": float(fit.df_model), "df_resid": float(fit.df_resid), "resid": np.asarray(fit.resid),
            "breusch_pagan_p": bp_p, "hc3": bool(hc3),
            "vif": [float(variance_inflation_factor(X, i)) for i in range(1, X.shape[1])],
            "cooks_d": np.asarray(OLSInfluence(fit).cooks_distance[0])}


def multipletests_p(p, method: str) -> np.ndarray:
    """Adjusted p-values of one family by :func:`statsmodels.stats.multitest.multipletests`."""
    from statsmodels.stats.multitest import multipletests

    return multipletests(np.asarray(p, float), method=method)[1]


#: ICC types of :func:`intraclass_corr` and pingouin's names of them (old and new versions).
ICC_TYPES = {"icc21": ("ICC(A,1)", "ICC2"), "icc31": ("ICC(C,1)", "ICC3")}


def intraclass_corr(long: pd.DataFrame, *, targets: str, raters: str, ratings: str) -> dict:
    """ICC(2,1) and ICC(3,1) by :func:`pingouin.intraclass_corr` of a long table:
    ``{"icc21"|"icc31": {icc, ci_low, ci_high, f, df1, df2, p}}``."""
    import pingouin as pg

    res = pg.intraclass_corr(data=long, targets=targets, raters=raters, ratings=ratings)
    out = {}
    for name, labels in ICC_TYPES.items():
        r = res[res["Type"].isin(labels)].iloc[0]
        ci = np.asarray(r["CI95%"] if "CI95%" in r.index else r["CI95"], float)
        out[name] = {"icc": float(r["ICC"]), "ci_low": float(ci[0]), "ci_high": float(ci[1]), "f": float(r["F"]),
                     "df1": int(r["df1"]), "df2": int(r["df2"]), "p": float(r["pval"])}
    return out


def combat(dat, covars: pd.DataFrame, *, batch_col: str, categorical, continuous, eb: bool) -> np.ndarray:
    """ComBat-harmonised features (features × subjects, as ``dat``) by ``neuroCombat`` (its
    progress messages silenced)."""
    import contextlib
    import io

    from neuroCombat import neuroCombat

    with contextlib.redirect_stdout(io.StringIO()):  # neuroCombat prints its progress
        res = neuroCombat(dat=dat, covars=covars, batch_col=batch_col, categorical_cols=list(categorical),
                          continuous_cols=list(continuous) or None, eb=eb)
    return np.asarray(res["data"], float)
