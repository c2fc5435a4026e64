"""Where the ALPS ROIs land on repeated scans of one head, and what that does to the index:
registration variants x ROI placement (default spheres / tract-guided, :mod:`alps.imaging.placement`),
evaluated on the shared real scans from their stage-1 derivatives.

    .venv/bin/python benchmarks/placement.py WORK --stage1                     # tensor fits + default registration
    .venv/bin/python benchmarks/placement.py WORK OUT --registration default --placement default
    .venv/bin/python benchmarks/placement.py WORK OUT --placement tract [--placement-args '{"penalty": 0.01}']
    .venv/bin/python benchmarks/placement.py WORK OUT --registration affine12 ...

``WORK/bids`` is a symlink view of ``../shared/data/real_dwi`` (one subject per series, see
``SCANS``), ``WORK/deriv`` its stage-1 derivatives (:func:`alps.pipeline.run_cohort`, default
parameters, ``max_bval`` 3000 so that the b = 2500 XA30 scans are fitted). Registration
variants other than ``default`` (the saved one) re-register the saved FA maps (cached under
``WORK/reg/<variant>``). The heads (``HEADS``): the Toshiba tilts, the Canon tilts, the Canon
head-turned trio (its straight reference is Canon ``9000``) and the XA30 P→A/A→P pair; each
head's first series is its reference. The head's motion between series (rigid, mean b0 →
reference mean b0, dense Mattes MI; cached in ``WORK/motion.json``) carries every series' ROI
centres into the reference world frame.

Writes ``OUT_scans.csv`` (per series: index, per-ROI purity and FA, the ROI centres in template
mm, the wild-bootstrap SEs — 200 replicates, seed 20260505, the pipeline's — and, with
``--reg-se``, the registration SEs) and ``OUT_heads.csv`` (per head and index: spread,
noise-only spread and Cochran's Q p with the noise SEs and with the total SEs; the ROI-centre
RMS about the series' mean in the reference frame, the largest pairwise centre distance and
each series' RMS distance from the reference).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from alps.imaging import measure  # noqa: E402
from alps.imaging import registration as R  # noqa: E402
from alps.imaging.roi import DEFAULT_CENTERS_MM, ROI_NAMES, default_spheres  # noqa: E402

from real_data import REAL, SCANS as _TILT_SCANS  # noqa: E402  (the Philips scan and the two tilt heads)

#: every shared real scan: the tilt heads' series first (the reference of each head first), then the
#: Canon head turned in the coil, the Philips scan and the XA30 reverse-PE pair
SCANS = {**{k: v for k, v in _TILT_SCANS.items() if k != "philips"},
         "canon32000turned": "canon_galan_head_turned/32000_DTI_PA-ortho-HT",
         "canon33000turnedtilt": "canon_galan_head_turned/33000_DTI_PA-ortho-HT-VT",
         "philips": _TILT_SCANS["philips"],
         "xa30pa": "siemens_prisma_xa30_pepolar/10_DWI_dir80_PA",
         "xa30ap": "siemens_prisma_xa30_pepolar/17_DWI_dir80_AP"}
#: repeated scans of one head; the first is the reference series
HEADS = {
    "toshiba_tilts": [n for n in SCANS if n.startswith("toshiba")],
    "canon_tilts": ["canon9000ortho", "canon11000sag20", "canon12000ax20", "canon13000cor20", "canon14000all20"],
    "canon_turned": ["canon9000ortho", "canon32000turned", "canon33000turnedtilt"],
    "xa30_pepolar": ["xa30pa", "xa30ap"],
}
INDICES = ("alps", "alps_L", "alps_R")
SE_SEED = 20260505


# ----------------------------------------------------------------------------- data
def make_bids(root: Path) -> Path:
    for sub, stem in SCANS.items():
        d = root / f"sub-{sub}" / "dwi"
        d.mkdir(parents=True, exist_ok=True)
        for ext in (".nii.gz", ".bval", ".bvec", ".json"):
            src, dst = REAL / (stem + ext), d / f"sub-{sub}_dwi{ext}"
            if src.exists() and not dst.exists():
                os.symlink(src, dst)
    return root


def stage1(work: Path) -> None:
    from alps.pipeline import run_cohort

    df = run_cohort(make_bids(work / "bids"), work / "deriv", n_jobs=1, max_bval=3000.0, stages=("preprocess",))
    print(df[["participant_id", "status", "error"]].to_string(index=False))


def load_fit(work: Path, name: str):
    """``(FA array, brain mask, tensor (voxel axes), affine, preprocess record, layout)``."""
    import nibabel as nib

    from alps.imaging import dti
    from alps.pipeline import find_scan

    lay = find_scan(work / "deriv", f"sub-{name}")
    fa = np.asarray(nib.load(str(lay.fa)).dataobj, np.float32)
    mask = np.asarray(nib.load(str(lay.mask)).dataobj) > 0
    tensor, aff = dti.load_tensor_image(str(lay.tensor))
    return fa, mask, tensor, aff, lay.read_preprocess(), lay


def _mean_b0(stem: str):
    import nibabel as nib

    img = nib.load(str(REAL / (stem + ".nii.gz")))
    bv = np.loadtxt(REAL / (stem + ".bval"))
    return nib.Nifti1Image(np.asarray(img.dataobj, np.float32)[..., bv < 50].mean(-1), img.affine)


def head_motion(work: Path) -> dict:
    """{series: 4x4 RAS, series world → its head's reference world} (cached)."""
    from alps.imaging.ants import run_linear

    cache = work / "motion.json"
    out = json.loads(cache.read_text()) if cache.is_file() else {}
    stages = (("Rigid", ((500, 4, 2), (300, 2, 1), (200, 1, 0))),)
    changed = False
    for head, names in HEADS.items():
        ref = names[0]
        for name in names:
            key = f"{name}>{ref}"
            if key in out:
                continue
            if name == ref:
                out[key] = np.eye(4).tolist()
            else:
                tmp = tempfile.mkdtemp(prefix="alps-motion-")
                try:
                    f = run_linear(R.nib_to_ants(_mean_b0(SCANS[ref])), R.nib_to_ants(_mean_b0(SCANS[name])),
                                   os.path.join(tmp, "m_"), stages=stages, metric="MI", sampling=1.0, seed=1)
                    out[key] = np.linalg.inv(R.lps_to_ras(R.read_ants_affine(f))).tolist()
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            changed = True
    if changed:
        cache.write_text(json.dumps(out, indent=1))
    return {k: np.asarray(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- registrations
def registration(work: Path, name: str, variant: str, fit) -> R.Registration:
    """The series' registration: ``default`` = the saved one; others re-register (cached)."""
    from alps.pipeline import load_registration

    fa, mask, tensor, aff, pre, lay = fit
    if variant == "default":
        return load_registration(pre, lay.dir)
    cache = work / "reg" / variant / f"{name}.json"
    if cache.is_file():
        d = json.loads(cache.read_text())
        return _affine_reg(np.asarray(d["t2s"]))
    import nibabel as nib

    from registration_variants import VARIANTS

    t0, c0 = time.perf_counter(), time.process_time()
    t2s = VARIANTS[variant](nib.Nifti1Image(fa, aff), mask, fit=fit, scan=SCANS[name], real=REAL)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"t2s": np.asarray(t2s).tolist(), "time_s": time.perf_counter() - t0,
                                 "cpu_s": time.process_time() - c0}))
    return _affine_reg(t2s)


def _affine_reg(t2s) -> R.Registration:
    return R.Registration(kind="affine", template_to_subject=np.asarray(t2s, float), forward_transforms=[],
                          inverse_transforms=[])


# ----------------------------------------------------------------------------- one scan
def measure_scan(work, name, reg, centres, fit, *, n_boot=200) -> dict:
    from alps import io as aio
    from alps.imaging import noise

    fa, mask, tensor, aff, pre, lay = fit
    spheres = default_spheres(radius_mm=2.5, centers_mm=centres)
    w = measure.sphere_weights(fa.shape, aff, reg, spheres)
    v = measure.measure(tensor, aff, reg, w, fa=fa)
    row = {"scan": name, **{k: v[k] for k in INDICES}}
    row.update({f"purity_{n}": v[f"purity_{n}"] for n in ROI_NAMES})
    row.update({f"fa_{n}": v[f"fa_{n}"] for n in ROI_NAMES})
    for n in ROI_NAMES:
        row.update({f"c{k}_{n}": float(c) for k, c in zip("xyz", (centres or DEFAULT_CENTERS_MM)[n])})
    if n_boot:
        stem = REAL / SCANS[name]
        dwi = aio.load_dwi(str(stem) + ".nii.gz", str(stem) + ".bval", str(stem) + ".bvec")
        if float(np.max(dwi.bvals)) > 3000:
            raise RuntimeError(f"{name}: multi-shell scan, not handled here")
        boot = noise.bootstrap_scan(dwi, reg, w, n_boot=n_boot, seed=SE_SEED)
        row.update({f"{k}_se": float(boot[k].std(ddof=1)) for k in INDICES})
    return row


def centres_in_reference(rows: dict, regs: dict, motion: dict, head: str) -> np.ndarray:
    """(n_series, 4, 3) ROI centres of a head's series in its reference world frame."""
    ref = HEADS[head][0]
    out = []
    for name in HEADS[head]:
        c = np.array([[rows[name][f"c{k}_{n}"] for k in "xyz"] for n in ROI_NAMES])
        sub = regs[name].points_to_subject(c)
        m = motion[f"{name}>{ref}"]
        out.append(sub @ m[:3, :3].T + m[:3, 3])
    return np.asarray(out)


def head_rows(head, rows, regs, motion) -> list[dict]:
    from alps.imaging.noise import spread_consistency

    names = HEADS[head]
    cs = centres_in_reference(rows, regs, motion, head)
    rms = float(np.sqrt((np.linalg.norm(cs - cs.mean(0), axis=-1) ** 2).mean()))
    # per reference-world axis, and per ROI
    rms_xyz = np.sqrt(((cs - cs.mean(0)) ** 2).mean(axis=(0, 1)))
    rms_roi = np.sqrt((np.linalg.norm(cs - cs.mean(0), axis=-1) ** 2).mean(axis=0))
    pairs = list(itertools.combinations(range(len(cs)), 2))
    cmax = float(max(np.linalg.norm(cs[i] - cs[j], axis=-1).max() for i, j in pairs))
    vs_ref = {n: float(np.sqrt((np.linalg.norm(cs[i] - cs[0], axis=-1) ** 2).mean())) for i, n in enumerate(names)}
    out = []
    for k in INDICES:
        x = np.array([rows[n][k] for n in names])
        r = {"head": head, "index": k, "n": len(names), "mean": float(x.mean()), "spread": float(x.max() - x.min()),
             "values": " ".join(f"{v:.3f}" for v in x), "centre_rms_mm": rms, "centre_max_mm": cmax,
             "centre_vs_ref_mm": " ".join(f"{vs_ref[n]:.2f}" for n in names),
             "centre_rms_xyz": " ".join(f"{v:.2f}" for v in rms_xyz),
             "centre_rms_roi": " ".join(f"{v:.2f}" for v in rms_roi)}
        for label, col in (("noise", f"{k}_se"), ("total", f"{k}_total_se")):
            if all(col in rows[n] and np.isfinite(rows[n][col]) for n in names):
                se = np.array([rows[n][col] for n in names])
                c = spread_consistency(x, se, n_sim=100_000, seed=0).iloc[0]
                r.update({f"{label}_spread": c["expected_spread"], f"{label}_q": c["cochran_q"],
                          f"{label}_q_p": c["p_value"], f"{label}_mean_se": float(se.mean())})
        out.append(r)
    return out


def reg_se_row(fit, reg, centres) -> dict:
    """``alps_reg_se`` ... of one scan, as stage 2 computes them (:func:`alps.pipeline.placement.reg_se`:
    the registration's sandwich covariance, the index over its sigma points with the ROI centres
    held where they are; trilinear 2.5 mm spheres)."""
    from alps.pipeline.params import MeasureParams
    from alps.pipeline.placement import reg_se

    fa, mask, tensor, aff, pre, lay = fit
    t0 = time.process_time()
    out = reg_se(mask, fa, tensor, aff, reg, centres, None, MeasureParams())
    out.pop("scatter", None)
    out["time_reg_se_cpu_s"] = time.process_time() - t0
    return out


def add_total(rows):
    for r in rows.values():
        for k in INDICES:
            if f"{k}_reg_se" in r and f"{k}_se" in r:
                r[f"{k}_total_se"] = float(np.hypot(r[f"{k}_se"], r[f"{k}_reg_se"]))


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--stage1", action="store_true")
    ap.add_argument("--registration", default="default")
    ap.add_argument("--placement", default="default", choices=("default", "tract"))
    ap.add_argument("--placement-args", default="{}", help="JSON keyword arguments of place_rois")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--reg-se", default=None, nargs="?", const="", help="registration SEs (as stage 2)")
    ap.add_argument("--heads", default=",".join(HEADS))
    ap.add_argument("--oracle", action="store_true",
                    help="every series of a head gets its reference series' registration (carried by the "
                         "head's motion) and ROI centres: one head at a time")
    args = ap.parse_args(argv)
    work = Path(args.work)
    if args.stage1:
        stage1(work)
        return 0
    heads = list(HEADS) if args.heads == "all" else args.heads.split(",")
    names = list(SCANS) if args.heads == "all" else list(dict.fromkeys(n for h in heads for n in HEADS[h]))
    motion = head_motion(work)
    rows, regs = {}, {}
    oracle = {}
    if args.oracle:
        if len(heads) != 1:
            raise SystemExit("--oracle: one head at a time")
        ref = HEADS[heads[0]][0]
        names = HEADS[heads[0]]
    for name in names:
        fit = load_fit(work, name)
        regs[name] = reg = registration(work, name, args.registration, fit)
        if args.oracle and name != ref:
            t2s = np.linalg.inv(motion[f"{name}>{ref}"]) @ regs[ref].template_to_subject
            regs[name] = reg = _affine_reg(t2s)
        t0 = time.perf_counter()
        centres = oracle.get("centres")
        extra = {}
        if args.placement == "tract" and centres is None:
            from alps.imaging.placement import place_rois

            pl = place_rois(fit[2], fit[3], reg, fa=fit[0], **json.loads(args.placement_args))
            centres = pl.centers_mm
            extra = {f"shift_{n}": pl.shift_mm[n] for n in ROI_NAMES}
            if args.oracle:
                oracle["centres"] = centres
        extra["time_placement_s"] = time.perf_counter() - t0
        rows[name] = {**measure_scan(work, name, reg, centres, fit, n_boot=args.bootstrap), **extra}
        if args.reg_se is not None:
            rows[name].update(reg_se_row(fit, reg, centres))
        print(f"{name}: alps {rows[name]['alps']:.3f}", flush=True)
    add_total(rows)
    scans = pd.DataFrame(rows.values())
    scans.insert(1, "registration", args.registration)
    scans.insert(2, "placement", args.placement)
    hrows = []
    for head in heads:
        if all(n in rows for n in HEADS[head]):
            hrows += head_rows(head, rows, regs, motion)
    heads_df = pd.DataFrame(hrows)
    heads_df.insert(1, "registration", args.registration)
    heads_df.insert(2, "placement", args.placement + (args.placement_args if args.placement != "default" else ""))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        scans.to_csv(f"{args.out}_scans.csv", index=False, float_format="%.5g")
        heads_df.to_csv(f"{args.out}_heads.csv", index=False, float_format="%.5g")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        cols = ["head", "index", "spread", "noise_spread", "noise_q_p", "total_spread", "total_q_p", "centre_rms_mm",
                "centre_max_mm", "centre_vs_ref_mm", "centre_rms_xyz", "centre_rms_roi", "values"]
        print(heads_df[[c for c in cols if c in heads_df]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        pcols = ["scan", "alps"] + [c for c in ("alps_se", "alps_reg_se", "alps_L_reg_se", "alps_R_reg_se",
                                                "roi_sd_max", "time_reg_se_cpu_s") if c in scans] + [f"purity_{n}" for n in ROI_NAMES] + [f"fa_{n}" for n in ROI_NAMES]
        print(scans[pcols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
