"""The cohort tables under OUT_DIR, built from per-scan rows.

``alps.tsv`` (one row per scan: ALPS in template and scanner axes, per-ROI diffusivities, FA,
MD, voxel counts, QC), ``qc.tsv``, ``preprocess.tsv``, ``provenance.tsv`` and the
run-dependent ``timings.tsv``. Rows are sorted by scan and columns canonically ordered, so the
same rows in any order give byte-identical tables.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from .. import atomic
from ..imaging.roi import ROI_NAMES
from .layout import ENTITY_COLUMNS, row_entities, row_layout
from . import locking
from .records import clean_table_temporaries, is_run_column
from .subject import PROV_PREFIX
from .placement import COLUMNS as REG_SE_COLUMNS
from .uncertainty import SE_COLUMNS

#: leading columns of alps.tsv (then everything else the measurement returns).
MAIN_COLUMNS = ["participant_id", "session_id", "status", "error", "alps_L", "alps_R", "alps",
                "alps_scanner_L", "alps_scanner_R", "alps_scanner"]
#: gradient-check columns (``--gradcheck report|correct``), also in ``qc.tsv``: the best candidate
#: table transform, its score margin over the table as given, whether it flagged, whether the fit
#: used the corrected table.
GRADCHECK_COLUMNS = ("gradcheck_best", "gradcheck_margin", "gradcheck_flag", "gradcheck_corrected")


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``alps.tsv`` column order: ids and indices, per-ROI diffusivities, FA, MD, voxel counts,
    registration and QC, then everything else sorted."""
    cols = [c for c in MAIN_COLUMNS if c in df.columns]
    ents = [c for c in ENTITY_COLUMNS if c in df.columns]
    cols = cols[:2] + ents + cols[2:] if "session_id" in cols else cols[:1] + ents + cols[1:]
    cols += [c for c in SE_COLUMNS if c in df.columns]
    cols += [c for c in REG_SE_COLUMNS if c in df.columns]
    for pre in ("dxx_", "dyy_", "dzz_"):
        cols += [f"{pre}{n}" for n in ROI_NAMES if f"{pre}{n}" in df.columns]
    for pre in ("fa_", "md_", "nvox_"):
        cols += [f"{pre}{n}" for n in ROI_NAMES if f"{pre}{n}" in df.columns]
    cols += [c for c in ("reg_corr", "reg_dice", "qc_flags", "qc_pass") if c in df.columns]
    cols += sorted(c for c in df.columns if c not in cols)
    return df[cols]


def cohort_tables(rows, stages=("preprocess", "measure"), *, timings: bool = True) -> tuple[pd.DataFrame, dict]:
    """Build the cohort tables from per-scan rows (as returned by
    :func:`alps.pipeline.process_subject`).

    Returns ``(df, {name: table})``: ``df`` is what :func:`alps.pipeline.run_cohort` returns; the
    tables are ``timings.tsv`` (unless ``timings=False``), ``preprocess.tsv``, ``provenance.tsv``
    (per scan: ``dwi_sha256, bval_sha256, bvec_sha256`` of the inputs, ``preprocess_parameters``,
    ``measure_parameters`` and ``versions`` as ``key=value; ...`` with sorted keys) and, with the
    measure stage, ``alps.tsv`` and ``qc.tsv``.
    """
    out = {}
    df = pd.DataFrame(rows)
    df["_key"] = [r["participant_id"] + (r.get("session_id") or "")
                  + "".join(f"_{k}-{v}" for k, v in row_entities(r)) for r in rows]
    df = df.sort_values("_key").drop(columns="_key").reset_index(drop=True)
    for c in ("session_id",) + tuple(ENTITY_COLUMNS):
        if c in df.columns and df[c].isna().all():
            df = df.drop(columns=c)
    id_cols = [c for c in ("participant_id", "session_id") + tuple(ENTITY_COLUMNS) if c in df.columns]
    run_cols = [c for c in ("preprocess_reused", "measure_reused") if c in df.columns]
    run_cols += sorted(c for c in df.columns if is_run_column(c) and c not in run_cols)
    if timings:
        out["timings.tsv"] = df[id_cols + ["status"] + run_cols]
    pre_cols = [c for c in id_cols + ["status", "error", "reg_corr", "reg_dice",
                            "motion_mean_disp_mm", "motion_max_disp_mm", "motion_max_rot_deg", "motion_max_scale",
                            "preprocess_reused"] if c in df.columns]
    pre_cols += sorted(c for c in df.columns if c.startswith("time_") and c not in pre_cols)
    pre_df = df[pre_cols]
    out["preprocess.tsv"] = pre_df[[c for c in pre_cols if not is_run_column(c)]]
    prov_cols = [f"{PROV_PREFIX}{c}" for c in ("dwi_sha256", "bval_sha256", "bvec_sha256", "preprocess_parameters",
                                               "measure_parameters", "versions")]
    prov = df.reindex(columns=id_cols + ["status"] + prov_cols)
    out["provenance.tsv"] = prov.rename(columns={c: c[len(PROV_PREFIX):] for c in prov_cols})
    df = df.drop(columns=[c for c in df.columns if c.startswith(PROV_PREFIX)])
    if "measure" not in stages:
        return pre_df, out
    df = order_columns(df)
    out["alps.tsv"] = df[[c for c in df.columns if not is_run_column(c)]]
    out["qc.tsv"] = qc_table(df)
    return df, out


def qc_table(df: pd.DataFrame) -> pd.DataFrame:
    """Cohort QC table: status, registration metrics, ROI FA/purity, the gradient check (its
    :data:`GRADCHECK_COLUMNS`, when the run had ``gradcheck`` on), flags, PNG path (relative to
    OUT_DIR)."""
    cols = ["participant_id", "session_id", *ENTITY_COLUMNS, "status", "error", "reg_corr", "reg_dice"]
    cols += [f"fa_{n}" for n in ROI_NAMES] + [f"purity_{n}" for n in ROI_NAMES]
    cols += list(GRADCHECK_COLUMNS)
    cols += ["alps_L", "alps_R", "alps", "alps_se", "alps_total_se", "roi_sd_max", "se_high", "qc_flags", "qc_pass"]
    out = df[[c for c in cols if c in df.columns]].copy()
    png = []
    for _, r in df.iterrows():
        lay = row_layout(Path("."), r)
        png.append(lay.relative(lay.qc_png) if r["status"] == "ok" else "")
    out["qc_png"] = png
    return out


def write_tables(tables: dict, out_dir, *, lock: bool = False, wait: float | None = None) -> None:
    """Write ``{name: DataFrame}`` atomically under OUT_DIR, holding OUT_DIR's lock if ``lock``
    (waiting up to ``wait`` seconds, default :data:`~alps.pipeline.locking.TABLES_LOCK_WAIT_S`)."""
    wait = locking.TABLES_LOCK_WAIT_S if wait is None else wait
    with locking.cohort_lock(out_dir, wait=wait) if lock else contextlib.nullcontext():
        if lock:
            clean_table_temporaries(out_dir)
        for name, t in tables.items():
            atomic.write_table(Path(out_dir) / name, t)
