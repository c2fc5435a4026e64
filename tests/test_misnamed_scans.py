"""Files that look like diffusion images but break BIDS naming are never dropped in silence.

Before: a dataset whose subject folders had a hyphen inside the label
(``sub-11000DTIPA-SAG20d/dwi/sub-11000DTIPA-SAG20d_dwi.nii.gz``, as a lab's hand-made names often
are) — ``alps validate`` reported only missing sidecars, ``alps run`` said ``3/3 scans processed``
and exited 0: the misnamed scans vanished. Now each is an error of ``alps validate`` naming the
file and the rule it breaks, a failed row of ``alps run`` (exit 1) and of ``alps group``, and so an
exclusion with its reason in the statistics (``alps paper``'s ``exclusions.csv``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from alps import io as aio
from alps.io import tables
from alps.io.validate import validate_dataset
from test_bad_inputs import write_good

#: misnamed diffusion images (relative path) -> a phrase of the rule it breaks
MISNAMED = {
    "sub-11000DTIPA-SAG20d/dwi/sub-11000DTIPA-SAG20d_dwi.nii.gz":
        "folder 'sub-11000DTIPA-SAG20d': a BIDS sub- label is letters and digits only, not '-'",
    "sub-9000DTIPA-ortho/dwi/sub-9000DTIPA-ortho_dwi.nii.gz": "letters and digits only, not '-'",
    "sub-02/dwi/sub-02_DWI.nii.gz": "its name ends in '_DWI.nii.gz', not '_dwi.nii.gz'",
    "sub-03/anat/sub-03_dwi.nii.gz": "it is in 'sub-03/anat/', not in a sub-<label>/[ses-<label>/]dwi/ folder",
    "sub-04/dwi/DTI_30dir.nii.gz": "its name does not begin with sub-<label>",  # .bval beside it
    "sub-05/ses-1/dwi/old/sub-05_ses-1_dwi.nii.gz": "not in a sub-<label>/[ses-<label>/]dwi/ folder",
    "sub-06/dwi/sub-06_run-1_b1000_dwi.nii.gz": "'b1000' in its name is not a key-label entity",
}


def misnamed_dataset(root) -> Path:
    """One valid scan (``sub-01``, with a T1w beside it) and the :data:`MISNAMED` files, each a
    copy of the valid scan with its gradient files."""
    src = write_good(root, "01")
    (src.parent / "sub-01_dwi.json").write_text(json.dumps({"Manufacturer": "Siemens"}))
    anat = root / "sub-01" / "anat"
    anat.mkdir()
    shutil.copyfile(src, anat / "sub-01_T1w.nii.gz")  # not a diffusion image: not flagged
    (root / "dataset_description.json").write_text(json.dumps({"Name": "lab", "BIDSVersion": "1.9.0"}))
    for rel in MISNAMED:
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, f)
        stem = f.name[: -len(".nii.gz")]
        for ext in (".bval", ".bvec"):
            shutil.copyfile(src.with_name(f"sub-01_dwi{ext}"), f.with_name(stem + ext))
    return root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return misnamed_dataset(tmp_path_factory.mktemp("misnamed") / "bids")


def test_validate_names_every_misnamed_file_and_its_rule(lab):
    df = validate_dataset(lab)
    errors = df[df["severity"] == "error"]
    assert sorted(errors["file"]) == sorted(str(lab / rel) for rel in MISNAMED), errors
    for rel, rule in MISNAMED.items():
        msg = errors.loc[errors["file"] == str(lab / rel), "problem"].iloc[0]
        assert msg.startswith(f"{lab / rel}: not a BIDS diffusion image, so it is not processed") and rule in msg, msg
    assert not (df["file"].str.contains("sub-01")).any(), df  # the valid scan, its T1w: nothing to say
    out = subprocess.run([sys.executable, "-m", "alps.cli", "validate", str(lab)], capture_output=True, text=True)
    assert out.returncode == 1 and f"{len(MISNAMED)} error(s)" in out.stdout, out.stdout


def test_discovery_lists_them_as_invalid_items(lab):
    items = aio.discover(lab, strict=False)
    good = [it for it in items if not it.invalid]
    bad = [it for it in items if it.invalid]
    assert [it.key for it in good] == ["sub-01"]
    assert sorted(str(it.dwi) for it in bad) == sorted(str(lab / rel) for rel in MISNAMED)
    assert {it.participant_id for it in bad} >= {"sub-11000DTIPA-SAG20d", "sub-9000DTIPA-ortho", "sub-02"}
    with pytest.raises(aio.InputError, match="not a BIDS diffusion image"):
        aio.discover(lab)  # strict
    only = aio.discover(lab, participant_label=["11000DTIPA-SAG20d"], strict=False)
    assert [it.participant_id for it in only] == ["sub-11000DTIPA-SAG20d"] and only[0].invalid


def test_a_dataset_of_misnamed_files_only(tmp_path):
    """Nothing valid at all: no longer 'no diffusion images found' — each file says what is wrong."""
    root = misnamed_dataset(tmp_path / "bids")
    shutil.rmtree(root / "sub-01")
    df = validate_dataset(root)
    assert (df["severity"] == "error").sum() == len(MISNAMED)


@pytest.mark.slow
def test_run_and_group_give_each_a_failed_row_and_the_statistics_an_exclusion(lab, tmp_path):
    from alps.pipeline.group import group

    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "alps.cli", "run", str(lab), str(out)], capture_output=True,
                         text=True, timeout=900)
    n = len(MISNAMED) + 1
    assert res.returncode == 1 and f"1/{n} scans processed" in res.stdout, res.stdout + res.stderr
    assert "alps run: error: " in res.stdout and "sub-11000DTIPA-SAG20d_dwi.nii.gz" in res.stdout
    df = pd.read_csv(out / "alps.tsv", sep="\t")
    assert len(df) == n and (df["status"] == "ok").sum() == 1
    failed = df[df["status"] == "failed"]
    for rel, rule in MISNAMED.items():
        hit = failed[failed["error"].str.contains(str(lab / rel), regex=False)]
        assert len(hit) == 1 and rule in hit["error"].iloc[0], (rel, failed["error"].tolist())
    assert "sub-11000DTIPA-SAG20d" in set(df["participant_id"])
    assert not (out / "sub-11000DTIPA-SAG20d").exists()  # nothing written for a file never processed
    again = group(out, write=False)
    assert list(again["status"]) == list(df["status"]) and list(again["error"].fillna("")) == list(
        df["error"].fillna(""))
    # the statistics (alps paper's notebooks): each misnamed scan is an exclusion, with its reason
    part = tmp_path / "participants.tsv"
    part.write_text("participant_id\tgroup\nsub-01\tHC\nsub-11000DTIPA-SAG20d\tMO\n")
    with pytest.warns(UserWarning, match="excluded"):
        _, ex = tables.merge_cohort(tables.load_alps(out / "alps.tsv"), tables.load_participants(part))
    reason = ex.set_index("participant_id").loc["sub-11000DTIPA-SAG20d", "reason"]
    assert "scan failed" in reason and "letters and digits only" in reason


def test_participant_level_tables_keep_every_misnamed_file(lab, tmp_path):
    """A participant-level run rewrites the tables with the other subjects' recorded rows; the
    misnamed files of the other subjects (never run, never recorded) stay listed too."""
    from alps.pipeline import run_cohort

    df = run_cohort(lab, tmp_path / "out", participant_label="02", progress=False)
    assert list(df["participant_id"]) == ["sub-02"] and list(df["status"]) == ["failed"]
    table = pd.read_csv(tmp_path / "out" / "alps.tsv", sep="\t")
    assert sorted(table["error"].str.extract(r"^validation: (\S+):")[0]) == sorted(str(lab / r) for r in MISNAMED)
