"""Simple mediation x → m → y with bias-corrected bootstrap intervals."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from . import _libs
from ._prepare import InsufficientData, Result, StatsInputError, _as_tuple, _groups, _prepare
from .effects import bc_interval
from .sizes import fit_cautions, require_n


def _batched_ols(X, y):
    """Coefficients of y ~ X for a stack of designs X (B, n, p) and y (B, n)."""
    XtX = np.einsum("bnp,bnq->bpq", X, X)
    Xty = np.einsum("bnp,bn->bp", X, y)
    try:
        return np.linalg.solve(XtX, Xty[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("bpq,bq->bp", np.linalg.pinv(XtX), Xty)


def mediation(df, *, x: str, y: str, m: str = "alps", covariates=(), groups=None, group_col: str = "group", n_boot: int = 5000,
              seed: int = 20260505, alpha: float = 0.05, min_abs_total: float = 0.0,
              nan_policy: str = "raise", id_col: str = "participant_id") -> Result:
    r"""Simple mediation x → m → y (e.g. ALPS mediating disease duration → a clinical score) with
    BC bootstrap CIs.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    x, m, y : str, keyword-only
        Exposure, mediator, outcome.
    covariates : sequence of str
        Entered in every regression (``sex`` coded F=0/M=1).
    groups : sequence of str
        Groups included (the design's; None: every subject).
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
    Result
        :class:`~alps.stats._prepare.Result`: ``exclusions``, the subjects left out for missing
        values (``nan_policy='omit'``), and ``table``: rows ``a, b, c, c_prime, indirect, proportion_mediated``; columns ``path, estimate, se,
        ci_low, ci_high, p, ci_method, n, n_boot, seed, x, m, y, warning, caution``
        (``caution``: why the outcome model y ~ x + m (+ covariates) is fragile, by
        :func:`alps.stats.sizes.fit_cautions` — residual df n − 3 − c < 10 or fewer than 10
        subjects per predictor; empty when it is not).

    Raises
    ------
    InsufficientData
        Fewer than :func:`alps.stats.sizes.minimum_n` ``("mediation")`` = 8 + c subjects, or a
        variable constant in the groups.

    Notes
    -----
    OLS fits (C = covariates): :math:`m = i_1 + a x + C` ; :math:`y = i_2 + c' x + b m + C` ;
    :math:`y = i_3 + c x + C`. For OLS on the same cases :math:`c = c' + ab` exactly.
    a, b, c, c′: :class:`statsmodels.api.OLS` with classical se, t-test p, t-based CI
    (``ci_method = "t"``). The bootstrap is computed here, not by
    ``pingouin.mediation_analysis``: the same case resamples give the indirect effect *and* the
    proportion mediated (pingouin has no interval for the ratio), all resamples are fitted in one
    batched solve, and the result is a deterministic function of ``seed``.
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
    groups = _groups(df, groups, group_col, where)
    d, recs = _prepare(df, [x, m, y, *covs], where=where, group_col=group_col,
                       groups=groups, id_col=id_col, nan_policy=nan_policy)
    n = len(d)
    require_n(n, where, where, n_covariates=len(covs))
    for c in (x, m, y, *covs):
        if d[c].nunique() < 2:
            raise InsufficientData(f"{where}: '{c}' is constant in {list(groups)}")
    X = d[x].to_numpy(float)
    M = d[m].to_numpy(float)
    Y = d[y].to_numpy(float)
    C = d[list(covs)].to_numpy(float) if covs else np.empty((n, 0))
    one = np.ones(n)
    Xa = np.column_stack([one, X, C])          # m ~ x (+C): a = coef 1
    Xb = np.column_stack([one, X, M, C])       # y ~ x + m (+C): c' = coef 1, b = coef 2
    a_ = _libs.ols_coef(Xa, M, 1, alpha=alpha)
    cp_ = _libs.ols_coef(Xb, Y, 1, alpha=alpha)
    b_ = _libs.ols_coef(Xb, Y, 2, alpha=alpha)
    c_ = _libs.ols_coef(Xa, Y, 1, alpha=alpha)
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
    # the outcome model y ~ 1 + x + m + C has the fewest residual df (sizes.fit_cautions)
    out["caution"] = "; ".join(fit_cautions(n, 2 + len(covs), n - 3 - len(covs)))
    out = out[["path", "estimate", "se", "ci_low", "ci_high", "p", "ci_method", "n", "n_boot",
               "seed", "x", "m", "y", "warning", "caution"]]
    return Result.of(out, recs)
