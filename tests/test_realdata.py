"""Real scans from ../shared/data/real_dwi (skipped when absent): the whole pipeline runs on the
Philips scan and the five tilted Toshiba series, ROIs land in white matter, and rotating the
tensor into template axes reduces the tilt dependence of ALPS. The full figures (both radii, CSV)
come from ``benchmarks/real_data.py``."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real_dwi"

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
if not REAL.is_dir():
    pytest.skip(f"real DWI data not found at {REAL} (only in the development checkout)", allow_module_level=True)

sys.path.insert(0, str(REPO / "benchmarks"))
from real_data import SCANS, make_bids  # noqa: E402

from alps import pipeline as P  # noqa: E402


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    # the Philips scan and the Toshiba head (the Canon head is benchmarks/real_data.py's only)
    bids = make_bids(root / "bids", REAL, names=[n for n in SCANS if not n.startswith("canon")])
    df = P.run_cohort(bids, root / "derivatives", n_jobs=2, progress=False)
    return df.set_index("participant_id"), root / "derivatives"


def test_all_scans_run(real_run):
    df, out = real_run
    assert len(df) == 6
    assert (df["status"] == "ok").all(), df.loc[df["status"] != "ok", "error"].to_dict()
    for pid in df.index:
        assert (out / pid / "dwi" / f"{pid}_desc-qc.png").is_file()


def test_philips_rois_in_white_matter(real_run):
    df, _ = real_run
    r = df.loc["sub-philips"]
    for roi in ("proj_L", "proj_R", "assoc_L", "assoc_R"):
        assert r[f"fa_{roi}"] > 0.3, roi
        assert r[f"purity_{roi}"] >= 0.5, roi
    assert r["reg_corr"] > 0.45
    assert 1.2 < r["alps"] < 1.9
    assert r["qc_pass"]


def test_toshiba_tilts(real_run):
    df, _ = real_run
    t = df[df.index.str.startswith("sub-toshiba")]
    assert len(t) == 5
    spread_t = t["alps"].max() - t["alps"].min()
    spread_s = t["alps_scanner"].max() - t["alps_scanner"].min()
    # template axes must beat scanner axes on the same ROIs; the 0.08 target is NOT met with
    # 2.5 mm spheres (see benchmarks/real_data.py), so this is a regression guard only
    assert spread_t < spread_s
    assert spread_t < 0.30
    assert (t["fa_proj_L"] > 0.25).all() and (t["fa_assoc_R"] > 0.25).all()


def test_toshiba_gradient_tables_agree_with_the_ortho_series(real_run):
    """The five series are one head: with every oblique series' table read in the right frame,
    its fibre field matches the ortho series' at the same anatomy (through the measured head
    motion) with no extra rotation. A table applied in slab instead of scanner axes would leave
    a 20–30° rotation here."""
    from real_data import load_fit, series_motion

    from alps.validation import fibre_field_agreement

    _, out = real_run
    names = ["toshiba7006ortho", "toshiba8006ax30", "toshiba6006sag30", "toshiba9006cor20", "toshiba10006all20"]
    motion = series_motion(names)
    _, _, t_ref, a_ref = load_fit(out, names[0])
    for name in names[1:]:
        _, mask, t, a = load_fit(out, name)
        res = fibre_field_agreement(t_ref, a_ref, t, a, motion[name], mask_b=mask)
        assert res["n_voxels"] > 1000, name
        assert res["extra_rotation_deg"] < 2.0, (name, res)
        assert res["median_angle_deg"] < 8.0, (name, res)


def test_a_registration_in_a_wrong_optimum_is_flagged(real_run):
    """Dense sampling with a 5 mm FA-mask erosion lands the 30° axial series ~8 mm off (found by
    benchmarks/bench_registration.py). It passes the failure thresholds, so QC must flag it,
    while the default registration of the same scan is not flagged."""
    import tempfile

    import numpy as np
    from real_data import load_fit

    from alps.imaging import qc, registration as R
    from alps.imaging.roi import default_spheres

    _, out = real_run
    fa, mask, _, _ = load_fit(out, "toshiba8006ax30")
    centres = np.array([s.center_mm for s in default_spheres()])
    with tempfile.TemporaryDirectory() as tmp:
        good = R.register(fa, mask, out_dir=tmp, check=False)
        bad = R.register(fa, mask, out_dir=tmp, check=False, sampling_strategy="dense", erode_mm=5.0)
    off = np.linalg.norm(good.points_to_subject(centres) - bad.points_to_subject(centres), axis=1).max()
    assert off > 5.0, f"the variant no longer lands off ({off:.1f} mm): pick another wrong optimum"
    R.check_metrics(bad.metrics)  # passes the failure thresholds ...
    assert "reg_corr_low" in qc.flags(bad.metrics)  # ... but is flagged
    assert "reg_corr_low" not in qc.flags(good.metrics)
    df, _ = real_run
    assert not df["qc_flags"].fillna("").str.contains("reg_corr_low").any()


def test_toshiba_tilt_spread_is_within_the_noise(real_run):
    """The five tilts of one head, default pipeline: the template-axis spread is one that the
    scans' own noise (leverage-adjusted wild bootstrap, alps.imaging.noise) produces often, while the
    scanner-axis spread is far outside it. This, not a fixed number, is what a pipeline that is
    robust to slab tilt can be held to on 12-direction 3 mm data."""
    import json

    from alps import io as aio
    from alps.imaging import measure, noise
    from alps.pipeline import load_registration

    df, out = real_run
    for axes, col in (("template", "alps"), ("scanner", "alps_scanner")):
        values, sds = [], []
        for name in [n for n in SCANS if n.startswith("toshiba")]:
            stem = str(REAL / SCANS[name])
            dwi = aio.load_dwi(stem + ".nii.gz", stem + ".bval", stem + ".bvec")
            base = out / f"sub-{name}"
            pre = json.loads((base / "dwi" / f"sub-{name}_desc-preprocess.json").read_text())
            reg = load_registration(pre, base)
            w = measure.roi_weights("spheres", dwi.data.shape[:3], dwi.affine, reg)
            boot = noise.bootstrap_scan(dwi, reg, w, axes=axes, n_boot=200, seed=0)
            values.append(df.loc[f"sub-{name}", col])
            sds.append(boot["alps"].std(ddof=1))
        c = noise.spread_consistency(values, sds, target=0.08).iloc[0]
        if axes == "template":
            assert 0.015 < min(sds) and max(sds) < 0.06, sds
            assert c["p_spread_ge_observed"] > 0.01, c.to_dict()
        else:
            assert c["p_spread_ge_observed"] < 0.001, c.to_dict()


def test_jhu_labels_on_the_philips_scan(tmp_path):
    """``--roi jhu`` end to end on a real scan: the SCR/SLF labels land in white matter with
    the expected fibre directions, each ROI on its own side of the brain in template space."""
    import numpy as np

    from alps.imaging.atlas import AtlasNotFound, find_jhu
    from alps.imaging.measure import ROI_LABELS

    try:
        find_jhu()
    except AtlasNotFound as exc:
        pytest.skip(f"JHU atlas not installed (`make atlas`): {exc}")
    bids = make_bids(tmp_path / "bids", REAL)
    df = P.run_cohort(bids, tmp_path / "derivatives", participant_label=["philips"], roi="jhu", progress=False)
    r = df.set_index("participant_id").loc["sub-philips"]
    assert r["status"] == "ok", r["error"]
    for roi in ("proj_L", "proj_R", "assoc_L", "assoc_R"):
        assert r[f"fa_{roi}"] > 0.3, roi
        assert r[f"purity_{roi}"] >= 0.5, roi
    assert 1.1 < r["alps"] < 1.9 and r["qc_pass"]
    # hemispheres: the native-space ROI label image, mapped to template space, sits left (x < 0)
    # for *_L and right for *_R
    import json

    import nibabel as nib

    base = tmp_path / "derivatives" / "sub-philips"
    pre = json.loads((base / "dwi" / "sub-philips_desc-preprocess.json").read_text())
    reg = P.load_registration(pre, base)
    dseg = nib.load(str(base / "dwi" / "sub-philips_desc-alpsrois_dseg.nii.gz"))
    lab = np.asarray(dseg.dataobj)
    for name, value in ROI_LABELS.items():
        ijk = np.argwhere(lab == value)
        assert len(ijk) > 0, name
        xyz = reg.points_to_template(ijk @ dseg.affine[:3, :3].T + dseg.affine[:3, 3])
        assert (np.sign(xyz[:, 0]) == (-1 if name.endswith("_L") else 1)).all(), name


def test_slab_values_agree_with_the_pipelines_measure(real_run):
    """benchmarks/real_data.py --slab-ratio samples the tensor at the template WM slab points and
    rotates it into template axes itself; the pipeline's own path (trilinear weights of the same
    points through alps.imaging.measure.measure) must give the same mean Dxx, Dyy, Dzz."""
    import nibabel as nib
    import numpy as np
    from real_data import SLAB_WM_P, SLAB_Z_MM, slab_values

    from alps.imaging import dti, measure, template
    from alps.pipeline import find_scan, load_registration

    _, out = real_run
    lay = find_scan(out, "sub-toshiba8006ax30")
    v = slab_values(lay)
    wm = template.load("wm", resolution=2)
    xyz = np.argwhere(wm.get_fdata() > SLAB_WM_P) @ wm.affine[:3, :3].T + wm.affine[:3, 3]
    xyz = xyz[(xyz[:, 2] >= SLAB_Z_MM[0]) & (xyz[:, 2] <= SLAB_Z_MM[1])]
    reg = load_registration(lay.read_preprocess(), lay.dir)
    tensor, aff = dti.load_tensor_image(str(lay.tensor))
    mask = np.asarray(nib.load(str(lay.mask)).dataobj) > 0
    vox = (reg.points_to_subject(xyz) - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T
    inside = mask[tuple(np.clip(np.rint(vox).astype(int), 0, np.array(mask.shape) - 1).T)]
    assert v["n_points"] == inside.sum() > 5000
    w = measure.trilinear_weights(vox[inside], tensor.shape[:3])
    ref = measure.measure(tensor, aff, reg, {k: w for k in measure.ROI_NAMES})
    for k in ("dxx", "dyy", "dzz"):
        assert v[k] == pytest.approx(ref[f"{k}_proj_L"], rel=1e-9), k
    assert v["dxx_dyy"] == pytest.approx(ref["dxx_proj_L"] / ref["dyy_proj_L"], rel=1e-9)
