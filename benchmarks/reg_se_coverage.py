"""Are the per-scan standard errors calibrated? Coverage of the planted ALPS by the 95 % intervals
of the noise SE, the registration SE and their total, on a simulated cohort with known truth.

    .venv/bin/python benchmarks/reg_se_coverage.py BIDS DERIV OUT_PREFIX [--registration default]
        [--placement tract --placement-args JSON] [--n-boot 200]

``BIDS``: a simulated cohort (``alps simulate``; its planted values in
``derivatives/simulation/ground_truth.tsv``); ``DERIV``: its stage-1 derivatives
(:func:`alps.pipeline.run_cohort`, at least ``stages=("preprocess",)``). Per scan: the index with
the saved registration (or a variant of ``benchmarks/registration_variants.py``, cached under
``DERIV/../reg/<variant>``) and the default or tract-guided spheres; its noise SE (leverage-adjusted
wild bootstrap of the ROI voxels, ``--n-boot`` replicates, seed 20260505, as the pipeline's
``alps_se``); its registration SE (:mod:`alps.imaging.regse`: the sandwich covariance of the
registration, the index over the sigma points, the ROIs placed again through each); the total
``sqrt(se² + reg_se²)``. Writes ``OUT_PREFIX_scans.csv`` and ``OUT_PREFIX_coverage.csv``: per index
and SE the share of scans whose interval ``value ± 1.96 SE`` holds the planted value (with its
95 % Wilson interval), the bias, RMSE and r against the planted values, the mean SEs and the
z-score SD (``(value − planted)/SE``; 1 when calibrated).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

INDICES = ("alps", "alps_L", "alps_R")


def wilson(k, n, z=1.96):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def scan_row(item, lay, args) -> dict:
    import nibabel as nib

    from alps import io as aio
    from alps.imaging import dti, measure, noise
    from alps.imaging.registration import Registration
    from alps.imaging.roi import DEFAULT_CENTERS_MM, ROI_NAMES, default_spheres
    from alps.pipeline import load_registration
    from registration_variants import VARIANTS

    pre = lay.read_preprocess()
    fa_img = nib.load(str(lay.fa))
    fa = np.asarray(fa_img.dataobj, np.float32)
    mask = np.asarray(nib.load(str(lay.mask)).dataobj) > 0
    tensor, aff = dti.load_tensor_image(str(lay.tensor))
    reg = load_registration(pre, lay.dir)
    if args.registration != "default":
        cache = Path(args.deriv).parent / "reg" / args.registration / f"{lay.key}.json"
        if cache.is_file():
            t2s = np.asarray(json.loads(cache.read_text())["t2s"])
        else:
            t2s = VARIANTS[args.registration](nib.Nifti1Image(fa, aff), mask, fit=None, scan=None, real=None)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"t2s": np.asarray(t2s).tolist()}))
        reg = Registration(kind="affine", template_to_subject=t2s, forward_transforms=[], inverse_transforms=[])
    pkw = json.loads(args.placement_args)

    def centres_for(r):
        if args.placement != "tract":
            return None
        from alps.imaging.placement import place_rois

        return place_rois(tensor, aff, r, fa=fa, **pkw).centers_mm

    t0 = time.process_time()
    centres = centres_for(reg)
    t_place = time.process_time() - t0
    w = measure.sphere_weights(fa.shape, aff, reg, default_spheres(radius_mm=2.5, centers_mm=centres))
    v = measure.measure(tensor, aff, reg, w, fa=fa)
    row = {"participant_id": item.participant_id, **{k: v[k] for k in INDICES},
           **{f"purity_{n}": v[f"purity_{n}"] for n in ROI_NAMES}, "time_placement_cpu_s": t_place}
    if centres:
        row.update({f"shift_{n}": float(np.linalg.norm(np.subtract(centres[n], DEFAULT_CENTERS_MM[n])))
                    for n in ROI_NAMES})
    dwi = aio.load_dwi(str(item.dwi), str(item.bval), str(item.bvec))
    boot = noise.bootstrap_scan(dwi, reg, w, n_boot=args.n_boot, seed=20260505)
    row.update({f"{k}_se": float(boot[k].std(ddof=1)) for k in INDICES})
    t0 = time.process_time()
    from alps.pipeline.params import MeasureParams
    from alps.pipeline.placement import reg_se

    out = reg_se(mask, fa, tensor, aff, reg, centres, None, MeasureParams())
    out.pop("scatter", None)
    row.update({f"{k}_reg_se": out[f"{k}_reg_se"] for k in INDICES})
    row.update({f"{k}_total_se": float(np.hypot(row[f"{k}_se"], row[f"{k}_reg_se"])) for k in INDICES})
    row["roi_sd_max"] = out["roi_sd_max"]
    row["time_reg_se_cpu_s"] = time.process_time() - t0
    return row


def coverage_table(scans: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for k in INDICES:
        d = scans.dropna(subset=[k, f"planted_{k}"])
        err = d[k] - d[f"planted_{k}"]
        for se in ("se", "reg_se", "total_se"):
            s = d[f"{k}_{se}"]
            hit = (err.abs() <= 1.96 * s)
            lo, hi = wilson(int(hit.sum()), len(d))
            rows.append({"index": k, "se": se, "n": len(d), "coverage": float(hit.mean()), "coverage_lo": lo,
                         "coverage_hi": hi, "bias": float(err.mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                         "r": float(np.corrcoef(d[k], d[f"planted_{k}"])[0, 1]), "mean_se": float(s.mean()),
                         "z_sd": float((err / s).std(ddof=1)), "z_sd_debiased": float(((err - err.mean()) / s).std(ddof=1))})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bids")
    ap.add_argument("deriv")
    ap.add_argument("out_prefix")
    ap.add_argument("--registration", default="default")
    ap.add_argument("--placement", default="default", choices=("default", "tract"))
    ap.add_argument("--placement-args", default="{}")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--limit", type=int, default=0, help="first N scans only")
    args = ap.parse_args(argv)
    from alps.io.bids import discover
    from alps.pipeline.layout import read_json, scan_layout

    truth = pd.read_csv(Path(args.bids) / "derivatives" / "simulation" / "ground_truth.tsv", sep="\t")
    items = [i for i in discover(args.bids) if (read_json(scan_layout(args.deriv, i).preprocess_json) or {}).get("status") == "ok"]
    if args.limit:
        items = items[:args.limit]
    out = Path(args.out_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    part = out.with_name(out.name + "_scans.partial.csv")
    if part.is_file():
        done = {r["participant_id"]: r for r in pd.read_csv(part).to_dict("records")}
    rows = []
    for item in items:
        if item.participant_id in done:
            rows.append(done[item.participant_id])
            continue
        rows.append(scan_row(item, scan_layout(args.deriv, item), args))
        pd.DataFrame(rows).to_csv(part, index=False)
        print(f"{item.participant_id}: alps {rows[-1]['alps']:.3f} se {rows[-1]['alps_se']:.3f} "
              f"reg_se {rows[-1]['alps_reg_se']:.4f}", flush=True)
    scans = pd.DataFrame(rows)
    t = truth[["participant_id", "alps_L", "alps_R", "alps"]].rename(columns={k: f"planted_{k}" for k in INDICES})
    scans = scans.merge(t, on="participant_id", how="left")
    scans.to_csv(f"{out}_scans.csv", index=False, float_format="%.6g")
    cov = coverage_table(scans)
    cov.insert(0, "placement", args.placement + (args.placement_args if args.placement == "tract" else ""))
    cov.insert(0, "registration", args.registration)
    cov.to_csv(f"{out}_coverage.csv", index=False, float_format="%.5g")
    with pd.option_context("display.width", 250):
        print(cov.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
