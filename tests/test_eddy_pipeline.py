"""Eddy-current and motion correction inside the pipeline (stage 1, alps.pipeline.eddy_step), against
planted truth: a simulated oblique, turned head (alps.simulation.eddy) with planted eddy currents along
the sidecar's phase-encoding axis and head motion, run end to end with the correction on and off.

* the index of the corrected run is closer to the planted one than the uncorrected run's;
* the b-vectors the tensor was fitted with (the kept ``desc-preproc_dwi.bvec``) are the planted
  reference-frame gradients ``R_nᵀ g_n`` (motion planted in the part the registration can see), and
  farther from them as written by the scanner;
* the per-volume parameters (``desc-eddy_motion.tsv``) recover the planted eddy currents; the
  summary columns are in ``preprocess.tsv``/``alps.tsv``; the SEs bootstrap the kept signal;
* the phase-encoding axis comes from the sidecar; contradictory sidecars are refused naming the file.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alps import pipeline as P
from alps.io import InputError, gradients
from alps.pipeline import eddy_step
from alps.pipeline.layout import scan_layout
from alps.simulation import eddy as SE, phantom
from alps.simulation.pose import Pose

PLANTED = {"alps_L": 1.5, "alps_R": 1.4}


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A 1 b0 + 12 direction scan (b = 1000) of a head turned by 8/−5/10° on an oblique grid, eddy
    currents twice the simulator's default (up to ~4 mm) and visible head motion (≤ 2°, ≤ 2 mm)."""
    root = tmp_path_factory.mktemp("eddypipe")
    pose = Pose((8.0, -5.0, 10.0), (2.0, -3.0, 1.0), 1.0)
    scheme = gradients.scheme(n_b0=1, n_dirs=12, bval=1000, seed=3)
    img, bvals, fsl, truth = SE.simulate_eddy_scan(
        phantom.make_template_fields(), pose, PLANTED, scheme=scheme, snr=40, seed=1, K=2 * SE.DEFAULT_K,
        max_rotation_deg=2.0, max_translation_mm=2.0, visible_only=True, oblique=True)
    stem = root / "sub-sim_dwi"
    nib.save(img, f"{stem}.nii.gz")
    gradients.write_bvals_bvecs(bvals, fsl, f"{stem}.bval", f"{stem}.bvec")
    (root / "sub-sim_dwi.json").write_text(json.dumps({"PhaseEncodingDirection": "j-"}))
    return SimpleNamespace(root=root, stem=stem, bvals=bvals, fsl=fsl, truth=truth)


def _run(scan, name, **params):
    out = scan.root / f"out-{name}"
    df = P.run_cohort(f"{scan.stem}.nii.gz", out, progress=False, **params)
    assert (df["status"] == "ok").all(), df["error"].tolist()
    return df.iloc[0], out


@pytest.fixture(scope="module")
def runs(scan):
    # the planted eddy currents are linear in position: the linear model
    return {"off": _run(scan, "off", eddy_correction=False),
            "on": _run(scan, "on", eddy_correction=True, eddy_model="linear")}


def _angles(a, b):
    return np.degrees(np.arccos(np.clip(np.abs(np.sum(a * b, axis=1)), 0, 1)))


@pytest.mark.slow
def test_corrected_index_is_closer_to_the_planted_one(runs):
    planted = np.mean(list(PLANTED.values()))
    off, on = runs["off"][0], runs["on"][0]
    assert abs(on["alps"] - planted) < 0.5 * abs(off["alps"] - planted)
    assert abs(on["alps"] - planted) < 0.05
    for side in ("L", "R"):
        assert abs(on[f"alps_{side}"] - PLANTED[f"alps_{side}"]) < abs(off[f"alps_{side}"] - PLANTED[f"alps_{side}"])


@pytest.mark.slow
def test_fitted_bvecs_are_the_planted_reference_gradients(scan, runs):
    row, out = runs["on"]
    lay = scan_layout(out, SimpleNamespace(participant_id="sub-sim", session_id=None, entities=()))
    bvals, bvecs = gradients.read_bvals_bvecs(lay.preproc_bval, lay.preproc_bvec)
    dw = bvals > 50
    ref = scan.truth["bvecs_fsl_ref"][dw]
    after, before = _angles(bvecs[dw], ref), _angles(scan.fsl[dw], ref)
    assert before.max() > 1.0                      # the planted motion turned the gradients
    assert after.max() < 0.35 * before.max()
    np.testing.assert_array_equal(bvals, scan.bvals)


@pytest.mark.slow
def test_parameters_summary_and_se(scan, runs):
    row, out = runs["on"]
    lay = scan_layout(out, SimpleNamespace(participant_id="sub-sim", session_id=None, entities=()))
    est = pd.read_csv(lay.eddy_motion, sep="\t", keep_default_na=False, na_values=["n/a"])
    plant = scan.truth["planted"].table(scan.truth["mask"])
    dw = ~est["b0"].astype(bool).to_numpy()
    ec = [c for c in est.columns if c.startswith("ec_j_")]
    assert ec, est.columns.tolist()                # along j, from the sidecar (j-: the sign does not matter)
    err = est.loc[dw, ec].to_numpy() - plant.loc[dw, ec].to_numpy()
    assert np.sqrt((err ** 2).mean()) < 0.35 * np.sqrt((plant.loc[dw, ec].to_numpy() ** 2).mean())
    pre = pd.read_csv(out / "preprocess.tsv", sep="\t")
    assert pre.loc[0, "eddy_pe_axis"] == "j" and pre.loc[0, "eddy_pe_source"] == "PhaseEncodingDirection"
    assert pre.loc[0, "eddy_max_ec_disp_mm"] > 1.0
    assert np.isfinite(row["alps_se"]) and "eddy" in row["se_note"]
    off_note = runs["off"][0]["se_note"]
    assert pd.isna(off_note) or off_note == ""
    timings = pd.read_csv(out / "timings.tsv", sep="\t")
    assert timings.loc[0, "time_eddy_s"] > 0


def _item(tmp_path, sidecar):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(sidecar))
    return SimpleNamespace(dwi=tmp_path / "s.nii.gz", sidecar=p, sidecars=(p,))


def test_encoding_from_the_sidecar(tmp_path):
    assert eddy_step.encoding(_item(tmp_path, {"PhaseEncodingDirection": "i-"})) == eddy_step.Encoding(0, "PhaseEncodingDirection", 2)
    assert eddy_step.encoding(_item(tmp_path, {"PhaseEncodingAxis": "j"})) == eddy_step.Encoding(1, "PhaseEncodingAxis", 2)
    assert eddy_step.encoding(_item(tmp_path, {})) == eddy_step.Encoding(None, "none", 2)
    assert eddy_step.encoding(_item(tmp_path, {"PhaseEncodingDirection": "k", "SliceEncodingDirection": "j"})).pe_axis == 2
    for bad, what in (({"PhaseEncodingDirection": "y"}, "not a BIDS voxel axis"),
                      ({"PhaseEncodingDirection": "j", "PhaseEncodingAxis": "i"}, "disagree"),
                      ({"PhaseEncodingDirection": "k"}, "slice axis")):
        with pytest.raises(InputError, match=what) as exc:
            eddy_step.encoding(_item(tmp_path, bad))
        assert "s.json" in str(exc.value)


@pytest.mark.slow
def test_reused_stage_one_bootstraps_the_kept_signal(scan, runs):
    """A reused stage 1 describes its prepared DWI from the kept desc-preproc_dwi (not the input file):
    the standard errors computed again from it are the fresh run's, to the last digit."""
    from alps.pipeline import measure_subject
    from alps.pipeline.contract import Preprocessed

    row, out = runs["on"]
    from alps.io.bids import discover

    item = discover(f"{scan.stem}.nii.gz")[0]
    pre = Preprocessed.load(item, out)
    assert pre.signal_kept == ("eddy",) and pre.dwi.path.name == "sub-sim_desc-preproc_dwi.nii.gz"
    again = measure_subject(pre, out, force=True, qc_png=False)
    for k in ("alps_se", "alps_L_se", "alps_R_se"):
        assert again.se[k] == row[k]


def test_validate_says_what_the_correction_will_use(tmp_path):
    """``alps validate``/``alps run``'s scan check: the axis and its field, a warning without one, an
    error naming the sidecar when it contradicts itself; nothing when the correction is off."""
    from alps.pipeline.params import PreprocessParams
    from alps.pipeline.preprocess import acquisition_check

    bvals = np.array([0.0] + [1000.0] * 12)
    on, off = acquisition_check(PreprocessParams(eddy_correction=True)), acquisition_check(PreprocessParams())
    item = _item(tmp_path, {"PhaseEncodingDirection": "j-"})
    item.bval = tmp_path / "s.bval"
    assert ("info", "eddy-current correction along j (PhaseEncodingDirection)") in on(item, bvals)
    assert len(off(item, bvals)) == 1
    item = _item(tmp_path, {})
    item.bval = tmp_path / "s.bval"
    assert [s for s, m in on(item, bvals) if "eddy" in m] == ["warning"]
    item = _item(tmp_path, {"PhaseEncodingDirection": "j", "PhaseEncodingAxis": "i"})
    item.bval = tmp_path / "s.bval"
    errors = [m for s, m in on(item, bvals) if s == "error"]
    assert len(errors) == 1 and "s.json" in errors[0] and "disagree" in errors[0]
