"""Real-world inputs end to end (one small simulated head, seconds): a multi-shell scan
(b = 1000/2000 with a planted kurtosis term) in two runs of one session whose gradient files are
inherited from the subject folder and whose sidecars from the dataset root (scanner metadata in
alps.tsv), a BIDS filter file through ``alps run``, ``alps group`` over runs, and the same scan as
a QSIPrep derivative (``space-T1w_desc-preproc_dwi`` with its ``desc-brain_mask``)."""
from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from alps import pipeline as P
from alps.io.gradients import scheme, write_bvals_bvecs

KURTOSIS = 0.6


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from alps.simulation import Pose, make_template_fields, simulate_subject, write_nifti_gz
    from alps.simulation.signal import apparent_oracle

    root = tmp_path_factory.mktemp("inputs")
    bids = root / "bids"
    fields = make_template_fields()
    b1, g1 = scheme(n_b0=4, n_dirs=20, bval=1000, seed=0)
    b2, g2 = scheme(n_b0=1, n_dirs=20, bval=2000, seed=1)
    b, g = np.r_[b1, b2[1:]], np.r_[g1, g2[1:]]
    b[b == 0] = [0, 5, 0.001, 0]  # near-zero b-values as scanners write them
    b[b == 2000] += np.tile([-10.0, 0.0, 10.0, 0.0], 5)  # 1990..2010: one shell
    img, bvals, bvecs, ex = simulate_subject(fields, Pose((4.0, 0.0, 0.0)), {"alps_L": 1.4, "alps_R": 1.6},
                                             snr=None, seed=3, scheme=(b, g), kurtosis=KURTOSIS, dtype="float32")
    (bids).mkdir()
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "ms", "BIDSVersion": "1.9.0"}))
    (bids / "dwi.json").write_text(json.dumps({
        "Manufacturer": "Siemens", "ManufacturersModelName": "Prisma", "MagneticFieldStrength": 3,
        "SoftwareVersions": "syngo MR XA30", "EchoTime": 0.089, "RepetitionTime": 3.2,
        "PhaseEncodingDirection": "j-", "PatientName": "Doe^Jane", "PatientID": "12345"}))
    write_bvals_bvecs(bvals, bvecs, bids / "sub-ms" / "sub-ms_dwi.bval", bids / "sub-ms" / "sub-ms_dwi.bvec")
    d = bids / "sub-ms" / "ses-1" / "dwi"
    d.mkdir(parents=True)
    write_nifti_gz(img, d / "sub-ms_ses-1_run-1_dwi.nii.gz")
    os.link(d / "sub-ms_ses-1_run-1_dwi.nii.gz", d / "sub-ms_ses-1_run-2_dwi.nii.gz")
    (d / "sub-ms_ses-1_run-2_dwi.json").write_text(json.dumps({"RepetitionTime": 4.1}))
    out = root / "out"
    df = P.run_cohort(bids, out, n_jobs=2, progress=False, qc_png=False)
    truth = {"b1000": apparent_oracle(fields, ex["planted"], bval=1000, kurtosis=KURTOSIS), "D": ex["oracle"]}
    return {"root": root, "bids": bids, "out": out, "df": df, "truth": truth, "bvals": bvals, "bvecs": bvecs}


def test_each_run_its_own_row_with_inherited_gradients(lab):
    df = lab["df"]
    assert list(df["run"]) == ["1", "2"] and (df["status"] == "ok").all(), df["error"].tolist()
    assert list(df.columns[:4]) == ["participant_id", "session_id", "run", "status"]
    d = lab["out"] / "sub-ms" / "ses-1" / "dwi"
    for run in (1, 2):
        assert (d / f"sub-ms_ses-1_run-{run}_desc-alps.json").is_file()
        assert (d / f"sub-ms_ses-1_run-{run}_desc-FA_dwimap.nii.gz").is_file()
    # the same data in both runs: the same numbers
    assert df["alps"].iloc[0] == df["alps"].iloc[1]
    on_disk = pd.read_csv(lab["out"] / "alps.tsv", sep="\t", dtype={"run": str})
    assert list(on_disk["run"]) == ["1", "2"]
    qc = pd.read_csv(lab["out"] / "qc.tsv", sep="\t")
    assert qc["qc_png"].isna().all() or all("run-" in p for p in qc["qc_png"].dropna())


def test_multishell_default_fits_b0_and_1000_only(lab):
    r = lab["df"].iloc[0]
    assert r["shells"] == "1000,2000" and r["bvals_used"] == "0,1000"
    assert r["n_volumes_used"] == 24 and r["n_directions"] == 40
    rec = json.loads((lab["out"] / "sub-ms" / "ses-1" / "dwi" / "sub-ms_ses-1_run-1_desc-preprocess.json").read_text())
    assert rec["acquisition"]["bvals_used"] == "0,1000" and rec["provenance"]["parameters"]["max_bval"] is None
    # the planted index of the b = 1000 protocol (apparent tensor D - b MD² K / 6 I) is recovered
    t = lab["truth"]["b1000"]
    assert abs(r["alps"] - t["alps"]) < 0.02, (r["alps"], t["alps"])
    assert abs(r["alps"] - lab["truth"]["D"]["alps"]) > 0.05  # the protocol's index differs from D's


def test_scanner_metadata_from_inherited_sidecars(lab):
    df = lab["df"].set_index("run")
    assert df.loc["1", "manufacturer"] == "Siemens" and df.loc["1", "manufacturer_model"] == "Prisma"
    assert df.loc["1", "magnetic_field_strength"] == 3 and df.loc["1", "echo_time"] == 0.089
    assert df.loc["1", "repetition_time"] == 3.2 and df.loc["2", "repetition_time"] == 4.1
    assert df.loc["1", "phase_encoding_direction"] == "j-" and df.loc["1", "phase_encoding_axis"] == "j"
    zooms = nib.load(str(lab["bids"] / "sub-ms" / "ses-1" / "dwi" / "sub-ms_ses-1_run-1_dwi.nii.gz")).header.get_zooms()
    assert df.loc["1", "voxel_size_mm"] == "x".join(f"{z:.4g}" for z in zooms[:3])
    text = "\n".join(p.read_text(errors="replace") for p in lab["out"].rglob("*") if p.is_file()
                     and p.suffix in (".tsv", ".json"))
    assert "Doe^Jane" not in text and "12345" not in text  # identifying fields never copied


def test_filter_file_and_group(lab, tmp_path):
    from alps.cli import main

    f = tmp_path / "filter.json"
    f.write_text(json.dumps({"dwi": {"session": "1", "run": 2}}))
    assert main(["run", str(lab["bids"]), str(lab["out"]), "--bids-filter-file", str(f)]) == 0
    on_disk = pd.read_csv(lab["out"] / "alps.tsv", sep="\t", dtype={"run": str})
    assert list(on_disk["run"]) == ["2"]
    from alps.pipeline.group import group

    g = group(lab["out"], write=False)
    assert list(g["run"]) == ["1", "2"] and (g["status"] == "ok").all()


def test_qsiprep_derivatives(lab):
    """QSIPrep's naming; its mask is used (here: ours eroded by one voxel) and our optional
    preprocessing is skipped."""
    src = lab["bids"] / "sub-ms" / "ses-1" / "dwi" / "sub-ms_ses-1_run-1_dwi.nii.gz"
    q = lab["root"] / "qsiprep"
    d = q / "sub-ms" / "ses-1" / "dwi"
    d.mkdir(parents=True)
    (q / "dataset_description.json").write_text(json.dumps({"Name": "qsiprep", "DatasetType": "derivative"}))
    stem = "sub-ms_ses-1_acq-multishell_space-T1w_desc-preproc_dwi"
    os.link(src, d / f"{stem}.nii.gz")
    write_bvals_bvecs(lab["bvals"], lab["bvecs"], d / f"{stem}.bval", d / f"{stem}.bvec")
    ours = nib.load(str(lab["out"] / "sub-ms" / "ses-1" / "dwi" / "sub-ms_ses-1_run-1_desc-brain_mask.nii.gz"))
    given = ndimage.binary_erosion(np.asarray(ours.dataobj) > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(given, ours.affine), str(d / "sub-ms_ses-1_acq-multishell_space-T1w_desc-brain_mask.nii.gz"))
    out = lab["root"] / "out-qsiprep"
    df = P.run_cohort(q, out, progress=False, qc_png=False, denoise=True)
    r = df.iloc[0]
    assert r["status"] == "ok", r["error"]
    assert r["acq"] == "multishell" and r["space"] == "T1w" and r["bvals_used"] == "0,1000"
    dd = out / "sub-ms" / "ses-1" / "dwi"
    key = "sub-ms_ses-1_acq-multishell_space-T1w"
    used = np.asarray(nib.load(str(dd / f"{key}_desc-brain_mask.nii.gz")).dataobj)
    assert np.array_equal(used > 0, given > 0)
    rec = json.loads((dd / f"{key}_desc-preprocess.json").read_text())
    assert rec["mask_source"] == "given" and rec["preprocessed_input"] is True
    assert "mask" in rec["provenance"]["sha256"]
    assert abs(r["alps"] - lab["df"]["alps"].iloc[0]) < 0.01


def test_standard_errors_bootstrap_the_shells_that_were_fitted(lab):
    """The SEs bootstrap the fit the index came from (b = 0 + 1000 here), not every volume: on
    this noise-free scan that fit is exact (one shell: the apparent tensor), so its wild-bootstrap
    SE is ~0; refitting all shells in DTI leaves kurtosis residuals and a spurious SE."""
    r = lab["df"].iloc[0]
    assert r["bvals_used"] == "0,1000"
    assert r["alps_se"] < 1e-3, r["alps_se"]
