"""``alps paper``: the whole series (01–07 and the report) on a lab's own BIDS dataset, end to end,
as a new user runs it — relative paths from the current folder, a participants table outside the
dataset, partial sessions, a failed scan, a participant without a scan, no rotation sweep — and
nothing written into the repository.

One run on one small cohort (the statistics need at least 6 MO, 8 VM (mediation) and 3 HC, also
among the simulated subjects alone for the ground-truth numbers): two real scans
from ``../shared`` (the Toshiba head, straight and tilted 20° about every axis; 4 mm simulated scans
instead when it is absent) and 17 small (4 mm) simulated scans with planted ALPS, invented
clinical values. Measured against planted ALPS through the validation table.
"""
from __future__ import annotations

import json
import subprocess

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alps import paths
from alps.cli import main
from alps.io.gradients import write_bvals_bvecs

REAL = paths.REPO_ROOT.parent / "shared" / "data" / "real_dwi" / "toshiba_galan_tilts"
REAL_SCANS = ("7006_DTI_ortho", "10006_DTI_ALL_20d")
GROUPS = ["HC", "HC"] + ["MO"] * 6 + ["VM"] * 8 + ["HC"] * 3  # sub-01, sub-02 real, then simulated
N = len(GROUPS)
LAST, BAD, NOSCAN = f"sub-{N:02d}", f"sub-{N + 1:02d}", f"sub-{N + 2:02d}"
PLANTED = {"MO": 1.60, "VM": 1.35, "HC": 1.48}

pytestmark = [pytest.mark.slow, pytest.mark.paper]


def _tiny(planted_l, planted_r, rot, seed, fields):
    """A 4 mm simulated scan (13 volumes) with planted ALPS: data, affine, bvals, bvecs."""
    from alps.simulation import Pose, default_scheme, simulate_subject
    from alps.validation import downsample2

    img, bvals, bvecs, _ = simulate_subject(fields, Pose(rot), {"alps_L": planted_l, "alps_R": planted_r},
                                            snr=None, scheme=default_scheme(n_b0=1, n_dirs=12), dtype="float32")
    d, aff = downsample2(img.dataobj, img.affine)
    d = np.abs(d + np.random.default_rng(seed).normal(0, d[..., 0].max() * 0.01, d.shape)).astype(np.float32)
    return d, aff, np.asarray(bvals, float), np.asarray(bvecs, float)


def _write(folder, stem, scan):
    from alps.simulation import write_nifti_gz

    folder.mkdir(parents=True, exist_ok=True)
    d, aff, bvals, bvecs = scan
    write_nifti_gz(nib.Nifti1Image(d, aff), folder / f"{stem}_dwi.nii.gz")
    write_bvals_bvecs(bvals, bvecs, folder / f"{stem}_dwi.bval", folder / f"{stem}_dwi.bvec")


def _repo_state():
    """What a run could write into the checkout: tracked changes and untracked files (git), and
    every file of the default build (data/, results/) and of notebooks/ and config/, with its
    modification time."""
    root = paths.REPO_ROOT
    git = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root,
                         capture_output=True, text=True)
    files = {}
    for top in ("results", "data", "notebooks", "config"):
        for f in (root / top).rglob("*") if (root / top).is_dir() else ():
            files[str(f)] = f.stat().st_mtime_ns
    return git.stdout, files


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from alps.simulation.phantom import make_template_fields

    root = tmp_path_factory.mktemp("paper")
    bids = root / "bids"
    fields = make_template_fields()
    rng = np.random.default_rng(18)
    truth, parts = [], []
    for i, group in enumerate(GROUPS, start=1):
        pid = f"sub-{i:02d}"
        if i <= 2 and REAL.is_dir():  # real scans, linked as BIDS subjects
            d = bids / pid / "dwi"
            d.mkdir(parents=True)
            for ext in ("nii.gz", "bval", "bvec"):
                (d / f"{pid}_dwi.{ext}").symlink_to(REAL / f"{REAL_SCANS[i - 1]}.{ext}")
        else:
            lft, rgt = PLANTED[group] + rng.normal(0, 0.04, 2)
            scan = _tiny(lft, rgt, tuple(rng.uniform(-6, 6, 3)), i, fields)
            # partial sessions: sub-03..10 have no session folder, sub-11.. are in ses-01
            folder = bids / pid / ("ses-01" if i >= 11 else "") / "dwi"
            _write(folder, f"{pid}_ses-01" if i >= 11 else pid, scan)
            truth.append({"participant_id": pid, "alps_L": lft, "alps_R": rgt, "alps": (lft + rgt) / 2})
        patient = group != "HC"
        parts.append({"participant_id": pid, "group": group, "age": int(rng.integers(22, 60)),
                      "sex": "FM"[i % 2], "duration_years": round(rng.uniform(1, 20), 1) if patient else "n/a",
                      "attacks_per_month": round(rng.uniform(1, 10), 1) if patient else "n/a",
                      "vas": int(rng.integers(3, 9)) if patient else "n/a",
                      "hit6": int(rng.integers(45, 70)) if patient else "n/a", "psqi": int(rng.integers(2, 15)),
                      "dhi": int(rng.integers(10, 80)) if group == "VM" else "n/a"})
    # the last subject also has a ses-02 scan (same planted ALPS; the ses-01 one is analysed)
    _write(bids / LAST / "ses-02" / "dwi", f"{LAST}_ses-02", _tiny(truth[-1]["alps_L"], truth[-1]["alps_R"],
                                                                        (0, 0, 0), 99, fields))
    # a failed scan (no b=0) and a participant without any scan
    bad = _tiny(1.5, 1.5, (0, 0, 0), 7, fields)
    _write(bids / BAD / "dwi", BAD, (bad[0][..., 1:], bad[1], bad[2][1:], bad[3][1:]))
    parts.append({**parts[-1], "participant_id": BAD})
    parts.append({**parts[-1], "participant_id": NOSCAN})
    clinical = root / "clinical"
    clinical.mkdir()
    pd.DataFrame(parts).to_csv(clinical / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    pd.DataFrame(truth).to_csv(clinical / "truth.tsv", sep="\t", index=False)
    return root


def test_alps_paper_on_a_labs_own_dataset(cohort, monkeypatch, capsys):
    before = _repo_state()
    monkeypatch.chdir(cohort)
    rc = main(["paper", "--bids", "bids", "--out", "my results", "--participants", "clinical/participants.tsv",
               "--truth", "clinical/truth.tsv", "--profile", "smoke", "--session", "ses-01",
               "--session-policy", "only-scan", "-p", "n_boot", "200", "-p", "pipeline", "{n_jobs: 2}"])
    text = capsys.readouterr()
    assert rc == 0, text.out[-3000:]
    out = cohort / "my results"
    assert _repo_state() == before  # nothing written into the checkout, nor into the default build
    for name in ("01_preprocess", "02_alps", "03_group_tests", "04_regression", "05_correlation", "06_mediation",
                 "07_figures"):
        assert (out / "notebooks" / f"{name}.ipynb").is_file()
    for fig in ("fig1_method", "fig2_groups", "fig3_regression", "fig4_correlations", "fig5_mediation",
                "figS1_qc_montage", "figS2_measured_vs_truth", "figS3_rotation"):
        assert (out / "figures" / f"{fig}.png").is_file() and (out / "figures" / f"{fig}.pdf").is_file()
    assert not (out / "tables" / "rotation_sweep.csv").exists()  # simulation-only: skipped with a note
    report = (out / "report.html").read_text()
    assert "Rotation sweep skipped" in report and "fig5_mediation" in report
    assert "Rotation sweep skipped" in text.err
    # partial sessions and the true reasons of every exclusion
    alps = pd.read_csv(out / "tables" / "alps.tsv", sep="\t")
    assert len(alps) == N + 2 and (alps["status"] == "ok").sum() == N + 1
    why = pd.read_csv(out / "tables" / "exclusions.csv").set_index("participant_id")["reason"]
    assert sorted(why.index) == [BAD, NOSCAN]
    assert why[BAD].startswith("scan failed: ") and "no b=0 volume" in why[BAD]
    assert why[NOSCAN] == "no row in the ALPS table"
    # the exclusion warning reached the console
    assert f"{BAD} (scan failed" in text.err
    # measured against planted ALPS (the simulated subjects, the last one with both sessions)
    val = pd.read_csv(out / "tables" / "alps_validation.csv").set_index("measure")
    assert val.loc["alps", "n"] == (N - 2 if REAL.is_dir() else N) + 1 and val.loc["alps", "pearson_r"] > 0.8, val
    key = json.loads((out / "tables" / "key_numbers.json").read_text())
    assert key["truth"] is not None and key["measured"]
