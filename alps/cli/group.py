"""``alps group OUT_DIR``: gather the per-scan results of participant-level runs into the
cohort tables (:mod:`alps.pipeline.group`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..io import GradientError, InputError, discover
from ..pipeline.group import group, items_from_records, parameter_sets, source_dataset
from ..pipeline.locking import TABLES_LOCK_WAIT_S

HELP = "Gather per-subject results under OUT_DIR into alps.tsv, qc.tsv and preprocess.tsv."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="output directory of the participant-level 'alps run' jobs")
    parser.add_argument("--input", default=None, metavar="PATH",
                        help="input dataset listing the expected scans (default: SourceDatasets of "
                        "OUT_DIR/dataset_description.json)")
    parser.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                        help="gather only these subjects (with or without 'sub-'; default: all)")
    parser.add_argument("--lock-wait", type=float, default=None, metavar="S",
                        help=f"seconds to wait for OUT_DIR's lock, held by a whole-cohort run (default {TABLES_LOCK_WAIT_S:.0f})")


def cli(args) -> int:
    try:
        df = group(args.out_dir, input_path=args.input, participant_label=args.participant_label,
                   lock_wait=args.lock_wait)
    except (InputError, GradientError) as exc:
        print(f"alps group: {exc}")
        return 2
    counts = df["status"].value_counts()
    n_ok = int(counts.get("ok", 0))
    print(f"alps group: {n_ok}/{len(df)} scans ok"
          + "".join(f", {int(n)} {s}" for s, n in counts.items() if s != "ok")
          + f" -> {Path(args.out_dir) / 'alps.tsv'}")
    for _, r in df[df["status"] != "ok"].iterrows():
        ses = r.get("session_id") if "session_id" in df.columns else None
        key = r["participant_id"] + (f"_{ses}" if isinstance(ses, str) and ses else "")
        print(f"  {str(r['status']).upper()} {key}: {r['error']}")
    try:
        items = discover(args.input or source_dataset(args.out_dir), strict=False)
    except Exception:
        items = items_from_records(args.out_dir)
    if parameter_sets(args.out_dir, items) > 1:
        print("alps group: WARNING: the scans were processed with different parameters "
              "(see provenance in sub-*/dwi/*_desc-alps.json)", file=sys.stderr)
    return 0 if n_ok > 0 else 1
