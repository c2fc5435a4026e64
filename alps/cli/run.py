"""``alps run INPUT OUT_DIR``: the pipeline over a BIDS dataset or one DWI file."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..io import GradientError, InputError
from ..pipeline import run_cohort
from ..pipeline.params import ParameterError, PipelineParams, from_profile
from ..pipeline.params import add_arguments as add_parameter_arguments
from ..pipeline.params import from_args

HELP = ("Run the DTI-ALPS pipeline on a BIDS dataset or one DWI file. Exit status: 0 when every scan "
        "was processed, 1 when any scan failed (0 with --allow-failures if at least one succeeded), "
        "2 for invalid options or input.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="BIDS dataset root, or one DWI .nii[.gz] file")
    parser.add_argument("out_dir", help="output (BIDS derivatives) directory")
    parser.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                        help="subject labels to process (with or without 'sub-'; default: all); for a "
                        "single DWI file whose name has no sub- entity, the one label names its participant "
                        "(default there: from the file name)")
    parser.add_argument("--bval", default=None, help="b-values file (single-file input; default: beside it)")
    parser.add_argument("--bvec", default=None, help="b-vectors file (single-file input; default: beside it)")
    parser.add_argument("--mask", default=None, metavar="FILE",
                        help="brain mask of a single-file input (e.g. FSL/MRtrix-preprocessed DWI); used "
                        "instead of ours (default: our own mask; QSIPrep derivatives bring their desc-brain_mask)")
    parser.add_argument("--bids-filter-file", default=None, metavar="FILE",
                        help="JSON filter as fMRIPrep/QSIPrep take it, e.g. {\"dwi\": {\"run\": 1, "
                        "\"acquisition\": \"mb\"}}; default: every DWI series, each run its own row")
    parser.add_argument("--force", action="store_true", help="recompute finished scans (default: reuse them)")
    parser.add_argument("--profile", default="default",
                        help="configuration profile whose 'pipeline' section gives the defaults: a name "
                        "in config/ (config/<name>.yaml) or the path of a YAML file (default: default)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run the scans on a dask.distributed cluster (e.g. tcp://host:8786; needs "
                        "the 'scale' extra; INPUT and OUT_DIR are sent as absolute paths, which the workers "
                        "must see; default: local processes, --n-jobs)")
    parser.add_argument("--no-tables", action="store_true",
                        help="do not write the cohort tables (participant-level jobs of an array; "
                        "gather them afterwards with 'alps group OUT_DIR'; default: write them, updating "
                        "only the rows of the scans run)")
    parser.add_argument("--allow-failures", action="store_true",
                        help="exit 0 when some scans failed but at least one succeeded (default: exit 1 "
                        "when any scan failed)")
    add_parameter_arguments(parser)


#: columns of the console summary (those present): the scan's identity, then its result.
SUMMARY_COLUMNS = ("participant_id", "session_id", "run", "status", "alps_L", "alps_R", "alps", "alps_scanner",
                   "qc_flags")


def resolve_parameters(args) -> PipelineParams:
    """The profile's ``pipeline`` section overlaid by the options given (validated)."""
    return from_profile(args.profile, from_args(args), what="options")


def print_dataset_check(input_path, *, participant_label=None, bids_filter_file=None, max_warnings: int = 5,
                        params: PipelineParams | None = None) -> int:
    """The dataset check of ``alps validate`` (:func:`alps.io.validate.validate_dataset`, with what
    the tensor model of ``params`` will fit on each scan), printed before a run: every error (that
    scan will fail; the others run), up to ``max_warnings`` warnings and one line per distinct
    tensor-fit plan, then a count. Returns the number of errors."""
    from ..io.bidsnames import load_filter_file
    from ..io.validate import validate_dataset
    from ..pipeline.preprocess import acquisition_check
    from .validate import print_plans

    query = load_filter_file(bids_filter_file) if bids_filter_file else None
    params = params or PipelineParams()
    df = validate_dataset(input_path, participant_label=participant_label, bids_filter=query,
                          scan_checks=[acquisition_check(params.preprocess)])
    errors, warnings = df[df["severity"] == "error"], df[df["severity"] == "warning"]
    for problem in errors["problem"]:
        print(f"alps run: error: {problem}")
    for problem in warnings["problem"].iloc[:max_warnings]:
        print(f"alps run: warning: {problem}")
    print_plans(df, prefix="alps run: ")
    if len(errors) or len(warnings):
        more = f" (first {max_warnings} warnings shown)" if len(warnings) > max_warnings else ""
        print(f"alps run: dataset check: {len(errors)} error(s), {len(warnings)} warning(s){more}; "
              f"'alps validate {input_path}' lists them all; scans with errors fail, the others run")
    return len(errors)


def cli(args) -> int:
    try:
        params = resolve_parameters(args)
    except (ParameterError, FileNotFoundError, ValueError) as exc:
        print(f"alps run: {exc}")
        return 2
    if Path(args.input).is_dir():
        try:
            print_dataset_check(args.input, participant_label=args.participant_label,
                                bids_filter_file=args.bids_filter_file, params=params)
        except InputError as exc:
            print(f"alps run: invalid input: {exc}")
            return 2
    try:
        df = run_cohort(args.input, args.out_dir, params=params, participant_label=args.participant_label,
                        bval=args.bval, bvec=args.bvec, mask=args.mask, bids_filter=args.bids_filter_file,
                        force=args.force, scheduler=args.scheduler,
                        tables=not args.no_tables)
    except (InputError, GradientError) as exc:
        print(f"alps run: invalid input: {exc}")
        return 2
    except (ImportError, OSError, TimeoutError) as exc:
        if args.scheduler is None:
            raise
        print(f"alps run: cannot use the Dask scheduler {args.scheduler}: {type(exc).__name__}: {exc}")
        return 2
    n_ok = int((df["status"] == "ok").sum())
    dest = "no tables written ('alps group' gathers them)" if args.no_tables else Path(args.out_dir) / "alps.tsv"
    print(f"alps run: {n_ok}/{len(df)} scans processed -> {dest}")
    show = [c for c in SUMMARY_COLUMNS if c in df.columns]
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(df[show].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    failed = df[df["status"] != "ok"]
    for _, r in failed.iterrows():
        scan = " ".join(str(r[c]) for c in SUMMARY_COLUMNS[:3] if c in df.columns and isinstance(r[c], str))
        png = r.get("qc_png")
        seen = f" (QC image: {Path(args.out_dir) / png})" if isinstance(png, str) and png else ""
        print(f"  FAILED {scan}: {r.get('error')}{seen}")
    if failed.empty:
        return 0
    if args.allow_failures and n_ok > 0:
        print(f"alps run: {len(failed)} scan(s) failed (--allow-failures: exit 0)")
        return 0
    print(f"alps run: {len(failed)} scan(s) failed (exit 1; --allow-failures to accept)")
    return 1
