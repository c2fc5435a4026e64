"""Real acquisitions of issue 22 (skipped without ../shared/data/real_dwi): the Philips 2 mm
whole-brain scan cut to partial-brain slabs along its slice axis (item 2), and the Siemens XA30
single-shell b = 2500 scan (item 3).

The Philips scan's slice k = 55 holds MNI z = 27 mm (its own registration). Slabs about it of
60 mm (k 40–70) and 84 mm (k 34–76) must register with the ROIs in white matter and give the
whole-brain scan's index within 0.1; a 48 mm slab above the ROI level (k 58–82) must fail saying
that it is too thin to check (it used to register 10 mm off, onto the ROI level). The XA30 scan
must run (fitted on b = 0 + 2500, flagged ``high_b``) with the ROIs in white matter."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_dwi"
PHILIPS = REAL / "philips_ingenia_elition_2mm" / "2201_WIP_DTI_S2MB2"
XA30 = REAL / "siemens_prisma_xa30_pepolar" / "10_DWI_dir80_PA"

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
if not REAL.is_dir():
    pytest.skip(f"real DWI data not found at {REAL} (only in the development checkout)", allow_module_level=True)

#: participant -> (source, voxel slices k0:k1 or None for the whole image)
SCANS = {"philips": (PHILIPS, None), "slab84": (PHILIPS, (34, 76)), "slab60": (PHILIPS, (40, 70)),
         "slabtop48": (PHILIPS, (58, 82)), "xa30": (XA30, None)}


def _write(bids: Path, name: str, src: Path, ks) -> None:
    d = bids / f"sub-{name}" / "dwi"
    d.mkdir(parents=True)
    img = nib.load(str(src) + ".nii.gz")
    if ks is None:
        (d / f"sub-{name}_dwi.nii.gz").symlink_to(str(src) + ".nii.gz")
    else:
        aff = img.affine.copy()
        aff[:3, 3] = img.affine[:3, :3] @ [0, 0, ks[0]] + img.affine[:3, 3]
        cut = nib.Nifti1Image(np.asarray(img.dataobj)[:, :, ks[0]:ks[1]], aff)
        nib.save(cut, str(d / f"sub-{name}_dwi.nii.gz"))
    for ext in (".bval", ".bvec"):
        (d / f"sub-{name}_dwi{ext}").write_text(Path(str(src) + ext).read_text())


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from alps import pipeline as P

    root = tmp_path_factory.mktemp("realacq")
    bids = root / "bids"
    for name, (src, ks) in SCANS.items():
        _write(bids, name, src, ks)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "real", "BIDSVersion": "1.9.0"}))
    df = P.run_cohort(bids, root / "out", n_jobs=2, progress=False)
    return {"df": df.set_index("participant_id"), "out": root / "out", "bids": bids}


def test_philips_slabs_register_on_what_they_cover(real):
    df = real["df"]
    full = df.loc["sub-philips"]
    assert full["status"] == "ok" and full["reg_coverage"] > 0.99
    for name in ("sub-slab84", "sub-slab60"):
        r = df.loc[name]
        assert r["status"] == "ok", r["error"]  # the 60 mm slab failed on the whole-brain Dice
        assert 0.5 < r["reg_coverage"] < 0.85 and r["reg_dice"] > 0.9, (name, r["reg_coverage"], r["reg_dice"])
        for roi in ("proj_L", "proj_R", "assoc_L", "assoc_R"):
            assert r[f"fa_{roi}"] > 0.3 and r[f"purity_{roi}"] >= 0.5, (name, roi)
        assert abs(r["alps"] - full["alps"]) < 0.1, (name, r["alps"], full["alps"])


def test_a_thin_slab_above_the_roi_level_fails_with_its_qc_image(real):
    r = real["df"].loc["sub-slabtop48"]
    assert r["status"] == "failed" and "(--min-reg-coverage)" in r["error"]
    qc = pd.read_csv(real["out"] / "qc.tsv", sep="\t").set_index("participant_id")
    assert (real["out"] / qc.loc["sub-slabtop48", "qc_png"]).is_file()


def test_xa30_single_shell_b2500_runs_flagged(real, capsys):
    r = real["df"].loc["sub-xa30"]
    assert r["status"] == "ok", r["error"]
    assert r["bvals_used"] == "0,2500" and r["bval_fit"] == 2500 and "high_b" in r["qc_flags"].split(";")
    for roi in ("proj_L", "proj_R", "assoc_L", "assoc_R"):
        assert r[f"fa_{roi}"] > 0.3 and r[f"purity_{roi}"] >= 0.5, roi
    assert 0.9 < r["reg_coverage"] < 1.0  # a 117 mm slab
    from alps.cli import main

    assert main(["validate", str(real["bids"]), "--participant-label", "xa30"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("WARNING") and "b = 0,2500" in line and "high_b" in line for line in out.splitlines())
    assert main(["validate", str(real["bids"]), "--participant-label", "xa30", "--tensor-model", "dki"]) == 1
    out = capsys.readouterr().out
    assert "use --tensor-model dti (b = 0,2500, flagged high_b)" in out
