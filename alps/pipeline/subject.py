"""One scan through both stages, under its lock; failures become rows, never exceptions.

The scan's row is made here, once, from the typed stage results
(:mod:`alps.pipeline.contract`): the scan's ids and scanner metadata, stage 1's
:meth:`~alps.pipeline.contract.Preprocessed.columns`, stage 2's
:meth:`~alps.pipeline.contract.ScanResult.columns`, the input hashes and parameters for
``provenance.tsv`` and the run-dependent times and reuse flags for ``timings.tsv``; every column
is declared in :mod:`alps.pipeline.columns`.
"""
from __future__ import annotations

import contextlib
import time
import traceback

from .. import io as aio
from ..io import InputError, check_input_files
from ..io.metadata import scan_metadata
from .contract import Preprocessed, stage_columns
from .locking import scan_lock
from .measure import failure_qc, measure_subject
from .params import PipelineParams
from .preprocess import preprocess_subject
from .provenance import kv
from .records import clean_stale_temporaries, write_run_record
from .layout import id_columns, scan_layout

#: columns of a scan's row that go to ``provenance.tsv`` only (prefix removed there): SHA-256 of the
#: inputs, the stage parameters and the package versions (``key=value; ...``).
PROV_PREFIX = "prov_"

STAGES = ("preprocess", "measure")


def process_subject(item, out_dir, *, params: PipelineParams | None = None, stages=STAGES,
                    force: bool = False, qc_png: bool = True, **overrides) -> dict:
    """Run the requested stages for one scan; never raises: failures become ``status='failed'``.

    ``params`` (default: the defaults) with flat ``overrides`` (parameter names). Holds the
    scan's lock (:func:`alps.pipeline.locking.scan_lock`, waiting if another run holds it) for the
    duration, so concurrent runs writing to one OUT_DIR (participant-level jobs, Dask workers)
    never touch the same scan at once, and records the returned row in the scan's run record for
    ``alps group``.
    """
    params = (params or PipelineParams()).replace(**overrides)
    try:
        with scan_lock(out_dir, item) as held:
            row = _process_subject(item, out_dir, stages=stages, force=force, qc_png=qc_png, params=params,
                                   clean=held)
            with contextlib.suppress(OSError, TypeError, ValueError):
                write_run_record(out_dir, item, row, stages)
    except OSError as exc:  # the lock could not be taken (unwritable OUT_DIR...)
        row = {**id_columns(item), "status": "failed", "error": f"lock: {type(exc).__name__}: {exc}"}
    return row


def _process_subject(item, out_dir, *, stages, force, qc_png, params: PipelineParams, clean: bool) -> dict:
    row = id_columns(item)
    stage = "validation"
    try:
        if item.error:
            raise InputError(item.error)
        check_input_files(item)
        row.update(scan_metadata(item))
        if clean:  # only under the scan's lock, and only the scan's own leftovers
            clean_stale_temporaries(scan_layout(out_dir, item))
        stage = "hashing"
        t = time.perf_counter()
        hashes = aio.input_hashes(item)
        row["time_hash_s"] = round(time.perf_counter() - t, 3)
        row.update({f"{PROV_PREFIX}{k}_sha256": v for k, v in hashes.items()})
        pre = None
        if "preprocess" in stages:
            stage = "preprocess"
            pre = preprocess_subject(item, out_dir, params=params.preprocess, force=force, hashes=hashes)
            row["preprocess_reused"] = pre.reused
        elif "measure" in stages:  # a finished stage 1 on disk
            stage = "measure"
            pre = Preprocessed.load(item, out_dir)
        if pre is not None:  # stage 1's cells, once
            prov = pre.record.get("provenance") or {}
            row[f"{PROV_PREFIX}preprocess_parameters"] = kv(prov.get("parameters"))
            row[f"{PROV_PREFIX}versions"] = kv(prov.get("versions"))
            row.update(pre.columns())
            row.update(stage_columns(pre.times))
        if "measure" in stages:
            stage = "measure"
            res = measure_subject(pre, out_dir, params=params.measure, force=force, qc_png=qc_png)
            row[f"{PROV_PREFIX}measure_parameters"] = kv(res.provenance.get("parameters"))
            row.update(res.columns())
            row["measure_reused"] = res.reused
        row["status"] = "ok"
        row["error"] = ""
    except FileNotFoundError as exc:
        row.update(status="failed", error=f"{stage}: input file not found: {exc.filename or exc}")
    except Exception as exc:  # recorded, the cohort continues
        text = str(exc)
        if not any(name in text for name in (item.dwi.name, item.bval.name, item.bvec.name)):
            text = f"{item.dwi}: {text}"  # every recorded error names the scan's file
        msg = f"{stage}: {type(exc).__name__}: {text}"
        if not isinstance(exc, (ValueError, RuntimeError)):
            msg += " | " + traceback.format_exc(limit=3).replace("\n", " ")[-400:]
        row.update(status="failed", error=msg)
    if row["status"] == "failed" and stage in ("preprocess", "measure"):  # a QC image of the failure, if registered
        row.update(failure_qc(item, out_dir, row["error"], params.measure, draw=qc_png))
    return row
