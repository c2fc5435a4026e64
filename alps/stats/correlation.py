"""Correlations of ALPS with the clinical variables within groups, bivariate and partial."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from ._prepare import (
    InsufficientData,
    Result,
    StatsInputError,
    _as_tuple,
    _check_groups,
    _prepare,
    _require_columns,
    _shapiro_p,
)
from . import _libs
from .effects import adjust_p
from .sizes import fit_cautions, minimum_n


#: the column of :func:`correlations` holding the p-values adjusted by each method (``fdr_bh``:
#: Benjamini-Hochberg false-discovery rate, the default; family-wise methods by their names).
ADJUSTED_P_COLUMNS = {"fdr_bh": "p_fdr", "fdr_by": "p_fdr_by", "holm": "p_holm", "bonferroni": "p_bonferroni",
                      "sidak": "p_sidak", "holm-sidak": "p_holm_sidak", "none": "p_unadjusted"}


def adjusted_p_column(method: str) -> str:
    """The name of the adjusted-p column of :func:`correlations` for ``p_adjust=method``
    (:data:`ADJUSTED_P_COLUMNS`): named for what it holds, e.g. ``p_holm``, never ``p_fdr`` for a
    family-wise correction."""
    if method not in ADJUSTED_P_COLUMNS:
        raise StatsInputError(f"correlations: p_adjust must be one of {sorted(ADJUSTED_P_COLUMNS)}, got {method!r}")
    return ADJUSTED_P_COLUMNS[method]


def _fisher_ci(r, n, k, alpha):
    se_n = n - 3 - k
    if se_n <= 0 or not np.isfinite(r) or abs(r) >= 1:
        return float("nan"), float("nan")
    z = np.arctanh(r)
    h = sps.norm.ppf(1 - alpha / 2) / math.sqrt(se_n)
    return float(np.tanh(z - h)), float(np.tanh(z + h))


def _corr_p(r, dof):
    if dof <= 0 or not np.isfinite(r):
        return float("nan")
    if abs(r) >= 1:
        return 0.0
    t = r * math.sqrt(dof / (1 - r * r))
    return float(2 * sps.t.sf(abs(t), dof))


def correlations(df, *, groups, y, x: str = "alps", partial_covariates=("age", "sex"), method: str = "auto",
                 alpha: float = 0.05, p_adjust: str = "fdr_bh",
                 group_col: str = "group", nan_policy: str = "raise",
                 id_col: str = "participant_id") -> Result:
    r"""Bivariate and partial correlations of ``x`` with each ``y`` within each group.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table.
    groups : sequence of str, keyword-only
        Groups analysed separately.
    x : str
        The variable correlated with every ``y`` (ALPS).
    y : sequence of str
        Clinical variables. A ``y`` that is entirely missing in a group (e.g. a score collected in
        one subgroup only) is
        skipped for that group (not measured by design); partial missingness follows
        ``nan_policy`` (pairwise: only subjects missing ``x``, that ``y`` or a covariate).
    partial_covariates : sequence of str
        Covariates of the partial correlations (``sex`` coded F=0/M=1; a covariate constant
        within a group is dropped and the ``covariates`` column says which were used). Empty →
        no partial rows.
    method : {'auto', 'pearson', 'spearman'}
        ``auto``: Pearson when the Shapiro-Wilk p ≥ ``alpha`` for both x and y in that group,
        otherwise Spearman. The partial correlation uses the same method (Spearman: on ranks
        of x, y and covariates).

    Returns
    -------
    Result
        :class:`~alps.stats._prepare.Result`: ``exclusions``, the subjects left out for missing
        values (``nan_policy='omit'``), and ``table``: one row per group × kind × y; columns ``group, kind`` (``bivariate``/``partial``),
        ``x, y, method, covariates, n, r, ci_low, ci_high, p``, the adjusted p
        (:func:`adjusted_p_column`: ``p_fdr`` by default, ``p_holm`` …), ``shapiro_x_p``,
        ``shapiro_y_p``, ``caution``. A pair with fewer subjects than
        :func:`alps.stats.sizes.minimum_n` ``("correlation")`` (4 + k for k partial covariates),
        or a constant variable, is not computed: its ``r``/``p`` are NaN and ``caution`` says
        "not computed: <why>"; otherwise ``caution`` says why the estimate is fragile
        (:func:`alps.stats.sizes.fit_cautions` of the regression of y on x and the k covariates:
        residual df n − 2 − k < 10, fewer than 10 subjects per predictor), empty when it is not.

    Raises
    ------
    InsufficientData
        When no pair can be computed (every family too small, or no variable measured).

    Notes
    -----
    Partial r and p: :func:`pingouin.partial_corr` (Pearson r of the residuals of x and y after
    OLS on ``[1, covariates]``, Spearman on ranks; :math:`t = r\sqrt{(n-2-k)/(1-r^2)}` with
    n − 2 − k df, k covariates).
    CI: Fisher z, :math:`\tanh(\operatorname{atanh} r \pm z_{1-\alpha/2}/\sqrt{n-3-k})`
    (k = 0 for bivariate; for Spearman this is the usual approximation).
    Bivariate p: ``scipy.stats.pearsonr`` / ``spearmanr`` (t approximation).
    Adjusted p (``p_fdr`` for the default Benjamini-Hochberg, ``p_holm`` for Holm …): within each
    family = group × kind by ``p_adjust`` (:func:`~alps.stats.effects.adjust_p`; the design's
    ``multiple_comparisons.correlations``).
    """
    where = "correlations"
    groups, ys, covs = tuple(groups), _as_tuple(y), _as_tuple(partial_covariates)
    if method not in ("auto", "pearson", "spearman"):
        raise StatsInputError(f"{where}: method must be 'auto', 'pearson' or 'spearman'")
    p_col = adjusted_p_column(p_adjust)
    if nan_policy not in ("raise", "omit"):
        raise StatsInputError(f"{where}: nan_policy must be 'raise' or 'omit'")
    _require_columns(df, [x, *ys, *covs, group_col], where)
    _check_groups(df, group_col, groups, where)
    rows, recs = [], []
    for g in groups:
        dg = df[df[group_col] == g]
        for yv in ys:
            if dg[yv].isna().all():
                continue  # not measured in this group by design
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                d, r_ = _prepare(dg, [x, yv, *covs], where=f"{where} ({g}: {x} ~ {yv})",
                                 group_col=group_col, groups=None, id_col=id_col,
                                 nan_policy=nan_policy)
            for w in caught:
                warnings.warn(str(w.message), UserWarning, stacklevel=2)
            recs.extend(r_)
            n = len(d)
            xv, yy = d[x].to_numpy(float), d[yv].to_numpy(float)
            why = (f"too few subjects: n = {n} (need ≥ {minimum_n('correlation')})" if n < minimum_n("correlation")
                   else f"{x} or {yv} is constant in {g}" if np.ptp(xv) == 0 or np.ptp(yy) == 0 else "")
            if why:  # this pair is not computed; the table says why (the other pairs are)
                none = {"group": g, "x": x, "y": yv, "method": "", "n": n, "r": np.nan, "ci_low": np.nan,
                        "ci_high": np.nan, "p": np.nan, "shapiro_x_p": np.nan, "shapiro_y_p": np.nan,
                        "caution": f"not computed: {why}"}
                rows.append({**none, "kind": "bivariate", "covariates": ""})
                if covs:
                    rows.append({**none, "kind": "partial", "covariates": ""})
                continue
            shx, shy = _shapiro_p(xv), _shapiro_p(yy)
            if method == "auto":
                m = "pearson" if (np.isfinite(shx) and np.isfinite(shy) and shx >= alpha
                                  and shy >= alpha) else "spearman"
            else:
                m = method
            res = (sps.pearsonr if m == "pearson" else sps.spearmanr)(xv, yy)
            r = float(res.statistic)
            lo, hi = _fisher_ci(r, n, 0, alpha)
            base = {"group": g, "x": x, "y": yv, "method": m, "n": n, "shapiro_x_p": shx,
                    "shapiro_y_p": shy}
            rows.append({**base, "kind": "bivariate", "covariates": "", "r": r,
                         "ci_low": lo, "ci_high": hi, "p": float(res.pvalue),
                         # one predictor: 10 per predictor (n ≥ 10) is implied by residual df ≥ 10
                         "caution": "; ".join(fit_cautions(n, 0, n - 2))})
            if covs:
                used = [c for c in covs if d[c].nunique() > 1]
                k = len(used)
                if n < minimum_n("correlation", n_covariates=k):
                    rows.append({**base, "kind": "partial", "covariates": ",".join(used), "r": np.nan,
                                 "ci_low": np.nan, "ci_high": np.nan, "p": np.nan,
                                 "caution": f"not computed: too few subjects: n = {n} "
                                            f"(need ≥ {minimum_n('correlation', n_covariates=k)})"})
                    continue
                if k:
                    sub = pd.DataFrame({"_x": xv, "_y": yy, **{f"_c{i}": d[c].to_numpy(float)
                                                               for i, c in enumerate(used)}})
                    rp, pp = _libs.partial_corr(sub, x="_x", y="_y", covariates=[f"_c{i}" for i in range(k)],
                                                method=m)
                else:  # no covariate varies in this group: the partial is the bivariate correlation
                    rp, pp = r, _corr_p(r, n - 2)
                # pingouin rounds its CI to 2 decimals: the Fisher-z interval is computed here
                lo, hi = _fisher_ci(rp, n, k, alpha)
                rows.append({**base, "kind": "partial", "covariates": ",".join(used), "r": rp,
                             "ci_low": lo, "ci_high": hi, "p": pp,
                             "caution": "; ".join(fit_cautions(n, 1 + k, n - 2 - k))})
    cols = ["group", "kind", "x", "y", "method", "covariates", "n", "r", "ci_low", "ci_high",
            "p", p_col, "shapiro_x_p", "shapiro_y_p", "caution"]
    out = pd.DataFrame(rows)
    if out.empty:
        raise InsufficientData(f"{where}: no variable of {list(ys)} is measured in {list(groups)}")
    if out["r"].isna().all():
        raise InsufficientData(f"{where}: no pair computed: "
                               + "; ".join(sorted(set(f"{r.group}: {r.caution[len('not computed: '):]}"
                                                      for r in out.itertuples()))))
    out[p_col] = np.nan
    for _, idx in out.groupby(["group", "kind"], sort=False).groups.items():
        out.loc[idx, p_col] = adjust_p(out.loc[idx, "p"].to_numpy(), p_adjust)
    kind_order = {"bivariate": 0, "partial": 1}
    out["_g"] = out["group"].map({g: i for i, g in enumerate(groups)})
    out["_k"] = out["kind"].map(kind_order)
    out = out.sort_values(["_g", "_k"], kind="stable").drop(columns=["_g", "_k"])
    return Result.of(out.reset_index(drop=True)[cols], recs)
