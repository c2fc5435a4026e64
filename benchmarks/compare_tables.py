"""Tolerance comparison of two runs' tables (where :mod:`alps.compare` asks for identical bytes).

``python benchmarks/compare_tables.py RUN_A RUN_B [--pattern 'results/tables/*.csv'] [--tol 1e-9]``

For each CSV/TSV present in both runs: same columns and rows, identical text cells, and numeric
cells equal within ``--tol`` (absolute, or relative to the larger magnitude, whichever is larger);
JSON files are compared leaf by leaf the same way. Prints the largest difference per file and exits
non-zero when any file differs by more than the tolerance. Used when a statistics library replaces
hand-written code (values equal to rounding, not to the last bit).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _close(a: float, b: float, tol: float) -> float:
    """The difference of two numbers beyond what ``tol`` allows (0 when they agree)."""
    if (a is None or (isinstance(a, float) and math.isnan(a))) and (b is None or (isinstance(b, float) and math.isnan(b))):
        return 0.0
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return math.inf
    d = abs(a - b)
    return 0.0 if d <= tol * max(1.0, abs(a), abs(b)) else d


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, tol: float) -> tuple[float, str]:
    """(largest difference, first problem or "") of two tables."""
    if list(a.columns) != list(b.columns):
        return math.inf, f"columns differ: {list(a.columns)} vs {list(b.columns)}"
    if len(a) != len(b):
        return math.inf, f"rows differ: {len(a)} vs {len(b)}"
    worst, problem = 0.0, ""
    for c in a.columns:
        na, nb = pd.to_numeric(a[c], errors="coerce"), pd.to_numeric(b[c], errors="coerce")
        numeric = na.notna() | a[c].isna()
        if numeric.all() and (nb.notna() | b[c].isna()).all():
            d = np.abs(na.to_numpy(float) - nb.to_numpy(float))
            bad = (na.isna() != nb.isna()).to_numpy()
            if bad.any():
                return math.inf, f"column {c}: missing values differ"
            worst = max(worst, float(np.nanmax(d)) if np.isfinite(d).any() else 0.0)
            if any(_close(x, y, tol) for x, y in zip(na.to_numpy(float), nb.to_numpy(float))):
                problem = problem or f"column {c}: differs by {np.nanmax(d):.3g}"
        else:  # text, or mixed text and numbers (the reproduction table): cell by cell
            for x, y, nx, ny in zip(a[c].astype(object), b[c].astype(object), na, nb):
                if not (pd.isna(nx) or pd.isna(ny)):
                    worst = max(worst, abs(nx - ny))
                    if _close(float(nx), float(ny), tol):
                        problem = problem or f"column {c}: {x} vs {y}"
                elif str("" if pd.isna(x) else x) != str("" if pd.isna(y) else y):
                    return math.inf, f"column {c}: text differs ({x!r} vs {y!r})"
    return worst, problem


def _leaves(x, prefix=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, f"{prefix}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, x


def compare_json(a, b, tol: float) -> tuple[float, str]:
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    if la.keys() != lb.keys():
        return math.inf, f"keys differ: {sorted(set(la) ^ set(lb))}"
    worst, problem = 0.0, ""
    for k, va in la.items():
        vb = lb[k]
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool):
            d = abs(float(va) - float(vb))
            worst = max(worst, d)
            if _close(float(va), float(vb), tol):
                problem = problem or f"{k}: {va} vs {vb}"
        elif va != vb:
            return math.inf, f"{k}: {va!r} vs {vb!r}"
    return worst, problem


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--pattern", default="results/tables/*")
    ap.add_argument("--tol", type=float, default=1e-9)
    args = ap.parse_args(argv)
    a_dir, b_dir = Path(args.run_a), Path(args.run_b)
    files = sorted(p.relative_to(a_dir) for p in a_dir.glob(args.pattern) if p.is_file())
    failed = 0
    for rel in files:
        pa, pb = a_dir / rel, b_dir / rel
        if not pb.is_file():
            print(f"  missing    {rel}")
            failed += 1
            continue
        if pa.suffix == ".json":
            worst, problem = compare_json(json.loads(pa.read_text()), json.loads(pb.read_text()), args.tol)
        elif pa.suffix in (".csv", ".tsv"):
            sep = "\t" if pa.suffix == ".tsv" else ","
            worst, problem = compare_frames(pd.read_csv(pa, sep=sep), pd.read_csv(pb, sep=sep), args.tol)
        else:
            worst, problem = (0.0, "") if pa.read_bytes() == pb.read_bytes() else (math.inf, "bytes differ")
        status = "DIFFERS" if problem else ("identical" if pa.read_bytes() == pb.read_bytes() else "within tol")
        failed += bool(problem)
        print(f"  {status:10s} {rel}  max |diff| {worst:.3g}" + (f"  ({problem})" if problem else ""))
    print(f"{len(files) - failed} of {len(files)} files agree within {args.tol:g}")
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main())
