"""Eddy-current and motion correction (alps.imaging.eddy): planted truth, the two tilt heads, timings.

    .venv/bin/python benchmarks/bench_eddy.py OUT_DIR [--work DIR] [--part sim real xa30] [--seeds 3]
        [--configs linear rigid quadratic]

**Planted truth** (``--part sim``; ``eddy_sim.csv``, ``eddy_sim_params.csv``): a simulated head
(``alps.simulation.eddy``, 3 mm, posed 8/−5/10°) with planted eddy currents (``K g`` along PE, up to
~2.5 mm) and head motion (≤ 1°, ≤ 1 mm) in three scenarios — ``12dir-visible`` (1 b0 + 12
directions at b = 1500 as the tilt heads, motion in the part a prediction-based registration can
see, one slice of one volume at 30 % signal), ``12dir-random`` (the same with unrestricted motion)
and ``30dir-random`` (1 b0 + 30 directions at b = 1000). Per scenario and seed: the largest and
median displacement error of the brain voxels over the volumes (mm) before (= the planted
distortion) and after correction; the rms error of the motion and eddy-current parameters; the
image error RMS(series − undistorted series with the same noise)/σ in the brain; and the ALPS
index measured with the true registration (so that only the signal differs) on the undistorted,
acquired and corrected series, against the planted (template oracle) value.

**Real data** (``--part real``; ``eddy_real_scans.csv``, ``eddy_real_reliability.csv``): every
series of the two tilt heads (``../shared/data/real_dwi/{toshiba,canon}_galan_tilts``, PE along j
from the sidecars) is corrected with each configuration of ``--configs`` and written to a mirror of
the shared folder; then ``benchmarks/tilt_reliability.py``'s BIDS view, ``alps run`` (default
parameters) and ``alps reliability`` give, per head and index, the spread of the five series, the
spread noise alone would give (per-scan wild-bootstrap SEs) and Cochran's Q; the configuration
``none`` is the uncorrected data. A configuration is *chosen* on one head (smallest summed Q over
the three indices, as ``benchmarks/local_registration.py``) and *reported* on the other, in both
directions. Per scan: CPU and wall seconds of each stage and the summary of the correction.

**XA30 P→A / A→P** (``--part xa30``; ``eddy_xa30.csv``, ``eddy_xa30_scans.csv``): each series of
``siemens_prisma_xa30_pepolar`` corrected alone with the first configuration of ``--configs``
(no susceptibility correction), ALPS of both directions before and after (pipeline defaults,
``max_bval`` 3000) and the difference PA − AP in units of its SE (:func:`xa30_part`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

REAL = REPO.parent / "shared" / "data" / "real_dwi"
HEADS = {"toshiba": "toshiba_galan_tilts", "canon": "canon_galan_tilts"}
SCENARIOS = {"12dir-visible": dict(n_dirs=12, bval=1500, visible_only=True, dropout=((5, 20, 0.3),)),
             "12dir-random": dict(n_dirs=12, bval=1500, visible_only=False, dropout=()),
             "30dir-random": dict(n_dirs=30, bval=1000, visible_only=False, dropout=())}


# ----------------------------------------------------------------------------- planted truth
def _alps(data, aff, bvals, bvecs, mask, reg):
    from alps.imaging import dti, measure

    maps = dti.fit_tensor(data, bvals, bvecs, aff, mask)
    w = measure.roi_weights("spheres", data.shape[:3], aff, reg)
    v = measure.measure(maps.tensor, aff, reg, w)
    return {k: float(v[k]) for k in ("alps_L", "alps_R", "alps")}


def sim_case(name, spec, seed):
    from alps.imaging import eddy as E, eddy_transform as ET
    from alps.imaging.registration import Registration
    from alps.io import gradients
    from alps.simulation import eddy as SE
    from alps.simulation import phantom
    from alps.simulation.pose import Pose

    pose = Pose((8.0, -5.0, 10.0), (2.0, -3.0, 1.0), 1.0)
    scheme = gradients.scheme(n_b0=1, n_dirs=spec["n_dirs"], bval=spec["bval"], seed=3)
    img, bvals, fsl, truth = SE.simulate_eddy_scan(
        phantom.make_template_fields(), pose, {"alps_L": 1.5, "alps_R": 1.4}, scheme=scheme, snr=25, seed=seed,
        visible_only=spec["visible_only"], dropout=spec["dropout"])
    data, aff, mask = np.asarray(img.dataobj, np.float32), img.affine, truth["mask"]
    t0, c0 = time.perf_counter(), time.process_time()
    res = E.correct_eddy_motion(data, aff, bvals, fsl, mask, pe_axis=1, centre=truth["planted"].geometry.centre)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    err, size = truth["planted"].displacement_errors(res.transforms, res.geometry, mask)
    dw = bvals > 50
    est, plant = res.parameters, truth["planted"].table(mask)
    mot = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    ec = [c for c in est.columns if c.startswith("ec_")]
    t2s = np.eye(4)
    t2s[:3, :3] = pose.scale * pose.R
    t2s[:3, 3] = pose.trans_mm
    reg = Registration(kind="affine", template_to_subject=t2s, forward_transforms=[], inverse_transforms=[])
    oracle = truth["extras"]["oracle"]
    sigma = truth["sigma"]
    row = {"scenario": name, "seed": seed, "n_volumes": len(bvals), "wall_s": wall, "cpu_s": cpu,
           **{f"time_{k}_s": v for k, v in res.times_s.items()},
           "planted_max_disp_mm": float(np.max(size)), "planted_median_disp_mm": float(np.median(size[1:])),
           "err_max_disp_mm": float(np.max(err)), "err_median_disp_mm": float(np.median(err[1:])),
           "motion_rms_planted": float(np.sqrt((plant.loc[dw, mot].to_numpy() ** 2).mean())),
           "motion_rms_err": float(np.sqrt(((est.loc[dw, mot].to_numpy() - plant.loc[dw, mot].to_numpy()) ** 2).mean())),
           "ec_rms_planted": float(np.sqrt((plant.loc[dw, ec].to_numpy() ** 2).mean())),
           "ec_rms_err": float(np.sqrt(((est.loc[dw, ec].to_numpy() - plant.loc[dw, ec].to_numpy()) ** 2).mean())),
           "outlier_volumes": res.summary()["eddy_outlier_volumes"],
           "planted_alps_L": oracle["alps_L"], "planted_alps_R": oracle["alps_R"], "planted_alps": oracle["alps"]}
    for state, d, b in (("undistorted", truth["undistorted"], truth["bvecs_fsl_ref"]), ("acquired", data, fsl),
                        ("corrected", res.data, res.bvecs)):
        row[f"image_rms_{state}"] = float(np.sqrt(np.mean((d[mask] - truth["undistorted"][mask]) ** 2)) / sigma)
        for k, v in _alps(d, aff, bvals, b, mask, reg).items():
            row[f"{k}_{state}"] = v
    params = est.merge(plant, on="volume", suffixes=("", "_planted"))
    params.insert(0, "scenario", name)
    params.insert(1, "seed", seed)
    return row, params, res, truth, data


def sim_part(out: Path, seeds) -> pd.DataFrame:
    rows, params = [], []
    shown = None
    for name, spec in SCENARIOS.items():
        for seed in seeds:
            row, p, res, truth, data = sim_case(name, spec, seed)
            rows.append(row)
            params.append(p)
            print(f"{name} seed {seed}: disp error max {row['err_max_disp_mm']:.2f} mm (planted {row['planted_max_disp_mm']:.2f}); "
                  f"alps acquired {row['alps_acquired']:.3f} corrected {row['alps_corrected']:.3f} "
                  f"undistorted {row['alps_undistorted']:.3f} planted {row['planted_alps']:.3f}; cpu {row['cpu_s']:.1f} s",
                  flush=True)
            if shown is None:
                shown = (name, res, truth, data)
    df = pd.DataFrame(rows)
    _save(df, out / "eddy_sim.csv")
    _save(pd.concat(params), out / "eddy_sim_params.csv")
    summary = df.groupby("scenario", sort=False).mean(numeric_only=True)
    cols = ["planted_max_disp_mm", "err_max_disp_mm", "err_median_disp_mm", "motion_rms_planted", "motion_rms_err",
            "ec_rms_planted", "ec_rms_err", "image_rms_acquired", "image_rms_corrected"]
    cols += [f"alps{h}_{s}" for h in ("", "_L", "_R") for s in ("undistorted", "acquired", "corrected")]
    cols += ["planted_alps", "cpu_s"]
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(summary[cols].T.to_string(float_format=lambda v: f"{v:.3f}"))
    qc_figure(*shown, out / "eddy_sim_qc")
    return df


def qc_figure(name, res, truth, data, path):
    """Parameters over the volumes (estimated vs planted) and one slice before/after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alps.figures.style import PAGE_WIDTH, save_figure, style

    est, plant = res.parameters, truth["planted"].table(truth["mask"])
    with style():
        fig, axes = plt.subplots(2, 3, figsize=(PAGE_WIDTH, 5.0))
        for ax, cols, title in ((axes[0, 0], ["trans_x", "trans_y", "trans_z"], "translation (mm)"),
                                (axes[0, 1], ["rot_x", "rot_y", "rot_z"], "rotation (deg)"),
                                (axes[0, 2], [c for c in est.columns if c.startswith("ec_")], "eddy currents (mm at 100 mm)")):
            for i, c in enumerate(cols):
                ax.plot(est["volume"], est[c], "o-", color=f"C{i}", label=f"{c} estimated", ms=4)
                if c in plant:
                    ax.plot(plant["volume"], plant[c], "x--", color=f"C{i}", label=f"{c} planted", ms=6, alpha=0.7)
            ax.set(title=title, xlabel="volume")
            ax.legend(fontsize=6, ncol=2)
        n = int(np.argmax(est["max_ec_disp_mm"]))
        z = data.shape[2] // 2
        und = truth["undistorted"][..., n]
        vmax = np.percentile(und, 99)
        for ax, img, title in ((axes[1, 0], data[..., n], f"acquired, volume {n}"),
                               (axes[1, 1], data[..., n] - und, "acquired − undistorted"),
                               (axes[1, 2], res.data[..., n] - und, "corrected − undistorted")):
            kw = dict(cmap="gray", vmin=0, vmax=vmax) if "−" not in title else dict(cmap="RdBu_r", vmin=-vmax / 3, vmax=vmax / 3)
            ax.imshow(np.rot90(img[:, :, z]), **kw)
            ax.set(title=f"{title} (slice {z})", xticks=[], yticks=[])
        fig.suptitle(f"eddy-current and motion correction, planted truth ({name})")
        fig.tight_layout()
        save_figure(fig, path)
        plt.close(fig)


# ----------------------------------------------------------------------------- real data
def correct_series(stem: Path, out_stem: Path, model: str) -> dict:
    """Correct one real series and write it (NIfTI, bval, rotated bvec, sidecar) at ``out_stem``."""
    import nibabel as nib

    from alps import atomic, io as aio
    from alps.imaging import eddy as E, preprocess as prep
    from alps.io.gradients import bvecs_text

    meta = json.loads(Path(str(stem) + ".json").read_text())
    pe = {"i": 0, "j": 1, "k": 2}.get(str(meta.get("PhaseEncodingDirection", meta.get("PhaseEncodingAxis", "")))[:1])
    dwi = aio.load_dwi(str(stem) + ".nii.gz", str(stem) + ".bval", str(stem) + ".bvec")
    t0, c0 = time.perf_counter(), time.process_time()
    mask = prep.brain_mask(dwi.data, np.where(dwi.bvals <= 50, 0.0, dwi.bvals))
    t_mask = time.perf_counter() - t0
    res = E.correct_eddy_motion(dwi.data, dwi.affine, dwi.bvals, dwi.bvecs, mask, pe_axis=pe, model=model)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    img = nib.Nifti1Image(res.data, dwi.affine)
    img.header.set_xyzt_units("mm")
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    atomic.save_nifti(str(out_stem) + ".nii.gz", img)
    shutil.copyfile(str(stem) + ".bval", str(out_stem) + ".bval")
    atomic.write_json(str(out_stem) + ".json", _public_sidecar(meta))
    atomic.write_text(str(out_stem) + ".bvec", bvecs_text(res.bvecs))
    atomic.write_table(str(out_stem) + "_eddy.tsv", res.parameters)
    return {"series": stem.name, "model": model, "pe_axis": pe, "n_volumes": len(dwi.bvals), "wall_s": wall,
            "cpu_s": cpu, "time_mask_s": t_mask, **{f"time_{k}_s": v for k, v in res.times_s.items()},
            "passes": len(res.settings["pass_changes_mm"]), **res.summary()}


def _public_sidecar(meta: dict) -> dict:
    """The sidecar without the site's identity (institution, station), which no output may carry."""
    return {k: v for k, v in meta.items() if not k.startswith(("Institution", "Station"))}


def mirror(root: Path, config: str, models) -> list[dict]:
    """``root/<config>/<head folder>/<series>.*``: symlinks (``none``) or corrected series."""
    rows = []
    for head, folder in HEADS.items():
        for nii in sorted((REAL / folder).glob("*.nii.gz")):
            stem = nii.name[: -len(".nii.gz")]
            dst = root / config / folder / stem
            if config == "none":
                dst.parent.mkdir(parents=True, exist_ok=True)
                for ext in (".nii.gz", ".bval", ".bvec", ".json"):
                    if not Path(str(dst) + ext).exists():
                        os.symlink(REAL / folder / (stem + ext), str(dst) + ext)
                continue
            row = correct_series(REAL / folder / stem, dst, models[config])
            rows.append({"config": config, "head": head, **row})
            print(f"{config} {stem}: cpu {row['cpu_s']:.1f} s wall {row['wall_s']:.1f} s, max disp "
                  f"{row['eddy_max_disp_mm']:.2f} mm, EC {row['eddy_max_ec_disp_mm']:.2f} mm, "
                  f"outliers [{row['eddy_outlier_volumes']}]", flush=True)
    return rows


def reliability(data_root: Path, work: Path) -> pd.DataFrame:
    import tilt_reliability as TR

    from alps.cli import main as alps

    bids = TR.build_bids(work / "bids", shared=data_root)
    out = work / "out"
    if alps(["run", str(bids), str(out), "--n-jobs", "1"]) != 0 or alps(["reliability", str(out), "--by", "participant_id"]) != 0:
        raise RuntimeError(f"alps run/reliability failed on {bids}")
    return pd.read_csv(out / "reliability.tsv", sep="\t", keep_default_na=False, na_values=["n/a"])


def real_part(out: Path, work: Path, configs) -> pd.DataFrame:
    models = {c: c for c in configs}
    scans, rel = [], []
    for config in ["none", *configs]:
        scans += mirror(work / "data", config, models)
        table = reliability(work / "data" / config, work / f"run-{config}")
        table.insert(0, "config", config)
        rel.append(table[table["participant_id"] != "all"])
    scans, rel = pd.DataFrame(scans), pd.concat(rel)
    _save(scans, out / "eddy_real_scans.csv")
    _save(rel, out / "eddy_real_reliability.csv")
    cols = ["config", "participant_id", "index", "spread", "noise_spread", "cochran_q", "q_p"]
    with pd.option_context("display.width", 200):
        print(rel[[c for c in cols if c in rel]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(scans.groupby("config")[["cpu_s", "wall_s", "time_register_s", "time_predict_s", "time_resample_s",
                                       "time_outliers_s"]].agg(["mean", "max"]).to_string(float_format=lambda v: f"{v:.1f}"))
    choose_and_report(rel)
    for config in configs:
        real_figure(work / "data" / config, out / f"eddy_real_{config}")
    return rel


def real_figure(root: Path, path) -> None:
    """Per-volume displacement, eddy currents and rotation of every corrected series (QC)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alps.figures.style import PAGE_WIDTH, save_figure, style
    from alps.imaging.eddy_report import plot_parameters

    with style():
        fig, axes = plt.subplots(2, 5, figsize=(PAGE_WIDTH * 1.6, 5.0), sharey=True)
        for row, (head, folder) in enumerate(HEADS.items()):
            for col, tsv in enumerate(sorted((root / folder).glob("*_eddy.tsv"))):
                plot_parameters(pd.read_csv(tsv, sep="\t", keep_default_na=False, na_values=["n/a"]),
                                axes[row, col], title=tsv.name.removesuffix("_eddy.tsv"))
        fig.suptitle(f"eddy-current and motion correction of the tilt heads ({root.name})")
        fig.tight_layout()
        save_figure(fig, path)
        plt.close(fig)


def choose_and_report(rel: pd.DataFrame) -> None:
    """The configuration with the smallest summed Cochran's Q on one head, reported on the other."""
    score = rel.groupby(["participant_id", "config"])["cochran_q"].sum()
    for choose, report in (("sub-toshiba", "sub-canon"), ("sub-canon", "sub-toshiba")):
        best = score[choose].idxmin()
        print(f"chosen on {choose}: {best} (summed Q {score[choose][best]:.1f}, uncorrected {score[choose]['none']:.1f}); "
              f"on {report}: summed Q {score[report][best]:.1f} vs uncorrected {score[report]['none']:.1f}")
        for idx in ("alps", "alps_L", "alps_R"):
            r = rel[(rel["participant_id"] == report) & (rel["index"] == idx)].set_index("config")
            print(f"    {report} {idx}: spread {r.loc['none', 'spread']:.3f} -> {r.loc[best, 'spread']:.3f} "
                  f"(noise-only {r.loc['none', 'noise_spread']:.3f} -> {r.loc[best, 'noise_spread']:.3f}; "
                  f"Q p {r.loc['none', 'q_p']:.3g} -> {r.loc[best, 'q_p']:.3g})")


# ----------------------------------------------------------------------------- XA30 P→A / A→P
XA30 = {"PA": "siemens_prisma_xa30_pepolar/10_DWI_dir80_PA", "AP": "siemens_prisma_xa30_pepolar/17_DWI_dir80_AP"}


def xa30_part(out: Path, work: Path, model: str = "linear") -> pd.DataFrame:
    """ALPS of the XA30 P→A and A→P series, uncorrected and eddy/motion-corrected (each series alone).

    Pipeline defaults with ``max_bval`` 3000 (the series are b = 2500), one BIDS participant per
    series and state (``sub-<state><dir>``); the difference PA − AP and its z (÷ the root sum of the
    squared wild-bootstrap SEs). No susceptibility correction here (issue 25's other half).
    """
    from alps import atomic
    from alps.pipeline import run_cohort

    bids, rows = work / "xa30-bids", []
    for d, rel in XA30.items():
        src = REAL / rel
        for state in ("none", model):
            dst = bids / f"sub-{state}{d}" / "dwi" / f"sub-{state}{d}_dwi"
            if state == "none":
                dst.parent.mkdir(parents=True, exist_ok=True)
                for ext in (".nii.gz", ".bval", ".bvec"):
                    if not Path(str(dst) + ext).exists():
                        os.symlink(str(src) + ext, str(dst) + ext)
                atomic.write_json(str(dst) + ".json", _public_sidecar(json.loads(Path(str(src) + ".json").read_text())))
            else:
                row = correct_series(src, dst, model)
                rows.append({"config": model, "head": "xa30", **row})
                print(f"xa30 {d} {model}: cpu {row['cpu_s']:.1f} s, max disp {row['eddy_max_disp_mm']:.2f} mm, "
                      f"EC {row['eddy_max_ec_disp_mm']:.2f} mm, outliers [{row['eddy_outlier_volumes']}]", flush=True)
    atomic.write_json(bids / "dataset_description.json", {"Name": "XA30 PA/AP eddy bench", "BIDSVersion": "1.9.0"})
    df = run_cohort(bids, work / "xa30-derivatives", n_jobs=1, progress=False, max_bval=3000.0).set_index("participant_id")
    table = []
    for state in ("none", model):
        pa, ap = df.loc[f"sub-{state}PA"], df.loc[f"sub-{state}AP"]
        rec = {"state": state}
        for idx in ("alps", "alps_L", "alps_R"):
            diff, se = float(pa[idx] - ap[idx]), float(np.hypot(pa[f"{idx}_se"], ap[f"{idx}_se"]))
            rec |= {f"{idx}_PA": float(pa[idx]), f"{idx}_se_PA": float(pa[f"{idx}_se"]), f"{idx}_AP": float(ap[idx]),
                    f"{idx}_se_AP": float(ap[f"{idx}_se"]), f"{idx}_PA_minus_AP": diff, f"{idx}_z": diff / se}
        table.append(rec)
    table = pd.DataFrame(table)
    _save(table, out / "eddy_xa30.csv")
    _save(pd.DataFrame(rows), out / "eddy_xa30_scans.csv")
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.T.to_string(float_format=lambda v: f"{v:.3f}"))
    return table


def _save(df: pd.DataFrame, path) -> None:
    from alps import atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_table(path, df, float_format="%.6g")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--work", default=None, help="work folder (default: OUT_DIR/eddy-work)")
    ap.add_argument("--part", nargs="+", default=["sim", "real"], choices=("sim", "real", "xa30"))
    ap.add_argument("--seeds", type=int, default=3, help="noise/planted-truth seeds per simulated scenario")
    ap.add_argument("--configs", nargs="+", default=["rigid", "linear", "quadratic"],
                    help="eddy-current models compared on the tilt heads")
    args = ap.parse_args(argv)
    out = Path(args.out_dir).resolve()
    work = (Path(args.work) if args.work else out / "eddy-work").resolve()
    if "sim" in args.part:
        sim_part(out, list(range(1, args.seeds + 1)))
    if "real" in args.part:
        if not REAL.is_dir():
            print(f"{REAL}: real data not available, real-data part skipped")
        else:
            real_part(out, work, args.configs)
    if "xa30" in args.part and REAL.is_dir():
        xa30_part(out, work, args.configs[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
