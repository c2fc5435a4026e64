"""Reproduce the real-scan figures: ALPS on the Philips scan and the two tilt heads (five series each).

    .venv/bin/python benchmarks/real_data.py OUT_CSV [--work DIR] [--n-jobs 2] [--roi-radius 2.5 ...]
    .venv/bin/python benchmarks/real_data.py OUT_CSV --reuse DERIV_DIR [--metric GC] [--sampling 1.0] [--linear similarity]
    .venv/bin/python benchmarks/real_data.py OUT_CSV --reuse DERIV_DIR --bootstrap 300     # noise floor, Q test
    .venv/bin/python benchmarks/real_data.py OUT_CSV --reuse DERIV_DIR --orientation       # gradient tables
    .venv/bin/python benchmarks/real_data.py OUT_CSV --reuse DERIV_DIR --slab-ratio        # whole-WM diffusivities

Builds a temporary BIDS view (symlinks) of ``../shared/data/real_dwi``, runs
:func:`alps.pipeline.run_cohort` on it for each requested ROI radius, and writes one CSV row per
scan and radius with the template-axis and scanner-axis ALPS (L, R, mean), plus one row
``<head>_spread`` (max − min over the head's five tilts) per tilt head of ``HEADS`` — the Toshiba
head (``toshiba_spread``) and the Canon head (``canon_spread``); each head's reference series is
its ortho series. QC PNGs stay under ``--work``.

``--reuse DERIV_DIR`` (a derivatives folder of an earlier run) skips loading and tensor fitting:
it re-registers the saved FA maps with the chosen variant (``--metric``, ``--sampling``,
``--linear``, ``--erode-mm``) and re-measures, for fast iteration on the registration. It also
reports, per head, the registration *consistency* across its tilts: each series' mean b0 is
registered rigidly to the head's ortho series' mean b0 (same contrast, the head's true motion between
series), and the template ROI centres and the subject→template rotation are expressed in the
ortho series' world frame — they should then coincide; ``centre_rms_mm`` / ``centre_max_mm``
(RMS and largest pairwise distance of the mapped centres) and ``rot_max_deg`` (largest pairwise
angle between the rotations) measure how far they do not, and each series' ``centre_vs_ref_mm``
(RMS over the four centres of its distance from the ortho series' centres) which series is off.
``--oracle`` adds rows where every series uses the ortho registration carried over by that rigid
motion (perfectly consistent ROIs and rotation): the spread left there is the floor set by
noise, grid and distortion.

``--orientation`` (with ``--reuse``): for each tilted series, the fibre field against its head's
ortho series' at the same anatomy (:func:`alps.validation.fibre_field_agreement`, through the
same rigid motion): the extra rotation of the fibre field, which is ~0° when every series'
gradient table is read in the right frame and the slab tilt (20–30°) when one is not.

``--bootstrap B`` (with ``--reuse``): the noise floor of each head's spread and Cochran's Q
(:func:`bootstrap_main`). ``--slab-ratio`` (with ``--reuse``): acquisition-level diffusivities
over the whole template white-matter slab at the ventricle-body level (:func:`slab_values`),
which no ROI placement can change, and their spread per head.
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
    "canon9000ortho": "canon_galan_tilts/9000_DTI_PA-ortho",
    "canon11000sag20": "canon_galan_tilts/11000_DTI_PA-SAG_20d",
    "canon12000ax20": "canon_galan_tilts/12000_DTI_PA-AX_20d",
    "canon13000cor20": "canon_galan_tilts/13000_DTI_PA-COR_20d",
    "canon14000all20": "canon_galan_tilts/14000_DTI_PA-ALL_20d",
}
#: the tilt heads: head -> its five series (names of SCANS); the first, the ortho series, is the reference
HEADS = {head: [n for n in SCANS if n.startswith(head)] for head in ("toshiba", "canon")}
VALUES = ["alps_L", "alps_R", "alps", "alps_scanner_L", "alps_scanner_R", "alps_scanner"]


def make_bids(root: Path, real: Path = REAL, *, names=None) -> Path:
    """Symlink the real scans ``names`` (keys of SCANS; default all) into a minimal BIDS layout
    ``sub-<name>/dwi/sub-<name>_dwi.*``."""
    for sub in SCANS if names is None else names:
        stem = SCANS[sub]
        d = root / f"sub-{sub}" / "dwi"
        d.mkdir(parents=True, exist_ok=True)
        for ext in (".nii.gz", ".bval", ".bvec", ".json"):
            src = real / (stem + ext)
            dst = d / f"sub-{sub}_dwi{ext}"
            if src.exists() and not dst.exists():
                os.symlink(src, dst)
    return root


def _save(df: pd.DataFrame, path, *, float_format: str = "%.4f") -> None:
    """Write a result table as CSV, creating its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, float_format=float_format)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_csv")
    ap.add_argument("--work", default=None, help="work/derivatives directory (default: a temp dir)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--roi-radius", type=float, nargs="+", default=[2.5, 5.0])
    ap.add_argument("--registration", default="affine")
    ap.add_argument("--reuse", default=None, help="derivatives dir of an earlier run: re-register + re-measure only")
    ap.add_argument("--metric", default="GC", choices=("MI", "GC"))
    ap.add_argument("--sampling", type=float, default=1.0)
    ap.add_argument("--sampling-strategy", default="regular", choices=("regular", "dense", "random"))
    ap.add_argument("--linear", default="similarity", choices=("similarity", "affine", "rigid"),
                    help="last linear stage (reuse mode)")
    ap.add_argument("--erode-mm", type=float, default=4.0)
    ap.add_argument("--oracle", action="store_true", help="reuse mode: add the perfectly-consistent oracle rows")
    ap.add_argument("--denoise", action="store_true", help="MP-PCA denoising (pipeline option)")
    ap.add_argument("--gibbs", action="store_true", help="Gibbs-ringing removal (pipeline option)")
    ap.add_argument("--motion-correction", action="store_true", help="per-volume motion correction (pipeline option)")
    ap.add_argument("--fit-method", default=None, help="tensor fit method (pipeline option, default WLS)")
    ap.add_argument("--motion-model", default=None, choices=("rigid", "affine"), help="with --motion-correction")
    ap.add_argument("--roi", default=None, choices=("spheres", "jhu"), help="ROI set (pipeline option, default spheres)")
    ap.add_argument("--bootstrap", type=int, default=0, metavar="B",
                    help="with --reuse: wild-bootstrap SD of ALPS per Toshiba series (B replicates), the noise "
                         "floor, and whether the five values differ by more than it")
    ap.add_argument("--orientation", action="store_true",
                    help="with --reuse: fibre-field rotation of each tilted series vs its head's ortho series")
    ap.add_argument("--slab-ratio", action="store_true",
                    help="with --reuse: whole-white-matter Dxx/Dyy, Dxx/Dzz and MD per series in the template "
                         "WM (p > 0.9) slab at the ventricle-body level (z 20-35 mm), and their spread per head")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print(f"{REAL}: real data not available", file=sys.stderr)
        return 1
    if args.reuse and args.bootstrap:
        return bootstrap_main(args)
    if args.reuse and args.orientation:
        return orientation_main(args)
    if args.reuse and args.slab_ratio:
        return slab_main(args)
    if args.reuse:
        return reuse_main(args)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="alps-real-"))
    bids = make_bids(work / "bids")
    options = {k: True for k in ("denoise", "gibbs", "motion_correction") if getattr(args, k)}
    if args.fit_method:
        options["fit_method"] = args.fit_method
    if args.motion_model:
        options["motion_model"] = args.motion_model
    if args.roi:
        options["roi"] = args.roi
    tag = "".join(f"_{k}" if v is True else f"_{v}" for k, v in options.items())
    rows = []
    for radius in args.roi_radius:
        out = work / f"derivatives_r{radius:g}_{args.registration}{tag}"
        df = run_cohort(bids, out, n_jobs=args.n_jobs, roi_radius=radius, registration=args.registration, **options)
        for _, r in df.iterrows():
            row = {"scan": r["participant_id"].removeprefix("sub-"), "roi_radius": radius,
                   "registration": args.registration, "options": tag.strip("_") or "default",
                   "status": r["status"], "error": r["error"]}
            row.update({k: r.get(k) for k in VALUES + ["reg_corr", "reg_dice", "qc_flags"]})
            rows.append(row)
        for head, names in HEADS.items():
            ok = df[df["participant_id"].isin([f"sub-{n}" for n in names]) & (df["status"] == "ok")]
            spread = {"scan": f"{head}_spread", "roi_radius": radius, "registration": args.registration,
                      "options": tag.strip("_") or "default", "status": f"n={len(ok)}", "error": ""}
            spread.update({k: float(ok[k].max() - ok[k].min()) if len(ok) else float("nan") for k in VALUES})
            rows.append(spread)
        print(f"radius {radius:g} mm: derivatives in {out}")
    res = pd.DataFrame(rows)
    _save(res, args.out_csv, float_format="%.4f")
    with pd.option_context("display.width", 200):
        print(res.drop(columns=["error"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def orientation_main(args) -> int:
    """Fibre-field agreement of each tilted series with its head's ortho series (``--orientation``)."""
    from alps.validation import fibre_field_agreement

    rows = []
    for names in HEADS.values():
        ref = names[0]
        motion = series_motion(names)
        _, _, t_ref, a_ref = load_fit(args.reuse, ref)
        for name in names:
            if name == ref:
                continue
            _, mask, t, a = load_fit(args.reuse, name)
            res = fibre_field_agreement(t_ref, a_ref, t, a, motion[name], mask_b=mask)
            res["extra_rotvec_deg"] = " ".join(f"{v:.2f}" for v in res["extra_rotvec_deg"])
            rows.append({"scan": name, "reference": ref, **res})
    df = pd.DataFrame(rows)
    _save(df, args.out_csv, float_format="%.4f")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


SLAB_Z_MM = (20.0, 35.0)  # template z range of the ventricle-body level (the ROI centres are at z = 27)
SLAB_WM_P = 0.9           # template white-matter probability threshold


def slab_values(lay, *, z_mm=SLAB_Z_MM, wm_p=SLAB_WM_P) -> dict:
    """Acquisition-level diffusivities of one scan over the template white-matter slab.

    The template (MNI152 2009a, 2 mm) voxels with WM probability > ``wm_p`` and world
    ``z_mm[0] <= z <= z_mm[1]`` are mapped to the scan by its saved registration
    (``lay``: a :class:`alps.pipeline.ScanLayout`), the tensor is sampled there (trilinear, each
    component) and rotated into template axes as :func:`alps.imaging.measure.measure` does
    (``q = R_reg · polar(A_vox)``); points outside the scan's brain mask are dropped. Returns the
    means of ``Dxx, Dyy, Dzz`` (template axes), ``dxx_dyy = mean Dxx / mean Dyy`` (and
    ``dxx_dyy_L``/``dxx_dyy_R`` over the template's left (x < 0) and right halves: two
    independent noise samples, so a series-to-series change seen in both is not noise),
    ``dxx_dzz = mean Dxx / mean Dzz``, the median MD and FA and the number of points. Averaged
    over thousands of voxels these depend little on noise and not on ROI placement: what differs
    between repeated scans of one head here is mostly the acquisition (grid, distortion, noise
    floor).
    """
    import nibabel as nib
    import numpy as np
    from scipy.ndimage import map_coordinates

    from alps.imaging import dti, template
    from alps.imaging import tensor as T
    from alps.pipeline import load_registration

    wm = template.load("wm", resolution=2)
    p = wm.get_fdata()
    ijk = np.argwhere(p > wm_p)
    xyz = ijk @ wm.affine[:3, :3].T + wm.affine[:3, 3]
    xyz = xyz[(xyz[:, 2] >= z_mm[0]) & (xyz[:, 2] <= z_mm[1])]
    reg = load_registration(lay.read_preprocess(), lay.dir)
    tensor, aff = dti.load_tensor_image(str(lay.tensor))
    mask = np.asarray(nib.load(str(lay.mask)).dataobj) > 0
    sub = reg.points_to_subject(xyz)
    vox = (sub - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T
    inside = map_coordinates(mask.astype(np.float32), vox.T, order=0, mode="constant", cval=0.0) > 0
    vox, left = vox[inside], xyz[inside, 0] < 0
    d = np.stack([map_coordinates(tensor[..., i, j], vox.T, order=1, mode="nearest")
                  for i in range(3) for j in range(3)], -1).reshape(-1, 3, 3)
    q = reg.rotation @ T.polar_rotation(np.asarray(aff)[:3, :3])
    d = T.rotate(d, q)
    fa, md = T.fa_md(d)
    dxx, dyy, dzz = (float(d[:, i, i].mean()) for i in range(3))
    side = {f"dxx_dyy_{h}": float(d[sel, 0, 0].mean() / d[sel, 1, 1].mean()) for h, sel in (("L", left), ("R", ~left))}
    return {"n_points": int(len(d)), "n_outside": int((~inside).sum()), "dxx": dxx, "dyy": dyy, "dzz": dzz,
            "dxx_dyy": dxx / dyy, **side, "dxx_dzz": dxx / dzz, "md_median": float(np.median(md)),
            "fa_median": float(np.median(fa))}


def slab_main(args) -> int:
    """``--slab-ratio``: :func:`slab_values` per tilt series, and per head the spread (max − min),
    the spread relative to the head's mean (``*_rel``) and the Pearson correlation over the five
    series of the left and right hemispheres' Dxx/Dyy (``dxx_dyy_lr_corr``)."""
    import numpy as np

    from alps.pipeline import find_scan

    rows = []
    for head, names in HEADS.items():
        vals = []
        for name in names:
            v = slab_values(find_scan(args.reuse, f"sub-{name}"))
            vals.append(v)
            rows.append({"scan": name, "head": head, **v})
        keys = [k for k in vals[0] if k not in ("n_points", "n_outside")]
        spread = {k: float(max(v[k] for v in vals) - min(v[k] for v in vals)) for k in keys}
        rel = {f"{k}_rel": spread[k] / (sum(v[k] for v in vals) / len(vals)) for k in keys}
        # do the two hemispheres' ratios move together from series to series (not noise)?
        lr = float(np.corrcoef([v["dxx_dyy_L"] for v in vals], [v["dxx_dyy_R"] for v in vals])[0, 1])
        rows.append({"scan": f"{head}_spread", "head": head, **spread, **rel, "dxx_dyy_lr_corr": lr})
    df = pd.DataFrame(rows)
    _save(df, args.out_csv, float_format="%.6g")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


# ----------------------------------------------------------------------------- reuse mode
LINEAR = {
    "similarity": None,  # alps.imaging.registration.LINEAR_STAGES['affine'] (the default)
    "affine": (("Rigid", ((200, 6, 3), (100, 4, 2))), ("Affine", ((300, 6, 3), (150, 4, 2), (50, 2, 1)))),
    "rigid": (("Rigid", ((200, 6, 3), (100, 4, 2), (50, 2, 1))),),
}
CENTRES = [(-26.0, -16.0, 27.0), (26.0, -16.0, 27.0), (-38.0, -16.0, 27.0), (38.0, -16.0, 27.0)]


def _mean_b(stem, b0: bool):
    import nibabel as nib
    import numpy as np

    img = nib.load(str(REAL / (stem + ".nii.gz")))
    bv = np.loadtxt(REAL / (stem + ".bval"))
    sel = bv < 50 if b0 else bv >= 50
    return nib.Nifti1Image(np.asarray(img.dataobj, np.float32)[..., sel].mean(-1), img.affine)


def series_motion(names) -> dict:
    """Rigid motion (4x4 RAS, series world → reference world) of each series of one head
    (``names``, the first — the ortho series — is the reference): mean b0 → reference mean b0,
    dense Mattes MI (same contrast, so this is the head's true motion)."""
    import numpy as np

    from alps.imaging import registration as R
    from alps.imaging.ants import run_linear

    ref_name = names[0]
    ref = R.nib_to_ants(_mean_b(SCANS[ref_name], True))
    stages = (("Rigid", ((500, 4, 2), (300, 2, 1), (200, 1, 0))),)
    out = {}
    for name in names:
        if name == ref_name:
            out[name] = np.eye(4)
            continue
        tmp = tempfile.mkdtemp(prefix="alps-motion-")
        try:
            mov = R.nib_to_ants(_mean_b(SCANS[name], True))
            f = run_linear(ref, mov, os.path.join(tmp, "m_"), stages=stages, metric="MI", sampling=1.0, seed=1)
            out[name] = np.linalg.inv(R.lps_to_ras(R.read_ants_affine(f)))
        finally:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return out


def consistency(t2s: dict, motion: dict) -> dict:
    """Spread of the template ROI centres and rotations expressed in the ortho world frame."""
    import itertools

    import numpy as np
    from scipy.spatial.transform import Rotation

    from alps.imaging.tensor import polar_rotation

    c = np.asarray(CENTRES)
    cs, qs = [], []
    for name, m in t2s.items():
        t2o = motion[name] @ m
        cs.append(c @ t2o[:3, :3].T + t2o[:3, 3])
        qs.append(polar_rotation(np.linalg.inv(t2o)[:3, :3]))
    cs = np.asarray(cs)
    pairs = list(itertools.combinations(range(len(cs)), 2))
    return {"centre_rms_mm": float(np.sqrt((np.linalg.norm(cs - cs.mean(0), axis=-1) ** 2).mean())),
            "centre_max_mm": float(max(np.linalg.norm(cs[i] - cs[j], axis=-1).max() for i, j in pairs)),
            "rot_max_deg": float(max(np.degrees(Rotation.from_matrix(qs[i] @ qs[j].T).magnitude()) for i, j in pairs))}


def centre_offsets(t2s: dict, motion: dict, ref: str) -> dict:
    """Per series, the RMS (over the four ROI centres) distance in mm between its template ROI
    centres and the reference series' ones, both expressed in the reference world frame."""
    import numpy as np

    c = np.asarray(CENTRES)

    def mapped(name):
        t2o = motion[name] @ t2s[name]
        return c @ t2o[:3, :3].T + t2o[:3, 3]

    r = mapped(ref)
    return {n: float(np.sqrt((np.linalg.norm(mapped(n) - r, axis=-1) ** 2).mean())) for n in t2s}


def bootstrap_main(args) -> int:
    """Noise floor of the tilt spread, and whether the five Toshiba values differ by more than it.

    For each Toshiba series the ROI weights stay fixed while the DWI noise is resampled
    (:func:`alps.imaging.noise.bootstrap_roi_alps`: leverage-adjusted wild bootstrap of the WLS fit,
    ``--bootstrap`` replicates, seed 0; the unadjusted bootstrap is reported beside it). Two
    sets of ROI weights: each series' own registration (from ``--reuse``) and the *oracle*, the
    ortho series' registration carried to every series by the head's true motion. The measured
    values are those of the saved tensor fit. Then, per index and set,
    :func:`alps.imaging.noise.spread_consistency` against the 0.08 target: Cochran's Q of the five
    values with their bootstrap SDs, and the spread expected from noise alone.

    Writes ``OUT_CSV`` (one row per series, set, radius and weighting) and
    ``<OUT_CSV stem>_consistency.csv`` (one row per index, set, radius and weighting), for the
    template-axis index and, beside it, the scanner-axis one (columns ``alps_L`` ... hold the
    index of the row's ``axes``).
    """
    from alps.imaging import noise

    deriv = Path(args.reuse)
    rows = []
    for head, names in HEADS.items():
        rows += _bootstrap_head(args, deriv, head, names)
    res = pd.DataFrame(rows)
    cons = []
    keys = ["head", "axes", "registration", "roi_radius", "weighting"]
    for (head, axes, label, radius, weighting), grp in res.groupby(keys, sort=False):
        for k in ("alps_L", "alps_R", "alps"):
            c = noise.spread_consistency(grp[k], grp[f"sd_{k}"], target=0.08).iloc[0].to_dict()
            cons.append({"head": head, "axes": axes, "registration": label, "roi_radius": radius,
                         "weighting": weighting, "index": k,
                         "mean_sd": float(grp[f"sd_{k}"].mean()),
                         "mean_sd_unadjusted": float(grp[f"sd_{k}_unadjusted"].mean()), **c})
    cons = pd.DataFrame(cons)
    out = Path(args.out_csv)
    _save(res, out)
    _save(cons, out.with_name(out.stem + "_consistency.csv"))
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(cons.drop(columns=["n", "df", "target"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _bootstrap_head(args, deriv, head, names) -> list[dict]:
    """The per-series rows of :func:`bootstrap_main` for one head (``names``; reference the first)."""
    import json

    import numpy as np

    from alps.imaging import measure, noise
    from alps import io as aio
    from alps.imaging import registration as R
    from alps.imaging.roi import default_spheres

    ref = names[0]
    own = {}
    for name in names:
        pre = json.loads((deriv / f"sub-{name}" / "dwi" / f"sub-{name}_desc-preprocess.json").read_text())
        own[name] = np.asarray(pre["registration"]["template_to_subject"], float)
    motion = series_motion(names)
    sets = {"own": own, f"oracle<{ref}": {n: np.linalg.inv(motion[n]) @ motion[ref] @ own[ref] for n in names}}
    rows = []
    for name in names:
        stem = REAL / SCANS[name]
        dwi = aio.load_dwi(str(stem) + ".nii.gz", str(stem) + ".bval", str(stem) + ".bvec")
        _, _, tensor, aff = load_fit(deriv, name)
        for label, mats in sets.items():
            reg = R.Registration(kind="affine", template_to_subject=mats[name], forward_transforms=[],
                                 inverse_transforms=[])
            for radius in args.roi_radius:
                for weighting in ("trilinear", "partial"):
                    w = measure.sphere_weights(dwi.data.shape[:3], dwi.affine, reg,
                                               default_spheres(radius_mm=radius), weighting=weighting)
                    point = measure.measure(tensor, aff, reg, w)
                    for axes, pre_ in (("template", "alps"), ("scanner", "alps_scanner")):
                        row = {"scan": name, "head": head, "registration": label, "roi_radius": radius, "weighting": weighting,
                               "axes": axes, **{k: point[k.replace("alps", pre_)] for k in ("alps_L", "alps_R", "alps")}}
                        for lev, tag in ((True, ""), (False, "_unadjusted")):
                            boot = noise.bootstrap_scan(dwi, reg, w, axes=axes, n_boot=args.bootstrap, seed=0,
                                                        leverage=lev)
                            row.update({f"sd_{k}{tag}": float(boot[k].std(ddof=1)) for k in ("alps_L", "alps_R", "alps")})
                        rows.append(row)
        print(f"{name}: done", flush=True)
    return rows


def load_fit(deriv, name):
    """``(FA image, brain mask, tensor (voxel axes), affine)`` of scan ``name`` from a derivatives folder."""
    import nibabel as nib
    import numpy as np

    from alps.imaging import dti

    d = Path(deriv) / f"sub-{name}" / "dwi" / f"sub-{name}_"
    fa = nib.load(str(d) + "desc-FA_dwimap.nii.gz")
    fa = nib.Nifti1Image(np.asarray(fa.dataobj, np.float32), fa.affine)
    mask = np.asarray(nib.load(str(d) + "desc-brain_mask.nii.gz").dataobj) > 0
    tensor, aff = dti.load_tensor_image(str(d) + "desc-tensor_dwimap.nii.gz")
    return fa, mask, tensor, aff


def reuse_main(args) -> int:
    """Re-register the saved FA maps of ``--reuse`` with one variant and re-measure (no tensor fit)."""
    import time

    import numpy as np

    from alps.imaging import measure
    from alps.imaging import registration as R
    from alps.imaging.roi import default_spheres

    deriv = Path(args.reuse)
    variant = f"{args.metric}-{args.sampling_strategy}{args.sampling:g}-{args.linear}-e{args.erode_mm:g}"
    subj, t2s, times = {}, {}, {}
    for name in SCANS:
        subj[name] = fa, mask, tensor, aff = load_fit(deriv, name)
        tmp = tempfile.mkdtemp(prefix="alps-reuse-")
        try:
            t0 = time.perf_counter()
            reg = R.register(fa, mask, kind="affine", out_dir=tmp, check=False, metric=args.metric,
                             sampling=args.sampling, sampling_strategy=args.sampling_strategy,
                             erode_mm=args.erode_mm, stages=LINEAR[args.linear])
            times[name] = time.perf_counter() - t0
            t2s[name] = reg.template_to_subject
        finally:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    motion = {}
    for names in HEADS.values():
        motion.update(series_motion(names))
    # one set of registrations per label: the variant for every scan, then per head and
    # reference series the oracle of that head; each label's heads get a <head>_spread row
    sets = {variant: (t2s, list(HEADS))}
    if args.oracle:
        for head, names in HEADS.items():
            for src in names:
                t2o = motion[src] @ t2s[src]
                sets[f"oracle<{src}"] = ({n: np.linalg.inv(motion[n]) @ t2o for n in names}, [head])
    rows = []
    for label, (mats, heads) in sets.items():
        cons = {head: consistency({n: mats[n] for n in HEADS[head]}, motion) for head in heads}
        offset = {}
        for head in heads:
            offset.update(centre_offsets({n: mats[n] for n in HEADS[head]}, motion, HEADS[head][0]))
        for radius in args.roi_radius:
            vals = {}
            for name, m in mats.items():
                fa, mask, tensor, aff = subj[name]
                reg = R.Registration(kind="affine", template_to_subject=m, forward_transforms=[], inverse_transforms=[])
                w = measure.sphere_weights(fa.shape, aff, reg, default_spheres(radius_mm=radius))
                v = measure.measure(tensor, aff, reg, w, fa=fa.get_fdata())
                v["fa_rois"] = float(np.mean([v[f"fa_{r}"] for r in ("proj_L", "proj_R", "assoc_L", "assoc_R")]))
                vals[name] = v
                rows.append({"scan": name, "roi_radius": radius, "registration": label, "status": "ok",
                             "time_s": times.get(name, np.nan) if label == variant else np.nan,
                             **{k: v[k] for k in VALUES + ["fa_rois"]},
                             "centre_vs_ref_mm": offset.get(name, np.nan)})
            for head in heads:
                ts = [vals[n] for n in HEADS[head]]
                spread = {"scan": f"{head}_spread", "roi_radius": radius, "registration": label,
                          "status": f"n={len(ts)}"}
                spread.update({k: float(max(t[k] for t in ts) - min(t[k] for t in ts)) for k in VALUES})
                spread["fa_rois"] = float(np.mean([t["fa_rois"] for t in ts]))
                spread.update(cons[head])
                rows.append(spread)
    res = pd.DataFrame(rows)
    _save(res, args.out_csv, float_format="%.4f")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(res.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
