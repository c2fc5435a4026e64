"""The cohort tables under OUT_DIR, built from per-scan rows.

``alps.tsv`` (one row per scan: ALPS in template and scanner axes, per-ROI diffusivities, FA,
MD, voxel counts, the volumes fitted — ``shells``, ``bvals_used``, ``bval_fit``, ``n_volumes_used``,
``n_directions`` of :func:`alps.imaging.shells.select_volumes` —, the registration metrics
``reg_corr``, ``reg_dice``, ``reg_coverage`` of
:func:`alps.imaging.registration.registration_metrics`, QC flags of :mod:`alps.imaging.qc`),
``qc.tsv``, ``preprocess.tsv``, ``provenance.tsv`` and the run-dependent ``timings.tsv``. Rows are sorted by scan and columns canonically ordered, so the
same rows in any order give byte-identical tables.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from .. import atomic
from . import columns
from .layout import ENTITY_COLUMNS, row_entities, row_layout
from . import locking
from .records import clean_table_temporaries, is_run_column
from .subject import PROV_PREFIX

#: gradient-check columns (``--gradcheck report|correct``), also in ``qc.tsv``: the best candidate
#: table transform, its score margin over the table as given, whether it flagged, whether the fit
#: used the corrected table (declared in :mod:`.columns`).
GRADCHECK_COLUMNS = ("gradcheck_best", "gradcheck_margin", "gradcheck_flag", "gradcheck_corrected")


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``alps.tsv`` column order (:data:`alps.pipeline.columns.TABLES`): ids and indices, standard
    errors, per-ROI diffusivities, FA, MD, voxel counts, registration and QC, then everything else
    alphabetically."""
    return df[columns.order("alps.tsv", df.columns)]


def _present(table: str, df: pd.DataFrame) -> list[str]:
    """The columns of ``table`` (in its order) that ``df`` has."""
    return [c for c in columns.table_columns(table) if c in df.columns]


def cohort_tables(rows, stages=("preprocess", "measure"), *, timings: bool = True) -> tuple[pd.DataFrame, dict]:
    """Build the cohort tables from per-scan rows (as returned by
    :func:`alps.pipeline.process_subject`).

    Returns ``(df, {name: table})``: ``df`` is what :func:`alps.pipeline.run_cohort` returns; the
    tables are ``timings.tsv`` (unless ``timings=False``), ``preprocess.tsv``, ``provenance.tsv``
    (per scan: ``dwi_sha256, bval_sha256, bvec_sha256`` of the inputs, ``preprocess_parameters``,
    ``measure_parameters`` and ``versions`` as ``key=value; ...`` with sorted keys) and, with the
    measure stage, ``alps.tsv`` and ``qc.tsv``. Every table's columns are declared, and ordered,
    in :mod:`alps.pipeline.columns`.
    """
    out = {}
    df = pd.DataFrame(rows)
    df["_key"] = [r["participant_id"] + (r.get("session_id") or "")
                  + "".join(f"_{k}-{v}" for k, v in row_entities(r)) for r in rows]
    df["_then"] = [str(r.get("error") or "") for r in rows]  # rows of one key (a mis-named file): by error
    df = df.sort_values(["_key", "_then"], kind="stable").drop(columns=["_key", "_then"]).reset_index(drop=True)
    for c in ("session_id",) + tuple(ENTITY_COLUMNS):
        if c in df.columns and df[c].isna().all():
            df = df.drop(columns=c)
    id_cols = [c for c in ("participant_id", "session_id") + tuple(ENTITY_COLUMNS) if c in df.columns]
    if timings:
        out["timings.tsv"] = df[columns.order("timings.tsv", id_cols + ["status"]
                                              + [c for c in df.columns if is_run_column(c)])]
    pre_cols = _present("preprocess.tsv", df)
    out["preprocess.tsv"] = df[pre_cols]
    pre_df = df[pre_cols + [c for c in ("preprocess_reused",) if c in df.columns]
                + sorted(c for c in df.columns if c.startswith("time_"))]
    prov_cols = [c for c in columns.table_columns("provenance.tsv")
                 if c not in ("participant_id", "session_id", "status") + tuple(ENTITY_COLUMNS)]
    prov = df.reindex(columns=id_cols + ["status"] + [f"{PROV_PREFIX}{c}" for c in prov_cols])
    out["provenance.tsv"] = prov.rename(columns={f"{PROV_PREFIX}{c}": c for c in prov_cols})
    df = df.drop(columns=[c for c in df.columns if c.startswith(PROV_PREFIX)])
    if "measure" not in stages:
        return pre_df, out
    df = order_columns(df)
    out["alps.tsv"] = df[[c for c in df.columns if not is_run_column(c) and c != "qc_png"]]
    out["qc.tsv"] = qc_table(df)
    return df, out


def qc_table(df: pd.DataFrame) -> pd.DataFrame:
    """Cohort QC table: status, registration metrics, ROI FA/purity, the gradient check (its
    :data:`GRADCHECK_COLUMNS`, when the run had ``gradcheck`` on), flags, PNG path (relative to
    OUT_DIR)."""
    out = df[[c for c in _present("qc.tsv", df) if c != "qc_png"]].copy()
    png = []
    for _, r in df.iterrows():
        lay = row_layout(Path("."), r)
        failed_png = r.get("qc_png")  # a failed scan's QC image (alps.pipeline.measure.failure_qc)
        png.append(lay.relative(lay.qc_png) if r["status"] == "ok"
                   else failed_png if isinstance(failed_png, str) else "")
    out["qc_png"] = png
    return out


def copy_table(src, dst) -> Path:
    """Copy a cohort table (read and written again, as the notebooks do) and write its data
    dictionary beside the copy."""
    df = pd.read_csv(src, sep="\t")
    atomic.write_table(dst, df)
    columns.write_dictionary(dst, df.columns)
    return Path(dst)


def write_tables(tables: dict, out_dir, *, lock: bool = False, wait: float | None = None) -> None:
    """Write ``{name: DataFrame}`` atomically under OUT_DIR, each with its data dictionary
    (``alps.json`` beside ``alps.tsv``, :mod:`alps.pipeline.columns`), holding OUT_DIR's lock if ``lock``
    (waiting up to ``wait`` seconds, default :data:`~alps.pipeline.locking.TABLES_LOCK_WAIT_S`)."""
    wait = locking.TABLES_LOCK_WAIT_S if wait is None else wait
    with locking.cohort_lock(out_dir, wait=wait) if lock else contextlib.nullcontext() as held:
        if held:
            clean_table_temporaries(out_dir)
        for name, t in tables.items():
            atomic.write_table(Path(out_dir) / name, t)
            columns.write_dictionary(Path(out_dir) / name, t.columns)


def failure_summary(df: pd.DataFrame, *, stage: str, then: str = "", max_error: int = 160) -> str:
    """The console's account of the failed scans of a cohort table (``status`` not ``ok``): one
    line "<stage>: 7 of 13 scans failed<then>", then one line per failed scan with its error
    (cut at ``max_error`` characters); empty when every scan succeeded."""
    if df.empty or "status" not in df.columns:
        return ""
    failed = df[df["status"] != "ok"]
    if failed.empty:
        return ""
    lines = [f"{stage}: {len(failed)} of {len(df)} scans failed{then}"]
    for _, r in failed.iterrows():
        scan = "_".join(str(r[c]) for c in ("participant_id", "session_id", *ENTITY_COLUMNS)
                        if c in r.index and isinstance(r[c], str) and r[c])
        err = str(r.get("error") or "no error recorded")
        lines.append(f"  {scan}: {err[:max_error]}{'…' if len(err) > max_error else ''}")
    return "\n".join(lines)
