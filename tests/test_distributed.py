"""Scale-out (alps.pipeline.distributed, alps.pipeline.group): a cohort on a dask.distributed cluster gives the local run's
tables; participant-level runs share one OUT_DIR (per-scan locks) and ``alps group`` gathers
their records into tables byte-identical to a one-shot ``alps run``.

One good scan (registration is the cost) and one scan failing validation; two fresh runs (local
and on a 2-worker LocalCluster); the participant-level runs reuse the Dask run's derivatives.
"""
from __future__ import annotations

import shutil
import threading
import time

import pandas as pd
import pytest
from test_bad_inputs import _build, write_good

from alps.pipeline import distributed as D
from alps.pipeline import group as G
from alps.pipeline import locking
from alps import io as aio
from alps import pipeline as P
from alps.cli import main

distributed = pytest.importorskip("distributed", reason="needs the 'scale' extra (dask[distributed])")

TABLES = ("alps.tsv", "qc.tsv", "preprocess.tsv", "provenance.tsv")
LABELS = ("a", "bad")


def _tables(out):
    return {n: (out / n).read_bytes() for n in TABLES}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cluster):
    root = tmp_path_factory.mktemp("dist")
    bids = root / "bids"
    write_good(bids, "a")
    _build("bval_no_b0", bids, "bad")
    local, dask_out = root / "local", root / "dask"
    assert main(["run", str(bids), str(local), "--n-jobs", "1"]) == 1  # one scan failed
    assert main(["run", str(bids), str(local), "--n-jobs", "1", "--allow-failures"]) == 0
    assert main(["run", str(bids), str(dask_out), "--scheduler", cluster.scheduler_address, "--allow-failures"]) == 0
    return {"root": root, "bids": bids, "local": local, "dask": dask_out, "tables": _tables(local)}


def test_dask_run_gives_the_local_tables(runs):
    assert _tables(runs["dask"]) == runs["tables"]
    df = pd.read_csv(runs["dask"] / "alps.tsv", sep="\t").set_index("participant_id")
    assert df.loc["sub-a", "status"] == "ok" and df.loc["sub-bad", "status"] == "failed"
    assert "no b=0 volume" in df.loc["sub-bad", "error"]
    t = pd.read_csv(runs["dask"] / "timings.tsv", sep="\t")
    assert len(t) == 2 and "time_registration_s" in t.columns


def test_dask_task_failure_is_recorded(runs, cluster):
    """A task that raises on the worker (here: an unknown parameter) becomes that scan's failure."""
    items = aio.discover(runs["bids"], strict=False)
    with distributed.Client(cluster) as client:
        rows = list(D.map_subjects(items, runs["root"] / "unused", client, bogus=1))
    assert sorted(r["participant_id"] for r in rows) == ["sub-a", "sub-bad"]
    assert all(r["status"] == "failed" and r["error"].startswith("dask: ParameterError") and "'bogus'" in r["error"]
               for r in rows)


def test_group_gathers_the_dask_records(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs["dask"], out)
    for n in TABLES:
        (out / n).unlink()
    assert main(["group", str(out)]) == 0
    assert _tables(out) == runs["tables"]


def test_participant_level_jobs_then_group(runs, tmp_path, capsys):
    """Participant-level runs need no OUT_DIR lock (here held throughout by this process, as by a
    concurrent job) and write no table; ``alps group`` then writes the one-shot tables."""
    out = tmp_path / "out"
    for d in runs["dask"].glob("sub-*"):  # derivatives only (reused): no records, tables, description
        shutil.copytree(d, out / d.name)
    for rec in out.glob("sub-*/*_desc-run.json"):
        rec.unlink()
    with P.cohort_lock(out):
        for label in LABELS:
            rc = main(["run", str(runs["bids"]), str(out), "--participant-label", label, "--no-tables"])
            assert rc == (0 if label == "a" else 1)
    assert not [n for n in P.COHORT_TABLES if (out / n).exists()]
    assert (out / "sub-a" / "sub-a_desc-run.json").is_file() and (out / "sub-bad" / "sub-bad_desc-run.json").is_file()
    capsys.readouterr()
    assert main(["group", str(out)]) == 0
    assert "1/2 scans ok, 1 failed" in capsys.readouterr().out
    assert _tables(out) == runs["tables"]
    assert not [p for p in out.rglob(".*") if p.name != P.LOCK_NAME]  # no temporaries left


def test_group_lists_missing_and_running(runs, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(runs["dask"], out)
    (out / "sub-bad" / "sub-bad_desc-run.json").unlink()
    a = aio.discover(runs["bids"], participant_label=["a"])[0]
    with P.scan_lock(out, a):  # a job is processing sub-a
        assert main(["group", str(out)]) == 1
    text = capsys.readouterr().out
    assert "RUNNING sub-a" in text and "MISSING sub-bad" in text
    df = pd.read_csv(out / "alps.tsv", sep="\t").set_index("participant_id")
    assert list(df["status"]) == ["running", "missing"]
    # an interrupted rerun (stage record invalidated, run record left) is not reported as finished
    (out / "sub-a" / "dwi" / "sub-a_desc-alps.json").unlink()
    df = G.group(out)
    assert df.set_index("participant_id").loc["sub-a", "status"] == "missing"
    # the input dataset can be given explicitly, or be unreachable (records only)
    assert len(G.group(out, input_path=runs["bids"], participant_label=["a"], write=False)) == 1
    (out / "dataset_description.json").unlink()
    df = G.group(out, write=False)
    assert list(df["participant_id"]) == ["sub-a"]


def test_scan_lock_serialises_runs_of_one_scan(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs["dask"], out)
    a = aio.discover(runs["bids"], participant_label=["a"])[0]
    result = {}
    with P.scan_lock(out, a):
        th = threading.Thread(target=lambda: result.update(P.process_subject(a, out)))
        th.start()
        time.sleep(1.0)
        assert th.is_alive() and not result, "process_subject did not wait for the scan's lock"
    th.join(60)
    assert result["status"] == "ok" and result["preprocess_reused"] and result["measure_reused"]


def test_participant_tables_wait_for_the_cohort_lock(runs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(locking, "TABLES_LOCK_WAIT_S", 0.3)
    with P.cohort_lock(out):
        with pytest.raises(aio.InputError, match="another 'alps run' is writing"):  # a whole-cohort run
            P.run_cohort(runs["bids"], out, progress=False)
        t0 = time.monotonic()
        with pytest.raises(aio.InputError, match=r"held for more than 0 s"):  # tables of a participant run
            P.run_cohort(runs["bids"], out, participant_label=["bad"], progress=False)
        assert time.monotonic() - t0 >= 0.3
    df = P.run_cohort(runs["bids"], out, participant_label=["bad"], progress=False)
    assert (out / "alps.tsv").is_file() and list(df["status"]) == ["failed"]
