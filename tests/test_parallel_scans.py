"""Several scans of ONE folder processed at the same time (the ``run-N``/``dir-`` layout that
``alps convert`` writes: every run of a session in one ``dwi/`` folder, their derivatives in one
``OUT_DIR/sub-X/dwi/``).

A scan cleans up only what is provably its own and stale: temporaries named after its own files
and scratch directories named after its key, and only while it holds its lock. The other scans'
temporaries and ANTs scratch (maybe being written right now, by another worker or host) are left
alone. Before the fix every scan cleaned the whole folder on start-up, and parallel runs failed
each other's scans (``input file not found: .../.alps-scratch-ants-*/x_0GenericAffine.mat``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alps import pipeline as P
from alps.io import discover
from alps.io.gradients import write_bvals_bvecs
from alps.pipeline.layout import scan_layout
from alps.pipeline.records import clean_stale_temporaries
from test_bad_inputs import good_subject

SCAN = "sub-01_run-{}"


def write_runs(root, runs, *, big=()) -> Path:
    """``sub-01/dwi/sub-01_run-<r>_dwi.*`` for each run (the good 4 mm scan; runs in ``big`` at
    2 mm, so that they take longer and the workers' scans do not start in step)."""
    from alps.simulation import write_nifti_gz

    d = Path(root) / "sub-01" / "dwi"
    d.mkdir(parents=True, exist_ok=True)
    data, aff, bvals, bvecs = good_subject()
    for r in runs:
        x, a = data, aff
        if r in big:  # 2x2x2 upsampled copy: 8x the voxels, the same anatomy
            x = np.repeat(np.repeat(np.repeat(data, 2, 0), 2, 1), 2, 2)
            a = aff.copy()
            a[:3, :3] /= 2
            a[:3, 3] -= aff[:3, :3] @ np.full(3, 0.25)  # voxel centres of the finer grid
        write_nifti_gz(nib.Nifti1Image(x, a), d / f"{SCAN.format(r)}_dwi.nii.gz")
        write_bvals_bvecs(bvals, bvecs, d / f"{SCAN.format(r)}_dwi.bval", d / f"{SCAN.format(r)}_dwi.bvec")
    return Path(root)


def _items(bids):
    return {it.key: it for it in discover(bids)}


def _plant(lay, *, tag="k1ll3d_x"):
    """What a run of this scan killed midway leaves: a temporary of one of its files and an ANTs
    scratch directory with a half-written transform in it."""
    tmp = lay.dir / f".{lay.fa.name}.{tag}.nii.gz"
    scratch = lay.dir / f".alps-scratch-{lay.key}.ants-{tag}"
    rec_tmp = lay.scan_dir / f".{lay.run_record.name}.{tag}.tmp"
    for f in (tmp, scratch / "x_0GenericAffine.mat", rec_tmp):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"half written")
    return [tmp, scratch, rec_tmp]


HOLD_LOCK = """
import sys, time
from alps.pipeline.locking import scan_lock
from alps.io import discover
item = {it.key: it for it in discover(sys.argv[1])}[sys.argv[3]]
with scan_lock(sys.argv[2], item):
    print("locked", flush=True)
    time.sleep(120)
"""


# ----------------------------------------------------------------------------- deterministic
def test_a_scan_cleans_only_its_own_stale_files(tmp_path):
    """Scan 2 starting up removes its own leftovers and nothing of scan 1 — whose lock is held by
    another process (it is running) — nor anything whose owner it cannot prove; scan 1's leftovers
    go once scan 1 runs again."""
    bids = write_runs(tmp_path / "bids", (1, 2))
    out = tmp_path / "out"
    items = _items(bids)
    a, b = items[SCAN.format(1)], items[SCAN.format(2)]
    lay_a, lay_b = scan_layout(out, a), scan_layout(out, b)
    live_a = _plant(lay_a)
    stale_b = _plant(lay_b)
    unowned = lay_a.dir / ".alps-scratch-ants-0ld3r_v1"  # no owner in its name: cannot be proven stale
    unowned.mkdir()
    other = lay_a.dir / ".notes.txt.abcd1234.tmp"  # a temporary of some other writer's file
    other.write_text("x")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(bids), str(out), a.key],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert P.scan_locked(out, a)
        row = P.process_subject(b, out, stages=("measure",))  # starts up, cleans, fails fast
        assert row["status"] == "failed" and "no successful preprocessing" in row["error"]
        for f in live_a + [unowned, other]:
            assert f.exists(), f"{f.name}: another scan's (running) file was deleted"
        for f in stale_b:
            assert not f.exists(), f"{f.name}: the scan's own stale file was left"
    finally:
        holder.kill()
        holder.communicate()
    row = P.process_subject(a, out, stages=("measure",))  # scan 1 again, its lock free: its own leftovers go
    assert row["status"] == "failed"
    for f in live_a:
        assert not f.exists(), f
    assert unowned.exists() and other.exists()


def test_ownership_is_by_whole_key(tmp_path):
    """``sub-01`` (no entities) beside ``sub-01_run-1`` in one folder: neither owns the other's
    files, although one key is a prefix of the other."""
    from alps.pipeline.layout import ScanLayout

    plain, run1 = ScanLayout(tmp_path, "sub-01"), ScanLayout(tmp_path, "sub-01", None, (("run", "1"),))
    assert plain.dir == run1.dir
    files_run1, files_plain = _plant(run1), _plant(plain, tag="abcdefgh")
    assert clean_stale_temporaries(plain) == sorted(files_plain)
    assert all(f.exists() for f in files_run1)
    assert clean_stale_temporaries(run1) == sorted(files_run1)


def test_no_cleanup_without_a_lock(tmp_path, monkeypatch):
    """Where file locking is not supported (the run goes on unguarded, with a warning), nothing is
    removed as stale: another run could be writing it."""
    from alps.pipeline import locking

    bids = write_runs(tmp_path / "bids", (1,))
    out = tmp_path / "out"
    it = _items(bids)[SCAN.format(1)]
    planted = _plant(scan_layout(out, it))
    monkeypatch.setattr(locking, "_flock", lambda fh, blocking: False)
    P.process_subject(it, out, stages=("measure",))
    assert all(f.exists() for f in planted)


def test_cohort_run_leaves_other_writers_files_in_out_dir(tmp_path):
    """A whole-cohort run cleans in OUT_DIR only the temporaries of the cohort tables (written
    under OUT_DIR's lock), not those of files that participant-level jobs write without it."""
    bids = write_runs(tmp_path / "bids", (1,))
    out = tmp_path / "out"
    out.mkdir()
    table_tmp = out / ".alps.tsv.abcd_123.tmp"
    desc_tmp = out / ".dataset_description.json.abcd_123.tmp"
    for f in (table_tmp, desc_tmp):
        f.write_text("x")
    P.run_cohort(bids, out, stages=("measure",), progress=False)
    assert not table_tmp.exists() and desc_tmp.exists()


# ----------------------------------------------------------------------------- real runs
def test_a_scan_starting_during_anothers_registration(tmp_path):
    """Run 1 registers (its ANTs scratch directory exists) in another process while run 2 starts
    in this one: before the fix run 2's start-up deleted run 1's scratch and run 1 failed."""
    bids = write_runs(tmp_path / "bids", (1, 2))
    out = tmp_path / "out"
    filt = tmp_path / "run1.json"
    filt.write_text(json.dumps({"dwi": {"run": 1}}))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "alps.cli", "run", str(bids), str(out), "--n-jobs", "1",
                             "--bids-filter-file", str(filt), "--no-tables"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    d = out / "sub-01" / "dwi"
    try:
        t0 = time.monotonic()
        while not (d.is_dir() and any(p.name.startswith(".alps-scratch-") for p in d.iterdir())):
            assert proc.poll() is None, f"run 1 ended before registering: {proc.communicate()[0]}"
            assert time.monotonic() - t0 < 300, "timed out waiting for run 1's registration"
            time.sleep(0.02)
        row2 = P.process_subject(_items(bids)[SCAN.format(2)], out)
        stdout, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert row2["status"] == "ok", row2["error"]
    rec1 = json.loads((out / "sub-01" / f"{SCAN.format(1)}_desc-run.json").read_text())
    assert proc.returncode == 0 and rec1["row"]["status"] == "ok", (rec1["row"].get("error"), stdout)


@pytest.mark.slow
def test_parallel_runs_of_one_folder(tmp_path):
    """``alps run BIDS OUT --n-jobs 2`` over four runs of one session (one of them larger, so that
    the two workers' scans overlap at every stage, as on real data): every scan succeeds, nothing
    is left behind, and the result of each run is that of the run processed alone."""
    bids = write_runs(tmp_path / "bids", (1, 2, 3, 4), big=(1,))
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "alps.cli", "run", str(bids), str(out), "--n-jobs", "2"],
                         capture_output=True, text=True, env=env, timeout=1200)
    df = pd.read_csv(out / "alps.tsv", sep="\t")
    assert list(df["status"]) == ["ok"] * 4, df["error"].tolist()
    assert res.returncode == 0 and "4/4 scans processed" in res.stdout, res.stdout + res.stderr
    leftovers = [p.name for p in out.rglob(".*") if not p.name.endswith(".alps-run.lock")]
    assert leftovers == []
    # every derivative in the shared folder belongs to exactly one scan (ScanLayout.file_names,
    # what the clean-up goes by)
    names = [scan_layout(out, it).file_names() for it in _items(bids).values()]
    for f in (out / "sub-01" / "dwi").iterdir():
        assert sum(f.name in n for n in names) == 1, f.name
    # runs 2-4 are the same image: the same index whichever worker ran them, alongside what
    small = df[df["run"] != 1]
    assert small["alps"].nunique() == 1, small[["run", "alps"]]
