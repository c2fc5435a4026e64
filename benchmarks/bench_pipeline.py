"""Per-stage time and peak memory of the pipeline, and the head-rotation sweep.

    .venv/bin/python benchmarks/bench_pipeline.py timing OUT_CSV     # simulated 2 mm subject + real Philips scan
    .venv/bin/python benchmarks/bench_pipeline.py sweep OUT_CSV [--angles 0 5 10 15]

*timing*: each subject is processed in a fresh single-threaded process (ITK 1 thread, BLAS 1
thread); per stage the wall time and the process's peak RSS (``ru_maxrss``) after the stage are
recorded (peak RSS is cumulative, so it is the peak up to and including that stage).

*sweep*: one simulated subject (``alps.simulate``, SNR 100, identity scale) with the head rotated
by each angle about x, y and z (0, ±5, ±10, ±15° by default); writes one row per pose with the
template-axis and scanner-axis ALPS, and prints the spreads (max − min).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL_PHILIPS = REPO.parent / "shared" / "data" / "real_dwi" / "philips_ingenia_elition_2mm" / "2201_WIP_DTI_S2MB2.nii.gz"


from alps.validation import simulate_pose_subject  # noqa: E402


def run_sweep(out_csv, angles=(5, 10, 15), *, n_jobs=2, work=None, snr=100.0):
    """The head-rotation sweep of :func:`alps.validation.rotation_sweep`, printed with its spreads."""
    from alps.validation import rotation_sweep, sweep_spreads

    work = Path(work or tempfile.mkdtemp(prefix="alps-sweep-"))
    res = rotation_sweep(work, angles=angles, snr=snr, n_jobs=n_jobs)
    res.to_csv(out_csv, index=False, float_format="%.4f")
    print(res.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(sweep_spreads(res).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return res


# ----------------------------------------------------------------------------- timing
_CHILD = r"""
import json, os, resource, sys, time
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
import numpy as np, nibabel as nib
sys.path.insert(0, sys.argv[3])
from alps import io as aio, preprocess, dti, registration as R, measure as M, pipeline as P, template as tpl
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
out = []
t = time.perf_counter(); tpl.load("wm"); tpl.load("mask"); out.append(("template_load", time.perf_counter() - t, rss()))
item = aio.discover(sys.argv[1])[0]
t = time.perf_counter(); dwi = aio.load_dwi(item.dwi, item.bval, item.bvec); out.append(("load_validate", time.perf_counter() - t, rss()))
t = time.perf_counter(); mask = preprocess.brain_mask(dwi.data, dwi.bvals); out.append(("brain_mask", time.perf_counter() - t, rss()))
t = time.perf_counter(); maps = dti.fit_tensor(dwi.data, dwi.bvals, dwi.bvecs, dwi.affine, mask); out.append(("tensor_fit", time.perf_counter() - t, rss()))
t = time.perf_counter(); reg = R.register(nib.Nifti1Image(maps.fa, dwi.affine), mask, out_dir=sys.argv[2], check=False); out.append(("registration", time.perf_counter() - t, rss()))
t = time.perf_counter(); w = M.roi_weights("spheres", maps.fa.shape, dwi.affine, reg); r = M.measure(maps.tensor, dwi.affine, reg, w, fa=maps.fa, md=maps.md); out.append(("rois_alps", time.perf_counter() - t, rss()))
t = time.perf_counter(); P._qc_png({"qc_png": os.path.join(sys.argv[2], "qc.png")}, maps.fa, maps.tensor, dwi.affine, reg, M.dseg_from_weights(w, maps.fa.shape), dict(P.MEASURE_DEFAULTS), item); out.append(("qc_png", time.perf_counter() - t, rss()))
print(json.dumps({"shape": list(dwi.data.shape), "stages": out, "alps": r["alps"]}))
"""


def run_timing(out_csv, *, work=None):
    import json

    import pandas as pd

    work = Path(work or tempfile.mkdtemp(prefix="alps-bench-"))
    subjects = []
    bids = work / "sim"
    simulate_pose_subject(bids, "sim01", (6.0, -4.0, 3.0), snr=25.0)
    subjects.append(("simulated_2mm", bids))
    if REAL_PHILIPS.exists():
        subjects.append(("real_philips_2mm", REAL_PHILIPS))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1")
    rows = []
    for name, src in subjects:
        wd = work / name
        wd.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(wd), str(REPO)], env=env,
                             capture_output=True, text=True, check=True)
        total = time.perf_counter() - t
        info = json.loads(res.stdout.strip().splitlines()[-1])
        for stage, sec, mb in info["stages"]:
            rows.append({"subject": name, "shape": "x".join(map(str, info["shape"])), "stage": stage,
                         "seconds": sec, "peak_rss_mb": mb})
        rows.append({"subject": name, "shape": "x".join(map(str, info["shape"])), "stage": "TOTAL (process wall, incl. imports)",
                     "seconds": total, "peak_rss_mb": max(r[2] for r in info["stages"])})
    df = pd.DataFrame(rows)
    df.to_csv(out_csv, index=False, float_format="%.3f")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return df


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("timing", "sweep"))
    ap.add_argument("out_csv")
    ap.add_argument("--angles", type=float, nargs="+", default=[5, 10, 15])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--work", default=None)
    args = ap.parse_args(argv)
    if args.mode == "timing":
        run_timing(args.out_csv, work=args.work)
    else:
        run_sweep(args.out_csv, args.angles, n_jobs=args.n_jobs, work=args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
