"""``alps columns [NAME ...]``: what a column of the cohort tables is and which function computes
it, from the column registry (:mod:`alps.pipeline.columns`)."""
from __future__ import annotations

import argparse

HELP = "Describe columns of alps.tsv, qc.tsv, preprocess.tsv, timings.tsv, provenance.tsv: stage, function, units."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="column names, e.g. dxx_scanner_proj_L (default: every declared column)")


def cli(args) -> int:
    from ..pipeline.columns import main

    return main(list(args.names))
