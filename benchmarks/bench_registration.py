"""Registration configurations compared on accuracy, consistency and time.

    .venv/bin/python benchmarks/bench_registration.py OUT_CSV [--n-sim 8] [--configs default v0.1 ...]

For each configuration of :func:`alps.imaging.registration.register` (:data:`CONFIGS`):

* **simulated subjects with a known pose** (``--n-sim`` poses drawn as in the default cohort:
  ±10° about each axis, ±5 mm, scale 1 ± 0.05; SNR 25, 2 mm, 37 volumes): wall time of
  ``register`` (one thread, templates already loaded), the largest and mean error of the four
  ROI centres mapped into the subject against the planted pose (mm), and the error of the
  rotation used for the tensors (degrees);
* **the five tilted Toshiba series** of one head (``../shared/data/real_dwi``, when present):
  consistency of the mapped ROI centres and rotations in one world frame (through each series'
  true motion, b0 → b0 rigid; see ``benchmarks/real_data.py``) and the spread (max − min) of
  template-axis ALPS (L, R, mean) across the five tilts for 2.5 and 5 mm spheres, with the
  default ``trilinear`` and the ``partial`` ROI weighting, and for the JHU labels (trilinear)
  when the atlas is installed.

Rows: ``config, dataset, metric, value`` (plus per-subject rows for the simulated data).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from alps.imaging import registration as R  # noqa: E402
from alps.imaging.ants import ants_module  # noqa: E402

#: configurations: keyword arguments of alps.imaging.registration.register.
CONFIGS = {
    "default": {},
    "dense sampling (previous default)": dict(sampling_strategy="dense"),
    "first (unmasked, dense, 200+100 / 300+150+50 its)": dict(
        metric_mask=False, sampling_strategy="dense",
        stages=(("Rigid", ((200, 6, 3), (100, 4, 2))), ("Similarity", ((300, 6, 3), (150, 4, 2), (50, 2, 1))))),
    "regular 50 %": dict(sampling=0.5),
    "30 its at shrink 2": dict(stages=(("Rigid", ((100, 6, 3),)), ("Similarity", ((100, 4, 2), (30, 2, 1))))),
    "FA mask eroded 5 mm": dict(erode_mm=5.0),
    "dense, FA mask eroded 5 mm": dict(sampling_strategy="dense", erode_mm=5.0),
    "last level shrink 4": dict(stages=(("Rigid", ((100, 6, 3),)), ("Similarity", ((100, 6, 3), (100, 4, 2))))),
}
CENTRES = np.array([(-26.0, -16.0, 27.0), (26.0, -16.0, 27.0), (-38.0, -16.0, 27.0), (38.0, -16.0, 27.0)])


def simulated_subjects(n, seed=11):
    """``n`` simulated subjects (FA image, mask, true template→subject 4x4) with cohort-like poses."""
    import nibabel as nib

    from alps.imaging import dti, preprocess
    from alps.simulation.phantom import make_template_fields
    from alps.simulation import draw_pose, simulate_subject

    fields = make_template_fields()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pose = draw_pose(rng)
        img, bvals, bvecs, _ = simulate_subject(fields, pose, {"alps_L": 1.5, "alps_R": 1.5}, snr=25.0, seed=i)
        data = np.asarray(img.dataobj, np.float32)
        mask = preprocess.brain_mask(data, bvals)
        maps = dti.fit_tensor(data, bvals, bvecs, img.affine, mask)
        t2s = np.eye(4)
        t2s[:3, :3] = pose.scale * pose.R
        t2s[:3, 3] = pose.trans_mm
        out.append((f"sim{i + 1:02d}", nib.Nifti1Image(maps.fa, img.affine), mask, t2s))
    return out


def run_simulated(configs, subjects) -> list[dict]:
    from scipy.spatial.transform import Rotation

    from alps.imaging.tensor import polar_rotation

    rows = []
    for cname, kw in configs.items():
        errs, rots, times = [], [], []
        for sid, fa, mask, t2s_true in subjects:
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                reg = R.register(fa, mask, out_dir=tmp, check=False, **kw)
                dt = time.perf_counter() - t
            est = CENTRES @ reg.template_to_subject[:3, :3].T + reg.template_to_subject[:3, 3]
            true = CENTRES @ t2s_true[:3, :3].T + t2s_true[:3, 3]
            e = np.linalg.norm(est - true, axis=1)
            q_true = polar_rotation(np.linalg.inv(t2s_true)[:3, :3])
            rot = float(np.degrees(Rotation.from_matrix(reg.rotation @ q_true.T).magnitude()))
            errs.append(e)
            rots.append(rot)
            times.append(dt)
            rows += [{"config": cname, "dataset": f"simulated/{sid}", "metric": m, "value": v} for m, v in
                     (("time_s", dt), ("centre_err_max_mm", e.max()), ("centre_err_mean_mm", e.mean()),
                      ("rotation_err_deg", rot))]
        errs = np.asarray(errs)
        rows += [{"config": cname, "dataset": "simulated (mean over subjects)", "metric": m, "value": float(v)}
                 for m, v in (("time_s", np.mean(times)), ("centre_err_max_mm", errs.max(1).mean()),
                              ("centre_err_mean_mm", errs.mean()), ("rotation_err_deg", np.mean(rots)))]
        print(f"{cname}: simulated time {np.mean(times):.2f} s, centre error {errs.max(1).mean():.3f} mm", flush=True)
    return rows


def run_toshiba(configs, work) -> list[dict]:
    import real_data as RD
    from alps.imaging import measure
    from alps import pipeline as P
    from alps.imaging.roi import default_spheres

    tosh = [n for n in RD.SCANS if n.startswith("toshiba")]
    bids = RD.make_bids(Path(work) / "bids")
    deriv = Path(work) / "fit"
    P.run_cohort(bids, deriv, participant_label=tosh, stages=("preprocess",), progress=False, n_jobs=2)
    subj = {name: RD.load_fit(deriv, name) for name in tosh}
    motion = RD.series_motion(tosh)
    from alps.imaging.atlas import AtlasNotFound, jhu_alps_labels

    try:
        labels = jhu_alps_labels()
    except AtlasNotFound as exc:
        labels = None
        print(f"JHU atlas not found ({exc}): JHU rows skipped")
    rows = []
    for cname, kw in configs.items():
        mats = {}
        for name, (fa, mask, _, _) in subj.items():
            with tempfile.TemporaryDirectory() as tmp:
                mats[name] = R.register(fa, mask, out_dir=tmp, check=False, **kw).template_to_subject
        rows += [{"config": cname, "dataset": "toshiba tilts", "metric": m, "value": v}
                 for m, v in RD.consistency(mats, motion).items()]
        for radius in (2.5, 5.0):
            for weighting in ("trilinear", "partial"):
                vals = []
                for name, (fa, _, tensor, aff) in subj.items():
                    reg = R.Registration(kind="affine", template_to_subject=mats[name], forward_transforms=[],
                                         inverse_transforms=[])
                    w = measure.sphere_weights(fa.shape, aff, reg, default_spheres(radius_mm=radius), weighting=weighting)
                    vals.append(measure.measure(tensor, aff, reg, w))
                for k in ("alps_L", "alps_R", "alps"):
                    v = [x[k] for x in vals]
                    rows.append({"config": cname, "dataset": "toshiba tilts",
                                 "metric": f"spread_{k}_r{radius:g}_{weighting}", "value": max(v) - min(v)})
        if labels is not None:  # JHU labels, trilinear sampling (needs no transform files)
            vals = []
            for name, (fa, _, tensor, aff) in subj.items():
                reg = R.Registration(kind="affine", template_to_subject=mats[name], forward_transforms=[],
                                     inverse_transforms=[])
                w = measure.trilinear_label_weights(fa.shape, aff, reg, labels)
                vals.append(measure.measure(tensor, aff, reg, w))
            for k in ("alps_L", "alps_R", "alps"):
                v = [x[k] for x in vals]
                rows.append({"config": cname, "dataset": "toshiba tilts", "metric": f"spread_{k}_jhu_trilinear",
                             "value": max(v) - min(v)})
        print(f"{cname}: Toshiba done", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_csv")
    ap.add_argument("--n-sim", type=int, default=8)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), help="names in CONFIGS (default: all)")
    ap.add_argument("--work", default=None)
    args = ap.parse_args(argv)
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        ap.error(f"unknown configuration(s) {sorted(unknown)}; choose from {list(CONFIGS)}")
    configs = {k: CONFIGS[k] for k in args.configs}
    ants_module(1)
    from alps.imaging import template as tpl

    tpl.load("wm"), tpl.load("mask"), R.metric_mask_image()
    rows = run_simulated(configs, simulated_subjects(args.n_sim)) if args.n_sim > 0 else []
    import real_data as RD

    if RD.REAL.is_dir():
        rows += run_toshiba(configs, args.work or tempfile.mkdtemp(prefix="alps-benchreg-"))
    else:
        print(f"{RD.REAL} not found: Toshiba part skipped")
    df = pd.DataFrame(rows)
    Path(args.out_csv).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out_csv, index=False, float_format="%.4f")
    summary = df[~df["dataset"].str.startswith("simulated/")].pivot_table(
        index=["dataset", "metric"], columns="config", values="value", sort=False)
    with pd.option_context("display.width", 250, "display.max_columns", 10, "display.max_rows", 200):
        print(summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
