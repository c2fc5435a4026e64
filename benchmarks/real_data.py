"""Reproduce the real-scan figures: ALPS on the Philips scan and the five tilted Toshiba series.

    .venv/bin/python benchmarks/real_data.py OUT_CSV [--work DIR] [--n-jobs 2] [--roi-radius 2.5 ...]

Builds a temporary BIDS view (symlinks) of ``../shared/data/real_dwi``, runs
:func:`alps.pipeline.run_cohort` on it for each requested ROI radius, and writes one CSV row per
scan and radius with the template-axis and scanner-axis ALPS (L, R, mean), plus rows
``toshiba_spread`` (max − min over the five Toshiba tilts). QC PNGs stay under ``--work``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alps.pipeline import run_cohort  # noqa: E402

REAL = REPO.parent / "shared" / "data" / "real_dwi"
SCANS = {
    "philips": "philips_ingenia_elition_2mm/2201_WIP_DTI_S2MB2",
    "toshiba7006ortho": "toshiba_galan_tilts/7006_DTI_ortho",
    "toshiba8006ax30": "toshiba_galan_tilts/8006_DTI_AX_30d",
    "toshiba6006sag30": "toshiba_galan_tilts/6006_DTI_SAG_30d",
    "toshiba9006cor20": "toshiba_galan_tilts/9006_DTI_COR_20d",
    "toshiba10006all20": "toshiba_galan_tilts/10006_DTI_ALL_20d",
}
VALUES = ["alps_L", "alps_R", "alps", "alps_scanner_L", "alps_scanner_R", "alps_scanner"]


def make_bids(root: Path, real: Path = REAL) -> Path:
    """Symlink the real scans into a minimal BIDS layout ``sub-<name>/dwi/sub-<name>_dwi.*``."""
    for sub, stem in SCANS.items():
        d = root / f"sub-{sub}" / "dwi"
        d.mkdir(parents=True, exist_ok=True)
        for ext in (".nii.gz", ".bval", ".bvec", ".json"):
            src = real / (stem + ext)
            dst = d / f"sub-{sub}_dwi{ext}"
            if src.exists() and not dst.exists():
                os.symlink(src, dst)
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_csv")
    ap.add_argument("--work", default=None, help="work/derivatives directory (default: a temp dir)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--roi-radius", type=float, nargs="+", default=[2.5, 5.0])
    ap.add_argument("--registration", default="affine")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print(f"{REAL}: real data not available", file=sys.stderr)
        return 1
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="alps-real-"))
    bids = make_bids(work / "bids")
    rows = []
    for radius in args.roi_radius:
        out = work / f"derivatives_r{radius:g}_{args.registration}"
        df = run_cohort(bids, out, n_jobs=args.n_jobs, roi_radius=radius, registration=args.registration)
        for _, r in df.iterrows():
            row = {"scan": r["participant_id"].removeprefix("sub-"), "roi_radius": radius,
                   "registration": args.registration, "status": r["status"], "error": r["error"]}
            row.update({k: r.get(k) for k in VALUES + ["reg_corr", "reg_dice", "qc_flags"]})
            rows.append(row)
        tosh = df[df["participant_id"].str.startswith("sub-toshiba") & (df["status"] == "ok")]
        spread = {"scan": "toshiba_spread", "roi_radius": radius, "registration": args.registration,
                  "status": f"n={len(tosh)}", "error": ""}
        spread.update({k: float(tosh[k].max() - tosh[k].min()) if len(tosh) else float("nan") for k in VALUES})
        rows.append(spread)
        print(f"radius {radius:g} mm: derivatives in {out}")
    res = pd.DataFrame(rows)
    Path(args.out_csv).parent.mkdir(parents=True, exist_ok=True)
    res.to_csv(args.out_csv, index=False, float_format="%.4f")
    with pd.option_context("display.width", 200):
        print(res.drop(columns=["error"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
