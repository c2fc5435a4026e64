"""Susceptibility-distortion correction without FSL: planted truth and the Siemens XA30 pair.

    .venv/bin/python benchmarks/bench_distortion.py sim  OUT_CSV [--subjects 3] [--work DIR] [--no-alps]
    .venv/bin/python benchmarks/bench_distortion.py real OUT_CSV [--work DIR] [--no-alps]

``sim`` — simulated subjects (:func:`alps.simulation.distortion.simulate_pepolar_pair`: 3 mm grid,
1 b0 + 30 directions at b = 1000, SNR 25, planted field of 60 Hz frontal / 45 Hz temporal bumps,
readout 50 ms, P→A and A→P; with ``--eddy-hz`` (default 15) every diffusion-weighted volume also
has its own eddy-current field, the same in both series). Rows: the field error within the brain (RMS and 95th percentile of
|estimate − planted|, Hz) against the planted field's RMS; the distortion of the images (RMS
difference from the noise-free undistorted series within the brain, b0 and DWI volumes) of the
distorted and corrected series beside the undistorted noisy series (the noise floor); with the
ALPS step, the pipeline (:func:`alps.pipeline.run_cohort`, defaults) on the undistorted, distorted
and corrected series of each direction, and each one's bias against the planted (oracle) ALPS;
"corrected" uses the b0 field only, "corrected+pairs" also each diffusion-weighted pair's own field
(:mod:`alps.imaging.volume_pairs`).

``real`` — ``../shared/data/real_dwi/siemens_prisma_xa30_pepolar``: the field from the P→A/A→P
b0 pair (:func:`alps.imaging.susceptibility.correct_pepolar`) against the field of the GRE phase
difference (:func:`alps.imaging.fieldmap.phasediff_to_hz`, in scanner coordinates, and with the
rigid registration of its magnitude): voxelwise correlation and RMS difference (Hz) within the
brain mask (``median_otsu`` of the mean corrected b0); the agreement of the AP and PA b0 and FA
maps (correlation, mean absolute difference) uncorrected, PEPOLAR-corrected (b0 field; and with each
diffusion-weighted pair's own field, ``pepolar+pairs``) and GRE-corrected; the
ALPS index (with ``alps_se``) of each direction in each state (pipeline, ``max_bval = 3000`` since
the scan is b = 2500); CPU and wall time of each correction (2-core machine shared with others:
the CPU time is the cost, the wall time depends on the load). QC figure ``<OUT_CSV stem>.png|pdf``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alps import atomic  # noqa: E402
from alps.imaging.dti import fit_tensor  # noqa: E402
from alps.imaging.fieldmap import phasediff_to_hz  # noqa: E402
from alps.imaging.susceptibility import correct_fieldmap, correct_pepolar  # noqa: E402
from alps.imaging.volume_pairs import correct_volume_pairs, matched_volumes  # noqa: E402
from alps.io.fmap import phase_encoding  # noqa: E402
from alps.io.gradients import read_bvals_bvecs, write_bvals_bvecs  # noqa: E402

XA30 = REPO.parent / "shared" / "data" / "real_dwi" / "siemens_prisma_xa30_pepolar"


def _timed(fn, *a, **k):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*a, **k)
    return out, time.process_time() - c0, time.perf_counter() - w0


def _agreement(x, y, mask):
    return {"corr": float(np.corrcoef(x[mask], y[mask])[0, 1]), "mad": float(np.mean(np.abs(x - y)[mask]))}


def _write_series(folder: Path, name: str, data, affine, bvals, bvecs):
    d = folder / f"sub-{name}" / "dwi"
    d.mkdir(parents=True, exist_ok=True)
    stem = d / f"sub-{name}_dwi"
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), f"{stem}.nii.gz")
    write_bvals_bvecs(bvals, bvecs, f"{stem}.bval", f"{stem}.bvec")


def _run_alps(series: dict, affine, bvals, bvecs, work: Path, **params) -> pd.DataFrame:
    """ALPS of each named series through the pipeline (one temporary BIDS dataset)."""
    from alps.pipeline import run_cohort

    bids = work / "bids"
    for name, data in series.items():
        _write_series(bids, name, data, affine, bvals, bvecs)
    atomic.write_json(bids / "dataset_description.json", {"Name": "distortion bench", "BIDSVersion": "1.9.0"})
    df = run_cohort(bids, work / "derivatives", n_jobs=1, progress=False, qc_png=False, **params)
    return df.set_index("participant_id")


# ----------------------------------------------------------------------------- planted truth

def sim(out_csv: Path, *, n_subjects: int, work: Path, alps: bool, eddy_hz: float):
    from alps.simulation.distortion import simulate_pepolar_pair
    from alps.simulation.phantom import make_template_fields
    from alps.simulation.pose import draw_pose
    from alps.simulation.signal import default_scheme

    fields = make_template_fields()
    scheme = default_scheme(seed=3, n_b0=1, n_dirs=30, bval=1000.0)
    rows = []
    for s in range(n_subjects):
        rng = np.random.default_rng([2026, s])
        pose = draw_pose(rng, max_rotation=8.0, max_translation=4.0, max_scale=0.03)
        planted = {"alps_L": float(rng.uniform(1.35, 1.65)), "alps_R": float(rng.uniform(1.35, 1.65))}
        pair = simulate_pepolar_pair(fields, pose, planted, snr=25.0, seed=100 + s, scheme=scheme, eddy_hz=eddy_hz)
        m, truth = pair.mask, pair.truth
        b0 = pair.bvals <= 50
        a, b = (np.asarray(pair.images[d].dataobj, np.float32) for d in ("j", "j-"))
        (ca, cb, est), cpu, wall = _timed(correct_pepolar, a, pair.bvals, pair.pe["j"], b, pair.bvals, pair.pe["j-"],
                                          pair.images["j"].affine, mask=m, inputs=("dir-PA", "dir-AP"))
        err = (est.field_hz - pair.field_hz)[m]
        (pa_, ap_, vrows), cpu_v, wall_v = _timed(correct_volume_pairs, ca, cb,
                                                 matched_volumes(pair.bvals, pair.bvecs, pair.bvals, pair.bvecs),
                                                 pair.pe["j"], pair.pe["j-"], (3.0, 3.0, 3.0), mask=m)
        eddy_err = [np.sqrt(np.mean((r["field_mean_hz"] - _eddy_true(pair, r["volume_a"]).mean()) ** 2))
                    for r in vrows] if eddy_hz else []
        sub = f"sim{s}"
        base = {"subject": sub, "oracle_alps": pair.extras["oracle"]["alps"]}
        rows += [dict(base, quantity="field_planted_rms_hz", condition="planted", value=float(np.sqrt(np.mean(pair.field_hz[m] ** 2)))),
                 dict(base, quantity="field_error_rms_hz", condition="pepolar", value=float(np.sqrt(np.mean(err ** 2)))),
                 dict(base, quantity="field_error_p95_hz", condition="pepolar", value=float(np.percentile(np.abs(err), 95))),
                 dict(base, quantity="displacement_max_mm", condition="planted", value=ca.record.displacement_max_mm),
                 dict(base, quantity="cpu_s", condition="pepolar", value=cpu),
                 dict(base, quantity="wall_s", condition="pepolar", value=wall),
                 dict(base, quantity="cpu_s", condition="volume pairs", value=cpu_v),
                 dict(base, quantity="wall_s", condition="volume pairs", value=wall_v)]
        if eddy_hz:
            rows.append(dict(base, quantity="eddy_mean_error_rms_hz", condition="volume pairs", value=float(np.sqrt(np.mean(np.square(eddy_err))))))
        und = np.asarray(pair.undistorted.dataobj, np.float32)
        for cond, arrs in (("undistorted_noisy", {"PA": und, "AP": und}), ("distorted", {"PA": a, "AP": b}),
                           ("corrected", {"PA": ca.data, "AP": cb.data}), ("corrected+pairs", {"PA": pa_.data, "AP": ap_.data})):
            for d, arr in arrs.items():
                for what, sel in (("b0", b0), ("dwi", ~b0)):
                    rms = float(np.sqrt(np.mean((arr[..., sel] - truth[..., sel])[m] ** 2)))
                    rows.append(dict(base, quantity=f"image_rms_{what}", condition=f"{cond}_{d}", value=rms))
        if alps:
            series = {f"{sub}und": und, f"{sub}distPA": a, f"{sub}distAP": b, f"{sub}corrPA": ca.data, f"{sub}corrAP": cb.data}
            if eddy_hz:
                series.update({f"{sub}pairsPA": pa_.data, f"{sub}pairsAP": ap_.data})
            df = _run_alps(series, pair.images["j"].affine, pair.bvals, pair.bvecs, work / sub)
            for name in series:
                r = df.loc[f"sub-{name}"]
                cond = name[len(sub):]
                rows.append(dict(base, quantity="alps", condition=cond, value=float(r["alps"])))
                rows.append(dict(base, quantity="alps_bias", condition=cond, value=float(r["alps"]) - base["oracle_alps"]))
                rows.append(dict(base, quantity="alps_se", condition=cond, value=float(r.get("alps_se", np.nan))))
        print(f"{sub}: field error {np.sqrt(np.mean(err ** 2)):.2f} Hz RMS (planted {np.sqrt(np.mean(pair.field_hz[m] ** 2)):.1f}); "
              f"{cpu:.1f} s CPU, {wall:.1f} s wall", flush=True)
    out = pd.DataFrame(rows)
    atomic.write_table(out_csv, out)
    summary = out.groupby(["quantity", "condition"])["value"].agg(["mean", "std", "count"])
    print(summary.to_string())


def _eddy_true(pair, k):
    from alps.simulation.distortion import _linear_field

    return _linear_field(pair.extras["eddy_hz"][k], pair.truth.shape, pair.images["j"].affine)[pair.mask]


# ----------------------------------------------------------------------------- real XA30

def _series(stem):
    img = nib.load(str(XA30 / f"{stem}.nii.gz"))
    bvals, bvecs = read_bvals_bvecs(XA30 / f"{stem}.bval", XA30 / f"{stem}.bvec")
    meta = json.loads((XA30 / f"{stem}.json").read_text())
    return np.asarray(img.dataobj, np.float32), img.affine, bvals, bvecs, phase_encoding(meta, source=f"{stem}.json")


def _fa(data, bvals, bvecs, affine, mask):
    return fit_tensor(data, bvals, bvecs, affine, mask).fa


def real(out_csv: Path, *, work: Path, alps: bool):
    from dipy.segment.mask import median_otsu

    pa, aff, bvals, bvecs, pe_pa = _series("10_DWI_dir80_PA")
    ap, aff_ap, bvals_ap, bvecs_ap, pe_ap = _series("17_DWI_dir80_AP")
    if not np.allclose(aff, aff_ap) or not np.allclose(bvals, bvals_ap):
        raise SystemExit("the two XA30 series are not on one grid/scheme")
    rows = []
    (c_pa, c_ap, est), cpu, wall = _timed(correct_pepolar, pa, bvals, pe_pa, ap, bvals, pe_ap, aff,
                                          inputs=("10_DWI_dir80_PA", "17_DWI_dir80_AP"))
    rows += [{"quantity": "cpu_s", "condition": "pepolar (both series)", "value": cpu},
             {"quantity": "wall_s", "condition": "pepolar (both series)", "value": wall},
             {"quantity": "load_1min", "condition": "", "value": os.getloadavg()[0]},
             {"quantity": "rigid_AP_to_PA", "condition": str(c_ap.record.rigid_mm_deg), "value": np.nan}]
    b0 = bvals <= 50
    mean_b0 = 0.5 * (c_pa.data[..., b0].mean(-1) + c_ap.data[..., b0].mean(-1))
    _, mask = median_otsu(mean_b0, median_radius=2, numpass=1)
    mask = ndimage.binary_fill_holes(mask)
    rows.append({"quantity": "brain_voxels", "condition": "median_otsu(corrected mean b0)", "value": int(mask.sum())})
    ph = nib.load(str(XA30 / "9_gre_field_mapping_e2_ph.nii.gz"))
    mag = nib.load(str(XA30 / "8_gre_field_mapping_e1.nii.gz"))
    te = json.loads((XA30 / "9_gre_field_mapping_e2_ph.json").read_text())
    (gre, _, _), cpu_g, wall_g = _timed(phasediff_to_hz, np.asarray(ph.dataobj, float), np.asarray(mag.dataobj, float),
                                        (te["EchoTime1"], te["EchoTime2"]), ph.header.get_zooms()[:3],
                                        name="9_gre_field_mapping_e2_ph.nii.gz")
    rows += [{"quantity": "cpu_s", "condition": "phasediff -> Hz", "value": cpu_g},
             {"quantity": "wall_s", "condition": "phasediff -> Hz", "value": wall_g}]
    fm = {}
    for reg in (False, True):
        label = "gre_registered" if reg else "gre"
        kw = dict(magnitude=np.asarray(mag.dataobj, float)) if reg else {}
        (g_pa, cpu1, wall1) = _timed(correct_fieldmap, pa, bvals, pe_pa, aff, gre, ph.affine, source="phasediff", **kw)
        (g_ap, cpu2, wall2) = _timed(correct_fieldmap, ap, bvals, pe_ap, aff, gre, ph.affine, source="phasediff", **kw)
        fm[label] = (g_pa, g_ap)
        rows += [{"quantity": "cpu_s", "condition": f"{label} (both series)", "value": cpu1 + cpu2},
                 {"quantity": "rigid_gre_to_PA" if reg else "rigid_gre", "condition": str(g_pa.record.rigid_mm_deg), "value": np.nan},
                 {"quantity": "rigid_gre_to_AP" if reg else "rigid_gre", "condition": str(g_ap.record.rigid_mm_deg), "value": np.nan}]
        f_g = g_pa.field_hz
        a = _agreement(est.field_hz, f_g, mask)
        rows += [{"quantity": "field_corr_pepolar_vs_gre", "condition": label, "value": a["corr"]},
                 {"quantity": "field_rms_diff_hz", "condition": label,
                  "value": float(np.sqrt(np.mean((est.field_hz - f_g)[mask] ** 2)))},
                 {"quantity": "field_median_diff_hz", "condition": label, "value": float(np.median((est.field_hz - f_g)[mask]))},
                 {"quantity": "field_rms_hz", "condition": label, "value": float(np.sqrt(np.mean(f_g[mask] ** 2)))}]
    rows.append({"quantity": "field_rms_hz", "condition": "pepolar", "value": float(np.sqrt(np.mean(est.field_hz[mask] ** 2)))})
    (v_pa, v_ap, vrows), cpu_v, wall_v = _timed(correct_volume_pairs, c_pa, c_ap,
                                               matched_volumes(bvals, bvecs, bvals_ap, bvecs_ap), pe_pa, pe_ap,
                                               (3.0, 3.0, 3.0), mask=mask)
    rows += [{"quantity": "cpu_s", "condition": "volume pairs (both series)", "value": cpu_v},
             {"quantity": "wall_s", "condition": "volume pairs (both series)", "value": wall_v},
             {"quantity": "n_volume_pairs", "condition": "", "value": len(vrows)},
             {"quantity": "volume_field_rms_hz", "condition": "volume pairs", "value": v_pa.record.volume_field_rms_hz}]
    rows += [{"quantity": "volume_field_mean_hz", "condition": f"volume {r['volume_a']}", "value": r["field_mean_hz"]}
             for r in vrows]
    states = {"uncorrected": (pa, ap), "pepolar": (c_pa.data, c_ap.data), "pepolar+pairs": (v_pa.data, v_ap.data),
              "gre": (fm["gre"][0].data, fm["gre"][1].data), "gre_registered": (fm["gre_registered"][0].data, fm["gre_registered"][1].data)}
    fa = {}
    for state, (x, y) in states.items():
        for what, (u, v) in (("b0", (x[..., b0].mean(-1), y[..., b0].mean(-1))),
                             ("fa", (_fa(x, bvals, bvecs, aff, mask), _fa(y, bvals, bvecs, aff, mask)))):
            if what == "fa":
                fa[state] = (u, v)
            ag = _agreement(u, v, mask)
            rows += [{"quantity": f"{what}_corr_PA_vs_AP", "condition": state, "value": ag["corr"]},
                     {"quantity": f"{what}_mad_PA_vs_AP", "condition": state, "value": ag["mad"]}]
    _figure(out_csv.with_suffix(""), pa, ap, c_pa, c_ap, fm["gre"][0].field_hz, est.field_hz, fa, mask, bvals)
    if alps:
        series = {f"{_key(state)}{d}": arr for state, (x, y) in states.items() for d, arr in (("PA", x), ("AP", y))}
        df = _run_alps(series, aff, bvals, bvecs, work, max_bval=3000.0)
        for state in states:
            key = _key(state)
            r_pa, r_ap = df.loc[f"sub-{key}PA"], df.loc[f"sub-{key}AP"]
            for d, r in (("PA", r_pa), ("AP", r_ap)):
                rows += [{"quantity": f"alps_{d}", "condition": state, "value": float(r["alps"])},
                         {"quantity": f"alps_se_{d}", "condition": state, "value": float(r["alps_se"])},
                         {"quantity": f"status_{d}", "condition": f"{state}: {r['status']}", "value": np.nan}]
            diff = float(r_pa["alps"] - r_ap["alps"])
            se = float(np.hypot(r_pa["alps_se"], r_ap["alps_se"]))
            rows += [{"quantity": "alps_PA_minus_AP", "condition": state, "value": diff},
                     {"quantity": "alps_diff_over_se", "condition": state, "value": diff / se}]
    out = pd.DataFrame(rows)
    atomic.write_table(out_csv, out)
    print(out.to_string())


def _key(state: str) -> str:
    return state.replace("_", "").replace("+", "")


def _figure(stem: Path, pa, ap, c_pa, c_ap, f_gre, f_pep, fa, mask, bvals):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b0 = bvals <= 50
    ks = (9, 15, 22)
    vm = float(np.percentile(pa[..., 0], 99.5))
    cols = [("PA b0", pa[..., b0].mean(-1), "gray"), ("AP b0", ap[..., b0].mean(-1), "gray"),
            ("PA − AP uncorrected", pa[..., b0].mean(-1) - ap[..., b0].mean(-1), "diff"),
            ("PA corrected", c_pa.data[..., b0].mean(-1), "gray"), ("AP corrected", c_ap.data[..., b0].mean(-1), "gray"),
            ("PA − AP corrected", c_pa.data[..., b0].mean(-1) - c_ap.data[..., b0].mean(-1), "diff"),
            ("FA PA − AP uncorr.", fa["uncorrected"][0] - fa["uncorrected"][1], "fadiff"),
            ("FA PA − AP corr.", fa["pepolar"][0] - fa["pepolar"][1], "fadiff"),
            ("FA PA − AP corr.+pairs", fa["pepolar+pairs"][0] - fa["pepolar+pairs"][1], "fadiff"),
            ("field PEPOLAR (Hz)", f_pep, "field"), ("field GRE (Hz)", f_gre, "field")]
    fig, axs = plt.subplots(len(ks), len(cols), figsize=(2.0 * len(cols) + 1.0, 2.1 * len(ks) + 0.6),
                            layout="constrained")
    for r, k in enumerate(ks):
        for c, (title, vol, kind) in enumerate(cols):
            ax = axs[r, c]
            sl = vol[:, :, k].T
            if kind == "gray":
                im = ax.imshow(sl, origin="lower", cmap="gray", vmin=0, vmax=vm)
            elif kind == "diff":
                im = ax.imshow(sl, origin="lower", cmap="RdBu_r", vmin=-vm / 2, vmax=vm / 2)
            elif kind == "fadiff":
                im = ax.imshow(np.where(mask[:, :, k], vol[:, :, k], 0).T, origin="lower", cmap="RdBu_r", vmin=-0.3, vmax=0.3)
            else:
                im = ax.imshow(sl, origin="lower", cmap="RdBu_r", vmin=-80, vmax=80)
                ax.contour(mask[:, :, k].T, [0.5], colors="k", linewidths=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"slice k = {k}", fontsize=8)
    fig.colorbar(im, ax=axs[:, -2:], shrink=0.5, label="field (Hz)", location="right")
    fig.suptitle("Siemens XA30: P→A and A→P DWI corrected with the field of their b0 pair (PEPOLAR); "
                 "that field beside the GRE field map's (brain mask outlined)", fontsize=9)
    for ext in (".png", ".pdf"):
        atomic.save_figure(stem.with_suffix(ext), fig, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["sim", "real"])
    p.add_argument("out_csv", type=Path)
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--no-alps", action="store_true", help="skip the pipeline runs (ALPS)")
    p.add_argument("--eddy-hz", type=float, default=15.0, help="sim: per-volume eddy-current fields (0: none)")
    a = p.parse_args(argv)
    a.out_csv.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        if a.what == "sim":
            sim(a.out_csv, n_subjects=a.subjects, work=work, alps=not a.no_alps, eddy_hz=a.eddy_hz)
        else:
            if not XA30.is_dir():
                print(f"{XA30} not found: real-data benchmark skipped")
                return 0
            real(a.out_csv, work=work, alps=not a.no_alps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
