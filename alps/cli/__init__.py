"""Command-line entry point ``alps``.

Each subcommand is a module of this package exposing ``HELP``, ``add_arguments(parser)`` and
``cli(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, str] = {
    "run": "alps.cli.run",
    "gradcheck": "alps.cli.gradcheck",
    "simulate": "alps.cli.simulate",
    "group": "alps.cli.group",
    "validate": "alps.cli.validate",
    "convert": "alps.cli.convert",
    "paper": "alps.cli.paper",
    "reliability": "alps.cli.reliability",
    "columns": "alps.cli.columns",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alps",
        description="Open, reproducible DTI-ALPS analysis: "
        "ALPS = mean(Dxx_proj, Dxx_assoc) / mean(Dyy_proj, Dzz_assoc).",
    )
    parser.add_argument("--version", action="version", version=f"alps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter
                           if getattr(mod, "SHOW_DEFAULTS", False) else argparse.HelpFormatter)
        p.set_defaults(_module=module)
        mod.add_arguments(p)
    return parser


#: what an interrupted command prints (one line; exit status 130, as a shell gives SIGINT)
INTERRUPTED = "interrupted; run the same command again to resume (finished scans and notebooks are reused)"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(importlib.import_module(args._module).cli(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: one line, not the traceback of wherever it landed
        print(f"\nalps {args.command}: {INTERRUPTED}", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
