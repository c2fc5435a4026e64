"""BIDS-Apps style participant / group levels.

Participant / group levels
    ``alps run INPUT OUT_DIR --participant-label X --no-tables`` processes one subject: it locks only
    that subject's directory (``OUT_DIR/sub-X/.alps-run.lock``), so any number of such jobs (a SLURM
    array) can write to one OUT_DIR, and records the subject's table row in
    ``OUT_DIR/sub-X/sub-X_desc-run.json``. ``alps group OUT_DIR`` (:func:`group`) then gathers those
    records into ``alps.tsv``, ``qc.tsv`` and ``preprocess.tsv`` — byte-identical to the tables a
    single ``alps run`` over the same scans writes. Every scan of the input dataset (found through
    ``dataset_description.json``'s ``SourceDatasets``, or ``--input``) gets a row: a scan without a
    usable record is listed with ``status`` ``missing`` (never run, killed, or its derivatives were
    removed) or ``running`` (a job holds its lock), with the reason in ``error``.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from ..io import InputError, SubjectInput, discover
from .layout import id_columns, read_json, row_entities, run_records, scan_layout
from .locking import scan_locked
from .provenance import canon
from .records import read_run_record
from .tables import cohort_tables, write_tables

__all__ = ["group", "source_dataset", "parameter_sets", "items_from_records"]


def source_dataset(out_dir) -> Path | None:
    """The input dataset recorded in ``OUT_DIR/dataset_description.json`` (``SourceDatasets``)."""
    desc = read_json(Path(out_dir) / "dataset_description.json") or {}
    for src in desc.get("SourceDatasets") or []:
        url = (src or {}).get("URL", "") if isinstance(src, dict) else ""
        parsed = urlparse(url)
        if parsed.scheme == "file":
            return Path(url2pathname(parsed.path))
    return None


def items_from_records(out_dir) -> list[SubjectInput]:
    """Scans known only from their run records (the input dataset is not reachable)."""
    out_dir = Path(out_dir)
    items = []
    for rec_path in run_records(out_dir):
        rec = read_json(rec_path) or {}
        row = rec.get("row") or {}
        pid, ses = row.get("participant_id"), row.get("session_id")
        if not isinstance(pid, str):
            continue
        dummy = Path(f"{pid}_dwi.nii.gz")
        items.append(SubjectInput(pid, dummy, dummy, dummy, ses if isinstance(ses, str) else None,
                                  entities=row_entities(row)))
    return items


def _gather_row(out_dir, item) -> tuple[dict, tuple]:
    """The scan's table row from its run record, or a ``missing``/``running`` row."""
    base = id_columns(item)
    if getattr(item, "invalid", False):  # breaks BIDS naming: never run, no record
        return {**base, "status": "failed", "error": f"validation: {item.error}"}, ()
    rec_path = scan_layout(out_dir, item).run_record
    if scan_locked(out_dir, item):
        return {**base, "status": "running",
                "error": f"{rec_path.parent}: a run is processing this scan (lock held)"}, ()
    rec = read_run_record(out_dir, item)
    if rec is None:
        return {**base, "status": "missing",
                "error": f"{rec_path}: no result (not run yet, or the run was killed)"}, ()
    row, stages = dict(rec["row"]), tuple(rec["stages"])
    if row.get("status") == "ok":
        # an interrupted rerun invalidates the stage records first: the run record is then stale
        lay = scan_layout(out_dir, item)
        need = [lay.preprocess_json] if "preprocess" in stages else []
        need += [lay.result_json] if "measure" in stages else []
        for f in need:
            r = read_json(f)
            if not r or r.get("status") != "ok":
                return {**base, "status": "missing",
                        "error": f"{f}: missing or not finished (interrupted rerun?); rerun this participant"}, ()
    return row, stages


def group(out_dir, *, input_path=None, participant_label=None, lock_wait: float | None = None,
          write: bool = True) -> pd.DataFrame:
    """Gather the per-scan run records under OUT_DIR into ``alps.tsv``, ``qc.tsv`` and
    ``preprocess.tsv`` (the group-level step after participant-level runs).

    ``input_path`` (default: the dataset recorded in ``dataset_description.json``) lists the scans
    expected; when it is not reachable, the scans with a record are gathered. Scans without a
    usable record get ``status`` ``missing`` or ``running``. Tables are written under OUT_DIR's lock
    (waiting up to ``lock_wait`` seconds); ``timings.tsv`` is left as it is. Returns ``alps.tsv`` as
    a DataFrame (``preprocess.tsv`` if no scan ran the measure stage).
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: output directory not found")
    src = Path(input_path) if input_path is not None else source_dataset(out_dir)
    if src is not None and src.exists():
        items = discover(src, participant_label=participant_label, strict=False)
    else:
        items = items_from_records(out_dir)
        if participant_label is not None:
            labels = {lab if lab.startswith("sub-") else f"sub-{lab}" for lab in
                      ([participant_label] if isinstance(participant_label, str) else participant_label)}
            items = [it for it in items if it.participant_id in labels]
        if not items:
            where = f"input {src} not found and " if src is not None else ""
            raise InputError(f"{out_dir}: {where}no per-scan results (sub-*/*_desc-run.json) to gather")
    rows, stages = [], set()
    for it in items:
        row, st = _gather_row(out_dir, it)
        rows.append(row)
        stages.update(st)
    # the one-shot run decides by its stages; here: alps.tsv/qc.tsv if any scan was measured
    stages = ("preprocess", "measure") if "measure" in stages or not stages else ("preprocess",)
    df, tables = cohort_tables(rows, stages, timings=False)
    if write:
        write_tables(tables, out_dir, lock=True, wait=lock_wait)
    return df


def parameter_sets(out_dir, items) -> int:
    """How many different parameter sets the finished scans were measured with."""
    seen = set()
    for it in items:
        r = read_json(scan_layout(out_dir, it).result_json)
        if r and r.get("status") == "ok":
            prov = r.get("provenance") or {}
            seen.add(canon({"measure": prov.get("parameters"),
                               "preprocess": (prov.get("preprocess") or {}).get("parameters")}))
    return len(seen)
