"""Compare two runs whose ``alps.tsv`` may differ only by added columns; writes a CSV.

Usage::

    .venv/bin/python benchmarks/compare_new_columns.py RUN_A RUN_B OUT.csv
        [--pattern 'results/tables/*' ...] [--alps-tsv NAME ...]

RUN_A is the baseline (e.g. main's results), RUN_B the branch. Files named like ``--alps-tsv``
(default ``alps.tsv``) must have the same rows in the same order and, for every column of RUN_A,
identical cells (compared as the text written, so byte-identical values); columns only in RUN_B
are listed (``new_columns``), columns missing from RUN_B are a failure. Every other file matched
by the patterns must be byte-identical (:func:`alps.compare.compare_trees`). Exit 1 on any
difference, 2 when nothing matched.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def compare_alps_tsv(a: Path, b: Path) -> tuple[str, str]:
    ta = pd.read_csv(a, sep="\t", dtype=str, keep_default_na=False)
    tb = pd.read_csv(b, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ta.columns if c not in tb.columns]
    new = [c for c in tb.columns if c not in ta.columns]
    if missing:
        return "different", f"columns missing in B: {missing}"
    if len(ta) != len(tb):
        return "different", f"{len(ta)} vs {len(tb)} rows"
    diff = [c for c in ta.columns if not ta[c].equals(tb[c])]
    if diff:
        c = diff[0]
        i = int((ta[c] != tb[c]).to_numpy().nonzero()[0][0])
        return "different", f"columns {diff}; first: row {i} {c}: {ta[c].iloc[i]!r} | {tb[c].iloc[i]!r}"
    order = [c for c in tb.columns if c in ta.columns] == list(ta.columns)
    return "identical_columns", (f"{len(ta.columns)} columns identical{'' if order else ' (order differs)'}; "
                                 f"new columns: {new}")


def main(argv=None) -> int:
    from alps.compare import compare_trees

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("out_csv")
    ap.add_argument("--pattern", nargs="+", default=["results/tables/*"])
    ap.add_argument("--alps-tsv", nargs="+", default=["alps.tsv"])
    args = ap.parse_args(argv)
    df = compare_trees(args.run_a, args.run_b, args.pattern)
    if df.empty:
        print("compare_new_columns: no file matched", file=sys.stderr)
        return 2
    for i, r in df.iterrows():
        if Path(r["file"]).name in args.alps_tsv and r["status"] == "different":
            df.loc[i, ["status", "detail"]] = compare_alps_tsv(Path(args.run_a) / r["file"], Path(args.run_b) / r["file"])
    from alps import atomic

    atomic.write_table(args.out_csv, df)
    with pd.option_context("display.width", 250, "display.max_colwidth", 200):
        print(df.to_string(index=False))
    return 0 if df["status"].isin(["identical", "identical_columns"]).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
