"""``alps reliability OUT_DIR``: reliability of the ALPS index over repeated scans of the same
people (:mod:`alps.stats.reliability`), from ``OUT_DIR/alps.tsv``."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

HELP = ("Reliability over repeated scans (sessions, test-retest, tilts): ICC(2,1)/(3,1), within-subject CV, "
        "Cochran's Q and the noise-only spread from the per-scan SEs, a Bland-Altman figure.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="output directory of 'alps run' (reads OUT_DIR/alps.tsv)")
    parser.add_argument("--by", default="participant_id", metavar="COLUMN",
                        help="column naming the person scanned repeatedly (default: participant_id)")
    parser.add_argument("--session", default="session_id", metavar="COLUMN",
                        help="column naming the repeat; the same labels across people make ICC(2,1)/(3,1) "
                        "possible (default: session_id)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the Monte-Carlo noise-only spread (default: 0)")
    parser.add_argument("--no-figure", action="store_true", help="write the tables only (default: also the Bland-Altman figure)")


def read_scans(path) -> pd.DataFrame:
    """``alps.tsv`` as written by ``alps run`` (``n/a`` = missing; ids as text)."""
    from ..io.tables import read_tsv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (run 'alps run INPUT OUT_DIR' first)")
    return read_tsv(path, "ALPS table", text_columns=("participant_id", "session_id"))


def cli(args) -> int:
    from .. import atomic
    from ..pipeline.layout import RELIABILITY_FILES
    from ..stats import StatsInputError
    from ..stats import reliability as rel

    out = Path(args.out_dir)
    try:
        scans = read_scans(out / "alps.tsv")
    except (FileNotFoundError, ValueError, pd.errors.ParserError) as exc:  # missing, empty, unreadable
        print(f"alps reliability: {exc}")
        return 2
    try:
        table = rel.reliability_table(scans, by=args.by, session=args.session, seed=args.seed)
        ba = pd.concat([rel.bland_altman(scans, by=args.by, session=args.session, index=i) for i in rel.INDICES],
                       ignore_index=True)
    except StatsInputError as exc:
        print(f"alps reliability: {exc}")
        return 2
    atomic.write_table(out / RELIABILITY_FILES["table"], table)
    atomic.write_table(out / RELIABILITY_FILES["bland_altman"], ba)
    written = [out / RELIABILITY_FILES["table"], out / RELIABILITY_FILES["bland_altman"]]
    if not args.no_figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..figures.reliability_plots import bland_altman_figure
        from ..figures.style import save_figure, style

        with style():
            fig = bland_altman_figure(ba, by=args.by, session=args.session)
            written += save_figure(fig, out / RELIABILITY_FILES["figure"])
            plt.close(fig)
    show = ["participant_id", "index", "n_scans", "mean", "spread", "noise_spread", "q_p", "cv_within", "icc21",
            "icc31"]
    with pd.option_context("display.width", 160):
        print(table[show].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for note in sorted(set(n for n in table["note"].dropna() if n)):
        print(f"  note: {note}")
    print("alps reliability: wrote " + ", ".join(str(p) for p in written))
    return 0
