"""Susceptibility correction in stage 1 (alps.pipeline.distortion), end to end on a simulated BIDS
dataset with a planted field in each layout that carries one (alps.simulation.distortion_bids):
two full dir-AP/dir-PA series, a DWI with a reverse-PE b = 0 in fmap/, a DWI with a GRE phase
difference; and the scans whose sidecars are missing or contradictory fail with the file named."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

SUBJECTS = {"pair": "dwi-pair", "epi": "fmap-epi", "gre": "phasediff", "noreadout": "fmap-epi",
            "contra": "fmap-epi", "nopolarity": "phasediff"}
BROKEN = {"noreadout": {"TotalReadoutTime": None},
          "contra": {"EffectiveEchoSpacing": 0.002, "ReconMatrixPE": 65},       # 0.128 s, not 0.05
          "nopolarity": {"PhaseEncodingDirection": None, "PhaseEncodingAxis": "j"}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from alps.simulation.distortion_bids import write_distortion_dataset

    root = tmp_path_factory.mktemp("sdc") / "bids"
    truth = write_distortion_dataset(root, SUBJECTS, sidecar_changes=BROKEN, n_dirs=8)
    return root, truth


@pytest.fixture(scope="module")
def run(dataset):
    from alps.pipeline import run_cohort

    root, truth = dataset
    out = root.parent / "derivatives"
    df = run_cohort(root, out, progress=False, se_replicates=20)
    return out, df, truth


def _row(df, pid, d=None):
    sel = df["participant_id"] == pid
    if d is not None:
        sel &= df["dir"] == d
    assert sel.sum() == 1, (pid, d, df[["participant_id", "dir"]])
    return df[sel].iloc[0]


@pytest.mark.slow
@pytest.mark.parametrize("pid,d,source", [("sub-pair", "PA", "pepolar-dwi"), ("sub-pair", "AP", "pepolar-dwi"),
                                          ("sub-epi", "PA", "pepolar-epi"), ("sub-gre", None, "phasediff")])
def test_every_layout_is_corrected_by_default_and_the_field_matches_the_planted_one(run, pid, d, source):
    from alps.pipeline.layout import ScanLayout

    out, df, truth = run
    r = _row(df, pid, d)
    assert r["status"] == "ok", r["error"]
    assert r["sdc_source"] == source
    t = truth[pid]
    lay = ScanLayout(out, pid, None, (("dir", d),) if d else ())
    field = np.asarray(nib.load(str(lay.fieldmap)).dataobj, float)
    side = json.loads(lay.fieldmap_json.read_text())
    assert side["Units"] == "Hz" and side["PhaseEncodingDirection"] == ("j" if d != "AP" else "j-")
    planted = float(np.sqrt(np.mean(t.field_hz[t.mask] ** 2)))
    err = float(np.sqrt(np.mean((field - t.field_hz)[t.mask] ** 2)))
    assert planted > 5.0 and err < 0.1 * planted, (err, planted)
    rec = json.loads(lay.preprocess_json.read_text())
    assert rec["sdc"]["source"] == source and rec["sdc"]["images"]
    assert "sdc" in rec["signal"]["steps"]
    assert 3.0 < r["sdc_displacement_max_mm"] < 12.0
    # the standard errors were bootstrapped on the corrected signal, and say so
    assert np.isfinite(r["alps_se"]) and "corrected by sdc" in r["se_note"]
    assert lay.qc_png.is_file()


@pytest.mark.slow
def test_broken_phase_encoding_metadata_fails_the_scan_naming_the_file(run):
    out, df, _ = run
    for pid, what in (("sub-noreadout", "no TotalReadoutTime"), ("sub-contra", "contradicts"),
                      ("sub-nopolarity", "only PhaseEncodingAxis")):
        r = df[df["participant_id"] == pid].iloc[0]
        assert r["status"] == "failed"
        assert what in r["error"] and f"{pid}_" in r["error"] and ".json" in r["error"], r["error"]
    assert (out / "alps.tsv").is_file()


@pytest.mark.slow
def test_the_pair_keeps_two_rows_and_the_participant_gets_their_combination(run):
    out, df, _ = run
    pa, ap = _row(df, "sub-pair", "PA"), _row(df, "sub-pair", "AP")
    w = 1.0 / np.array([pa["alps_se"], ap["alps_se"]]) ** 2
    expect = float(np.sum(w * [pa["alps"], ap["alps"]]) / w.sum())
    for r in (pa, ap):
        assert r["alps_combined"] == pytest.approx(expect, rel=1e-12)
        assert r["alps_combined_se"] == pytest.approx(1.0 / np.sqrt(w.sum()), rel=1e-12)
        assert r["sdc_volume_pairs"] == 8
    assert abs(pa["alps_pair_z"]) < 3.0
    table = pd.read_csv(out / "alps.tsv", sep="\t")
    assert {"alps_combined", "sdc_source"} <= set(table.columns)
    dictionary = json.loads((out / "alps.json").read_text())
    assert "Units" in dictionary["sdc_displacement_max_mm"] and "alps_combined" in dictionary


@pytest.mark.slow
def test_sdc_off_leaves_the_series_as_acquired(dataset, tmp_path):
    from alps.pipeline import run_cohort
    from alps.pipeline.layout import ScanLayout

    root, _ = dataset
    out = tmp_path / "out"
    df = run_cohort(root, out, progress=False, participant_label=["gre"], sdc="off", se_replicates=0)
    r = df.iloc[0]
    assert r["status"] == "ok" and "sdc_source" not in df.columns  # no scan corrected: no sdc columns
    lay = ScanLayout(out, "sub-gre")
    rec = json.loads(lay.preprocess_json.read_text())
    assert rec["sdc"] is None and rec["signal"] is None
    assert not lay.fieldmap.exists() and not lay.preproc_dwi.exists()
    prov = pd.read_csv(out / "provenance.tsv", sep="\t")
    assert "sdc=off" in prov["preprocess_parameters"].iloc[0]


def test_validate_reports_the_field_source_of_each_scan(dataset):
    from alps.io.validate import validate_dataset
    from alps.pipeline.distortion import field_check

    root, _ = dataset
    df = validate_dataset(root, scan_checks=[field_check()])
    text = "\n".join(df["severity"] + " " + df["problem"])
    assert "sub-pair_dir-PA_dwi.nii.gz: susceptibility correction from pepolar-dwi" in text
    assert "sub-epi_dir-PA_dwi.nii.gz: susceptibility correction from pepolar-epi" in text
    assert "sub-gre_dwi.nii.gz: susceptibility correction from phasediff" in text
    err = df[df["severity"] == "error"]["problem"]
    assert any("sub-noreadout_dir-PA_dwi.json" in e and "TotalReadoutTime" in e for e in err)
    assert any("sub-contra_dir-PA_dwi.json" in e for e in err)


def test_combine_pairs_weights_by_inverse_variance_and_leaves_other_rows_alone():
    from alps.pipeline.pairs import combine_pairs

    df = pd.DataFrame({"participant_id": ["sub-1", "sub-1", "sub-2", "sub-3", "sub-3"],
                       "dir": ["PA", "AP", "PA", "AP", "PA"], "status": ["ok"] * 5,
                       "sdc_source": ["pepolar-dwi", "pepolar-dwi", "phasediff", "pepolar-dwi", "pepolar-dwi"],
                       "alps": [1.40, 1.30, 1.5, 1.2, 1.4], "alps_se": [0.02, 0.04, 0.03, np.nan, 0.02]})
    out = combine_pairs(df)
    w = np.array([1 / 0.02 ** 2, 1 / 0.04 ** 2])
    assert out.loc[0, "alps_combined"] == pytest.approx((w[0] * 1.40 + w[1] * 1.30) / w.sum())
    assert out.loc[1, "alps_combined"] == out.loc[0, "alps_combined"]
    assert out.loc[0, "alps_combined_se"] == pytest.approx(1 / np.sqrt(w.sum()))
    assert out.loc[0, "alps_pair_z"] == pytest.approx((1.30 - 1.40) / np.hypot(0.02, 0.04))  # AP - PA
    assert np.isnan(out.loc[2, "alps_combined"])                 # not a pair
    assert out.loc[3, "alps_combined"] == pytest.approx(1.3) and np.isnan(out.loc[3, "alps_combined_se"])
    none = df.assign(sdc_source="none")
    assert "sdc_source" not in combine_pairs(none).columns      # no scan corrected: no sdc column


@pytest.mark.slow
def test_a_changed_field_map_is_not_reused(run, tmp_path):
    """The field source is an input: stage 1 is reused while it is unchanged and recomputed when
    its sidecar (here the echo times of the phase difference) changes."""
    import shutil

    from alps.pipeline import run_cohort

    out, _, _ = run
    root = out.parent / "bids"
    shutil.copytree(root / "sub-gre", tmp_path / "bids" / "sub-gre")
    shutil.copy(root / "dataset_description.json", tmp_path / "bids")
    shutil.copytree(out / "sub-gre", tmp_path / "out" / "sub-gre")
    again = run_cohort(tmp_path / "bids", tmp_path / "out", progress=False, se_replicates=20)
    assert bool(again.iloc[0]["preprocess_reused"])
    side = tmp_path / "bids" / "sub-gre" / "fmap" / "sub-gre_phasediff.json"
    meta = json.loads(side.read_text())
    side.write_text(json.dumps(dict(meta, EchoTime2=meta["EchoTime2"] + 0.001)))
    changed = run_cohort(tmp_path / "bids", tmp_path / "out", progress=False, se_replicates=20)
    assert changed.iloc[0]["status"] == "ok" and not bool(changed.iloc[0]["preprocess_reused"])


def test_a_folding_correction_is_flagged():
    from alps.imaging.qc import flags

    row = {"alps_L": 1.4, "alps_R": 1.4, "alps": 1.4}
    assert "sdc_folds" in flags({**row, "sdc_min_jacobian": -0.24})
    assert "sdc_folds" not in flags({**row, "sdc_min_jacobian": 0.08}) and "sdc_folds" not in flags(row)
