"""BIDS as labs have it: entities ses/acq/rec/dir/run, several runs per session (each its own
row), the inheritance principle for .bval/.bvec/.json, --bids-filter-file, QSIPrep derivative
names, and the per-file report of ``alps validate``. Expected values follow the BIDS 1.9 text
(the inheritance principle), written out by hand per case."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from alps.io import InputError, discover
from alps.io.bidsnames import inherited, load_filter_file, matches_filter, merged_sidecar, parse_name
from alps.io.gradients import bvals_text, bvecs_text, scheme
from alps.io.validate import validate_dataset
from alps.pipeline.layout import row_layout, scan_layout

BVALS, BVECS = scheme(n_b0=1, n_dirs=7, seed=1)


def _img(path, n=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones((4, 4, 3, n), np.float32), np.eye(4)), str(path))
    return path


def _grad(path_stem, bvals=BVALS, bvecs=BVECS):
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    path_stem.with_name(path_stem.name + ".bval").write_text(bvals_text(bvals))
    path_stem.with_name(path_stem.name + ".bvec").write_text(bvecs_text(bvecs))


def _json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.fixture
def lab(tmp_path):
    """sub-01: one session, dir-AP/PA runs 1-2 with their own files; sub-02: two sessions sharing a
    subject-level gradient table; sub-03: the dataset-level dwi.bval/bvec and acq-level sidecar."""
    r = tmp_path / "bids"
    _json(r / "dataset_description.json", {"Name": "lab", "BIDSVersion": "1.9.0"})
    _json(r / "dwi.json", {"Manufacturer": "Siemens", "EchoTime": 0.09, "MagneticFieldStrength": 3})
    _json(r / "acq-mb_dwi.json", {"EchoTime": 0.08, "MultibandAccelerationFactor": 3})
    _grad(r / "dwi")
    d = r / "sub-01" / "ses-1" / "dwi"
    for dr in ("AP", "PA"):
        for run in (1, 2):
            stem = f"sub-01_ses-1_dir-{dr}_run-{run}_dwi"
            _img(d / f"{stem}.nii.gz")
            _grad(d / stem)
            _json(d / f"{stem}.json", {"PhaseEncodingDirection": "j-" if dr == "AP" else "j"})
    _grad(r / "sub-02" / "sub-02_dwi")
    _json(r / "sub-02" / "sub-02_dwi.json", {"EchoTime": 0.1})
    for ses in ("pre", "post"):
        _img(r / "sub-02" / f"ses-{ses}" / "dwi" / f"sub-02_ses-{ses}_dwi.nii.gz")
    _img(r / "sub-03" / "dwi" / "sub-03_acq-mb_rec-mag_dwi.nii.gz")
    return r


def test_parse_name():
    assert parse_name("sub-01_ses-1_acq-mb_dir-AP_run-2_dwi.nii.gz") == (
        {"sub": "01", "ses": "1", "acq": "mb", "dir": "AP", "run": "2"}, "dwi", ".nii.gz")
    assert parse_name("dwi.bval") == ({}, "dwi", ".bval")
    assert parse_name("sub-01_run-1.nii")[1] is None
    assert parse_name("sub 01_dwi.nii")[1] is None


def test_every_run_is_its_own_scan(lab):
    items = discover(lab)
    keys = [it.key for it in items]
    assert keys == ["sub-01_ses-1_dir-AP_run-1", "sub-01_ses-1_dir-AP_run-2", "sub-01_ses-1_dir-PA_run-1",
                    "sub-01_ses-1_dir-PA_run-2", "sub-02_ses-post", "sub-02_ses-pre", "sub-03_acq-mb_rec-mag"]
    it = items[0]
    assert it.entities == (("dir", "AP"), ("run", "1")) and it.session_id == "ses-1"
    assert it.bval.name == "sub-01_ses-1_dir-AP_run-1_dwi.bval"  # nearest wins
    # derivative names keep the entities; one lock per scan (runs of a session run in parallel)
    lay = scan_layout("/out", it)
    assert lay.fa.name == "sub-01_ses-1_dir-AP_run-1_desc-FA_dwimap.nii.gz"
    assert lay.dir.as_posix() == "/out/sub-01/ses-1/dwi"
    assert lay.lock.name == ".sub-01_ses-1_dir-AP_run-1.alps-run.lock"
    assert row_layout("/out", {"participant_id": "sub-01", "session_id": "ses-1", "dir": "AP", "run": 1.0}) == lay


def test_inheritance_of_gradients_and_sidecars(lab):
    by = {it.key: it for it in discover(lab)}
    s2 = by["sub-02_ses-pre"]
    assert s2.bval == lab / "sub-02" / "sub-02_dwi.bval" and s2.bvec == lab / "sub-02" / "sub-02_dwi.bvec"
    assert [p.name for p in s2.sidecars] == ["dwi.json", "sub-02_dwi.json"]
    meta, _ = merged_sidecar(s2.sidecars)
    assert meta == {"Manufacturer": "Siemens", "EchoTime": 0.1, "MagneticFieldStrength": 3}
    s3 = by["sub-03_acq-mb_rec-mag"]
    assert s3.bval == lab / "dwi.bval" and s3.bvec == lab / "dwi.bvec"
    # dwi.json and acq-mb_dwi.json apply at the root; the acq- one is more specific and wins
    meta, _ = merged_sidecar(s3.sidecars)
    assert meta["EchoTime"] == 0.08 and meta["MultibandAccelerationFactor"] == 3
    s1 = by["sub-01_ses-1_dir-PA_run-2"]
    meta, _ = merged_sidecar(s1.sidecars)
    assert meta["PhaseEncodingDirection"] == "j" and meta["EchoTime"] == 0.09
    # a sidecar of another run never applies
    assert all("run-1" not in p.name for p in s1.sidecars)


def test_ambiguous_inheritance_fails_that_scan_only(lab):
    _json(lab / "sub-02" / "ses-pre" / "dwi" / "ses-pre_dwi.json", {})
    _grad(lab / "sub-02" / "ses-pre" / "dwi" / "ses-pre_dwi")
    _grad(lab / "sub-02" / "ses-pre" / "dwi" / "sub-02_dwi")  # same level, neither more specific
    items = {it.key: it for it in discover(lab, strict=False)}
    assert "ambiguous .bval inheritance" in items["sub-02_ses-pre"].error
    assert items["sub-02_ses-post"].error is None
    with pytest.raises(InputError, match="ambiguous"):
        discover(lab)
    chain, probs = inherited(lab / "sub-02" / "ses-post" / "dwi" / "sub-02_ses-post_dwi.nii.gz", lab, ".bval")
    assert chain == [lab / "dwi.bval", lab / "sub-02" / "sub-02_dwi.bval"] and not probs


def test_bids_filter_file(lab, tmp_path):
    f = tmp_path / "filter.json"
    f.write_text(json.dumps({"dwi": {"datatype": "dwi", "session": "1", "run": 1, "direction": ["AP"]},
                             "t1w": {"session": "1"}}))
    q = load_filter_file(f)
    assert q == {"ses": ["1"], "run": ["1"], "dir": ["AP"]}
    assert [it.key for it in discover(lab, bids_filter=q)] == ["sub-01_ses-1_dir-AP_run-1"]
    assert matches_filter({"run": "01"}, {"run": ["1"]})  # run is an index
    f.write_text(json.dumps({"dwi": {"acquisition": None, "direction": None}}))
    keys = [it.key for it in discover(lab, bids_filter=load_filter_file(f))]
    assert keys == ["sub-02_ses-post", "sub-02_ses-pre"]
    f.write_text(json.dumps({"dwi": {"acquisiton": "mb"}}))
    with pytest.raises(InputError, match="unknown entity 'acquisiton'"):
        load_filter_file(f)
    f.write_text(json.dumps({"dwi": {"run": 9}}))
    with pytest.raises(InputError, match="matching the BIDS filter"):
        discover(lab, bids_filter=load_filter_file(f))


def test_qsiprep_derivatives_names(tmp_path):
    r = tmp_path / "qsiprep"
    _json(r / "dataset_description.json", {"Name": "qsiprep", "DatasetType": "derivative"})
    d = r / "sub-01" / "ses-1" / "dwi"
    stem = "sub-01_ses-1_acq-64dir_space-T1w_desc-preproc_dwi"
    _img(d / f"{stem}.nii.gz")
    _grad(d / stem)
    _img(d / "sub-01_ses-1_acq-64dir_space-T1w_desc-brain_mask.nii.gz", n=1)
    _img(d / "sub-01_ses-1_acq-64dir_space-T1w_desc-eddy_dwi.nii.gz")  # not desc-preproc: ignored
    items = discover(r)
    assert len(items) == 1
    it = items[0]
    assert it.preprocessed and it.mask.name == "sub-01_ses-1_acq-64dir_space-T1w_desc-brain_mask.nii.gz"
    assert it.key == "sub-01_ses-1_acq-64dir_space-T1w" and it.bval.name == f"{stem}.bval"


def test_missing_gradient_file_inherits_the_parent_one(lab):
    run2 = lab / "sub-01" / "ses-1" / "dwi" / "sub-01_ses-1_dir-PA_run-2_dwi.bvec"
    run2.unlink()
    it = {i.key: i for i in discover(lab)}["sub-01_ses-1_dir-PA_run-2"]
    assert it.bvec == lab / "dwi.bvec" and it.bval.parent.name == "dwi"


def test_validate_reports_per_file(lab):
    (lab / "sub-01" / "ses-1" / "dwi" / "sub-01_ses-1_dir-PA_run-2_dwi.bvec").write_text("x y z\n")
    (lab / "sub-02" / "ses-pre" / "dwi" / "sub-02_ses-pre_dwi.nii.gz").unlink()
    _img(lab / "sub-02" / "ses-pre" / "dwi" / "sub-02_ses-pre_dwi.nii.gz", n=9)  # 9 volumes, 8 b-values
    _img(lab / "sub-03" / "dwi" / "sub-03_DTI.nii.gz")
    (lab / "acq-mb_dwi.json").write_text("{not json")
    df = validate_dataset(lab)
    err = df[df["severity"] == "error"]
    assert sorted(err["file"].str.rsplit("/", n=1).str[-1]) == ["sub-01_ses-1_dir-PA_run-2_dwi.nii.gz",
                                                                "sub-02_ses-pre_dwi.nii.gz"]
    msgs = " | ".join(err["problem"])
    assert "sub-01_ses-1_dir-PA_run-2_dwi.bvec: b-vectors are not numeric" in msgs
    assert "8 b-values but the image has 9 volumes" in msgs
    warn = " | ".join(df[df["severity"] == "warning"]["problem"])
    assert "sub-03_DTI.nii.gz: not named *_dwi" in warn and "acq-mb_dwi.json: sidecar is not readable JSON" in warn


def test_validate_cli(lab, capsys):
    from alps.cli import main

    assert main(["validate", str(lab)]) == 0
    (lab / "dwi.bval").unlink()
    assert main(["validate", str(lab)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "sub-03_acq-mb_rec-mag_dwi" in out


REAL = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_dwi"


@pytest.mark.realdata
@pytest.mark.skipif(not REAL.is_dir(), reason=f"real DWI data not found at {REAL}")
def test_scanner_metadata_of_the_real_sidecars():
    """Every real DWI's metadata columns against its dcm2niix sidecar read directly."""
    from alps.imaging.shells import select_volumes
    from alps.io.metadata import scan_metadata

    dwis = sorted(p for p in REAL.glob("*/*.nii.gz") if "DTI" in p.name)
    # every DTI series of the shared sets (the Canon head-turned pair joined the 11 of the tilt sets)
    assert {p.parent.name for p in dwis} >= {"philips_ingenia_elition_2mm", "toshiba_galan_tilts",
                                             "canon_galan_tilts", "canon_galan_head_turned"}
    assert len(dwis) >= 13
    for f in dwis:
        it = discover(f)[0]
        meta = json.loads(f.with_name(f.name[:-7] + ".json").read_text())
        row = scan_metadata(it)
        assert row["manufacturer"] == meta["Manufacturer"] and row["manufacturer_model"] == meta["ManufacturersModelName"]
        assert row["magnetic_field_strength"] == meta["MagneticFieldStrength"] == 3
        assert row["echo_time"] == meta["EchoTime"] and row["repetition_time"] == meta["RepetitionTime"]
        assert row["software_versions"] == meta["SoftwareVersions"]
        assert row["phase_encoding_direction"] == meta.get("PhaseEncodingDirection")  # absent in these
        assert row["phase_encoding_axis"] == meta["PhaseEncodingAxis"] == "j"
        zooms = nib.load(str(f)).header.get_zooms()[:3]
        assert row["voxel_size_mm"] == "x".join(f"{z:.4g}" for z in zooms)
        _, info = select_volumes(np.loadtxt(it.bval))
        n_dirs = {"Philips": 16}.get(meta["Manufacturer"], 12)  # the shared README's table
        assert info["n_directions"] == n_dirs and info["bvals_used"] in ("0,1000", "0,1500")
    # without a sidecar: missing cells, no failure
    it = discover(dwis[0])[0]
    from dataclasses import replace

    row = scan_metadata(replace(it, sidecar=None, sidecars=()))
    assert row["manufacturer"] is None and row["voxel_size_mm"] is not None


def test_single_file_with_given_mask(tmp_path):
    f = _img(tmp_path / "dwi_preproc.nii.gz")
    _grad(tmp_path / "dwi_preproc")
    m = _img(tmp_path / "brain_mask.nii.gz", n=1)
    it = discover(f, mask=m)[0]
    assert it.mask == m and not it.preprocessed and it.key == "sub-dwipreproc"
    q = _img(tmp_path / "sub-01_space-ACPC_desc-preproc_dwi.nii.gz")
    qm = _img(tmp_path / "sub-01_space-ACPC_desc-brain_mask.nii.gz", n=1)
    it = discover(q)[0]
    assert it.preprocessed and it.mask == qm and it.key == "sub-01_space-ACPC"
    with pytest.raises(InputError, match="only for a single DWI file"):
        discover(_lab_root(tmp_path), mask=m)


def _lab_root(tmp_path):
    r = tmp_path / "ds"
    _img(r / "sub-01" / "dwi" / "sub-01_dwi.nii.gz")
    return r
