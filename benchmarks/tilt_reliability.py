"""Reliability of the default ALPS index on the two shared tilt sets (the README's table).

    .venv/bin/python benchmarks/tilt_reliability.py OUT_DIR [--bids DIR] [alps run options ...]

Builds a BIDS view of symlinks of ``../shared/data/real_dwi/{toshiba,canon}_galan_tilts``
(``sub-toshiba`` and ``sub-canon``, one session per acquisition, named by its slice plane —
``ses-ortho``, ``ses-ax``, ``ses-sag``, ``ses-cor``, ``ses-all`` — so that the sessions are
shared labels across the two heads), runs ``alps run BIDS OUT_DIR`` (default parameters and
profile, plus any options given) and ``alps reliability OUT_DIR --by participant_id``, and
prints the per-head and per-index figures as a Markdown table: spread (max − min over the five
acquisitions), noise-only spread (from the scans' wild-bootstrap SEs) and the probability that
noise alone spreads the five as far, Cochran's Q p, the
within-subject CV and, over the two heads, ICC(2,1)/ICC(3,1) (two participants only: their CIs
are wide). Everything it prints is read from ``OUT_DIR/reliability.tsv``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "real_dwi"
HEADS = {"toshiba": "toshiba_galan_tilts", "canon": "canon_galan_tilts"}
PLANES = ("ortho", "AX", "SAG", "COR", "ALL")


def build_bids(root: Path, shared: Path = SHARED) -> Path:
    """The symlink BIDS view of the two tilt sets under ``root`` (module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub, folder in HEADS.items():
        src = shared / folder
        scans = sorted(src.glob("*.nii.gz"))
        if len(scans) != 5:
            raise FileNotFoundError(f"{src}: expected the five tilt series, found {len(scans)}")
        for nii in scans:
            stem = nii.name[: -len(".nii.gz")]
            plane = next(p for p in PLANES if p in stem).lower()
            d = root / f"sub-{sub}" / f"ses-{plane}" / "dwi"
            d.mkdir(parents=True, exist_ok=True)
            for ext in (".nii.gz", ".bval", ".bvec", ".json"):
                link = d / f"sub-{sub}_ses-{plane}_dwi{ext}"
                if not link.exists():
                    link.symlink_to(src / f"{stem}{ext}")
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "Toshiba and Canon tilt sets (symlinks)", "BIDSVersion": "1.9.0"}))
    return root


def markdown(table: pd.DataFrame) -> str:
    """The README table from ``reliability.tsv``."""
    def f(v, d=3):
        return "n/a" if pd.isna(v) else ("< 0.001" if d == "p" and v < 0.001 else f"{v:.3f}" if d == "p" else f"{v:.{d}f}")

    lines = ["| head | index | spread | noise-only spread | P(noise spread ≥ observed) | Cochran's Q p | "
             "within-subject CV | ICC(2,1) [95 % CI] | ICC(3,1) [95 % CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        head = "both (2 heads)" if r["participant_id"] == "all" else r["participant_id"].removeprefix("sub-")
        spread = f(r["spread"]) + (" (mean)" if r["participant_id"] == "all" else "")
        icc = ["", ""]
        if r["participant_id"] == "all":
            icc = [f"{f(r[k])} [{f(r[k + '_ci_low'], 2)}, {f(r[k + '_ci_high'], 2)}]" for k in ("icc21", "icc31")]
        lines.append(f"| {head} | {r['index']} | {spread} | {f(r['noise_spread'])} | {f(r['spread_p'], 'p')} | "
                     f"{f(r['q_p'], 'p')} | "
                     f"{f(r['cv_within'])} | {icc[0]} | {icc[1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--bids", default=None, help="where to build the BIDS view (default: OUT_DIR/../tilts_bids)")
    args, run_options = ap.parse_known_args(argv)
    sys.path.insert(0, str(REPO))
    from alps.cli import main as alps

    out = Path(args.out_dir).resolve()
    bids = build_bids(Path(args.bids) if args.bids else out.parent / "tilts_bids")
    rc = alps(["run", str(bids), str(out), *run_options])
    if rc != 0:
        return rc
    rc = alps(["reliability", str(out), "--by", "participant_id"])
    if rc != 0:
        return rc
    table = pd.read_csv(out / "reliability.tsv", sep="\t", keep_default_na=False, na_values=["n/a"])
    print()
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
