"""A participant's index from two DWI series acquired with opposite phase encoding.

When a session has two full series that differ only in their ``dir`` entity (``dir-AP``/``dir-PA``)
and were corrected with each other (``sdc_source`` ``pepolar-dwi``, :mod:`alps.pipeline.distortion`),
each keeps its own row in ``alps.tsv`` — their agreement is a check of the correction — and both
rows get the participant's combined index, the inverse-variance weighted mean of the two::

    w_k = 1 / se_k²,   alps_combined = Σ w_k alps_k / Σ w_k,   alps_combined_se = 1 / √(Σ w_k)

with ``se_k`` the rows' ``alps_se`` (thermal noise of each series' own fit; the two series have
independent noise). Without finite SEs (``se_replicates = 0``, a denoised signal) the plain mean
is given and ``alps_combined_se`` is n/a. ``alps_pair_z`` is the difference of the two rows
(the ``dir`` label that sorts first minus the other) over ``√(se_a² + se_b²)``: beyond ±2 the
two corrected series disagree by more than their noise. The weighting assumes the two rows
estimate the same quantity; averaging the two corrected signals before one fit (FSL eddy's
``--resamp=lsr``) is the alternative not taken here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .layout import ENTITY_COLUMNS

__all__ = ["PAIR_COLUMNS", "combine_pairs"]

#: the columns :func:`combine_pairs` adds (declared in :mod:`alps.pipeline.columns`).
PAIR_COLUMNS = ("alps_combined", "alps_combined_se", "alps_combined_n", "alps_pair_z")


def _group_key(row) -> tuple:
    return tuple(str(row.get(c)) for c in ("participant_id", "session_id") + tuple(e for e in ENTITY_COLUMNS
                                                                                   if e != "dir"))


def combine_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (the scans' rows) with :data:`PAIR_COLUMNS` filled on the rows of each corrected
    pair (module docstring). ``sdc_source`` is dropped when no scan of the cohort was corrected
    (every row ``none``/``off``/empty: the preprocess records and the parameters say so)."""
    if "sdc_source" in df.columns and df["sdc_source"].isin(["none", "off"]).where(df["sdc_source"].notna(), True).all():
        df = df.drop(columns="sdc_source")
    if "sdc_source" not in df.columns or "alps" not in df.columns or "dir" not in df.columns:
        return df
    ok = (df["status"] == "ok") & (df["sdc_source"] == "pepolar-dwi")
    if not ok.any():
        return df
    out = df.copy()
    for c in PAIR_COLUMNS:
        out[c] = np.nan
    groups: dict = {}
    for i, r in df[ok].iterrows():
        groups.setdefault(_group_key(r), []).append(i)
    for rows in groups.values():
        if len(rows) != 2:
            continue
        rows = sorted(rows, key=lambda i: str(df.at[i, "dir"]))
        x = df.loc[rows, "alps"].to_numpy(float)
        se = df.loc[rows, "alps_se"].to_numpy(float) if "alps_se" in df.columns else np.full(2, np.nan)
        if np.all(np.isfinite(se) & (se > 0)):
            w = 1.0 / se ** 2
            value, value_se = float(np.sum(w * x) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w)))
            z = float((x[0] - x[1]) / np.sqrt(np.sum(se ** 2)))
        else:
            value, value_se, z = float(np.mean(x)), np.nan, np.nan
        out.loc[rows, "alps_combined"] = value
        out.loc[rows, "alps_combined_se"] = value_se
        out.loc[rows, "alps_combined_n"] = 2
        out.loc[rows, "alps_pair_z"] = z
    return out
