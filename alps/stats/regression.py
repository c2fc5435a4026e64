"""Multiple regression of ALPS in patients (HC3 when the residuals are heteroscedastic)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from . import _libs
from ._prepare import (InsufficientData, Result, StatsInputError, _as_tuple, _exclusion_table, _groups, _prepare,
                       _shapiro_p)
from .sizes import fit_cautions, influential, require_n, skipped_table


@dataclass(frozen=True)
class Regression:
    """Result of :func:`regression`: the ``terms`` and ``model`` tables and the ``exclusions``
    (subjects left out for missing values; as :class:`~alps.stats._prepare.Result`, a typed field
    rather than ``DataFrame.attrs``)."""

    terms: pd.DataFrame
    model: pd.DataFrame
    exclusions: pd.DataFrame = field(default_factory=_exclusion_table)

    @classmethod
    def skipped(cls, analysis: str, reason) -> "Regression":
        """A regression that is not run: both tables are :func:`alps.stats.sizes.skipped_table`'s note."""
        table = skipped_table(analysis, reason)
        return cls(table, table)


def regression_data(df, *, outcome: str = "alps", predictors, covariates=("age", "sex"), groups=None,
                    contrast=None, group_col: str = "group", nan_policy: str = "raise",
                    id_col: str = "participant_id") -> Result:
    """The cases and coded columns :func:`regression` fits with the same arguments: the
    ``groups`` only, the ``contrast`` regressor derived from ``group`` (``contrast = (name, level,
    reference)``: 1 for ``level``, 0 for ``reference``), ``sex`` coded F = 0,
    M = 1, every column numeric; with ``nan_policy='omit'`` the subjects with a missing value are
    dropped. Returns a :class:`~alps.stats._prepare.Result`: ``table`` the rows fitted,
    ``exclusions`` the subjects dropped. Figures of the regression draw these rows, so they show
    exactly the subjects the coefficients come from."""
    preds, covs = _as_tuple(predictors), _as_tuple(covariates)
    regs = list(dict.fromkeys(preds + covs))
    derive = (contrast[0],) if contrast is not None and contrast[0] in regs and contrast[0] not in df.columns else ()
    groups = _groups(df, groups, group_col, "regression")
    d, recs = _prepare(df, [outcome] + regs, where="regression", group_col=group_col, groups=groups,
                       id_col=id_col, nan_policy=nan_policy, derive=derive, contrast=contrast)
    return Result.of(d, recs)


def regression(df, *, outcome: str = "alps", predictors, covariates=("age", "sex"), groups=None,
               contrast=None, group_col: str = "group", robust: str = "auto", alpha: float = 0.05, nan_policy: str = "raise",
               id_col: str = "participant_id") -> Regression:
    r"""Multiple OLS regression of ``outcome`` in patients.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    outcome : str, keyword-only
        Dependent variable.
    predictors, covariates : sequence of str
        Regressors (all entered together; covariates are just labelled as such); ``sex`` is coded
        F = 0, M = 1.
    groups : sequence of str
        Groups included (the design's patients; None: every subject).
    contrast : (name, level, reference) or None
        The patient subgroup contrast: regressor ``name`` derived from ``group`` (1 for
        ``level``, 0 otherwise), e.g. the design's ``subtype``.
    robust : {'auto', 'never', 'always'}
        HC3 heteroskedasticity-consistent standard errors (Long & Ervin 2000): ``auto`` uses
        them when the Breusch-Pagan p < ``alpha``.

    Returns
    -------
    Regression
        Frozen record of ``terms``, ``model`` and ``exclusions`` (the subjects left out for
        missing values with ``nan_policy='omit'``: ``participant_id, group, analysis, reason``).
        ``terms``: one row per term (``Intercept`` first) with ``term, role`` (``intercept`` /
        ``predictor`` / ``covariate``), ``b, se, beta, t, p, ci_low, ci_high, vif``.
        ``model``: one row with ``outcome, n, r2, r2_adj, f, f_p, df_model, df_resid,
        shapiro_p, breusch_pagan_p, max_cooks_d, n_cooks_gt_4n, robust_se`` (``"HC3"`` or
        ``"none"``), ``influential`` (the subjects with Cook's D > 4/n, largest first, with their
        D) and ``caution`` (:mod:`alps.stats.sizes`: residual df < 10, fewer than 10 subjects per
        predictor, Cook's D > 1; empty when none applies).

    Raises
    ------
    InsufficientData
        Fewer than :func:`alps.stats.sizes.minimum_n` ``("regression")`` = p + 3 subjects (p
        parameters), a constant regressor or collinear regressors: the notebooks skip the
        regression with this message as its note.

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
    preds, covs = _as_tuple(predictors), _as_tuple(covariates)
    groups = _groups(df, groups, group_col, where)
    if robust not in ("auto", "never", "always"):
        raise StatsInputError(f"{where}: robust must be 'auto', 'never' or 'always'")
    regs = list(dict.fromkeys(preds + covs))
    if outcome in regs:
        raise StatsInputError(f"{where}: outcome '{outcome}' is also a regressor")
    data = regression_data(df, outcome=outcome, predictors=preds, covariates=covs, groups=groups,
                           contrast=contrast, group_col=group_col, nan_policy=nan_policy, id_col=id_col)
    d = data.table
    n, p = len(d), len(regs) + 1
    require_n(n, where, where, n_parameters=p)
    const_cols = [c for c in regs if d[c].nunique() < 2]
    if const_cols:
        raise InsufficientData(f"{where}: regressor(s) {const_cols} are constant in groups "
                               f"{list(groups)}")
    y = d[outcome].to_numpy(float)
    X = np.column_stack([np.ones(n), d[regs].to_numpy(float)])
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InsufficientData(f"{where}: regressors {regs} are perfectly collinear")
    fit = _libs.ols(X, y, alpha=alpha, robust=robust)
    sd_y = y.std(ddof=1)
    names = ["Intercept"] + regs
    terms = pd.DataFrame({
        "term": names,
        "role": ["intercept"] + ["predictor" if c in preds else "covariate" for c in regs],
        "b": fit["b"],
        "se": fit["se"],
        "beta": [np.nan] + [float(fit["b_classical"][i + 1] * d[c].std(ddof=1) / sd_y)
                            for i, c in enumerate(regs)],
        "t": fit["t"],
        "p": fit["p"],
        "ci_low": fit["ci"][:, 0],
        "ci_high": fit["ci"][:, 1],
        "vif": [np.nan] + fit["vif"],
    })
    cooks = fit["cooks_d"]
    ids = d[id_col].astype(str).tolist() if id_col in d.columns else [f"row {i}" for i in d.index]
    flagged, influence_cautions = influential(cooks, ids)
    model = pd.DataFrame([{
        "outcome": outcome, "n": n, "r2": fit["r2"], "r2_adj": fit["r2_adj"],
        "f": fit["f"], "f_p": fit["f_p"],
        "df_model": fit["df_model"], "df_resid": fit["df_resid"],
        "shapiro_p": _shapiro_p(fit["resid"]), "breusch_pagan_p": fit["breusch_pagan_p"],
        "max_cooks_d": float(np.max(cooks)), "n_cooks_gt_4n": int(np.sum(cooks > 4 / n)),
        "robust_se": "HC3" if fit["hc3"] else "none",
        "influential": "; ".join(f"{pid} ({dist:.2f})" for pid, dist in flagged),
        "caution": "; ".join(fit_cautions(n, len(regs), fit["df_resid"]) + influence_cautions),
    }])
    return Regression(terms, model, data.exclusions)
