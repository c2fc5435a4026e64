"""Byte-for-byte comparison of the tables of two runs (the determinism check of ``make test``).

``python -m alps.compare RUN_A RUN_B --pattern 'results/tables/*' ...``

Every file matching one of the glob patterns (relative to each run's root) must exist in both runs
and have identical bytes. Prints one line per file and, for a text file that differs, its first
differing line in each run; exits 1 if anything differs or is missing from one side, 2 when no
file matches at all (a check that compares nothing is a failure, not a pass).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

#: columns of :func:`compare_trees`.
COLUMNS = ["file", "status", "detail"]


def first_difference(a: bytes, b: bytes) -> str:
    """``"line N: <a> | <b>"`` for the first differing line of two texts (or a byte offset)."""
    try:
        la, lb = a.decode("utf-8").splitlines(), b.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return f"byte {n} (sizes {len(a)} and {len(b)})"
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return f"line {i + 1}: {x[:160]!r} | {y[:160]!r}"
    return f"line {min(len(la), len(lb)) + 1}: one file ends ({len(la)} vs {len(lb)} lines)"


def compare_trees(root_a, root_b, patterns) -> pd.DataFrame:
    """Compare the files matching ``patterns`` under two roots.

    Returns
    -------
    DataFrame with columns ``file`` (path relative to the roots), ``status`` ('identical',
    'different', 'missing_in_a', 'missing_in_b') and ``detail`` (first difference), sorted by file.
    """
    root_a, root_b = Path(root_a), Path(root_b)
    for r in (root_a, root_b):
        if not r.is_dir():
            raise FileNotFoundError(f"{r}: run directory not found")
    names = set()
    for pat in patterns:
        for root in (root_a, root_b):
            names.update(str(p.relative_to(root)) for p in root.glob(pat) if p.is_file())
    rows = []
    for name in sorted(names):
        pa, pb = root_a / name, root_b / name
        if not pa.is_file():
            rows.append((name, "missing_in_a", ""))
        elif not pb.is_file():
            rows.append((name, "missing_in_b", ""))
        else:
            a, b = pa.read_bytes(), pb.read_bytes()
            rows.append((name, "identical", "") if a == b else (name, "different", first_difference(a, b)))
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alps.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--pattern", nargs="+", required=True, help="glob patterns relative to each run root")
    args = ap.parse_args(argv)
    try:
        res = compare_trees(args.run_a, args.run_b, args.pattern)
    except FileNotFoundError as exc:
        print(f"alps.compare: {exc}", file=sys.stderr)
        return 2
    if res.empty:
        print(f"alps.compare: no file matches {args.pattern} under {args.run_a} or {args.run_b}", file=sys.stderr)
        return 2
    for _, r in res.iterrows():
        print(f"{r['status']:>12}  {r['file']}" + (f"\n              {r['detail']}" if r["detail"] else ""))
    bad = res[res["status"] != "identical"]
    print(f"{len(res) - len(bad)} of {len(res)} files identical in {args.run_a} and {args.run_b}")
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
