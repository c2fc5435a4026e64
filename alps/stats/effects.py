"""Building blocks: effect sizes, multiple-comparison corrections, bootstrap intervals and
exact tests."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from ._prepare import StatsInputError


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


def adjust_p(p, method: str = "holm") -> np.ndarray:
    """Family-wise / false-discovery-rate adjusted p-values of one family (NaNs kept as NaN, not
    counted in m), by :func:`statsmodels.stats.multitest.multipletests` (``holm``, ``fdr_bh``,
    ``bonferroni``, ...; ``none`` returns the p-values unchanged). ``fdr_bh`` is :func:`bh_fdr`
    (scipy), which the study's tables were computed with."""
    from ._libs import multipletests_p

    p = np.asarray(p, float)
    if method == "none":
        return p.copy()
    if method == "fdr_bh":
        return bh_fdr(p)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests_p(p[ok], method)
    return out
