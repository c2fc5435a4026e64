"""The DTI-ALPS pipeline: per-scan stages, the cohort runner and its tables.

Per scan, two stages (each resumable on its own), passing typed results (:mod:`.contract`):

:func:`preprocess_subject` (:mod:`.preprocess`) → :class:`Preprocessed`
    load + validate (:mod:`alps.io`) → the volumes of the tensor model → brain mask → optional
    MP-PCA / Gibbs / motion correction → gradient check → tensor fit → registration of FA to
    MNI152 2009a.
:func:`measure_subject` (:mod:`.measure`) → :class:`ScanResult`
    ROIs to native space → ALPS in template and scanner axes → QC flags and PNG → the standard
    errors of the scan's own estimator (:mod:`.uncertainty`).

:func:`run_cohort` (:mod:`.cohort`) runs both over a BIDS dataset (or one file) in parallel,
skips scans whose inputs (SHA-256), parameters (:mod:`.params`) and package versions are
unchanged, records a failing scan with ``status='failed'`` and its error while the others finish,
and writes ``alps.tsv``, ``qc.tsv``, ``preprocess.tsv`` and ``provenance.tsv`` (:mod:`.tables`)
under OUT_DIR, a BIDS derivatives dataset whose every file name comes from :mod:`.layout`.

Reliability
-----------
* every file is written atomically (:mod:`alps.atomic`); a stage's JSON record is written last
  and is the only thing that marks it finished; an existing record is deleted *before* a stage
  is recomputed, so an interrupted run never leaves a finished-looking record beside half-updated
  files (:mod:`.records`);
* reuse needs identical input hashes, parameters and package versions **and** derivative files
  whose SHA-256 matches the record (:mod:`.provenance`);
* stale temporary files of a killed run are removed by the next run of the same scan, which
  removes only its own (named after its key) and only under its lock, so scans running in
  parallel in one folder (several runs of a session) never touch each other's; one whole-cohort run at a
  time may write to an OUT_DIR, every scan is processed under its own lock (:mod:`.locking`), so
  participant-level runs (a SLURM array) share an OUT_DIR and ``alps group`` gathers their tables
  (:mod:`.group`); Dask clusters through :mod:`.distributed`;
* the tables contain no timing or run-dependent columns (same inputs + parameters →
  byte-identical tables); wall times and the ``*_reused`` flags are in ``timings.tsv``;
* privacy: of the BIDS sidecars only the scanner-metadata fields of
  :data:`alps.io.metadata.SIDECAR_COLUMNS` are read (manufacturer, model, field strength, software
  version, TE, TR, phase encoding: nothing identifying), and input NIfTI headers/extensions are
  never copied (every output image is built from arrays with a fresh header).
"""
from .cohort import run_cohort
from .contract import GradientCheck, PreparedDWI, Preprocessed, ScanResult
from .layout import COHORT_TABLES, LOCK_NAME, ScanLayout, find_scan, load_registration, read_json, scan_layout
from .locking import cohort_lock, scan_lock, scan_locked
from .measure import check_roi_coverage, measure_subject
from .params import MeasureParams, ParameterError, PipelineParams, PreprocessParams
from .preprocess import check_fov, preprocess_subject
from .subject import process_subject
from .tables import cohort_tables, qc_table, write_tables

__all__ = ["run_cohort", "process_subject", "preprocess_subject", "measure_subject", "Preprocessed", "ScanResult",
           "PreparedDWI", "GradientCheck", "cohort_tables",
           "qc_table", "write_tables", "PipelineParams", "PreprocessParams", "MeasureParams",
           "ParameterError", "ScanLayout", "scan_layout", "find_scan", "check_fov", "check_roi_coverage",
           "load_registration", "read_json", "cohort_lock", "scan_lock", "scan_locked", "COHORT_TABLES", "LOCK_NAME"]
