"""``alps validate INPUT``: every problem of a BIDS dataset (or one DWI), per file, up front."""
from __future__ import annotations

import argparse

import pandas as pd

from ..io.bidsnames import load_filter_file
from ..io.errors import InputError
from ..io.validate import validate_dataset

HELP = "Check a BIDS dataset (or one DWI) and report every problem per file, before a run."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="BIDS dataset root, QSIPrep derivatives root, or one DWI .nii[.gz]")
    parser.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                        help="subject labels to check (default: all)")
    parser.add_argument("--bids-filter-file", default=None, metavar="FILE",
                        help="JSON filter as fMRIPrep/QSIPrep take it (only matching DWI series; default: every DWI series)")


def cli(args) -> int:
    try:
        query = load_filter_file(args.bids_filter_file) if args.bids_filter_file else None
    except InputError as exc:
        print(f"alps validate: {exc}")
        return 2
    df = validate_dataset(args.input, participant_label=args.participant_label, bids_filter=query)
    n_err = int((df["severity"] == "error").sum())
    n_warn = int((df["severity"] == "warning").sum())
    with pd.option_context("display.width", 200, "display.max_colwidth", 160):
        for _, r in df.iterrows():
            print(f"{r['severity'].upper():8s} {r['problem']}")
    print(f"alps validate: {n_err} error(s), {n_warn} warning(s) in {args.input}")
    return 1 if n_err else 0
