"""Scale-out: cohorts on a Dask cluster, and BIDS-Apps style participant/group levels.

Dask
    ``alps run INPUT OUT_DIR --scheduler tcp://host:8786`` (or ``run_cohort(..., scheduler=ADDRESS or
    Client)``) submits one task per scan (:func:`alps.pipeline.process_subject`) to a
    ``dask.distributed`` cluster; rows come back as they finish (tqdm progress), a scan whose worker
    dies is recorded as failed while the others finish, and the tables are written by the submitting
    process exactly as in a local run (same ``alps.tsv``). Workers must see INPUT and OUT_DIR at the
    same paths (a shared file system). Needs the ``scale`` extra (``pip install 'alps[scale]'``).

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

import argparse
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from . import io as aio
from . import pipeline as P

__all__ = ["add_arguments", "cli", "get_client", "group", "map_subjects", "source_dataset"]


# ----------------------------------------------------------------------------- Dask
def get_client(scheduler):
    """``(client, owned)`` for a scheduler address, a ``distributed.Client`` or a cluster object
    (``LocalCluster``, ``SLURMCluster``...); ``owned`` is True when the client was created here."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("running on a Dask scheduler needs dask.distributed: "
                          "pip install 'alps[scale]'  (or 'dask[distributed]')") from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True


def map_subjects(items, out_dir, scheduler, **kwargs):
    """Run :func:`alps.pipeline.process_subject` for every item on a Dask cluster.

    Yields one row per item, in completion order. ``kwargs`` are passed to ``process_subject``
    (``stages``, ``force``, ``qc_png`` and stage parameters). ``process_subject`` never raises; a
    task that fails anyway (its worker was killed, e.g. out of memory) becomes a failed row.
    """
    from distributed import as_completed

    client, owned = get_client(scheduler)
    try:
        token = uuid.uuid4().hex[:8]
        futures = {}
        for it in items:
            fut = client.submit(P.process_subject, it, str(out_dir), key=f"alps-{it.key}-{token}", pure=False,
                                **kwargs)
            futures[fut] = it
        for fut in as_completed(list(futures)):
            it = futures.pop(fut)
            try:
                row = fut.result()
            except Exception as exc:  # the task itself failed (worker lost...), not the pipeline
                row = {"participant_id": it.participant_id, "session_id": it.session_id, "status": "failed",
                       "error": f"dask: {type(exc).__name__}: {it.dwi}: {exc}"}
            fut.release()
            yield row
    finally:
        for fut in futures:  # interrupted: do not leave work queued on the cluster
            fut.cancel()
        if owned:
            client.close()


# ----------------------------------------------------------------------------- group level
def source_dataset(out_dir) -> Path | None:
    """The input dataset recorded in ``OUT_DIR/dataset_description.json`` (``SourceDatasets``)."""
    desc = P._read_json(Path(out_dir) / "dataset_description.json") or {}
    for src in desc.get("SourceDatasets") or []:
        url = (src or {}).get("URL", "") if isinstance(src, dict) else ""
        parsed = urlparse(url)
        if parsed.scheme == "file":
            return Path(url2pathname(parsed.path))
    return None


def _items_from_records(out_dir) -> list[aio.SubjectInput]:
    """Scans known only from their run records (the input dataset is not reachable)."""
    out_dir = Path(out_dir)
    items = []
    for rec_path in sorted(list(out_dir.glob("sub-*/*_desc-run.json"))
                           + list(out_dir.glob("sub-*/ses-*/*_desc-run.json"))):
        rec = P._read_json(rec_path) or {}
        row = rec.get("row") or {}
        pid, ses = row.get("participant_id"), row.get("session_id")
        if not isinstance(pid, str):
            continue
        dummy = Path(f"{pid}_dwi.nii.gz")
        items.append(aio.SubjectInput(pid, dummy, dummy, dummy, ses if isinstance(ses, str) else None))
    return items


def _gather_row(out_dir, item) -> tuple[dict, tuple]:
    """The scan's table row from its run record, or a ``missing``/``running`` row."""
    base = {"participant_id": item.participant_id, "session_id": item.session_id}
    rec_path = P.run_record_path(out_dir, item)
    if P.scan_locked(out_dir, item):
        return {**base, "status": "running",
                "error": f"{rec_path.parent}: a run is processing this scan (lock held)"}, ()
    rec = P.read_run_record(out_dir, item)
    if rec is None:
        return {**base, "status": "missing",
                "error": f"{rec_path}: no result (not run yet, or the run was killed)"}, ()
    row, stages = dict(rec["row"]), tuple(rec["stages"])
    if row.get("status") == "ok":
        # an interrupted rerun invalidates the stage records first: the run record is then stale
        paths = P.output_paths(out_dir, item)
        need = [paths["preprocess_json"]] if "preprocess" in stages else []
        need += [paths["result_json"]] if "measure" in stages else []
        for f in need:
            r = P._read_json(f)
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
        raise aio.InputError(f"{out_dir}: output directory not found")
    src = Path(input_path) if input_path is not None else source_dataset(out_dir)
    if src is not None and src.exists():
        items = aio.discover(src, participant_label=participant_label, strict=False)
    else:
        items = _items_from_records(out_dir)
        if participant_label is not None:
            labels = {lab if lab.startswith("sub-") else f"sub-{lab}" for lab in
                      ([participant_label] if isinstance(participant_label, str) else participant_label)}
            items = [it for it in items if it.participant_id in labels]
        if not items:
            where = f"input {src} not found and " if src is not None else ""
            raise aio.InputError(f"{out_dir}: {where}no per-scan results (sub-*/*_desc-run.json) to gather")
    rows, stages = [], set()
    for it in items:
        row, st = _gather_row(out_dir, it)
        rows.append(row)
        stages.update(st)
    # the one-shot run decides by its stages; here: alps.tsv/qc.tsv if any scan was measured
    stages = ("preprocess", "measure") if "measure" in stages or not stages else ("preprocess",)
    df, tables = P.cohort_tables(rows, stages, timings=False)
    if write:
        P.write_tables(tables, out_dir, lock=True, wait=lock_wait)
    return df


def _parameter_sets(out_dir, items) -> int:
    """How many different parameter sets the finished scans were measured with."""
    seen = set()
    for it in items:
        r = P._read_json(P.output_paths(out_dir, it)["result_json"])
        if r and r.get("status") == "ok":
            prov = r.get("provenance") or {}
            seen.add(P._canon({"measure": prov.get("parameters"),
                               "preprocess": (prov.get("preprocess") or {}).get("parameters")}))
    return len(seen)


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="output directory of the participant-level 'alps run' jobs")
    parser.add_argument("--input", default=None, metavar="PATH",
                        help="input dataset listing the expected scans (default: SourceDatasets of "
                        "OUT_DIR/dataset_description.json)")
    parser.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                        help="gather only these subjects (with or without 'sub-')")
    parser.add_argument("--lock-wait", type=float, default=None, metavar="S",
                        help=f"seconds to wait for OUT_DIR's lock, held by a whole-cohort run (default {P.TABLES_LOCK_WAIT_S:.0f})")


def cli(args) -> int:
    try:
        df = group(args.out_dir, input_path=args.input, participant_label=args.participant_label,
                   lock_wait=args.lock_wait)
    except (aio.InputError, aio.GradientError) as exc:
        print(f"alps group: {exc}")
        return 2
    counts = df["status"].value_counts()
    n_ok = int(counts.get("ok", 0))
    print(f"alps group: {n_ok}/{len(df)} scans ok"
          + "".join(f", {int(n)} {s}" for s, n in counts.items() if s != "ok")
          + f" -> {Path(args.out_dir) / 'alps.tsv'}")
    for _, r in df[df["status"] != "ok"].iterrows():
        ses = r.get("session_id") if "session_id" in df.columns else None
        key = r["participant_id"] + (f"_{ses}" if isinstance(ses, str) and ses else "")
        print(f"  {str(r['status']).upper()} {key}: {r['error']}")
    try:
        items = aio.discover(args.input or source_dataset(args.out_dir), strict=False)
    except Exception:
        items = _items_from_records(args.out_dir)
    if _parameter_sets(args.out_dir, items) > 1:
        print("alps group: WARNING: the scans were processed with different parameters "
              "(see provenance in sub-*/dwi/*_desc-alps.json)", file=sys.stderr)
    return 0 if n_ok > 0 else 1
