"""Per-stage time and peak memory of the pipeline, and the head-rotation sweep.

    .venv/bin/python benchmarks/bench_pipeline.py timing OUT_CSV [--n-sim 5]   # simulated 2 mm + real Philips
    .venv/bin/python benchmarks/bench_pipeline.py sweep OUT_CSV [--angles 0 5 10 15]

*timing*: the real pipeline (:func:`alps.pipeline.process_subject`, default parameters), each
scan in a fresh single-threaded process (ITK, BLAS and OpenMP 1 thread) after a warm-up that
imports the libraries and loads the templates once (``startup``, what a cohort worker pays once).
Stage times are the pipeline's own (the ``time_*_s`` columns of ``timings.tsv``: hash, load,
preprocess = brain mask [+ denoise/Gibbs/motion], tensor_fit, write, registration, measure, qc);
``total`` is the wall time of ``process_subject``; ``floor`` = load + preprocess + tensor_fit, the
work any tensor pipeline does, and ``ratio`` = total / floor. Peak memory: a thread samples the
process's resident set size every 5 ms and attributes each sample to the stage running then
(stage functions are wrapped, not changed); ``peak_rss_mb`` is the largest sample in the stage.
Simulated subjects: ``--n-sim`` poses of the default phantom (SNR 25, 37 volumes, 2 mm); the
summary rows (``subject = simulated_2mm (median)``) are medians over them.

*sweep*: one simulated subject (``alps.simulation``, SNR 100, identity scale) with the head rotated
by each angle about x, y and z (0, ±5, ±10, ±15° by default); writes one row per pose with the
template-axis and scanner-axis ALPS, and prints the spreads (max − min).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
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
import json, os, sys, threading, time
for k in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, sys.argv[3])
t0 = time.perf_counter()
from alps import atomic, io as aio, pipeline as P
from alps.imaging import preprocess, dti, registration as R, measure as M, template as tpl
from alps.imaging.ants import ants_module
from alps.pipeline import measure as PM
ants_module(1); tpl.load("wm"); tpl.load("mask"); R.metric_mask_image()
startup = time.perf_counter() - t0

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

current = ["other"]
peaks = {}
done = threading.Event()
def sampler():
    while not done.is_set():
        m = rss_mb(); k = current[0]
        peaks[k] = max(peaks.get(k, 0.0), m)
        time.sleep(0.005)

def wrap(mod, name, stage):
    fn = getattr(mod, name)
    def inner(*a, **k):
        prev = current[0]; current[0] = stage
        try:
            return fn(*a, **k)
        finally:
            current[0] = prev
    setattr(mod, name, inner)
wrap(aio, "input_hashes", "hash"); wrap(aio, "load_dwi", "load"); wrap(preprocess, "brain_mask", "preprocess")
wrap(dti, "fit_tensor", "tensor_fit"); wrap(R, "register", "registration"); wrap(M, "roi_weights", "measure")
wrap(M, "measure", "measure"); wrap(PM, "_qc_png", "qc"); wrap(atomic, "save_nifti", "write")
items = aio.discover(sys.argv[1], bval=sys.argv[4] if len(sys.argv) > 4 else None,
                     bvec=sys.argv[5] if len(sys.argv) > 5 else None)
th = threading.Thread(target=sampler, daemon=True); th.start()
t = time.perf_counter()
row = P.process_subject(items[0], sys.argv[2])
total = time.perf_counter() - t
done.set(); th.join()
if row["status"] != "ok":
    raise SystemExit(f"pipeline failed: {row['error']}")
times = {k[5:-2]: v for k, v in row.items() if k.startswith("time_") and k.endswith("_s")}
print(json.dumps({"startup": startup, "total": total, "times": times, "peaks": peaks, "alps": row["alps"]}))
"""

#: stage order of the table (the pipeline's time_*_s names).
STAGES = ("hash", "load", "preprocess", "tensor_fit", "write", "registration", "measure", "qc")


def _run_child(src, work, *, bval=None, bvec=None) -> dict:
    import json

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1")
    args = [sys.executable, "-c", _CHILD, str(src), str(work), str(REPO)]
    if bval:
        args += [str(bval), str(bvec)]
    res = subprocess.run(args, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed on {src}:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _rows(name, shape, info) -> list[dict]:
    rows = []
    for st in STAGES:
        if st in info["times"]:
            rows.append({"subject": name, "shape": shape, "stage": st, "seconds": info["times"][st],
                         "peak_rss_mb": info["peaks"].get(st, float("nan"))})
    floor = sum(info["times"].get(k, 0.0) for k in ("load", "preprocess", "tensor_fit"))
    rows += [{"subject": name, "shape": shape, "stage": "total", "seconds": info["total"],
              "peak_rss_mb": max(info["peaks"].values())},
             {"subject": name, "shape": shape, "stage": "floor (load+preprocess+tensor_fit)", "seconds": floor,
              "peak_rss_mb": float("nan")},
             {"subject": name, "shape": shape, "stage": "ratio total/floor", "seconds": info["total"] / floor,
              "peak_rss_mb": float("nan")},
             {"subject": name, "shape": shape, "stage": "startup (once per worker)", "seconds": info["startup"],
              "peak_rss_mb": float("nan")}]
    return rows


def run_timing(out_csv, *, work=None, n_sim: int = 5):
    import nibabel as nib
    import pandas as pd

    work = Path(work or tempfile.mkdtemp(prefix="alps-bench-"))
    rows = []
    rng_poses = [(6.0, -4.0, 3.0), (-8.0, 5.0, -2.0), (3.0, 9.0, 7.0), (-5.0, -7.0, 9.0), (9.0, 2.0, -8.0),
                 (0.0, 0.0, 0.0), (-9.0, -3.0, -6.0), (4.0, -9.0, 1.0)]
    sim_rows = []
    for n in range(n_sim):
        bids = work / f"sim{n:02d}"
        pid = f"sim{n:02d}"
        simulate_pose_subject(bids, pid, rng_poses[n % len(rng_poses)], snr=25.0, seed=n + 1)
        dwi = bids / f"sub-{pid}" / "dwi" / f"sub-{pid}_dwi.nii.gz"
        shape = "x".join(map(str, nib.load(str(dwi)).shape))
        info = _run_child(bids, work / f"out_sim{n:02d}")
        r = _rows(f"simulated_2mm #{n + 1}", shape, info)
        sim_rows += r
        print(f"simulated #{n + 1}: total {info['total']:.2f} s", flush=True)
    rows += sim_rows
    if sim_rows:
        df = pd.DataFrame(sim_rows)
        med = df.groupby("stage", sort=False)[["seconds", "peak_rss_mb"]].median().reset_index()
        med.insert(0, "shape", df["shape"].iloc[0])
        med.insert(0, "subject", "simulated_2mm (median)")
        rows += med.to_dict("records")
    if REAL_PHILIPS.exists():
        stem = str(REAL_PHILIPS)[: -len(".nii.gz")]
        info = _run_child(REAL_PHILIPS, work / "out_philips", bval=stem + ".bval", bvec=stem + ".bvec")
        shape = "x".join(map(str, nib.load(str(REAL_PHILIPS)).shape))
        rows += _rows("real_philips_2mm", shape, info)
    df = pd.DataFrame(rows, columns=["subject", "shape", "stage", "seconds", "peak_rss_mb"])
    df.to_csv(out_csv, index=False, float_format="%.3f")
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(df[~df["subject"].str.contains("#")].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return df


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("timing", "sweep"))
    ap.add_argument("out_csv")
    ap.add_argument("--angles", type=float, nargs="+", default=[5, 10, 15])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--work", default=None)
    ap.add_argument("--n-sim", type=int, default=5, help="timing: simulated subjects (median reported)")
    args = ap.parse_args(argv)
    if args.mode == "timing":
        run_timing(args.out_csv, work=args.work, n_sim=args.n_sim)
    else:
        run_sweep(args.out_csv, args.angles, n_jobs=args.n_jobs, work=args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
