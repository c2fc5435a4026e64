"""Stage records, run records and the clean-up of what a killed run left behind.

* A stage's JSON record (``*_desc-preprocess.json``, ``*_desc-alps.json``) is written last and is
  the only thing that marks the stage finished; it lists the SHA-256 of the stage's outputs, and
  reuse needs them intact (:func:`outputs_intact`).
* A scan's run record (``*_desc-run.json``) is its row of the cohort tables (without run-dependent
  columns) from the last run that processed it; ``alps group`` gathers them.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from .. import atomic
from ..imaging.ants import owns_scratch
from ..io.files import sha256
from .layout import COHORT_FILES, read_json, scan_layout

#: run-dependent columns (returned by :func:`alps.pipeline.run_cohort`, written to ``timings.tsv`` only).
RUN_COLUMNS_PREFIX = ("time_",)
RUN_COLUMNS = ("preprocess_reused", "measure_reused")


def is_run_column(c) -> bool:
    """Is ``c`` a run-dependent column (timings, reuse flags)?"""
    return c in RUN_COLUMNS or c.startswith(RUN_COLUMNS_PREFIX)


def unlink(path) -> None:
    """Remove a file if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def files_sha256(base, names) -> dict:
    """``{name: SHA-256}`` of files under ``base``."""
    return {n: sha256(Path(base) / n) for n in sorted(set(names))}


def outputs_intact(base, record) -> bool:
    """All files listed in ``record['outputs_sha256']`` exist with the recorded hashes."""
    hashes = record.get("outputs_sha256")
    if not isinstance(hashes, dict) or not hashes:
        return False
    try:
        return files_sha256(base, hashes) == hashes
    except OSError:
        return False


def clean_stale_temporaries(layout) -> list[Path]:
    """Delete what a killed run of one scan left behind: the temporaries of its own files
    (:func:`alps.atomic.temporary_target` in :meth:`ScanLayout.file_names`) and its ANTs scratch
    directories (``.alps-scratch-<key>.*``, :func:`alps.imaging.ants.owns_scratch`), in its
    derivatives folder and beside its run record (not recursive).

    Call it only while holding the scan's lock (:func:`alps.pipeline.locking.scan_lock`): every
    writer of these names holds that lock, so what is found then is provably stale. Everything
    else is left alone — above all the temporaries and scratch of the other scans sharing the
    folder (several runs of a session, each under its own lock, maybe on another host), which
    may be running now.
    """
    removed = []
    own = layout.file_names()
    for directory in dict.fromkeys((Path(layout.dir), Path(layout.scan_dir))):
        if not directory.is_dir():
            continue
        for f in directory.iterdir():
            if atomic.temporary_target(f.name) in own and f.is_file() and not f.is_symlink():
                unlink(f)
                removed.append(f)
            elif owns_scratch(f.name, layout.key) and f.is_dir() and not f.is_symlink():
                shutil.rmtree(f, ignore_errors=True)
                removed.append(f)
    return sorted(removed)


def clean_table_temporaries(out_dir) -> list[Path]:
    """Delete temporaries of the cohort tables and their data dictionaries left in OUT_DIR (call
    with OUT_DIR's lock held: the tables are written only under it). Nothing else of OUT_DIR is
    touched (participant-level runs write ``dataset_description.json`` without that lock)."""
    removed = []
    for f in Path(out_dir).glob(".*"):
        if f.is_file() and any(atomic.is_temporary(f.name, n) for n in COHORT_FILES):
            unlink(f)
            removed.append(f)
    return removed


def write_run_record(out_dir, item, row: dict, stages) -> None:
    """Record ``row`` for ``alps group``; rewritten only when its content changes (an unchanged
    rerun leaves every file of a finished scan untouched)."""
    rec = {"row": {k: v for k, v in row.items() if not is_run_column(k)}, "stages": list(stages)}
    path = scan_layout(out_dir, item).run_record
    text = json.dumps(rec, indent=2, sort_keys=True, default=atomic.json_default) + "\n"
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic.write_text(path, text)


def read_run_record(out_dir, item) -> dict | None:
    """The scan's run record, or None when it is missing or malformed."""
    rec = read_json(scan_layout(out_dir, item).run_record)
    if not rec or not isinstance(rec.get("row"), dict) or not isinstance(rec.get("stages"), list):
        return None
    return rec
