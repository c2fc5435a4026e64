"""``alps run`` as a user meets it: exit status with failed scans, the console summary, cohort
tables updated per row by participant-level runs, absolute paths for a Dask scheduler, a
participant label for a single file, gradcheck columns in qc.tsv, help text and defaults of every
option. One small good scan and one invalid scan (registration of the good one is the cost)."""
from __future__ import annotations

import argparse
import shutil

import pandas as pd
import pytest
from test_bad_inputs import _build, write_good

from alps import io as aio
from alps import pipeline as P
from alps.cli import build_parser, main
from alps.pipeline.tables import GRADCHECK_COLUMNS, qc_table

TABLES = ("alps.tsv", "qc.tsv", "preprocess.tsv", "provenance.tsv")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("clirun")
    bids = root / "bids"
    write_good(bids, "a")
    _build("bval_no_b0", bids, "bad")
    return {"bids": bids, "out": root / "out"}


def test_exit_status_summary_and_per_row_tables(run, capsys):
    bids, out = run["bids"], run["out"]
    assert main(["run", str(bids), str(out), "--n-jobs", "1"]) == 1  # one of two scans failed
    text = capsys.readouterr().out
    assert "1/2 scans processed" in text and "FAILED sub-bad" in text and "--allow-failures" in text
    assert main(["run", str(bids), str(out), "--allow-failures"]) == 0
    before = {n: (out / n).read_bytes() for n in TABLES}
    assert len(pd.read_csv(out / "alps.tsv", sep="\t")) == 2
    # a participant-level run replaces its own rows only: the tables do not shrink
    for label in ("a", "bad"):
        main(["run", str(bids), str(out), "--participant-label", label])
        assert {n: (out / n).read_bytes() for n in TABLES} == before, label
    capsys.readouterr()
    # ... and a rerun of one scan with other parameters changes that row, not the others
    assert main(["run", str(bids), str(out), "--participant-label", "a", "--roi-radius", "3"]) == 0
    df = pd.read_csv(out / "alps.tsv", sep="\t").set_index("participant_id")
    assert list(df.index) == ["sub-a", "sub-bad"] and df.loc["sub-bad", "status"] == "failed"
    # the good scan alone: exit 0 without the option
    assert "1/1 scans processed" in capsys.readouterr().out


def test_summary_shows_session_and_run(monkeypatch, capsys, tmp_path):
    import alps.cli.run as R

    rows = pd.DataFrame({"participant_id": ["sub-01", "sub-01"], "session_id": ["ses-1", "ses-2"],
                         "run": [1, 2], "status": ["ok", "failed"], "alps": [1.5, float("nan")],
                         "error": ["", "x.bval: no b=0 volume"]})
    monkeypatch.setattr(R, "run_cohort", lambda *a, **k: rows)
    assert main(["run", str(tmp_path), str(tmp_path / "o"), "--allow-failures"]) == 0
    text = capsys.readouterr().out
    header = next(line.split() for line in text.splitlines() if line.split()[:1] == ["participant_id"])
    assert header[:4] == ["participant_id", "session_id", "run", "status"]
    assert "FAILED sub-01 ses-2" in text


def test_scheduler_gets_absolute_paths(run, monkeypatch, tmp_path):
    """With a scheduler, INPUT and OUT_DIR given relative to the current folder reach the workers
    as absolute paths (a worker's current folder is not the caller's)."""
    from alps.pipeline import distributed as D

    seen = {}

    def fake_map(items, out_dir, scheduler, **kw):
        seen["items"], seen["out"] = items, out_dir
        for it in items:
            yield {"participant_id": it.participant_id, "session_id": None, "status": "failed", "error": "x"}

    monkeypatch.setattr(D, "map_subjects", fake_map)
    shutil.copytree(run["bids"], tmp_path / "bids")
    monkeypatch.chdir(tmp_path)
    P.run_cohort("bids", "rel_out", scheduler="tcp://nowhere:1", progress=False, tables=False)
    assert seen["out"].is_absolute() and seen["out"] == tmp_path / "rel_out"
    assert all(it.dwi.is_absolute() and it.bval.is_absolute() for it in seen["items"])


def test_participant_label_names_a_single_file(run, tmp_path):
    src = run["bids"] / "sub-a" / "dwi"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name.replace("sub-a_dwi", "7006DTIortho"))
    dwi = tmp_path / "7006DTIortho.nii.gz"
    assert aio.discover(dwi)[0].participant_id == "sub-7006DTIortho"  # default: from the name
    assert aio.discover(dwi, participant_label=["sub-7006"])[0].participant_id == "sub-7006"
    with pytest.raises(aio.InputError, match="one participant label for a single file"):
        aio.discover(dwi, participant_label=["1", "2"])
    with pytest.raises(aio.InputError, match="letters and digits only"):
        aio.discover(dwi, participant_label=["70_06"])
    with pytest.raises(aio.InputError, match=r"do not match this file \(sub-a\)"):  # a BIDS name wins
        aio.discover(src / "sub-a_dwi.nii.gz", participant_label=["b"])


def test_gradcheck_columns_in_qc_table():
    row = {"participant_id": "sub-01", "status": "ok", "error": "", "alps": 1.4, "qc_flags": "",
           "gradcheck_best": "flip_x", "gradcheck_margin": 0.31, "gradcheck_flag": True,
           "gradcheck_corrected": False}
    qc = qc_table(pd.DataFrame([row]))
    assert [c for c in qc.columns if c.startswith("gradcheck")] == list(GRADCHECK_COLUMNS)
    assert qc.loc[0, "gradcheck_best"] == "flip_x"
    plain = pd.DataFrame([{k: v for k, v in row.items() if not k.startswith("gradcheck")}])
    assert not any(c.startswith("gradcheck") for c in qc_table(plain).columns)  # gradcheck off: unchanged


def test_every_option_has_help_and_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sp in sub.choices.items():
        for a in sp._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            text = (a.help or "").lower()
            if not text or (a.option_strings and "default" not in text):
                missing.append(f"{name} {'/'.join(a.option_strings) or a.dest}")
    assert not missing, missing


def test_run_checks_the_dataset_first_and_names_each_problem(monkeypatch, capsys, tmp_path):
    """``alps run`` on a BIDS folder prints ``alps validate``'s errors (file and problem) before
    running; the run still goes ahead (the scan with the error fails, the others run)."""
    import alps.cli.run as R

    bids = tmp_path / "bids"
    write_good(bids, "a")
    bad = write_good(bids, "b")
    bval = bad.with_name(bad.name.replace(".nii.gz", ".bval"))
    bval.write_text(" ".join(bval.read_text().split()[:-1]) + "\n")  # one b-value fewer than volumes
    called = {}
    rows = pd.DataFrame({"participant_id": ["sub-a"], "status": ["ok"], "alps": [1.5], "error": [""]})
    monkeypatch.setattr(R, "run_cohort", lambda *a, **k: called.setdefault("rows", rows))
    assert main(["run", str(bids), str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    errors = [line for line in text.splitlines() if line.startswith("alps run: error:")]
    assert len(errors) == 1 and str(bad.parent / "sub-b_dwi.") in errors[0] and "b-values" in errors[0], text
    assert "dataset check: 1 error(s)" in text and "rows" in called  # ... and the run went ahead
    monkeypatch.setattr(R, "run_cohort", lambda *a, **k: rows)
    write_good(tmp_path / "clean", "a")
    (tmp_path / "clean" / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    main(["run", str(tmp_path / "clean"), str(tmp_path / "o2")])
    assert "alps run: error" not in capsys.readouterr().out
