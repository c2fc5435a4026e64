"""Command-line entry point ``alps``.

Subcommands are provided by modules that expose ``add_arguments(parser)`` and
``cli(args) -> int``; they are imported lazily so ``alps --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("alps.pipeline", "Run the DTI-ALPS pipeline on a BIDS dataset or one DWI file."),
    "gradcheck": ("alps.gradcheck", "Check a DWI's gradient table for flipped or swapped axes "
                  "(fibre coherence, Jeurissen et al. 2014)."),
    "simulate": ("alps.simulate", "Generate the simulated BIDS DWI cohort with planted ALPS truth."),
    "group": ("alps.distributed", "Gather per-subject results under OUT_DIR into alps.tsv, qc.tsv and preprocess.tsv."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alps",
        description="Open, reproducible DTI-ALPS analysis: "
        "ALPS = mean(Dxx_proj, Dxx_assoc) / mean(Dyy_proj, Dzz_assoc).",
    )
    parser.add_argument("--version", action="version", version=f"alps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return int(importlib.import_module(args._module).cli(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
