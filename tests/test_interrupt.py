"""Interruption: SIGKILL an ``alps run`` midway and rerun it.

Finished scans are not recomputed (``*_reused`` flags in timings.tsv, unchanged mtimes), files
left half-written or stale by the kill are never read as finished and are cleaned up, and the
output directory is locked against a concurrent run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from alps import io as aio
from alps import pipeline as P
from test_bad_inputs import write_good

SUBJECTS = ("a", "b", "c")


def _alps_run(bids, out):
    cmd = [sys.executable, "-m", "alps.cli", "run", str(bids), str(out), "--n-jobs", "1"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def _hidden(out):
    return sorted(p for p in Path(out).rglob(".*") if p.name != ".alps-run.lock")


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    bids, out = root / "bids", root / "derivatives"
    for s in SUBJECTS:
        write_good(bids, s)
    first = out / "sub-a" / "dwi" / "sub-a_desc-alps.json"
    proc = _alps_run(bids, out)
    lock_error = None
    try:
        t0 = time.monotonic()
        while not first.exists():
            assert proc.poll() is None, f"alps run ended early: {proc.communicate()[0]}"
            assert time.monotonic() - t0 < 240, "timed out waiting for the first subject"
            if lock_error is None and (out / "sub-a" / "dwi").exists():
                try:  # a concurrent run on the same OUT_DIR is refused
                    P.run_cohort(bids, out, progress=False)
                except aio.InputError as exc:
                    lock_error = str(exc)
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    state = {"lock_error": lock_error,
             "alps_tsv_after_kill": (out / "alps.tsv").exists(),
             "b_finished_after_kill": (out / "sub-b" / "dwi" / "sub-b_desc-alps.json").exists(),
             "mtimes_a": {p.name: p.stat().st_mtime_ns for p in (out / "sub-a" / "dwi").iterdir()}}
    # what a kill can leave behind: temporaries of atomic writes, and (after external damage or a
    # non-atomic copy) a half-written record and a half-written derivative
    stale = [out / "sub-b" / "dwi" / ".sub-b_desc-FA_dwimap.nii.gz.k1ll3d_x.nii.gz",
             out / "sub-b" / "dwi" / ".sub-b_from-dwi_to-MNI152NLin2009aSym_mode-image_xfm.mat.k1ll3d_y.mat",
             out / ".alps.tsv.abcd_123.tmp"]
    # ... and the scratch directory of an ANTs registration killed midway (named after its scan)
    stale.append(out / "sub-b" / "dwi" / ".alps-scratch-sub-b.ants-k1ll3d" / "x_0GenericAffine.mat")
    for f in stale:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"\x1f\x8b half written")
    dc = out / "sub-c" / "dwi"
    dc.mkdir(parents=True, exist_ok=True)
    full = json.dumps({"status": "ok", "provenance": {"sha256": {}}, "files": {}, "outputs_sha256": {}})
    (dc / "sub-c_desc-preprocess.json").write_text(full[: len(full) // 2])
    (dc / "sub-c_desc-tensor_dwimap.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
    state["stale"] = stale

    proc = _alps_run(bids, out)
    state["stdout"], _ = proc.communicate(timeout=600)
    state["rc"] = proc.returncode
    state["out"], state["bids"] = out, bids
    return state


def test_kill_happened_midway(killed_and_resumed):
    s = killed_and_resumed
    assert not s["alps_tsv_after_kill"], "the cohort tables are written only at the end"
    assert not s["b_finished_after_kill"]
    assert s["lock_error"] is None or "another 'alps run' is writing" in s["lock_error"]


def test_rerun_completes_and_exit_code(killed_and_resumed):
    s = killed_and_resumed
    assert s["rc"] == 0, s["stdout"]
    assert "3/3 scans processed" in s["stdout"]
    df = pd.read_csv(s["out"] / "alps.tsv", sep="\t")
    assert list(df["status"]) == ["ok"] * 3, df[["participant_id", "error"]]


def test_finished_subject_not_recomputed(killed_and_resumed):
    s = killed_and_resumed
    t = pd.read_csv(s["out"] / "timings.tsv", sep="\t").set_index("participant_id")
    assert bool(t.loc["sub-a", "preprocess_reused"]) and bool(t.loc["sub-a", "measure_reused"])
    for sub in ("sub-b", "sub-c"):
        assert not bool(t.loc[sub, "preprocess_reused"]) and not bool(t.loc[sub, "measure_reused"])
    now = {p.name: p.stat().st_mtime_ns for p in (s["out"] / "sub-a" / "dwi").iterdir()}
    assert now == s["mtimes_a"], "files of the finished subject were rewritten"


def test_half_written_files_never_read_as_finished(killed_and_resumed):
    s = killed_and_resumed
    d = s["out"] / "sub-c" / "dwi"
    rec = json.loads((d / "sub-c_desc-preprocess.json").read_text())
    assert rec["status"] == "ok" and rec["outputs_sha256"]["sub-c_desc-tensor_dwimap.nii.gz"] == aio.sha256(
        d / "sub-c_desc-tensor_dwimap.nii.gz")
    import nibabel as nib

    assert nib.load(d / "sub-c_desc-tensor_dwimap.nii.gz").shape[-1] == 6


def test_stale_temporaries_cleaned(killed_and_resumed):
    s = killed_and_resumed
    for f in s["stale"]:
        assert not f.exists(), f
        assert f.parent.is_dir() or f.parent.name.startswith(".alps-scratch-"), f.parent
    assert not (s["out"] / "sub-b" / "dwi" / ".alps-scratch-sub-b.ants-k1ll3d").exists()
    assert _hidden(s["out"]) == []


def test_rerun_after_resume_is_identical(killed_and_resumed):
    """A further unchanged run reuses everything and rewrites byte-identical tables."""
    s = killed_and_resumed
    before = {n: (s["out"] / n).read_bytes() for n in ("alps.tsv", "qc.tsv", "preprocess.tsv")}
    df = P.run_cohort(s["bids"], s["out"], progress=False)
    assert df["preprocess_reused"].all() and df["measure_reused"].all()
    for n, b in before.items():
        assert (s["out"] / n).read_bytes() == b, n
