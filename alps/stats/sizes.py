"""Sample sizes: the fewest subjects each analysis is computed on (one rule, shared by the
statistics, the README and the report), the note of an analysis skipped for want of them, and the
cautions a small sample earns.

Minimum sizes (:func:`minimum_n`; with fewer the function raises
:class:`~alps.stats._prepare.InsufficientData` and the notebooks skip the analysis with a note):

===============  ================================  =============================================
analysis         needs                             because
===============  ================================  =============================================
group tests      3 subjects per group              Shapiro-Wilk, which chooses the test, needs 3
ANCOVA           2 per group, n ≥ p + 2            p parameters (intercept, groups − 1,
                                                   covariates); 2 residual df
regression       n ≥ p + 3                         p parameters (intercept, predictors,
                                                   covariates); 3 residual df
correlation      n ≥ 4 + k                         k partial covariates (0 bivariate): the
                                                   Fisher-z CI needs n − 3 − k ≥ 1
mediation        n ≥ 8 + c                         c covariates: the outcome model
                                                   y ~ 1 + x + m + C has 3 + c parameters; 5
                                                   residual df
===============  ================================  =============================================

These are the limits of computability, not of adequacy. Above them an analysis runs, and its
table's ``caution`` column says when its numbers are fragile (:func:`fit_cautions`):

* **residual df < 10** (:data:`MIN_RESIDUAL_DF`): the t quantile of a 95 % CI is then above 2.23
  (1.96 with infinite df) and every estimate rests on a handful of residuals;
* **fewer than 10 subjects per predictor** (:data:`MIN_PER_PREDICTOR`): Harrell (2015, §4.4)
  advises at most n/10 to n/20 predictors for a continuous outcome; below that a model is likely
  overfitted (its R² optimistic, its adjusted R² can be negative);
* **influential subjects**: Cook's distance D > 1 (Cook & Weisberg 1982) is a caution; D > 4/n
  (Bollen & Jackman 1990), the usual screening cut-off, lists the subjects in the regression's
  ``influential`` column.

A correlation is the regression of y on x (and the k partial covariates): its residual df is
n − 2 − k, and the same rule applies.

References
----------
Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, §4.4.
Cook RD, Weisberg S. Residuals and Influence in Regression. Chapman & Hall 1982.
Bollen KA, Jackman RW. Regression diagnostics: an expository treatment of outliers and influential
cases. In: Fox J, Long JS (eds) Modern Methods of Data Analysis. Sage 1990: 257–291.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from ._prepare import InsufficientData

__all__ = ["MIN_PER_GROUP", "MIN_RESIDUAL_DF", "MIN_PER_PREDICTOR", "minimum_n", "require_n", "minimum_sizes",
           "describe_minimum_sizes", "fit_cautions", "influential", "skipped_table", "table_note",
           "SKIPPED"]

#: subjects per group of the group tests (Shapiro-Wilk needs 3)
MIN_PER_GROUP = 3
#: residual degrees of freedom below which a fit is flagged in its ``caution`` column
MIN_RESIDUAL_DF = 10
#: subjects per predictor below which a fit is flagged (Harrell 2015: 10 to 20)
MIN_PER_PREDICTOR = 10
#: the phrase every note of a skipped analysis carries (design-skipped and data-skipped alike)
SKIPPED = "skipped: "

_RULES = {  # analysis -> (extra subjects over the count, what is counted)
    "group": (MIN_PER_GROUP, "per group"),
    "ancova": (2, "parameters"),
    "regression": (3, "parameters"),
    "correlation": (4, "partial covariates"),
    "mediation": (8, "covariates"),
}


def minimum_n(analysis: str, *, n_parameters: int = 0, n_covariates: int = 0) -> int:
    """The fewest subjects ``analysis`` is computed on (module docstring).

    ``group``: per group; ``ancova``: ``n_parameters + 2``; ``regression``: ``n_parameters + 3``;
    ``correlation``: ``4 + n_covariates``; ``mediation``: ``8 + n_covariates``.
    """
    if analysis not in _RULES:
        raise ValueError(f"unknown analysis {analysis!r}; choose from {sorted(_RULES)}")
    extra, counted = _RULES[analysis]
    if counted == "per group":
        return extra
    return extra + int(n_parameters if counted == "parameters" else n_covariates)


def require_n(n: int, analysis: str, where: str, *, detail: str = "", **counts) -> None:
    """Raise :class:`InsufficientData` ("<where>: too few subjects<detail>: n = 5 (need ≥ 7 = 4
    parameters + 3)") when ``n`` is below :func:`minimum_n` (``counts``: its keyword arguments)."""
    need = minimum_n(analysis, **counts)
    if n < need:
        extra, counted = _RULES[analysis]
        k = counts.get("n_parameters" if counted == "parameters" else "n_covariates", 0)
        rule = f"{k} {counted} + {extra}" if counted != "per group" else "per group"
        raise InsufficientData(f"{where}: too few subjects{detail}: n = {n} (need ≥ {need} = {rule})")


def minimum_sizes(design) -> dict[str, int]:
    """The minimum sizes of a :class:`~alps.stats.design.StudyDesign`'s analyses, with no missing
    values: ``group`` (per group), ``regression`` (in its groups together), ``correlation`` and
    ``partial correlation`` (per group), ``mediation`` (in its groups together). An analysis the
    design does not declare has no entry."""
    out = {"group": minimum_n("group")}
    if design.regression is not None:
        regs = list(dict.fromkeys(design.regression.predictors + design.covariates))
        out["regression"] = minimum_n("regression", n_parameters=len(regs) + 1)
    if design.correlations is not None:
        out["correlation"] = minimum_n("correlation")
        if design.correlations.partial_covariates:
            out["partial correlation"] = minimum_n("correlation",
                                                   n_covariates=len(design.correlations.partial_covariates))
    if design.mediation is not None:
        out["mediation"] = minimum_n("mediation", n_covariates=len(design.mediation.covariates))
    return out


def describe_minimum_sizes(design) -> str:
    """:func:`minimum_sizes` in words, for the README and the report, e.g. "at least 3 subjects per
    group; 9 in MO and VM together for the regression (6 parameters + 3); ..."."""
    m = minimum_sizes(design)

    def where(groups):
        return f"in {groups[0]}" if len(groups) == 1 else f"in {', '.join(groups[:-1])} and {groups[-1]} together"

    parts = [f"at least {m['group']} subjects per group"]
    if "regression" in m:
        parts.append(f"{m['regression']} {where(design.regression_groups)} for the regression "
                     f"({m['regression'] - 3} parameters + 3)")
    if "correlation" in m:
        c = design.correlations
        text = f"{m['correlation']} per group ({', '.join(c.groups)}) for the correlations"
        if "partial correlation" in m:
            text += f" and {m['partial correlation']} for the partial ones ({len(c.partial_covariates)} covariates + 4)"
        parts.append(text)
    if "mediation" in m:
        parts.append(f"{m['mediation']} {where(design.mediation_groups)} for the mediation "
                     f"({len(design.mediation.covariates)} covariates + 8)")
    return "; ".join(parts)


def fit_cautions(n: int, n_predictors: int, df_resid: float) -> list[str]:
    """Why a fit with ``n`` subjects, ``n_predictors`` regressors (intercept not counted; 0: no
    per-predictor check) and ``df_resid`` residual degrees of freedom is fragile (module
    docstring); empty when it is not."""
    out = []
    if df_resid < MIN_RESIDUAL_DF:
        out.append(f"residual df {df_resid:g} < {MIN_RESIDUAL_DF}")
    if n_predictors and n / n_predictors < MIN_PER_PREDICTOR:
        out.append(f"{n / n_predictors:.3g} subjects per predictor < {MIN_PER_PREDICTOR} (Harrell 2015)")
    return out


def influential(cooks, ids) -> tuple[list[tuple[str, float]], list[str]]:
    """Subjects with Cook's distance D > 4/n, largest first, as ``(id, D)``, and the cautions:
    one naming every subject with D > 1 (module docstring)."""
    cooks = np.asarray(cooks, float)
    order = np.argsort(-cooks, kind="stable")
    n = len(cooks)
    flagged = [(str(ids[i]), float(cooks[i])) for i in order if cooks[i] > 4 / n]
    big = [f"{pid} ({d:.2f})" for pid, d in flagged if d > 1]
    return flagged, ([f"Cook's D > 1: {', '.join(big)}"] if big else [])


def skipped_table(analysis: str, reason) -> pd.DataFrame:
    """The table of an analysis that is not run: one ``note`` column, "<analysis> skipped: <why>"
    (as the design-skipped analyses have, :meth:`~alps.stats.design.StudyDesign.skipped`); also
    warned, so the console shows it."""
    reason = re.sub(r"^[A-Za-z_]+: ", "", str(reason))  # the function's own name ("group_tests: ...")
    note = f"{analysis} {SKIPPED}{reason}"
    warnings.warn(note, UserWarning, stacklevel=2)
    return pd.DataFrame({"note": [note]})


def table_note(table: pd.DataFrame) -> str | None:
    """The note of a table written instead of an analysis's results (a ``note`` column only), or
    None for a table of results."""
    if list(table.columns) == ["note"] and len(table):
        return str(table["note"].iloc[0])
    return None
