"""Provenance, reuse and determinism of the cohort runner.

* each subject's derivative directory holds JSON records with package versions, parameters, input
  SHA-256 and the SHA-256 of the derivatives themselves;
* an unchanged rerun recomputes nothing; changing a parameter, an input byte or a package version
  recomputes (detected cheaply: ``alps.io.load_dwi`` is replaced by a sentinel that raises, so a
  recompute attempt shows up as that error); moving the dataset does not;
* the same cohort run twice into two output directories gives byte-identical tables.
"""
from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alps import io as aio
from alps import pipeline as P
from test_bad_inputs import _build, write_good

TABLES = ("alps.tsv", "qc.tsv", "preprocess.tsv", "provenance.tsv")


class Recompute(RuntimeError):
    pass


def _sentinel(*args, **kwargs):
    raise Recompute("SENTINEL: recomputation attempted")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("prov")
    bids = root / "bids"
    write_good(bids, "good")
    _build("bval_no_b0", bids, "bad")
    kw = dict(n_jobs=1, progress=False, qc_png=False)
    a = P.run_cohort(bids, root / "A", **kw)
    b = P.run_cohort(bids, root / "B", **kw)
    tables = {n: (root / "A" / n).read_bytes() for n in TABLES}
    return {"root": root, "bids": bids, "A": root / "A", "B": root / "B", "a": a, "b": b, "kw": kw,
            "tables": tables}


def _item(bids, label="good"):
    return aio.discover(bids, participant_label=[label])[0]


def _copy_out(runs, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(runs["A"], dst)
    return dst


def test_determinism_two_output_dirs(runs):
    assert runs["a"].set_index("participant_id").loc["sub-good", "status"] == "ok"
    for n in TABLES:
        assert (runs["A"] / n).read_bytes() == (runs["B"] / n).read_bytes(), n
    cols = pd.read_csv(runs["A"] / "alps.tsv", sep="\t").columns
    assert not [c for c in cols if c.startswith("time_") or c.endswith("_reused")]


def test_provenance_records(runs):
    d = runs["A"] / "sub-good" / "dwi"
    pre = json.loads((d / "sub-good_desc-preprocess.json").read_text())
    prov = pre["provenance"]
    item = _item(runs["bids"])
    assert prov["sha256"] == {"dwi": aio.sha256(item.dwi), "bval": aio.sha256(item.bval),
                              "bvec": aio.sha256(item.bvec)}
    assert set(prov["parameters"]) == set(P.PreprocessParams.names())
    for pkg in ("alps", "python", "numpy", "scipy", "nibabel", "dipy", "nilearn", "antspyx"):
        assert prov["versions"][pkg] and prov["versions"][pkg] != "unknown", pkg
    assert prov["inputs"]["dwi"] == str(item.dwi)
    for name, h in pre["outputs_sha256"].items():  # derivatives are hashed too
        assert aio.sha256(d / name) == h, name
    assert any(n.endswith("_mode-image_xfm.mat") for n in pre["outputs_sha256"])
    res = json.loads((d / "sub-good_desc-alps.json").read_text())
    assert res["provenance"]["preprocess"] == prov
    assert res["provenance"]["preprocess_outputs_sha256"] == pre["outputs_sha256"]
    assert set(res["provenance"]["parameters"]) == set(P.MeasureParams.names())
    assert res["provenance"]["versions"] == prov["versions"]
    desc = json.loads((runs["A"] / "dataset_description.json").read_text())
    assert desc["GeneratedBy"][0]["Version"] == prov["versions"]["alps"]


def test_provenance_table(runs):
    """provenance.tsv: one row per scan with the inputs' SHA-256 (also for a scan that failed
    validation), the stage parameters and the versions — the same as the JSON records; and none
    of it leaks into alps.tsv."""
    t = pd.read_csv(runs["A"] / "provenance.tsv", sep="\t", dtype=str, keep_default_na=False)
    t = t.set_index("participant_id")
    assert list(t.columns) == ["status", "dwi_sha256", "bval_sha256", "bvec_sha256", "preprocess_parameters",
                               "measure_parameters", "versions"]
    for label in ("good", "bad"):
        item = _item(runs["bids"], label)
        assert t.loc[f"sub-{label}", "dwi_sha256"] == aio.sha256(item.dwi)
        assert t.loc[f"sub-{label}", "bvec_sha256"] == aio.sha256(item.bvec)
    pre = json.loads((runs["A"] / "sub-good" / "dwi" / "sub-good_desc-preprocess.json").read_text())["provenance"]
    assert t.loc["sub-good", "preprocess_parameters"] == "; ".join(f"{k}={pre['parameters'][k]}"
                                                                    for k in sorted(pre["parameters"]))
    assert t.loc["sub-good", "versions"] == "; ".join(f"{k}={pre['versions'][k]}" for k in sorted(pre["versions"]))
    assert "roi_weighting=trilinear" in t.loc["sub-good", "measure_parameters"]
    assert t.loc["sub-bad", "status"] == "failed" and t.loc["sub-bad", "measure_parameters"] == "n/a"
    assert not [c for c in pd.read_csv(runs["A"] / "alps.tsv", sep="\t").columns if c.startswith("prov")]


def test_report_shows_provenance(runs, tmp_path):
    from alps.build.report import provenance_html

    page = provenance_html(runs["A"] / "provenance.tsv", "provenance.tsv")
    item = _item(runs["bids"])
    assert aio.sha256(item.dwi)[:12] in page
    assert "roi_weighting" in page and "trilinear" in page and "antspyx" in page
    assert "set 1 (1 scans)" in page  # the failed scan recorded no measurement parameters


def test_unchanged_rerun_recomputes_nothing(runs):
    d = runs["A"] / "sub-good" / "dwi"
    mtimes = {p.name: p.stat().st_mtime_ns for p in d.iterdir()}
    df = P.run_cohort(runs["bids"], runs["A"], **runs["kw"]).set_index("participant_id")
    assert df.loc["sub-good", "status"] == "ok"
    assert df.loc["sub-good", "preprocess_reused"] and df.loc["sub-good", "measure_reused"]
    assert {p.name: p.stat().st_mtime_ns for p in d.iterdir()} == mtimes
    for n in TABLES:
        assert (runs["A"] / n).read_bytes() == runs["tables"][n], n


def test_measure_parameter_change_recomputes_measure_only(runs, tmp_path):
    out = _copy_out(runs, tmp_path)
    kw = dict(runs["kw"], participant_label=["good"])
    r = P.run_cohort(runs["bids"], out, roi_radius=3.0, **kw).iloc[0]
    assert r["preprocess_reused"] and not r["measure_reused"]
    rec = json.loads((out / "sub-good" / "dwi" / "sub-good_desc-alps.json").read_text())
    assert rec["provenance"]["parameters"]["roi_radius"] == 3.0
    back = P.run_cohort(runs["bids"], out, **kw).iloc[0]
    assert back["preprocess_reused"] and not back["measure_reused"]
    ref = runs["a"].set_index("participant_id").loc["sub-good"]
    assert back["alps"] == ref["alps"] and back["alps_scanner"] == ref["alps_scanner"]


@pytest.mark.parametrize("change", ["parameter", "bval_byte", "dwi_voxel", "package_version",
                                    "derivative_truncated", "derivative_deleted", "force"])
def test_changes_trigger_recomputation(runs, tmp_path, monkeypatch, change):
    out = _copy_out(runs, tmp_path)
    bids = runs["bids"]
    kwargs = {}
    d = out / "sub-good" / "dwi"
    if change == "parameter":
        kwargs = {"min_reg_dice": 0.7}
    elif change in ("bval_byte", "dwi_voxel"):
        bids = tmp_path / "bids"
        shutil.copytree(runs["bids"], bids)
        item = _item(bids)
        if change == "bval_byte":  # same values, one more byte
            item.bval.write_text(item.bval.read_text().rstrip("\n") + " \n")
        else:
            img = nib.load(item.dwi)
            data = np.asarray(img.dataobj, np.float32).copy()
            data[10, 10, 10, 1] += 1.0
            nib.save(nib.Nifti1Image(data, img.affine), item.dwi)
    elif change == "package_version":
        from alps.pipeline import provenance as PV

        real = PV.package_versions
        monkeypatch.setattr(PV, "package_versions", lambda: {**real(), "dipy": "0.0.1"})
    elif change == "derivative_truncated":
        fa = d / "sub-good_desc-FA_dwimap.nii.gz"
        fa.write_bytes(fa.read_bytes()[:100])
    elif change == "derivative_deleted":
        next(d.glob("*_mode-image_xfm.mat")).unlink()
    elif change == "force":
        kwargs = {"force": True}
    item = _item(bids)
    monkeypatch.setattr(aio, "load_dwi", _sentinel)
    with pytest.raises(Recompute):
        P.preprocess_subject(item, out, **kwargs)
    # the old record was invalidated before recomputing: nothing claims to be finished
    assert not (d / "sub-good_desc-preprocess.json").exists()
    assert not (d / "sub-good_desc-alps.json").exists()
    # and through the cohort runner the attempt is recorded as that subject's failure
    shutil.rmtree(out)
    out = _copy_out(runs, tmp_path)
    if change.startswith("derivative"):
        return
    row = P.process_subject(item, out, qc_png=False, **kwargs)
    assert row["status"] == "failed" and "SENTINEL" in row["error"]


def test_moved_dataset_is_reused(runs, tmp_path, monkeypatch):
    """Input paths are recorded but do not decide reuse: only bytes, parameters and versions do."""
    out = _copy_out(runs, tmp_path)
    bids = tmp_path / "moved"
    shutil.copytree(runs["bids"], bids)
    monkeypatch.setattr(aio, "load_dwi", _sentinel)
    rec = P.preprocess_subject(_item(bids), out)
    assert rec.reused
    row = P.process_subject(_item(bids), out, qc_png=False)
    assert row["status"] == "ok" and row["preprocess_reused"] and row["measure_reused"]


def test_measure_refuses_modified_preprocess_outputs(runs, tmp_path):
    out = _copy_out(runs, tmp_path)
    md = out / "sub-good" / "dwi" / "sub-good_desc-MD_dwimap.nii.gz"
    img = nib.load(md)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * 2, img.affine), md)
    with pytest.raises(RuntimeError, match="outputs of sub-good are missing or modified"):
        P.measure_subject(_item(runs["bids"]), out, qc_png=False)
