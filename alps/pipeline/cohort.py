"""The cohort runner: every scan of a BIDS dataset (or one DWI file) through both stages, in
parallel (joblib, one ITK thread per worker so results do not depend on ``n_jobs``) or on a Dask
cluster, then the cohort tables (:mod:`alps.pipeline.tables`)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..io import discover
from ..io.bids import invalid_items
from .group import items_from_records
from .layout import id_columns
from . import locking
from .locking import cohort_lock
from .params import PipelineParams
from .provenance import write_dataset_description
from .records import clean_table_temporaries, read_run_record
from .subject import STAGES, process_subject
from .tables import cohort_tables, write_tables


def run_cohort(input_path, out_dir, *, params: PipelineParams | None = None, participant_label=None,
               bval=None, bvec=None, mask=None, bids_filter=None, stages=STAGES, force: bool = False, progress: bool = True,
               qc_png: bool = True, scheduler=None, tables: bool = True, **parameters) -> pd.DataFrame:
    """Run the pipeline over a BIDS dataset (or one DWI file) and write the cohort tables.

    Parameters
    ----------
    input_path : path-like
        BIDS dataset root or one DWI ``.nii[.gz]`` (``bval``/``bvec`` default: beside it).
    out_dir : path-like
        Output (BIDS derivatives) folder.
    params : :class:`~alps.pipeline.params.PipelineParams`, optional
        The pipeline's parameters (default: the defaults), overridden by ``**parameters`` —
        flat parameter names such as ``n_jobs=2, roi_radius=5.0, registration="syn"``. Every
        value is validated, and unknown names refused, before any scan is looked at.
    participant_label : str or list of str, optional
        Process only these subjects (a participant-level run, see Locking).
    mask : path-like, optional
        A brain mask for a single-file input (e.g. of an FSL/MRtrix-preprocessed DWI); used instead
        of ours. QSIPrep derivatives bring theirs (:mod:`alps.io.bids`).
    bids_filter : path-like or dict, optional
        A BIDS filter file as fMRIPrep/QSIPrep take it (``{"dwi": {"run": 1}}``) or its ``dwi``
        query (:func:`alps.io.bidsnames.load_filter_file`). Without one, every DWI series is
        processed (several runs of a session each get their own row).
    stages : tuple
        ``("preprocess", "measure")`` (default) or ``("preprocess",)``.
    force : bool
        Recompute finished scans.
    scheduler : str or ``distributed.Client``, optional
        A ``dask.distributed`` scheduler: the scans run on its workers (which must see INPUT and
        OUT_DIR at the same paths) instead of ``n_jobs`` local processes; same tables
        (:mod:`alps.pipeline.distributed`).
    tables : bool
        Write the cohort tables (``False`` for the jobs of an array; ``alps group`` gathers them).

    Per-scan problems (invalid image or gradients, duplicate runs, failed registration...) never
    stop the run: the scan gets ``status='failed'`` and an ``error`` naming its file. Raises
    :class:`alps.io.InputError` when the input cannot be read at all, and
    :class:`~alps.pipeline.params.ParameterError` for an invalid parameter.

    Locking: a whole-cohort run (no ``participant_label``) holds OUT_DIR's lock for its duration
    and raises :class:`alps.io.InputError` when another run holds it. A participant-level run
    locks only its scans, so any number of them can share OUT_DIR, and takes OUT_DIR's lock only
    briefly to write its tables.

    Tables of a participant-level run are updated per row: the rows of the scans it ran replace
    theirs, and every other scan with a run record under OUT_DIR keeps its row (read from that
    record, as ``alps group`` does), so a ``--participant-label`` run never shrinks them.
    With a ``scheduler``, INPUT, OUT_DIR and the gradient files are made absolute before anything
    is submitted (a worker's current folder is not the caller's).

    Returns
    -------
    DataFrame, one row per scan; with the measure stage it is ``alps.tsv`` plus the
    run-dependent columns (``preprocess_reused``, ``measure_reused``, ``time_*_s``) that are
    written to ``timings.tsv`` instead; otherwise the preprocessing status table
    (``preprocess.tsv`` plus the same run columns).
    """
    params = (params or PipelineParams()).replace(**parameters)  # validated before any scan is read
    stages = tuple(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
    if scheduler is not None:  # the workers resolve nothing: send absolute paths
        input_path, out_dir = Path(input_path).resolve(), Path(out_dir).resolve()
        bval, bvec, mask = (Path(f).resolve() if f else None for f in (bval, bvec, mask))
    if bids_filter is not None and not isinstance(bids_filter, dict):
        from ..io.bidsnames import load_filter_file

        bids_filter = load_filter_file(bids_filter)
    items = discover(input_path, participant_label=participant_label, bval=bval, bvec=bvec, mask=mask,
                     bids_filter=bids_filter, strict=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kw = dict(params=params, stages=stages, force=force, progress=progress, qc_png=qc_png,
              scheduler=scheduler, tables=tables)
    if participant_label is None:  # cohort level: the whole run under OUT_DIR's lock
        with cohort_lock(out_dir) as held:
            if held:  # only the tables' temporaries: scans clean their own (under their locks)
                clean_table_temporaries(out_dir)
            return _run(items, input_path, out_dir, lock_tables=False, **kw)
    return _run(items, input_path, out_dir, lock_tables=True, **kw)


def _run(items, input_path, out_dir, *, params, stages, force, progress, qc_png, scheduler, tables,
         lock_tables):
    from ..progress import progress_bar as tqdm

    write_dataset_description(out_dir, input_path)
    invalid = [it for it in items if it.invalid]  # never processed: nothing written for them
    rows = [invalid_row(it) for it in invalid]
    items = [it for it in items if not it.invalid]
    kw = dict(params=params, stages=stages, force=force, qc_png=qc_png)
    # the bar is closed however the loop ends (an interrupted run's message then follows it)
    with tqdm(total=len(items) + len(rows), initial=len(rows), desc=f"alps {'+'.join(stages)}",
              disable=not progress, unit="subj") as bar:
        if not items:
            pass
        elif scheduler is not None:
            from .distributed import map_subjects

            for row in map_subjects(items, out_dir, scheduler, **kw):
                rows.append(row)
                bar.update(1)
        elif params.n_jobs == 1 or len(items) == 1:
            for it in items:
                rows.append(process_subject(it, out_dir, **kw))
                bar.update(1)
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=min(params.n_jobs, len(items)), return_as="generator_unordered")
            for row in par(delayed(process_subject)(it, out_dir, **kw) for it in items):
                rows.append(row)
                bar.update(1)
    df, _ = cohort_tables(rows, stages)
    if tables:
        if lock_tables:  # participant level: the other scans keep their rows
            with cohort_lock(out_dir, wait=locking.TABLES_LOCK_WAIT_S) as held:
                if held:
                    clean_table_temporaries(out_dir)
                others = other_rows(out_dir, {it.key for it in items})
                if Path(input_path).is_dir():  # the other subjects' misnamed files (never recorded) too
                    mine = {it.dwi for it in invalid}
                    others += [invalid_row(it) for it in invalid_items(input_path) if it.dwi not in mine]
                write_tables(cohort_tables(rows + others, stages)[1], out_dir)
        else:
            write_tables(cohort_tables(rows, stages)[1], out_dir)
    return df


def invalid_row(item) -> dict:
    """The failed row of a file that looks like a diffusion image but breaks BIDS naming
    (:attr:`alps.io.SubjectInput.invalid`; its ``error`` names the file and the rules)."""
    return {**id_columns(item), "status": "failed", "error": f"validation: {item.error}"}


def other_rows(out_dir, keys) -> list[dict]:
    """The recorded rows of every scan under OUT_DIR whose key is not in ``keys`` (scans a
    participant-level run did not touch), from their run records."""
    rows = []
    for it in items_from_records(out_dir):
        if it.key in keys:
            continue
        rec = read_run_record(out_dir, it)
        if rec is not None:
            rows.append(dict(rec["row"]))
    return rows
