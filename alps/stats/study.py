"""The reproduced study: every headline quantity of a design computed on a cohort, and the
reproduction table that sets them beside the published values (the design's ``published``)."""
from __future__ import annotations

import warnings
from contextlib import suppress

import numpy as np
import pandas as pd

from ._prepare import InsufficientData, StatsInputError
from .correlation import correlations
from .groups import group_tests
from .mediation import mediation
from .regression import regression

def headline_numbers(df, design, *, n_boot: int = 5000, seed: int = 20260505,
                     nan_policy: str = "omit") -> dict:
    """Every headline quantity of a study (its :class:`~alps.stats.design.StudyDesign`) computed on
    a merged cohort table.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table (participants + an ALPS table).
    design : StudyDesign
        Which groups, regression, correlations and mediation; an analysis the design does not
        declare, or the data cannot support (:class:`~alps.stats._prepare.InsufficientData`: too
        few subjects, see :mod:`alps.stats.sizes`), contributes no key.
    n_boot, seed : keyword-only
        Bootstrap settings of the mediation.
    nan_policy : {'omit', 'raise'}
        Passed to every analysis.

    Returns
    -------
    dict
        ``n_<group>``, ``mean_alps_<group>`` (groups in the design's order); ``alps_order`` (e.g.
        ``"MO > HC > VM"``); ``omnibus_test``, ``omnibus_p`` (:func:`group_tests` on ``alps``);
        ``reg_b_<key>, reg_p_<key>`` per predictor (``key``: the clinical variable's short key or
        the contrast's name) and ``reg_robust_se``; ``r_<group>_<key>, p_<group>_<key>,
        r_<group>_<key>_method`` (lower-case group) for each headline correlation (bivariate);
        ``indirect``, ``proportion_mediated``, ``proportion_mediated_ci_low/high``
        (:func:`mediation`). Plain Python floats/ints/str (JSON-serialisable).
    """
    labels = design.labels
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with suppress(InsufficientData):  # an analysis the data cannot support gives no key
            gt = group_tests(df, dv="alps", nan_policy=nan_policy, **design.group_kwargs()).iloc[0]
            means = {g: float(gt[f"mean_{g}"]) for g in labels}
            out.update({f"n_{g}": int(gt[f"n_{g}"]) for g in labels})
            out.update({f"mean_alps_{g}": means[g] for g in labels})
            out["alps_order"] = " > ".join(sorted(labels, key=lambda g: -means[g]))
            out["omnibus_test"] = str(gt["test"])
            out["omnibus_p"] = float(gt["p"])
        with suppress(InsufficientData):
            _regression_numbers(df, design, nan_policy, out)
        _correlation_numbers(df, design, nan_policy, out)
        if design.mediation is not None:
            with suppress(InsufficientData):
                med = mediation(df, n_boot=n_boot, seed=seed, nan_policy=nan_policy,
                                **design.mediation_kwargs()).set_index("path")
                out["indirect"] = float(med.loc["indirect", "estimate"])
                out["proportion_mediated"] = float(med.loc["proportion_mediated", "estimate"])
                out["proportion_mediated_ci_low"] = float(med.loc["proportion_mediated", "ci_low"])
                out["proportion_mediated_ci_high"] = float(med.loc["proportion_mediated", "ci_high"])
    return out


def _regression_numbers(df, design, nan_policy, out):
    if design.regression is None:
        return
    reg_res = regression(df, nan_policy=nan_policy, **design.regression_kwargs())
    reg = reg_res.terms.set_index("term")
    for term in design.regression.predictors:
        key = design.variable(term).key
        out[f"reg_b_{key}"] = float(reg.loc[term, "b"])
        out[f"reg_p_{key}"] = float(reg.loc[term, "p"])
    out["reg_robust_se"] = str(reg_res.model.loc[0, "robust_se"])


def _correlation_numbers(df, design, nan_policy, out):
    if design.correlations is None or not design.correlations.headline:
        return
    by_group = {}
    for g, v in design.correlations.headline:
        by_group.setdefault(g, []).append(v)
    for g, ys in by_group.items():
        with suppress(InsufficientData):  # a group too small for every pair gives no key
            cor = correlations(df, groups=(g,), y=tuple(ys), partial_covariates=(), nan_policy=nan_policy,
                               group_col=design.group_column).set_index("y")
            for v in ys:
                key = f"{g.lower()}_{design.variable(v).key}"
                out[f"r_{key}"] = float(cor.loc[v, "r"])
                out[f"p_{key}"] = float(cor.loc[v, "p"])
                out[f"r_{key}_method"] = str(cor.loc[v, "method"])


def reproduction_table(measured: dict, truth: dict | None = None, *, published=None) -> pd.DataFrame:
    """Side-by-side table of the published values, the simulation truth and the measured values.

    Parameters
    ----------
    measured : dict
        :func:`headline_numbers` of the measured cohort.
    truth : dict or None
        :func:`headline_numbers` of the ground-truth ALPS (simulation), or ``None`` (real data).
    published : dict or None, keyword-only
        The paper's values (the design's ``published`` mapping, quoted from the paper).

    Returns
    -------
    pandas.DataFrame
        Columns ``quantity, paper, truth, measured`` (object dtype: numbers or strings such as
        ``"<0.001"``); rows: the keys of ``published`` first, then the other keys of
        ``measured``/``truth`` in order. ``paper`` is NaN where the paper gives no value.
    """
    if not isinstance(measured, dict):
        raise StatsInputError("reproduction_table: measured must be a dict")
    if truth is not None and not isinstance(truth, dict):
        raise StatsInputError("reproduction_table: truth must be a dict or None")
    published = dict(published or {})
    keys = list(published)
    for k in list(measured) + list(truth or {}):
        if k not in keys:
            keys.append(k)
    rows = [{"quantity": k, "paper": published.get(k, np.nan),
             "truth": (truth or {}).get(k, np.nan) if truth is not None else np.nan,
             "measured": measured.get(k, np.nan)} for k in keys]
    return pd.DataFrame(rows, columns=["quantity", "paper", "truth", "measured"], dtype=object)


def truth_intervals(truth_df, measured: dict, design, *, n_boot: int = 5000, seed: int = 20260505,
                    alpha: float = 0.05, nan_policy: str = "omit") -> pd.DataFrame:
    r"""Does each measured headline quantity fall inside the confidence interval of the same quantity
    computed on the planted (ground-truth) ALPS of the same subjects?

    Intervals (1 − ``alpha``): group means — t interval (:math:`\bar y \pm t_{n-1} s/\sqrt n`);
    regression coefficients — the regression's own CI; headline correlations — Fisher z (as in
    :func:`correlations`); indirect effect and proportion mediated — the BC bootstrap CI of
    :func:`mediation` (same ``n_boot``/``seed``).

    Returns
    -------
    pandas.DataFrame
        One row per quantity: ``quantity, truth, truth_ci_low, truth_ci_high, measured, inside``
        (``inside``: ``ci_low ≤ measured ≤ ci_high``). A quantity not measured (NaN), or whose
        analysis the planted cohort cannot support (:class:`InsufficientData`), has no row.
    """
    from scipy import stats as sps

    rows = []

    def add(key, est, lo, hi):
        if key in measured and np.isfinite(float(measured[key])):
            m = float(measured[key])
            rows.append({"quantity": key, "truth": float(est), "truth_ci_low": float(lo), "truth_ci_high": float(hi),
                         "measured": m, "inside": bool(lo <= m <= hi)})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for g in design.labels:
            v = pd.to_numeric(truth_df.loc[truth_df[design.group_column] == g, "alps"]).dropna().to_numpy(float)
            if len(v) > 1:
                h = sps.t.ppf(1 - alpha / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
                add(f"mean_alps_{g}", v.mean(), v.mean() - h, v.mean() + h)
        if design.regression is not None:
            with suppress(InsufficientData):  # an analysis the data cannot support: no row
                terms = regression(truth_df, alpha=alpha, nan_policy=nan_policy,
                                   **design.regression_kwargs()).terms.set_index("term")
                for term in design.regression.predictors:
                    r = terms.loc[term]
                    add(f"reg_b_{design.variable(term).key}", r["b"], r["ci_low"], r["ci_high"])
        if design.correlations is not None:
            for g, v in design.correlations.headline:
                with suppress(InsufficientData):
                    c = correlations(truth_df, groups=(g,), y=(v,), partial_covariates=(), alpha=alpha,
                                     nan_policy=nan_policy, group_col=design.group_column).iloc[0]
                    add(f"r_{g.lower()}_{design.variable(v).key}", c["r"], c["ci_low"], c["ci_high"])
        if design.mediation is not None:
            with suppress(InsufficientData):
                med = mediation(truth_df, n_boot=n_boot, seed=seed, alpha=alpha, nan_policy=nan_policy,
                                **design.mediation_kwargs()).set_index("path")
                for path in ("indirect", "proportion_mediated"):
                    r = med.loc[path]
                    add(path, r["estimate"], r["ci_low"], r["ci_high"])
    return pd.DataFrame(rows, columns=["quantity", "truth", "truth_ci_low", "truth_ci_high", "measured", "inside"])

