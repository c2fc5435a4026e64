"""Time per-subject generation of the simulated cohort and write a CSV.

Usage::

    .venv/bin/python benchmarks/bench_simulate.py OUT.csv [--n-subjects 6] [--seed 20260505]
        [--snr 25] [--max-rotation 10]

One row per subject: synthesis time (resampling, reorientation, DWI, noise), write time
(gzip level 1 + atomic rename), process CPU time of both (load-independent), compressed size and grid; plus a first row ``fields`` with the
one-off cost of building the template-space phantom (per worker process).
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_csv", help="CSV file to write")
    ap.add_argument("--n-subjects", type=int, default=6)
    ap.add_argument("--seed", type=int, default=20260505)
    ap.add_argument("--snr", type=float, default=25.0)
    ap.add_argument("--max-rotation", type=float, default=10.0)
    args = ap.parse_args(argv)

    from alps import simulation as S
    from alps.simulation.phantom import make_template_fields

    t0 = time.perf_counter()
    fields = make_template_fields()
    t_fields = time.perf_counter() - t0
    scheme = S.default_scheme(seed=args.seed)
    clinical = S.clinical_table(args.seed)
    rows = [{"subject": "fields", "t_simulate_s": round(t_fields, 3), "t_write_s": 0.0,
             "cpu_s": "", "nifti_mb": 0.0, "shape": ""}]
    with tempfile.TemporaryDirectory() as tmp:
        for i, row in enumerate(clinical.head(args.n_subjects).itertuples(index=False)):
            rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(1, i)))
            pose = S.draw_pose(rng, args.max_rotation)
            planted = {"alps_L": row.planted_alps_L, "alps_R": row.planted_alps_R}
            c0 = time.process_time()
            t0 = time.perf_counter()
            img, bvals, bvecs, _ = S.simulate_subject(fields, pose, planted, snr=args.snr,
                                                      seed=i, scheme=scheme)
            t1 = time.perf_counter()
            path = Path(tmp) / f"{row.participant_id}_dwi.nii.gz"
            S.write_nifti_gz(img, path)
            t2 = time.perf_counter()
            cpu = time.process_time() - c0
            rows.append({"subject": row.participant_id, "t_simulate_s": round(t1 - t0, 3),
                         "t_write_s": round(t2 - t1, 3), "cpu_s": round(cpu, 3),
                         "nifti_mb": round(path.stat().st_size / 1e6, 2),
                         "shape": "x".join(map(str, img.shape))})
            print(rows[-1], flush=True)
    out = Path(args.out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    sims = [r for r in rows if r["subject"] != "fields"]
    if sims:
        per = np.mean([r["t_simulate_s"] + r["t_write_s"] for r in sims])
        print(f"mean per subject {per:.2f} s, mean file {np.mean([r['nifti_mb'] for r in sims]):.1f} MB"
              f" -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
