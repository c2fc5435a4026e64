"""``alps convert DICOM_DIR BIDS_DIR``: the diffusion series of a DICOM folder into BIDS (dcm2niix)."""
from __future__ import annotations

import argparse

from ..io.dicom import convert
from ..io.errors import InputError

HELP = ("Convert the diffusion series of a DICOM folder into a BIDS dataset (dcm2niix; dir- from the phase "
        "encoding; no identifying fields); says what every other series was and why it was skipped.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dicom_dir", help="folder of DICOM files (searched recursively)")
    parser.add_argument("bids_dir", help="BIDS dataset to write into (created if missing)")
    parser.add_argument("--subject", default="01", metavar="LABEL",
                        help="BIDS subject label of the outputs (never taken from the DICOM; default: 01)")
    parser.add_argument("--session", default=None, metavar="LABEL", help="BIDS session label (default: none)")


def cli(args) -> int:
    try:
        files = convert(args.dicom_dir, args.bids_dir, subject=args.subject, session=args.session,
                        log=lambda line: print(f"alps convert: {line}"))
    except InputError as exc:
        print(f"alps convert: {exc}")
        return 2
    print(f"alps convert: wrote {len(files)} diffusion series")
    print(f"alps convert: next: alps validate {args.bids_dir} && alps run {args.bids_dir} OUT_DIR")
    return 0
