"""ANCOVA: the group effect adjusted for covariates, with adjusted means."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import _libs
from ._prepare import InsufficientData, Result, _as_tuple, _groups, _prepare
from .groups import _group_samples
from .sizes import require_n


def _ols_rss(X, y):
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r), beta


def ancova(df, *, dv="alps", covariates=("age", "sex"), groups=None, group_col: str = "group",
           nan_policy: str = "raise", id_col: str = "participant_id") -> Result:
    r"""ANCOVA: group effect on ``dv`` adjusted for covariates (Type II sums of squares).

    Model :math:`y = \beta_0 + \sum_g \gamma_g D_g + \sum_c \beta_c x_c + \varepsilon` (group
    dummies, first group is the reference; ``groups=None``: every label in order of appearance; ``sex`` coded F=0/M=1), no interactions.

    Returns
    -------
    Result
        :class:`~alps.stats._prepare.Result`: ``exclusions``, the subjects left out for missing
        values (``nan_policy='omit'``), and ``table``: one row per dv × term (``group``, each covariate, ``residual``); columns ``dv, term,
        ss, df, f, p, partial_eta2`` plus adjusted means ``adj_mean_<g>`` (on the group row:
        predictions at the covariate means) and ``n``.

    Notes
    -----
    Sums of squares, F, p and partial η² by :func:`pingouin.ancova` (statsmodels Type II);
    the adjusted means (which pingouin does not report) from the full model's OLS coefficients.
    Type II SS of a term = RSS(model without the term) − RSS(full model);
    :math:`F = (SS/df)/(RSS_{full}/df_{resid})`; partial :math:`\eta^2 = SS/(SS + RSS_{full})`.
    Without interactions Type II equals Type III for the group term.
    """
    where = "ancova"
    dvs, covs, groups = _as_tuple(dv), _as_tuple(covariates), _groups(df, groups, group_col, where)
    rows = []
    d, recs = _prepare(df, list(dvs) + list(covs), where=where, group_col=group_col,
                       groups=groups, id_col=id_col, nan_policy=nan_policy)
    for v in dvs:
        _group_samples(d, v, groups, group_col, where, min_per_group=2)
        y = d[v].to_numpy(float)
        n = len(y)
        dummies = np.column_stack([(d[group_col] == g).to_numpy(float) for g in groups[1:]])
        C = d[list(covs)].to_numpy(float) if covs else np.empty((n, 0))
        const = np.ones((n, 1))
        X = np.column_stack([const, dummies, C])
        p_full = X.shape[1]
        require_n(n, "ancova", where, n_parameters=p_full)
        if np.linalg.matrix_rank(X) < p_full:
            raise InsufficientData(f"{where}: design matrix is rank deficient (constant or "
                                  f"collinear covariate among {list(covs)}?)")
        _, beta = _ols_rss(X, y)  # for the adjusted means, which pingouin does not report
        table = _libs.ancova_table(d.assign(_group=d[group_col].astype(str)), dv=v, between="_group",
                                   covariates=covs)
        table.loc[table["term"] == "_group", "term"] = "group"
        cmeans = C.mean(axis=0) if covs else np.empty(0)
        for t in table.itertuples(index=False):
            if t.term == "residual":
                continue
            row = {"dv": v, "term": t.term, "ss": t.ss, "df": t.df, "f": t.f, "p": t.p,
                   "partial_eta2": t.partial_eta2, "n": n}
            if t.term == "group":
                for gi, g in enumerate(groups):
                    dm = np.zeros(len(groups) - 1)
                    if gi > 0:
                        dm[gi - 1] = 1
                    row[f"adj_mean_{g}"] = float(np.concatenate([[1.0], dm, cmeans]) @ beta)
            rows.append(row)
        res = table[table["term"] == "residual"].iloc[0]
        rows.append({"dv": v, "term": "residual", "ss": float(res["ss"]), "df": float(res["df"]), "f": np.nan,
                     "p": np.nan, "partial_eta2": np.nan, "n": n})
    return Result.of(pd.DataFrame(rows), recs)
