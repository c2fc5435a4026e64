"""ComBat harmonisation of per-subject ALPS values (and per-ROI diffusivities) across sites/scanners.

ComBat (Johnson et al. 2007, Biostatistics 8:118; for diffusion MRI Fortin et al. 2017,
NeuroImage 161:149) models each feature as
:math:`y_{ijv} = \\alpha_v + X_{ij}\\beta_v + \\gamma_{iv} + \\delta_{iv}\\varepsilon_{ijv}` for subject j
at site i: an additive (:math:`\\gamma`) and a multiplicative (:math:`\\delta`) site effect on top of
the biological covariates X that are *preserved* (the design's group and covariates), estimates the
site effects with empirical Bayes across features and removes them. Computed by ``neuroCombat``
(pinned in pyproject.toml; neuroHarmonize, which wraps the same model, pins numpy<2).

The site column comes from ``participants.tsv`` (``site``, or any column named by ``site_col``,
e.g. the scanner metadata columns of the inputs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _libs
from ._prepare import InsufficientData, StatsInputError, _require_columns

__all__ = ["Harmonised", "harmonise", "value_columns"]


@dataclass(frozen=True)
class Harmonised:
    """What :func:`harmonise` returns: the tidy ``table``, the ``sites`` harmonised across (sorted)
    and the ``columns`` harmonised — typed fields, not ``DataFrame.attrs`` (which pandas
    operations drop or propagate unpredictably)."""

    table: pd.DataFrame
    sites: tuple
    columns: tuple


def value_columns(df: pd.DataFrame) -> list[str]:
    """The per-subject measures ComBat harmonises: ``alps``, ``alps_L``, ``alps_R`` and the per-ROI
    diffusivities (``dxx_*``, ``dyy_*``, ``dzz_*``) present in ``df``."""
    return [c for c in df.columns if c in ("alps", "alps_L", "alps_R") or c.startswith(("dxx_", "dyy_", "dzz_"))]


def harmonise(df: pd.DataFrame, *, site_col: str = "site", columns=None, group_col: str = "group",
              covariates=("age", "sex"), eb: bool = True) -> Harmonised:
    """ComBat-harmonised copies of ``columns`` across the sites of ``site_col``.

    Parameters
    ----------
    df : pandas.DataFrame
        Merged cohort table (one row per subject) with ``site_col``.
    columns : sequence of str, optional
        Measures to harmonise (default :func:`value_columns`); rows with a missing value in any
        of them, in the site or in a preserved covariate are refused (harmonise complete cases).
    group_col, covariates : keyword-only
        Preserved effects: the group (categorical), ``sex`` (categorical), the other covariates
        (continuous).
    eb : bool
        Empirical-Bayes pooling of the site effects across features (ComBat's default); with a
        single column there is nothing to pool across and the site effects are estimated per
        feature (``eb=False``: ComBat's priors are undefined for one feature).

    Returns
    -------
    Harmonised
        ``table``: ``participant_id, <site_col>, <group_col>`` and, per column, ``<col>`` (as
        measured) and ``<col>_harmonised``; ``sites`` the sites, ``columns`` the columns.

    Raises
    ------
    StatsInputError
        No site column, fewer than 2 sites, missing values; its subclass InsufficientData for a site
        with fewer than 2 subjects.
    """
    where = "harmonise"
    columns = list(columns) if columns is not None else value_columns(df)
    covs = list(covariates)
    _require_columns(df, ["participant_id", site_col, group_col, *columns, *covs], where)
    d = df[["participant_id", site_col, group_col, *covs, *columns]].copy()
    miss = d.isna().any(axis=1)
    if miss.any():
        raise StatsInputError(f"{where}: missing values for {d.loc[miss, 'participant_id'].tolist()} "
                              f"(ComBat needs complete cases of {[site_col, group_col, *covs, *columns]})")
    counts = d[site_col].astype(str).value_counts()
    if len(counts) < 2:
        raise StatsInputError(f"{where}: need at least 2 sites in '{site_col}', got {list(counts.index)}")
    small = counts[counts < 2]
    if len(small):
        raise InsufficientData(f"{where}: site(s) with fewer than 2 subjects: {dict(small)}")
    covars = pd.DataFrame({"_site": d[site_col].astype(str).to_numpy(), "_group": d[group_col].astype(str).to_numpy()})
    categorical, continuous = ["_group"], []
    for c in covs:
        if c == "sex":
            covars["_sex"] = d[c].astype(str).to_numpy()
            categorical.append("_sex")
        else:
            covars[f"_{c}"] = pd.to_numeric(d[c]).to_numpy(float)
            continuous.append(f"_{c}")
    dat = d[columns].to_numpy(float).T
    eb = bool(eb) and len(columns) > 1
    harmonised = _libs.combat(dat, covars, batch_col="_site", categorical=categorical, continuous=continuous, eb=eb)
    out = d[["participant_id", site_col, group_col]].reset_index(drop=True)
    for i, c in enumerate(columns):
        out[c] = d[c].to_numpy(float)
        out[f"{c}_harmonised"] = harmonised[i]
    return Harmonised(out, sites=tuple(sorted(counts.index)), columns=tuple(columns))
