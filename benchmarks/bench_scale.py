"""Cohort wall time against the number of parallel subjects (``run_cohort(n_jobs=...)``).

    .venv/bin/python benchmarks/bench_scale.py OUT_CSV [--n-subjects 4] [--n-jobs 1 2] [--small]

Simulates a cohort once (``alps.simulation``: random head poses, planted ALPS, 2 mm, 32 directions;
``--small`` halves the resolution and uses 12 directions, for a quick check), then runs the whole
pipeline into a fresh output directory for each ``n_jobs`` and writes one CSV row per run:
``n_jobs, n_subjects, wall_s, s_per_subject``. Every run must give the same ``alps.tsv`` (checked:
one ITK/BLAS thread per worker, so results do not depend on ``n_jobs``). Ideal scaling is
``wall_s ∝ 1/n_jobs`` up to the number of free cores; memory per worker is in
benchmarks/bench_pipeline.py timing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
    os.environ.setdefault(_v, "1")  # before numpy is imported; inherited by the workers

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def simulate_bids(bids, n_subjects, *, small=False, seed=7):
    """Write ``n_subjects`` simulated DWI scans as a BIDS dataset (sub-01, sub-02, ...)."""
    import nibabel as nib
    import numpy as np

    from alps.io.gradients import write_bvals_bvecs
    from alps.simulation import default_scheme, draw_pose, make_template_fields, simulate_subject, write_nifti_gz

    fields = make_template_fields()
    rng = np.random.default_rng(seed)
    scheme = default_scheme(n_b0=1, n_dirs=12) if small else default_scheme()
    for i in range(1, n_subjects + 1):
        planted = {"alps_L": float(rng.uniform(1.3, 1.7)), "alps_R": float(rng.uniform(1.3, 1.7))}
        img, bvals, bvecs, _ = simulate_subject(fields, draw_pose(rng), planted, snr=30.0, seed=int(rng.integers(1 << 31)),
                                                scheme=scheme, dtype="float32")
        if small:  # 2 mm -> 4 mm (mean of 2x2x2 blocks)
            from alps.validation import downsample2

            img = nib.Nifti1Image(*downsample2(img.dataobj, img.affine))
        d = Path(bids) / f"sub-{i:02d}" / "dwi"
        d.mkdir(parents=True, exist_ok=True)
        write_nifti_gz(img, d / f"sub-{i:02d}_dwi.nii.gz")
        write_bvals_bvecs(bvals, bvecs, d / f"sub-{i:02d}_dwi.bval", d / f"sub-{i:02d}_dwi.bvec")


def run(out_csv, *, n_subjects=4, n_jobs=(1, 2), small=False, work=None):
    import pandas as pd

    from alps.pipeline import run_cohort

    work = Path(work or tempfile.mkdtemp(prefix="alps-scale-"))
    bids = work / "bids"
    t = time.perf_counter()
    simulate_bids(bids, n_subjects, small=small)
    print(f"simulated {n_subjects} subjects in {time.perf_counter() - t:.1f} s -> {bids}")
    rows, tables = [], {}
    for nj in n_jobs:
        out = work / f"derivatives-n{nj}"
        t = time.perf_counter()
        df = run_cohort(bids, out, n_jobs=nj, progress=False)
        wall = time.perf_counter() - t
        bad = df[df["status"] != "ok"]
        if len(bad):
            raise RuntimeError(f"n_jobs={nj}: failed scans:\n{bad[['participant_id', 'error']].to_string()}")
        tables[nj] = (out / "alps.tsv").read_bytes()
        rows.append({"n_jobs": nj, "n_subjects": n_subjects, "wall_s": round(wall, 2),
                     "s_per_subject": round(wall / n_subjects, 2)})
        print(f"n_jobs={nj}: {wall:.1f} s ({wall / n_subjects:.1f} s/subject)")
    if len(set(tables.values())) > 1:
        raise RuntimeError("alps.tsv differs between n_jobs values: " + ", ".join(map(str, tables)))
    res = pd.DataFrame(rows, columns=["n_jobs", "n_subjects", "wall_s", "s_per_subject"])
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    res.to_csv(out_csv, index=False)
    print(res.to_string(index=False))
    print(f"alps.tsv identical for n_jobs = {list(tables)}; wrote {out_csv}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_csv")
    ap.add_argument("--n-subjects", type=int, default=4)
    ap.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--small", action="store_true", help="4 mm, 12 directions (quick check)")
    ap.add_argument("--work", default=None, help="working directory (default: a new temporary one)")
    a = ap.parse_args(argv)
    run(a.out_csv, n_subjects=a.n_subjects, n_jobs=a.n_jobs, small=a.small, work=a.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
