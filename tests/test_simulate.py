"""Tests of the simulated cohort (alps.simulation, alps.simulation.phantom, alps.simulation.clinical)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage, stats

from alps import simulation as S
from alps.config import section
from alps.io.gradients import fsl_to_voxel, read_bvals_bvecs, write_bvals_bvecs
from alps.imaging.index import alps_from_tensor_field
from alps.simulation.phantom import make_template_fields, oracle_alps, roi_masks
from alps.imaging.roi import DEFAULT_CENTERS_MM, default_spheres, sphere_masks
from alps.imaging.tensor import eig, from_six, rotate, voxel_to_world

ROT = (10.0, -8.0, 12.0)


@pytest.fixture(scope="module")
def fields():
    return make_template_fields()


@pytest.fixture(scope="module")
def scheme():
    return S.default_scheme(seed=3)


def _write_subject(tmp, img, bvals, bvecs):
    S.write_nifti_gz(img, tmp / "dwi.nii.gz")
    write_bvals_bvecs(bvals, bvecs, tmp / "dwi.bval", tmp / "dwi.bvec")
    im = nib.load(tmp / "dwi.nii.gz")
    bvals, bvecs = read_bvals_bvecs(tmp / "dwi.bval", tmp / "dwi.bvec", n_volumes=im.shape[-1])
    return im, bvals, bvecs


def _fit(data, bvals, bvecs_vox):
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel

    gtab = gradient_table(bvals, bvecs=bvecs_vox)
    return TensorModel(gtab).fit(np.asarray(data, float)).quadratic_form


# ------------------------------------------------------------------ 1. identity pose / oracle
def test_roi_white_matter_fraction_high(fields):
    masks = roi_masks(fields.shape, fields.affine, 2.5)
    for name, m in masks.items():
        assert fields.f_wm[m].mean() > 0.9, name
        # planted orientation is pure (weight 1) in every ROI voxel
        d = fields.orient6[m] / fields.f_wm[m][:, None]
        axis = {"proj": 5, "assoc": 3}[name.split("_")[0]]
        np.testing.assert_allclose(d[:, axis], 1.0, atol=1e-12)


def test_identity_pose_oracle_equals_planted(fields, scheme, tmp_path):
    """The perivascular term is calibrated (linear in p) so that the template-space oracle equals
    the planted ALPS exactly; the naive pure-voxel p = (ALPS − 1) λ⊥ would fall short because of
    partial volume with GM and the slab weight; we check that too, to keep the calibration honest.

    With an identity pose and an RAS grid snapped to the template lattice, the native image samples
    the template at its voxel centres, so a DTI fit of the noise-free DWI and the same sphere ROIs
    on the native grid must give the planted values (float32 storage precision)."""
    planted = S.subject_parameters(fields, 1.62, 1.48, lam_par=1.66e-3, lam_perp=0.38e-3)
    t6 = S.subject_template_tensor(fields, planted)
    oracle = oracle_alps(t6, fields.affine)
    assert abs(oracle["alps_L"] - 1.62) < 1e-12
    assert abs(oracle["alps_R"] - 1.48) < 1e-12
    # same through the public (3, 3) path of alps.imaging.index
    masks = sphere_masks(fields.shape, fields.affine, default_spheres(radius_mm=2.5))
    full = alps_from_tensor_field(from_six(t6), masks)
    assert abs(full["alps_L"] - oracle["alps_L"]) < 1e-12
    naive = fields.tensor6(1.66e-3, 0.38e-3, 0.62 * 0.38e-3, 0.48 * 0.38e-3)
    naive_alps = oracle_alps(naive, fields.affine)
    assert 0 < 1.62 - naive_alps["alps_L"] < 0.1  # partial volume lowers it a little

    img, bvals, bvecs, ex = S.simulate_subject(fields, S.Pose(), planted, snr=None,
                                               scheme=scheme, orientation="RAS", dtype="float32")
    im, bvals, bvecs = _write_subject(tmp_path, img, bvals, bvecs)
    masks = sphere_masks(im.shape[:3], im.affine, default_spheres(radius_mm=2.5))
    sel = np.zeros(im.shape[:3], bool)
    for m in masks.values():
        sel |= m
    data = im.get_fdata(dtype=np.float32)
    q = np.zeros(im.shape[:3] + (3, 3))
    q[sel] = _fit(data[sel], bvals, fsl_to_voxel(bvecs, im.affine))
    native = alps_from_tensor_field(voxel_to_world(q, im.affine), masks)
    assert abs(native["alps_L"] - 1.62) < 1e-4
    assert abs(native["alps_R"] - 1.48) < 1e-4


# ------------------------------------------------------------------ 2. rotated subject, bvecs
@pytest.mark.parametrize("orientation,oblique", [("RAS", False), ("LAS", False), ("LAS", True)])
def test_rotated_subject_tensor_roundtrip(fields, scheme, tmp_path, orientation, oblique):
    """Fit the written DWI (FSL bvecs → voxel axes → world), undo the known rotation, and
    recover the template tensor at the native voxel nearest each ROI centre.

    Expected value: the template field trilinearly interpolated at pose⁻¹ of that voxel centre
    (exactly what the simulator sampled), so the tolerance is float32 storage + fit round-off
    (1e-4 relative). The principal eigenvector must be the planted fibre direction (z in SCR,
    y in SLF). A negative control with the x-flip applied the wrong way must fail clearly."""
    planted = S.subject_parameters(fields, 1.6, 1.5)
    pose = S.Pose(ROT, (3.0, -2.0, 1.5), 1.03)
    img, bvals, bvecs, ex = S.simulate_subject(fields, pose, planted, snr=None, scheme=scheme,
                                               orientation=orientation, oblique=oblique,
                                               dtype="float32", return_tensor=True)
    im, bvals, bvecs = _write_subject(tmp_path, img, bvals, bvecs)
    A = im.affine
    assert (np.linalg.det(A[:3, :3]) < 0) == (orientation == "LAS")
    inv = np.linalg.inv(A)
    inv_t = np.linalg.inv(fields.affine)
    t6 = ex["template_tensor6"]
    data = im.get_fdata(dtype=np.float32)
    R = pose.R
    for name, centre in DEFAULT_CENTERS_MM.items():
        x_n = pose.forward(np.asarray(centre, float))
        ijk = np.rint(inv[:3, :3] @ x_n + inv[:3, 3]).astype(int)
        xv = A[:3, :3] @ ijk + A[:3, 3]
        assert np.linalg.norm(pose.inverse(xv) - centre) < 2.0  # nearest voxel is close
        vt = inv_t[:3, :3] @ pose.inverse(xv) + inv_t[:3, 3]
        expected = from_six(np.array([ndimage.map_coordinates(t6[..., k], vt[:, None], order=1)[0]
                                      for k in range(6)]))
        sig = data[tuple(ijk)][None]
        d_vox = _fit(sig, bvals, fsl_to_voxel(bvecs, A))[0]
        d_tmpl = rotate(voxel_to_world(d_vox, A), R.T)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(d_tmpl, expected, atol=1e-4 * scale, err_msg=name)
        for ax in range(3):  # Dxx, Dyy, Dzz
            assert abs(d_tmpl[ax, ax] - expected[ax, ax]) < 1e-4 * scale
        v = eig(d_tmpl)[1][:, 0]
        planted_dir = {"proj": 2, "assoc": 1}[name.split("_")[0]]
        assert abs(v[planted_dir]) > np.cos(np.deg2rad(1.0)), (name, v)
        if not oblique:
            # negative control: wrong FSL convention (flip where none is due, or none where
            # due). Not for the oblique grid: there the head is straight in the voxel axes, the
            # voxel-frame tensor is diagonal and an x-flip leaves it unchanged.
            wrong = bvecs.copy()
            wrong[:, 0] *= -1
            d_bad = rotate(voxel_to_world(_fit(sig, bvals, fsl_to_voxel(wrong, A))[0], A), R.T)
            assert np.abs(d_bad - expected).max() > 0.03 * scale
        # and without reorientation the native tensor is clearly not the template tensor
        assert np.abs(voxel_to_world(d_vox, A) - expected).max() > 0.05 * scale


# ------------------------------------------------------------------ 3. clinical model
@pytest.fixture(scope="module")
def clinical():
    seed = int(section("default", "simulate")["seed"])
    return S.clinical_table(seed)


def test_clinical_model_targets(clinical):
    """Default-seed statistics near the design targets, tolerance 2.5 standard errors."""
    import statsmodels.api as sm

    df = clinical
    m = S.ClinicalModel()
    k = 2.5
    for g, target in (("MO", m.mean_mo), ("VM", m.mean_vm), ("HC", m.mean_hc)):
        a = df.loc[df.group == g, "planted_alps"]
        assert abs(a.mean() - target) < k * a.std(ddof=1) / np.sqrt(len(a)), g
    pat = df[df.group != "HC"]
    X = sm.add_constant(np.column_stack([(pat.group == "VM").astype(float),
                                         pat.duration_years, pat.attacks_per_month]))
    fit = sm.OLS(pat.planted_alps.to_numpy(), X).fit()
    for i, target in ((1, m.beta_subtype), (2, m.beta_duration), (3, m.beta_frequency)):
        assert abs(fit.params[i] - target) < k * fit.bse[i], (i, fit.params[i], fit.bse[i])
    vm = df[df.group == "VM"]
    n = len(vm)
    d = vm.duration_years.to_numpy(float)
    a = vm.planted_alps.to_numpy(float)
    dhi = vm.dhi.to_numpy(float)
    for x, target in ((d, m.r_alps_duration_vm), (dhi, m.r_alps_dhi_vm)):
        r = stats.pearsonr(a, x)[0]
        assert abs(r - target) < k * (1 - target**2) / np.sqrt(n), (r, target)

    def prop_mediated(idx):
        dd, aa, yy = d[idx], a[idx], dhi[idx]
        a_path = np.polyfit(dd, aa, 1)[0]
        c_total = np.polyfit(dd, yy, 1)[0]
        b_path = np.linalg.lstsq(np.column_stack([np.ones_like(dd), dd, aa]), yy, rcond=None)[0][2]
        return a_path * b_path / c_total

    pm = prop_mediated(np.arange(n))
    rng = np.random.default_rng(0)
    boot = np.array([prop_mediated(rng.integers(0, n, n)) for _ in range(1000)])
    se = np.std(boot[np.isfinite(boot) & (np.abs(boot) < 10)], ddof=1)
    assert abs(pm - m.prop_mediated_vm) < k * se, (pm, se)
    asym = (df.planted_alps_L - df.planted_alps_R).to_numpy()
    assert abs(asym.std(ddof=1) - m.asym_sd) < k * m.asym_sd / np.sqrt(2 * (len(df) - 1))
    np.testing.assert_allclose((df.planted_alps_L + df.planted_alps_R) / 2, df.planted_alps,
                               atol=1e-12)


def test_clinical_variables_valid(clinical):
    df = clinical
    assert list(df.group.value_counts().sort_index().items()) == [("HC", 20), ("MO", 40), ("VM", 40)]
    assert df.participant_id.iloc[0] == "sub-MO001" and df.participant_id.iloc[-1] == "sub-HC020"
    pat = df[df.group != "HC"]
    hc = df[df.group == "HC"]
    assert 0.6 < (pat.sex == "F").mean() < 0.95
    assert (pat.duration_years > 0).all() and (pat.duration_years <= pat.age).all()
    assert pat.attacks_per_month.min() > 0
    assert pat.vas.between(0, 10).all() and pat.hit6.between(36, 78).all()
    assert df.psqi.between(0, 21).all()
    vm_dhi = df.loc[df.group == "VM", "dhi"].astype(int)
    assert vm_dhi.between(0, 100).all() and (vm_dhi % 2 == 0).all()
    assert df.loc[df.group != "VM", "dhi"].isna().all()
    for col in ("duration_years", "attacks_per_month", "vas", "hit6"):
        assert hc[col].isna().all()
    # VM have longer disease and more attacks (needed to reconcile group means with B_subtype)
    vm, mo = df[df.group == "VM"], df[df.group == "MO"]
    assert vm.duration_years.mean() > mo.duration_years.mean()
    assert vm.attacks_per_month.mean() > mo.attacks_per_month.mean()


def test_derived_parameters_consistent():
    m = S.ClinicalModel()
    dv = m.derived()
    # analytic check of the standardised DHI model
    rho = m.r_alps_duration_vm
    b, c = dv["dhi_b_std"], dv["dhi_c_prime_std"]
    assert abs(b + c * rho - m.r_alps_dhi_vm) < 1e-12
    assert abs(rho * b / (c + rho * b) - m.prop_mediated_vm) < 1e-12
    assert dv["sigma_alps"] > 0 and dv["freq_mean_vm"] > m.freq_mean_mo


# ------------------------------------------------------------------ 4./5. cohort on disk
def _digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohorts")
    kw = dict(n_mo=1, n_vm=1, n_hc=0, progress=False)
    gt_a = S.simulate_cohort(root / "a", seed=11, n_jobs=1, **kw)
    gt_b = S.simulate_cohort(root / "b", seed=11, n_jobs=2, **kw)
    gt_c = S.simulate_cohort(root / "c", seed=12, n_jobs=1, **kw)
    return root, gt_a, gt_b, gt_c


def test_determinism(cohorts):
    root, gt_a, gt_b, gt_c = cohorts
    da, db, dc = _digest(root / "a"), _digest(root / "b"), _digest(root / "c")
    assert da == db  # same seed: byte-identical, also across n_jobs
    pd.testing.assert_frame_equal(gt_a, gt_b)
    assert set(da) == set(dc)
    for key in ("participants.tsv", "derivatives/simulation/ground_truth.tsv",
                "sub-MO001/dwi/sub-MO001_dwi.nii.gz"):
        assert da[key] != dc[key], key
    assert not [p for p in (root / "a").rglob("*") if p.name.endswith(".partial")]


def test_bids_layout(cohorts):
    root = cohorts[0] / "a"
    desc = json.loads((root / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "raw" and desc["BIDSVersion"] and desc["Name"]
    assert desc["GeneratedBy"][0]["Name"] == "alps"
    participants = pd.read_csv(root / "participants.tsv", sep="\t", na_values="n/a",
                               keep_default_na=False)
    assert list(participants.participant_id) == ["sub-MO001", "sub-VM001"]
    dictionary = json.loads((root / "participants.json").read_text())
    assert set(participants.columns) <= set(dictionary)
    for col in participants.columns:
        assert "Description" in dictionary[col]
    text = (root / "participants.tsv").read_text()
    assert "n/a" in text and "nan" not in text.lower().replace("n/a", "")
    for pid in participants.participant_id:
        dwi = root / pid / "dwi"
        names = sorted(p.name for p in dwi.iterdir())
        assert names == sorted(f"{pid}_dwi{ext}" for ext in (".bval", ".bvec", ".json", ".nii.gz"))
        img = nib.load(dwi / f"{pid}_dwi.nii.gz")
        bvals, bvecs = read_bvals_bvecs(dwi / f"{pid}_dwi.bval", dwi / f"{pid}_dwi.bvec",
                                        n_volumes=img.shape[-1])
        assert img.ndim == 4 and img.get_data_dtype() == np.int16
        assert np.allclose(np.abs(np.diag(img.affine)[:3]), 2.0)
        sidecar = json.loads((dwi / f"{pid}_dwi.json").read_text())
        assert sidecar["Manufacturer"] == "alps simulation"
        assert not {"EchoTime", "RepetitionTime"} & set(sidecar)
    deriv = root / "derivatives" / "simulation"
    assert json.loads((deriv / "dataset_description.json").read_text())["DatasetType"] == "derivative"
    gt = pd.read_csv(deriv / "ground_truth.tsv", sep="\t")
    assert list(gt.columns[:len(S.GT_COLUMNS)]) == S.GT_COLUMNS
    np.testing.assert_allclose(gt.alps_L, gt.planted_alps_L, atol=1e-8)
    np.testing.assert_allclose(gt.alps_R, gt.planted_alps_R, atol=1e-8)
    assert (gt[["rot_x_deg", "rot_y_deg", "rot_z_deg"]].abs() <= 10).all().all()
    gt_dict = json.loads((deriv / "ground_truth.json").read_text())
    assert set(gt.columns) <= set(gt_dict)


def test_cli_parses_profile(tmp_path, monkeypatch):
    from alps import cli

    seen = {}
    monkeypatch.setattr(S, "simulate_cohort",
                        lambda out, **kw: seen.update(kw, out=out) or pd.DataFrame())
    assert cli.main(["simulate", str(tmp_path), "--profile", "smoke", "--n-hc", "3",
                     "--snr", "40", "--no-progress"]) == 0
    assert seen["seed"] == 7 and seen["n_mo"] == 8 and seen["n_hc"] == 3 and seen["snr"] == 40.0
