"""The reproduced study: every headline quantity of a design computed on a cohort, and the
reproduction table that sets them beside the published values (the design's ``published``)."""
from __future__ import annotations

import dataclasses
import warnings
from contextlib import suppress
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._prepare import InsufficientData, StatsInputError
from .correlation import correlations
from .groups import group_tests
from .mediation import mediation
from .regression import regression

__all__ = ["Headline", "headline_quantities", "headline_numbers", "headline_values", "reproduction_table",
           "truth_intervals"]

#: the statistics of :class:`Headline` (``p_value``: shown as a p-value), in the order a design lists them.
STATISTICS = ("n", "mean_alps", "alps_order", "omnibus_test", "omnibus_p", "reg_b", "reg_p", "reg_robust_se",
              "r", "p", "r_method", "indirect", "proportion_mediated", "proportion_mediated_ci_low",
              "proportion_mediated_ci_high")
P_VALUES = ("omnibus_p", "reg_p", "p")


@dataclass(frozen=True)
class Headline:
    """One headline quantity of a study: a ``statistic`` (one of :data:`STATISTICS`) of a ``group``
    and/or a ``variable`` (a design's clinical variable or contrast name), and its ``value``.

    ``key`` is its name in ``key_numbers.json``, ``reproduction.csv`` and the design's
    ``published`` mapping (``n_MO``, ``reg_b_duration``, ``r_vm_dhi`` ...); it is made from the
    fields, never read back into them."""

    statistic: str
    group: str | None = None
    variable: str | None = None
    key: str = ""
    value: object = None

    @property
    def is_p_value(self) -> bool:
        return self.statistic in P_VALUES


def _group_key(design, g: str) -> str:
    """A group's part of a key: its label in lower case, unless two labels differ only in case."""
    lower = [x.lower() for x in design.labels]
    return g.lower() if lower.count(g.lower()) == 1 else g


def headline_quantities(design) -> list[Headline]:
    """The headline quantities a design has (values ``None``), in the order of
    :func:`headline_numbers`: ``n`` and ``mean_alps`` per group (design order), ``alps_order``,
    ``omnibus_test``, ``omnibus_p``; ``reg_b``, ``reg_p`` per predictor and ``reg_robust_se``;
    ``r``, ``p``, ``r_method`` per headline correlation (bivariate; grouped by group);
    ``indirect``, ``proportion_mediated`` and its CI. An analysis the design does not declare has
    none. Raises :class:`StatsInputError` if two quantities would share a key."""
    out = [Headline("n", group=g, key=f"n_{g}") for g in design.labels]
    out += [Headline("mean_alps", group=g, key=f"mean_alps_{g}") for g in design.labels]
    out += [Headline(s, key=s) for s in ("alps_order", "omnibus_test", "omnibus_p")]
    if design.regression is not None:
        for term in design.regression.predictors:
            k = design.variable(term).key
            out += [Headline(s, variable=term, key=f"{s}_{k}") for s in ("reg_b", "reg_p")]
        out.append(Headline("reg_robust_se", key="reg_robust_se"))
    if design.correlations is not None and design.correlations.headline:
        by_group = {}
        for g, v in design.correlations.headline:
            by_group.setdefault(g, []).append(v)
        for g, ys in by_group.items():
            for v in ys:
                k = f"{_group_key(design, g)}_{design.variable(v).key}"
                out += [Headline("r", group=g, variable=v, key=f"r_{k}"), Headline("p", group=g, variable=v, key=f"p_{k}"),
                        Headline("r_method", group=g, variable=v, key=f"r_{k}_method")]
    if design.mediation is not None:
        out += [Headline(s, key=s) for s in ("indirect", "proportion_mediated", "proportion_mediated_ci_low",
                                             "proportion_mediated_ci_high")]
    keys = [q.key for q in out]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise StatsInputError(f"headline quantities: two quantities named {twice}; give the variables distinct keys")
    return out


def headline_values(headlines) -> dict:
    """``{key: value}`` of headline records, in order (what ``key_numbers.json`` holds)."""
    return {h.key: h.value for h in headlines}


def headline_numbers(df, design, *, n_boot: int = 5000, seed: int = 20260505,
                     nan_policy: str = "omit") -> list[Headline]:
    """Every headline quantity of a study (its :class:`~alps.stats.design.StudyDesign`) computed on
    a merged cohort table.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table (participants + an ALPS table).
    design : StudyDesign
        Which groups, regression, correlations and mediation (:func:`headline_quantities`); an
        analysis the data cannot support (:class:`~alps.stats._prepare.InsufficientData`: too few
        subjects, see :mod:`alps.stats.sizes`) gives no record.
    n_boot, seed : keyword-only
        Bootstrap settings of the mediation.
    nan_policy : {'omit', 'raise'}
        Passed to every analysis.

    Returns
    -------
    list of Headline
        :func:`headline_quantities` with their values: group sizes and mean ALPS, the order of the
        means (e.g. ``"MO > HC > VM"``), the omnibus test and p (:func:`group_tests` on ``alps``);
        per predictor the regression coefficient and p, and whether robust standard errors were
        used; per headline correlation (bivariate) r, p and the method; the indirect effect and the
        proportion mediated with its CI (:func:`mediation`). Values are plain Python
        floats/ints/str (JSON-serialisable); :func:`headline_values` gives ``{key: value}``.
    """
    values = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with suppress(InsufficientData):  # an analysis the data cannot support gives no record
            gt = group_tests(df, dv="alps", nan_policy=nan_policy, **design.group_kwargs()).table.iloc[0]
            means = {g: float(gt[f"mean_{g}"]) for g in design.labels}
            values.update({("n", g, None): int(gt[f"n_{g}"]) for g in design.labels})
            values.update({("mean_alps", g, None): means[g] for g in design.labels})
            values[("alps_order", None, None)] = " > ".join(sorted(design.labels, key=lambda g: -means[g]))
            values[("omnibus_test", None, None)] = str(gt["test"])
            values[("omnibus_p", None, None)] = float(gt["p"])
        if design.regression is not None:
            with suppress(InsufficientData):
                reg_res = regression(df, nan_policy=nan_policy, **design.regression_kwargs())
                reg = reg_res.terms.set_index("term")
                for term in design.regression.predictors:
                    values[("reg_b", None, term)] = float(reg.loc[term, "b"])
                    values[("reg_p", None, term)] = float(reg.loc[term, "p"])
                values[("reg_robust_se", None, None)] = str(reg_res.model.loc[0, "robust_se"])
        if design.correlations is not None and design.correlations.headline:
            by_group = {}
            for g, v in design.correlations.headline:
                by_group.setdefault(g, []).append(v)
            for g, ys in by_group.items():
                with suppress(InsufficientData):  # a group too small for every pair gives no record
                    cor = correlations(df, groups=(g,), y=tuple(ys), partial_covariates=(), nan_policy=nan_policy,
                                       group_col=design.group_column).table.set_index("y")
                    for v in ys:
                        values[("r", g, v)] = float(cor.loc[v, "r"])
                        values[("p", g, v)] = float(cor.loc[v, "p"])
                        values[("r_method", g, v)] = str(cor.loc[v, "method"])
        if design.mediation is not None:
            with suppress(InsufficientData):
                med = mediation(df, n_boot=n_boot, seed=seed, nan_policy=nan_policy,
                                **design.mediation_kwargs()).table.set_index("path")
                values[("indirect", None, None)] = float(med.loc["indirect", "estimate"])
                values[("proportion_mediated", None, None)] = float(med.loc["proportion_mediated", "estimate"])
                for bound in ("ci_low", "ci_high"):
                    values[(f"proportion_mediated_{bound}", None, None)] = float(med.loc["proportion_mediated", bound])
    return [dataclasses.replace(q, value=values[(q.statistic, q.group, q.variable)])
            for q in headline_quantities(design) if (q.statistic, q.group, q.variable) in values]


def _as_values(headlines, what: str):
    if headlines is None:
        return None
    if isinstance(headlines, dict):
        return dict(headlines)
    if not all(isinstance(h, Headline) for h in headlines):
        raise StatsInputError(f"reproduction_table: {what} must be headline records (headline_numbers) or a dict")
    return headline_values(headlines)


def reproduction_table(measured, truth=None, *, published=None) -> pd.DataFrame:
    """Side-by-side table of the published values, the simulation truth and the measured values.

    Parameters
    ----------
    measured : list of Headline (or ``{key: value}``)
        :func:`headline_numbers` of the measured cohort.
    truth : list of Headline, dict or None
        :func:`headline_numbers` of the ground-truth ALPS (simulation), or ``None`` (real data).
    published : dict or None, keyword-only
        The paper's values by key (the design's ``published`` mapping, quoted from the paper).

    Returns
    -------
    pandas.DataFrame
        Columns ``quantity, paper, truth, measured`` (object dtype: numbers or strings such as
        ``"<0.001"``; ``quantity`` is the :attr:`Headline.key`); rows: the keys of ``published``
        first, then the other quantities in order. ``paper`` is NaN where the paper gives no value.
    """
    measured, truth = _as_values(measured, "measured"), _as_values(truth, "truth")
    published = dict(published or {})
    keys = list(published)
    for k in list(measured) + list(truth or {}):
        if k not in keys:
            keys.append(k)
    rows = [{"quantity": k, "paper": published.get(k, np.nan),
             "truth": (truth or {}).get(k, np.nan) if truth is not None else np.nan,
             "measured": measured.get(k, np.nan)} for k in keys]
    return pd.DataFrame(rows, columns=["quantity", "paper", "truth", "measured"], dtype=object)


def truth_intervals(truth_df, measured, design, *, n_boot: int = 5000, seed: int = 20260505,
                    alpha: float = 0.05, nan_policy: str = "omit") -> pd.DataFrame:
    r"""Does each measured headline quantity fall inside the confidence interval of the same quantity
    computed on the planted (ground-truth) ALPS of the same subjects?

    Intervals (1 − ``alpha``): group means — t interval (:math:`\bar y \pm t_{n-1} s/\sqrt n`);
    regression coefficients — the regression's own CI; headline correlations — Fisher z (as in
    :func:`correlations`); indirect effect and proportion mediated — the BC bootstrap CI of
    :func:`mediation` (same ``n_boot``/``seed``).

    ``measured`` is :func:`headline_numbers` of the measured cohort.

    Returns
    -------
    pandas.DataFrame
        One row per quantity: ``quantity`` (its key), ``truth, truth_ci_low, truth_ci_high,
        measured, inside`` (``inside``: ``ci_low ≤ measured ≤ ci_high``). A quantity not measured
        (NaN), or whose analysis the planted cohort cannot support (:class:`InsufficientData`), has
        no row.
    """
    from scipy import stats as sps

    rows = []
    by_what = {(h.statistic, h.group, h.variable): h for h in measured}

    def add(what, est, lo, hi):
        h = by_what.get(what)
        if h is not None and np.isfinite(float(h.value)):
            m = float(h.value)
            rows.append({"quantity": h.key, "truth": float(est), "truth_ci_low": float(lo), "truth_ci_high": float(hi),
                         "measured": m, "inside": bool(lo <= m <= hi)})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for g in design.labels:
            v = pd.to_numeric(truth_df.loc[truth_df[design.group_column] == g, "alps"]).dropna().to_numpy(float)
            if len(v) > 1:
                h = sps.t.ppf(1 - alpha / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
                add(("mean_alps", g, None), v.mean(), v.mean() - h, v.mean() + h)
        if design.regression is not None:
            with suppress(InsufficientData):  # an analysis the data cannot support: no row
                terms = regression(truth_df, alpha=alpha, nan_policy=nan_policy,
                                   **design.regression_kwargs()).terms.set_index("term")
                for term in design.regression.predictors:
                    r = terms.loc[term]
                    add(("reg_b", None, term), r["b"], r["ci_low"], r["ci_high"])
        if design.correlations is not None:
            for g, v in design.correlations.headline:
                with suppress(InsufficientData):
                    c = correlations(truth_df, groups=(g,), y=(v,), partial_covariates=(), alpha=alpha,
                                     nan_policy=nan_policy, group_col=design.group_column).table.iloc[0]
                    add(("r", g, v), c["r"], c["ci_low"], c["ci_high"])
        if design.mediation is not None:
            with suppress(InsufficientData):
                med = mediation(truth_df, n_boot=n_boot, seed=seed, alpha=alpha, nan_policy=nan_policy,
                                **design.mediation_kwargs()).table.set_index("path")
                for path in ("indirect", "proportion_mediated"):
                    r = med.loc[path]
                    add((path, None, None), r["estimate"], r["ci_low"], r["ci_high"])
    return pd.DataFrame(rows, columns=["quantity", "truth", "truth_ci_low", "truth_ci_high", "measured", "inside"])

