"""``alps validate INPUT``: every problem of a BIDS dataset (or one DWI), per file, up front."""
from __future__ import annotations

import argparse

import pandas as pd

from ..io.bidsnames import load_filter_file
from ..io.errors import InputError
from ..io.validate import validate_dataset
from ..pipeline.params import ParameterError, PipelineParams, from_args
from ..pipeline.params import add_arguments as add_parameter_arguments
from ..pipeline.preprocess import acquisition_check

HELP = "Check a BIDS dataset (or one DWI) and report every problem per file, before a run."

#: the pipeline parameters that decide what is fitted on each scan (checked in advance).
FIT_PARAMETERS = ("tensor_model", "max_bval", "b0_threshold", "shell_tolerance")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="BIDS dataset root, QSIPrep derivatives root, or one DWI .nii[.gz]")
    parser.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                        help="subject labels to check (default: all)")
    parser.add_argument("--bids-filter-file", default=None, metavar="FILE",
                        help="JSON filter as fMRIPrep/QSIPrep take it (only matching DWI series; default: every DWI series)")
    add_parameter_arguments(parser, names=FIT_PARAMETERS)


def print_plans(df: pd.DataFrame, prefix: str = "INFO     ") -> None:
    """The ``info`` rows (what will be fitted on each scan), one line per distinct plan: the
    message itself for one scan, else the plan and its number of scans."""
    plans: dict[str, list[str]] = {}
    for text in df.loc[df["severity"] == "info", "problem"]:
        plans.setdefault(text.split(": ", 1)[-1], []).append(text)  # messages start with the file
    for plan, texts in plans.items():
        print(f"{prefix}{texts[0]}" if len(texts) == 1 else f"{prefix}{plan}: {len(texts)} scans")


def cli(args) -> int:
    try:
        query = load_filter_file(args.bids_filter_file) if args.bids_filter_file else None
    except InputError as exc:
        print(f"alps validate: {exc}")
        return 2
    try:
        params = PipelineParams.from_mapping(from_args(args), source="alps validate options")
    except ParameterError as exc:
        print(f"alps validate: {exc}")
        return 2
    df = validate_dataset(args.input, participant_label=args.participant_label, bids_filter=query,
                          scan_checks=[acquisition_check(params.preprocess)])
    n_err = int((df["severity"] == "error").sum())
    n_warn = int((df["severity"] == "warning").sum())
    for _, r in df[df["severity"] != "info"].iterrows():
        print(f"{r['severity'].upper():8s} {r['problem']}")
    print_plans(df)
    print(f"alps validate: {n_err} error(s), {n_warn} warning(s) in {args.input}")
    return 1 if n_err else 0
