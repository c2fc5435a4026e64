"""The gradient-orientation check inside the pipeline, on a real scan with a deliberately flipped
b-vector column: `report` flags it in QC, `correct` refits with the repaired table and gives the
same ALPS as the original table."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from alps import paths
from alps import pipeline as P

SRC = paths.REPO_ROOT.parent / "shared" / "data" / "real_dwi" / "toshiba_galan_tilts" / "7006_DTI_ortho"

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    if not SRC.with_suffix(".nii.gz").is_file():
        pytest.skip("../shared/data/real_dwi is not available (CI copy or developer machine only)")
    root = tmp_path_factory.mktemp("gcpipe")
    for name, flip in (("orig", False), ("flipy", True)):
        d = root / name
        d.mkdir()
        shutil.copy(SRC.with_suffix(".nii.gz"), d / "dwi.nii.gz")
        shutil.copy(SRC.with_suffix(".bval"), d / "dwi.bval")
        bvec = np.loadtxt(SRC.with_suffix(".bvec"))
        if flip:
            bvec[1] *= -1
        np.savetxt(d / "dwi.bvec", bvec, fmt="%.6f")
    return root


def _run(root, name, mode):
    d = root / name
    df = P.run_cohort(d / "dwi.nii.gz", root / f"out-{name}-{mode}", bval=d / "dwi.bval",
                      bvec=d / "dwi.bvec", gradcheck=mode, progress=False)
    assert (df["status"] == "ok").all(), df["error"].tolist()
    return df.iloc[0]


def test_report_flags_a_flipped_table(scans):
    row = _run(scans, "flipy", "report")
    assert bool(row["gradcheck_flag"]) and not bool(row["gradcheck_corrected"])
    assert "gradient_table" in row["qc_flags"]


def test_correct_restores_the_original_measurement(scans):
    fixed = _run(scans, "flipy", "correct")
    orig = _run(scans, "orig", "off")
    assert bool(fixed["gradcheck_corrected"])
    assert "gradient_table" not in fixed["qc_flags"]
    for k in ("alps_L", "alps_R", "alps", "alps_scanner"):
        assert fixed[k] == pytest.approx(orig[k], abs=1e-6)
