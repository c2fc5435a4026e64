"""The reproduced study: its published values, every headline quantity computed on a cohort, and
the reproduction table that sets them side by side."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..io.tables import GROUPS
from ._prepare import StatsInputError
from .correlation import correlations
from .groups import group_tests
from .mediation import mediation
from .regression import regression

#: citations of the paper, typed in from the abstract — not results of this code.
PAPER_VALUES: dict = {
    "n_MO": 40,
    "n_VM": 40,
    "n_HC": 20,
    "alps_order": "MO > HC > VM",
    "reg_b_subtype": -0.055,
    "reg_p_subtype": 0.002,
    "reg_b_duration": -0.003,
    "reg_p_duration": 0.001,
    "reg_b_frequency": -0.053,
    "reg_p_frequency": 0.001,
    "r_vm_duration": -0.714,
    "p_vm_duration": "<0.001",
    "r_vm_dhi": -0.564,
    "p_vm_dhi": 0.002,
    "proportion_mediated": 0.7953,
}


def headline_numbers(df, *, n_boot: int = 5000, seed: int = 20260505,
                     covariates=("age", "sex"), nan_policy: str = "omit") -> dict:
    """Every headline quantity of the study computed on a merged cohort table.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table (participants + an ALPS table).
    n_boot, seed : keyword-only
        Bootstrap settings of the mediation.
    covariates : sequence of str
        Covariates of the regression (the study's default: age, sex).
    nan_policy : {'omit', 'raise'}
        Passed to every analysis.

    Returns
    -------
    dict
        ``n_MO, n_VM, n_HC``; ``mean_alps_MO/HC/VM``; ``alps_order`` (e.g. ``"MO > HC > VM"``);
        ``omnibus_test``, ``omnibus_p`` (of :func:`group_tests` on ``alps``);
        ``reg_b_subtype, reg_p_subtype, reg_b_duration, reg_p_duration, reg_b_frequency,
        reg_p_frequency`` (:func:`regression` with ``covariates``; ``reg_robust_se``);
        ``r_vm_duration, p_vm_duration, r_vm_dhi, p_vm_dhi`` and their ``*_method``
        (bivariate, :func:`correlations` rule); ``indirect``, ``proportion_mediated``,
        ``proportion_mediated_ci_low/high`` (:func:`mediation`, VM, no covariates).
        Plain Python floats/ints/str (JSON-serialisable).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gt = group_tests(df, dv="alps", nan_policy=nan_policy).iloc[0]
        reg_res = regression(df, covariates=covariates, nan_policy=nan_policy)
        reg = reg_res.terms.set_index("term")
        cor = correlations(df, groups=("VM",), y=("duration_years", "dhi"),
                           partial_covariates=(), nan_policy=nan_policy).set_index("y")
        med = mediation(df, n_boot=n_boot, seed=seed, nan_policy=nan_policy).set_index("path")
    means = {g: float(gt[f"mean_{g}"]) for g in GROUPS}
    out = {f"n_{g}": int(gt[f"n_{g}"]) for g in GROUPS}
    out.update({f"mean_alps_{g}": means[g] for g in GROUPS})
    out["alps_order"] = " > ".join(sorted(GROUPS, key=lambda g: -means[g]))
    out["omnibus_test"] = str(gt["test"])
    out["omnibus_p"] = float(gt["p"])
    for key, term in (("subtype", "subtype"), ("duration", "duration_years"),
                      ("frequency", "attacks_per_month")):
        out[f"reg_b_{key}"] = float(reg.loc[term, "b"])
        out[f"reg_p_{key}"] = float(reg.loc[term, "p"])
    out["reg_robust_se"] = str(reg_res.model.loc[0, "robust_se"])
    for key, var in (("duration", "duration_years"), ("dhi", "dhi")):
        out[f"r_vm_{key}"] = float(cor.loc[var, "r"])
        out[f"p_vm_{key}"] = float(cor.loc[var, "p"])
        out[f"r_vm_{key}_method"] = str(cor.loc[var, "method"])
    out["indirect"] = float(med.loc["indirect", "estimate"])
    out["proportion_mediated"] = float(med.loc["proportion_mediated", "estimate"])
    out["proportion_mediated_ci_low"] = float(med.loc["proportion_mediated", "ci_low"])
    out["proportion_mediated_ci_high"] = float(med.loc["proportion_mediated", "ci_high"])
    return out


def reproduction_table(measured: dict, truth: dict | None = None) -> pd.DataFrame:
    """Side-by-side table of the paper's values, the simulation truth and the measured values.

    Parameters
    ----------
    measured : dict
        :func:`headline_numbers` of the measured cohort.
    truth : dict or None
        :func:`headline_numbers` of the ground-truth ALPS (simulation), or ``None`` (real data).

    Returns
    -------
    pandas.DataFrame
        Columns ``quantity, paper, truth, measured`` (object dtype: numbers or strings such as
        ``"<0.001"``); rows: the keys of :data:`PAPER_VALUES` first, then the other keys of
        ``measured``/``truth`` in order. ``paper`` is NaN where the abstract gives no value.
    """
    if not isinstance(measured, dict):
        raise StatsInputError("reproduction_table: measured must be a dict")
    if truth is not None and not isinstance(truth, dict):
        raise StatsInputError("reproduction_table: truth must be a dict or None")
    keys = list(PAPER_VALUES)
    for k in list(measured) + list(truth or {}):
        if k not in keys:
            keys.append(k)
    rows = [{"quantity": k, "paper": PAPER_VALUES.get(k, np.nan),
             "truth": (truth or {}).get(k, np.nan) if truth is not None else np.nan,
             "measured": measured.get(k, np.nan)} for k in keys]
    return pd.DataFrame(rows, columns=["quantity", "paper", "truth", "measured"], dtype=object)
