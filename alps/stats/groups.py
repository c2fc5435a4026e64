"""ALPS across groups: the omnibus test chosen by the data, and the matching post hoc tests."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from ._prepare import InsufficientData, Result, StatsInputError, _as_tuple, _groups, _prepare, _shapiro_p
from . import _libs
from .effects import _anova_ss, adjust_p, hedges_g
from .sizes import MIN_PER_GROUP


def _choose_test(samples, alpha):
    sh = [_shapiro_p(s) for s in samples]
    shapiro_min = float(np.nanmin(sh)) if np.isfinite(sh).any() else float("nan")
    normal = all(np.isfinite(p) and p >= alpha for p in sh)
    lev = float(sps.levene(*samples, center="median").pvalue)
    if not normal:
        return "kruskal", shapiro_min, lev
    return ("anova" if lev >= alpha else "welch_anova"), shapiro_min, lev


def _group_samples(d, dv, groups, group_col, where, min_per_group=MIN_PER_GROUP):
    samples = [d.loc[d[group_col] == g, dv].to_numpy(float) for g in groups]
    small = {g: len(s) for g, s in zip(groups, samples) if len(s) < min_per_group}
    if small:
        raise InsufficientData(f"{where}: too few subjects for '{dv}' (need ≥ {min_per_group} "
                              f"per group): {small}")
    return samples


def group_tests(df, *, dv=("alps", "alps_L", "alps_R"), groups=None, group_col: str = "group",
                alpha: float = 0.05, test: str | None = None, nan_policy: str = "raise",
                id_col: str = "participant_id") -> Result:
    r"""Omnibus comparison of each dependent variable across groups.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    dv : str or sequence of str, keyword-only
        Dependent variables (one output row each).
    groups : sequence of str
        Groups compared (≥ 2, each with ≥ 3 subjects), in the order of the per-group columns;
        None: every label of ``group_col`` in order of first appearance (the notebooks pass the
        design's groups).
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
    Result
        :class:`~alps.stats._prepare.Result`: ``exclusions``, the subjects left out for missing
        values (``nan_policy='omit'``), and ``table``: one row per dv; columns ``dv, test, statistic, df1, df2, p, eta2, omega2, eta2_h,
        shapiro_min_p, levene_p, n`` and ``n_<g>, mean_<g>, sd_<g>`` per group.

    Notes
    -----
    With :math:`SS_b = \sum_j n_j(\bar y_j - \bar y)^2`, :math:`SS_w = \sum_j\sum_i(y_{ij} -
    \bar y_j)^2`, :math:`SS_t = SS_b + SS_w`, :math:`MS_w = SS_w/(N-k)`:
    ANOVA :math:`F = (SS_b/(k-1))/MS_w` (``scipy.stats.f_oneway``; the sums of squares are kept
    for the effect sizes, which scipy does not give); :math:`\eta^2 = SS_b/SS_t`;
    :math:`\omega^2 = (SS_b - (k-1)MS_w)/(SS_t + MS_w)` (reported for every test as descriptive
    effect sizes). Welch's ANOVA: Welch (1951), via ``pingouin.welch_anova``. Kruskal-Wallis H
    (tie-corrected, ``scipy.stats.kruskal``) with :math:`\eta^2_H = (H - k + 1)/(N - k)`
    (Tomczak & Tomczak 2014) in ``eta2_h``.
    """
    where = "group_tests"
    dvs, groups = _as_tuple(dv), _groups(df, groups, group_col, where)
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
        if chosen == "anova":  # scipy's F test; the sums of squares above are for the effect sizes
            res = sps.f_oneway(*samples)
            stat, df1, df2, p = res.statistic, k1, dfw, res.pvalue
        elif chosen == "welch_anova":
            stat, df1, df2, p = _libs.welch_anova(dict(zip(groups, samples)))
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
    return Result.of(pd.DataFrame(rows), recs)


_POSTHOC_FOR = {"anova": "tukey", "welch_anova": "games_howell", "kruskal": "dunn"}


def posthoc(df, *, dv=("alps", "alps_L", "alps_R"), groups=None, group_col: str = "group",
            alpha: float = 0.05, test: str | None = None, p_adjust: str = "holm",
            nan_policy: str = "raise", id_col: str = "participant_id") -> Result:
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
    p_adjust : str
        Correction of Dunn's family (:func:`~alps.stats.effects.adjust_p`; the design's
        ``multiple_comparisons.dunn``, default Holm).

    Returns
    -------
    Result
        :class:`~alps.stats._prepare.Result`: ``exclusions``, the subjects left out for missing
        values (``nan_policy='omit'``), and ``table``: one row per dv × pair (pairs in ``itertools.combinations(groups, 2)`` order); columns
        ``dv, test, group_a, group_b, mean_a, mean_b, mean_diff, se, statistic, df, p, p_adj,
        hedges_g, ci_low, ci_high``. ``mean_diff = mean_a - mean_b``; ``hedges_g`` is
        :func:`hedges_g` (a vs b); ``p`` is unadjusted, ``p_adj`` family-wise adjusted.

    Notes
    -----
    * Tukey HSD: :math:`se = \sqrt{MS_w(1/n_a + 1/n_b)}`, :math:`t = \Delta/se`, ``df`` =
      N − k, ``p`` from :math:`t_{N-k}`; ``p_adj`` = P(Q > √2|t|) with Q studentized range
      (k, N−k) and CI :math:`\Delta \pm q_{1-\alpha,k,N-k}\,se/\sqrt2` by
      :func:`scipy.stats.tukey_hsd`.
    * Games-Howell (:func:`pingouin.pairwise_gameshowell`: se, t, df, ``p_adj``):
      :math:`se = \sqrt{s_a^2/n_a + s_b^2/n_b}`, Welch-Satterthwaite df per pair; ``p`` Welch t;
      the CI (pingouin gives none) as Tukey's with the pair's df.
    * Dunn (1964): mean ranks over the pooled sample, :math:`se = \sqrt{(N(N+1)/12 - T)(1/n_a +
      1/n_b)}` with tie term :math:`T = \sum(t^3 - t)/(12(N-1))`, :math:`z = (\bar R_a - \bar
      R_b)/se` (``statistic``; ``se`` is in rank units; computed here because
      :func:`scikit_posthocs.posthoc_dunn` returns p only), ``p`` two-sided normal (scikit-posthocs),
      ``p_adj`` by ``p_adjust`` (within dv); ``df``, ``ci_low``, ``ci_high`` are NaN.
    """
    where = "posthoc"
    dvs, groups = _as_tuple(dv), _groups(df, groups, group_col, where)
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
        lib = {"tukey": lambda: _libs.tukey_hsd(samples, alpha=alpha), "games_howell": lambda: _libs.games_howell(samples),
               "dunn": lambda: _libs.dunn_p(samples)}[chosen]()
        block = []
        for ga, gb in itertools.combinations(groups, 2):
            a, b = samples[ga], samples[gb]
            na, nb = len(a), len(b)
            diff = a.mean() - b.mean()
            row = {"dv": v, "test": chosen, "group_a": ga, "group_b": gb,
                   "mean_a": a.mean(), "mean_b": b.mean(), "mean_diff": diff,
                   "hedges_g": hedges_g(a, b)}
            if chosen == "tukey":
                se = math.sqrt(msw * (1 / na + 1 / nb))
                t = diff / se
                row.update(se=se, statistic=t, df=dfw, p=2 * sps.t.sf(abs(t), dfw), **lib[(ga, gb)])
            elif chosen == "games_howell":
                gh = lib[(ga, gb)]
                # pingouin gives no interval: the simultaneous CI uses the same studentized range
                qcrit = sps.studentized_range.ppf(1 - alpha, k, gh["df"])
                half = qcrit * gh["se"] / math.sqrt(2)
                row.update(se=gh["se"], statistic=gh["statistic"], df=gh["df"],
                           p=2 * sps.t.sf(abs(gh["statistic"]), gh["df"]), p_adj=min(1.0, gh["p_adj"]),
                           ci_low=diff - half, ci_high=diff + half)
            else:
                # scikit-posthocs returns p only: z and its se (rank units) are computed here
                se = math.sqrt((n_tot * (n_tot + 1) / 12 - tie) * (1 / na + 1 / nb))
                z = (mean_rank[ga] - mean_rank[gb]) / se
                row.update(se=se, statistic=z, df=np.nan, p=lib[(ga, gb)], ci_low=np.nan, ci_high=np.nan)
            block.append(row)
        if chosen == "dunn":
            for r, padj in zip(block, adjust_p([r["p"] for r in block], p_adjust)):
                r["p_adj"] = padj
        rows.extend(block)
    cols = ["dv", "test", "group_a", "group_b", "mean_a", "mean_b", "mean_diff", "se",
            "statistic", "df", "p", "p_adj", "hedges_g", "ci_low", "ci_high"]
    return Result.of(pd.DataFrame(rows, columns=cols), recs)
