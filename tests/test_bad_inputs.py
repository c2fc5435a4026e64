"""Bad inputs: every class gives a clear error naming the file and the problem, and the cohort
runner records it as that scan's failure (status 'failed', error in alps.tsv) while the other
scans of the same run finish.

One cohort (module fixture) holds every bad scan, a good scan and a noise scan whose
registration must be rejected by the QC thresholds; each bad scan is also checked directly
against the function that should reject it. Images are tiny (20x24x20) so that validation — not
registration — is what fails; only the good and the noise scans reach ANTs.

``good_subject``/``write_good`` are reused by test_interrupt, test_privacy and test_provenance.
"""
from __future__ import annotations

import functools
import gzip
import json
import os
import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alps import io as aio
from alps import pipeline as P
from alps.io.gradients import GradientError, write_bvals_bvecs

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ----------------------------------------------------------------------------- a good subject
@functools.lru_cache(maxsize=1)
def good_subject():
    """A small, valid simulated scan that registers (4 mm, 13 volumes): data, affine, bvals, bvecs."""
    from alps.simulation.phantom import make_template_fields
    from alps.simulation import Pose, default_scheme, simulate_subject

    fields = make_template_fields()
    img, bvals, bvecs, _ = simulate_subject(fields, Pose((5.0, 0.0, 0.0)), {"alps_L": 1.5, "alps_R": 1.5},
                                            snr=None, scheme=default_scheme(n_b0=1, n_dirs=12),
                                            dtype="float32")
    from alps.validation import downsample2

    d, aff = downsample2(img.dataobj, img.affine)
    d = np.abs(d + np.random.default_rng(0).normal(0, d[..., 0].max() * 0.01, d.shape)).astype(np.float32)
    return d, aff, np.asarray(bvals, float), np.asarray(bvecs, float)


def write_good(root, label, *, sidecar=None, header_text=None) -> Path:
    """Write the good scan as ``sub-<label>`` of a BIDS tree; returns the DWI path."""

    from alps.simulation import write_nifti_gz

    data, aff, bvals, bvecs = good_subject()
    d = Path(root) / f"sub-{label}" / "dwi"
    d.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data, aff)
    if header_text is not None:  # identifying text in the input header (privacy tests)
        img.header["descrip"] = header_text.encode()[:79]
        img.header["aux_file"] = header_text.encode()[:23]
        img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", header_text.encode()))
    write_nifti_gz(img, d / f"sub-{label}_dwi.nii.gz")
    write_bvals_bvecs(bvals, bvecs, d / f"sub-{label}_dwi.bval", d / f"sub-{label}_dwi.bvec")
    if sidecar is not None:
        (d / f"sub-{label}_dwi.json").write_text(json.dumps(sidecar, indent=2))
    return d / f"sub-{label}_dwi.nii.gz"


# ----------------------------------------------------------------------------- bad scans
SHAPE = (20, 24, 20)


def _scheme(n_dirs=7):
    rng = np.random.default_rng(0)
    g = rng.normal(size=(n_dirs, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return np.r_[0.0, np.full(n_dirs, 1000.0)], np.vstack([np.zeros(3), g])


def _data(n=8, shape=SHAPE):
    rng = np.random.default_rng(1)
    d = rng.uniform(100, 200, shape + (n,)).astype(np.float32)
    d[..., 0] *= 2
    return d


AFF = np.diag([2.0, 2.0, 2.0, 1.0])


def _write(root, label, *, data=None, affine=None, bvals=None, bvecs=None, header=None, stem=None,
           folder=None, ext=".nii.gz"):
    b, g = _scheme()
    d = Path(root) / f"sub-{folder or label}" / "dwi"
    d.mkdir(parents=True, exist_ok=True)
    stem = stem or f"sub-{label}_dwi"
    data = _data() if data is None else data
    if header is not None:
        img = nib.Nifti1Image(data, None, header=header)
    else:
        img = nib.Nifti1Image(data, AFF if affine is None else affine)
    nib.save(img, d / f"{stem}{ext}")
    write_bvals_bvecs(b if bvals is None else bvals, g if bvecs is None else bvecs,
                      d / f"{stem}.bval", d / f"{stem}.bvec")
    return {"dwi": d / f"{stem}{ext}", "bval": d / f"{stem}.bval", "bvec": d / f"{stem}.bvec"}


def _header_with(**fields):
    hdr = nib.Nifti1Image(_data(), AFF).header.copy()
    for k, v in fields.items():
        hdr[k] = v
    hdr["sform_code"], hdr["qform_code"] = 1, 0
    return hdr


def _gz(path: Path, raw: bytes):
    path.write_bytes(gzip.compress(raw, mtime=0))


def _build(case, root, label):
    """Write the bad scan ``case`` as sub-<label>; returns (offending file, error regex)."""
    b, g = _scheme()
    if case == "image_broken_symlink":
        f = _write(root, label)
        f["dwi"].unlink()
        f["dwi"].symlink_to(Path(root) / "annex" / "objects" / "missing.nii.gz")
        return f["dwi"], "broken symbolic link"
    if case == "image_empty":
        f = _write(root, label)
        f["dwi"].write_bytes(b"")
        return f["dwi"], "is empty"
    if case == "image_truncated":
        f = _write(root, label)
        raw = f["dwi"].read_bytes()
        f["dwi"].write_bytes(raw[: len(raw) // 2])
        return f["dwi"], "corrupt or truncated"
    if case == "image_corrupt_gzip":
        f = _write(root, label)
        raw = bytearray(f["dwi"].read_bytes())
        for i in range(len(raw) // 3, len(raw) - 8, 97):
            raw[i] ^= 0xFF
        f["dwi"].write_bytes(bytes(raw))
        return f["dwi"], "corrupt"
    if case == "image_plain_text_named_gz":
        f = _write(root, label)
        f["dwi"].write_text("Patient scan exported as text, not an image\n" * 20)
        return f["dwi"], "not gzip-compressed"
    if case == "image_gzip_of_text":
        f = _write(root, label)
        _gz(f["dwi"], b"this is a gzip'ed text file, not a NIfTI header\n" * 30)
        return f["dwi"], "not a NIfTI image"
    if case == "image_complex_dtype":
        f = _write(root, label, data=_data().astype(np.complex64))
        return f["dwi"], "unsupported voxel data type"
    if case == "image_unreadable_permissions":
        f = _write(root, label)
        f["dwi"].chmod(0)
        return f["dwi"], "permission denied"
    if case == "bval_missing":
        f = _write(root, label)
        f["bval"].unlink()
        return f["bval"], "not found"
    if case == "bvec_missing":
        f = _write(root, label)
        f["bvec"].unlink()
        return f["bvec"], "not found"
    if case == "bval_empty":
        f = _write(root, label)
        f["bval"].write_text("")
        return f["bval"], "is empty"
    if case == "bval_non_numeric":
        f = _write(root, label)
        f["bval"].write_text("0 1000 1000 b=1000 1000 1000 1000 1000\n")
        return f["bval"], "not numeric"
    if case == "bvec_non_numeric":
        f = _write(root, label)
        lines = f["bvec"].read_text().splitlines()
        lines[1] = "abc " + lines[1].split(" ", 1)[1]
        f["bvec"].write_text("\n".join(lines) + "\n")
        return f["bvec"], "not numeric"
    if case == "bval_count_vs_image":
        f = _write(root, label, bvals=np.r_[b, 1000.0], bvecs=np.vstack([g, g[1]]))
        return f["bval"], "9 b-values but the image has 8 volumes"
    if case == "bval_bvec_count_mismatch":
        f = _write(root, label)
        f["bvec"].write_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in g[:-1].T) + "\n")
        return f["bvec"], "7 b-vectors but"
    if case == "bvec_two_rows":
        f = _write(root, label)
        f["bvec"].write_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in g.T[:2]) + "\n")
        return f["bvec"], "expected 3 rows"
    if case == "bval_two_rows":
        f = _write(root, label)
        f["bval"].write_text("0 1000 1000 1000\n1000 1000 1000 1000\n")
        return f["bval"], "expected one row"
    if case == "bvec_zero_for_dwi":
        g2 = g.copy()
        g2[3] = 0
        f = _write(root, label, bvecs=g2)
        return f["bvec"], r"unit length; volumes \[3\] have \|g\| = \[0.0\]"
    if case == "bvec_non_unit":
        g2 = g.copy()
        g2[2] *= 1.5
        f = _write(root, label, bvecs=g2)
        return f["bvec"], "unit length"
    if case == "bval_no_b0":
        f = _write(root, label, bvals=np.full(8, 1000.0), bvecs=np.vstack([g[1], g[1:]]))
        return f["bval"], "no b=0 volume"
    if case == "bval_all_b0_non_dwi":  # e.g. an fMRI/ASL series put in dwi/ with a zero table
        f = _write(root, label, bvals=np.zeros(8), bvecs=np.zeros((8, 3)))
        return f["bval"], "no diffusion-weighted volume"
    if case == "bval_negative":
        f = _write(root, label, bvals=np.r_[0.0, -1000.0, np.full(6, 1000.0)])
        return f["bval"], "negative b-values"
    if case == "bval_nan":
        f = _write(root, label)
        f["bval"].write_text("0 1000 nan 1000 1000 1000 1000 1000\n")
        return f["bval"], "NaN or Inf in the gradient table"
    if case == "image_3d":
        f = _write(root, label, data=_data()[..., 0])
        return f["dwi"], "got a 3D image"
    if case == "image_5d":
        f = _write(root, label, data=_data()[..., None, :])
        return f["dwi"], "got a 5D image"
    if case == "image_single_volume":
        f = _write(root, label, data=_data(1), bvals=np.zeros(1), bvecs=np.zeros((1, 3)))
        return f["dwi"], r"1 volume\(s\); a tensor fit needs at least 7"
    if case == "image_too_few_volumes":
        f = _write(root, label, data=_data(5), bvals=b[:5], bvecs=g[:5])
        return f["dwi"], r"5 volume\(s\)"
    if case == "image_nan_voxels":
        d = _data()
        d[3, 4, 5, 2] = np.nan
        f = _write(root, label, data=d)
        return f["dwi"], "1 NaN/Inf voxel values"
    if case == "image_inf_voxels":
        d = _data()
        d[3, 4, 5, 2] = -np.inf
        d[3, 4, 6, 2] = np.inf
        f = _write(root, label, data=d)
        return f["dwi"], "2 NaN/Inf voxel values"
    if case == "image_zero_volume":
        d = _data()
        d[..., 5] = 0
        f = _write(root, label, data=d)
        return f["dwi"], r"volume\(s\) \[5\] are entirely zero"
    if case == "image_all_zero":
        f = _write(root, label, data=np.zeros(SHAPE + (8,), np.float32))
        return f["dwi"], "image is entirely zero"
    if case == "affine_sheared":
        a = AFF.copy()
        a[0, 1] = 0.5
        f = _write(root, label, affine=a)
        return f["dwi"], "sheared"
    if case == "affine_singular":
        f = _write(root, label, header=_header_with(srow_z=[0.0, 0.0, 0.0, 0.0]))
        return f["dwi"], "not invertible"
    if case == "affine_non_finite":
        f = _write(root, label, header=_header_with(srow_z=[0.0, 0.0, np.nan, 0.0]))
        return f["dwi"], "not a finite 4x4"
    if case == "fov_too_small":  # valid scan, 40 x 48 x 40 mm
        f = _write(root, label)
        return f["dwi"], "field of view 40 x 48 x 40 mm cannot contain the ALPS ROIs"
    if case == "duplicate_nii_and_niigz":
        _write(root, label)
        f2 = _write(root, label, ext=".nii")
        return f2["dwi"], f"more than one DWI for sub-{label}"
    if case == "file_in_wrong_subject_folder":
        f = _write(root, label, stem="sub-someoneelse_dwi")
        return f["dwi"], "do not match its folder"
    raise KeyError(case)


CASES = [
    "image_broken_symlink", "image_empty", "image_truncated", "image_corrupt_gzip",
    "image_plain_text_named_gz", "image_gzip_of_text", "image_complex_dtype",
    "image_unreadable_permissions",
    "bval_missing", "bvec_missing", "bval_empty", "bval_non_numeric", "bvec_non_numeric",
    "bval_count_vs_image", "bval_bvec_count_mismatch", "bvec_two_rows", "bval_two_rows",
    "bvec_zero_for_dwi", "bvec_non_unit", "bval_no_b0", "bval_all_b0_non_dwi", "bval_negative", "bval_nan",
    "image_3d", "image_5d", "image_single_volume", "image_too_few_volumes", "image_nan_voxels",
    "image_inf_voxels", "image_zero_volume", "image_all_zero",
    "affine_sheared", "affine_singular", "affine_non_finite", "fov_too_small",
    "duplicate_nii_and_niigz", "file_in_wrong_subject_folder",
]
#: discovery-level cases (caught by alps.io.discover; strict mode raises)
DISCOVERY = {"duplicate_nii_and_niigz", "file_in_wrong_subject_folder"}
#: root can read a chmod-000 file: the permission case cannot be produced
SKIP = {"image_unreadable_permissions"} if IS_ROOT else set()


def _label(case):
    return re.sub(r"[^A-Za-z0-9]", "", case)


def _direct(root, item):
    """What the pipeline runs before any fitting: file checks, load + validation, FOV check."""
    aio.check_input_files(item)
    P.check_fov(aio.load_dwi(item.dwi, item.bval, item.bvec))


#: identifying DICOM-derived fields a converter may put in a BIDS sidecar (test_privacy greps
#: every output for the values).
IDENTIFYING = {
    "PatientName": "Doe^Janet^Quincy", "PatientID": "PID-88421977", "PatientBirthDate": "19560412",
    "PatientSex": "F", "PatientWeight": 71.3, "InstitutionName": "St Elsewhere Neuro Hospital",
    "InstitutionAddress": "12 Nowhere Lane, Springfield 40917",
    "InstitutionalDepartmentName": "Radiology Dept Zeta", "ReferringPhysicianName": "Dr^Hibbert^Julius",
    "AccessionNumber": "ACC-55120938", "DeviceSerialNumber": "SN-7731904", "StationName": "MRSTATION-QX7",
    "AcquisitionDateTime": "2024-03-17T09:41:27.512500", "StudyInstanceUID": "1.2.826.0.1.3680043.99.4242",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.99.4243", "PerformingPhysicianName": "Dr^Nick^Riviera",
    "OperatorsName": "Tech^Lenny^Leonard",
}
#: acquisition parameters a sidecar legitimately holds beside them
ACQUISITION = {"Manufacturer": "Philips", "MagneticFieldStrength": 3, "EchoTime": 0.089,
               "RepetitionTime": 4.8, "PhaseEncodingDirection": "j-", "TotalReadoutTime": 0.05}
#: text put into the good scan's NIfTI header (descrip, aux_file, an extension)
HEADER_TEXT = "Doe^Janet^Quincy PID-88421977 St Elsewhere Neuro Hospital"

_COHORT = {}


def bad_cohort(tmp_path_factory):
    """Build and run (once per session) the cohort of every bad scan + a good and a noise scan."""
    if _COHORT:
        return _COHORT
    root = tmp_path_factory.mktemp("bad") / "bids"
    expected = {}
    for case in CASES:
        if case not in SKIP:
            expected[case] = _build(case, root, _label(case))
    sidecar = {**ACQUISITION, **IDENTIFYING}
    write_good(root, "good", sidecar=sidecar, header_text=HEADER_TEXT)
    (root / "sub-bvalnob0" / "dwi" / "sub-bvalnob0_dwi.json").write_text(json.dumps(sidecar))
    # a scan that passes validation but whose registration must be rejected: noise
    data, aff, bvals, bvecs = good_subject()
    d = root / "sub-noise" / "dwi"
    d.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.random.default_rng(3).uniform(10, 100, data.shape).astype(np.float32), aff),
             d / "sub-noise_dwi.nii.gz")
    write_bvals_bvecs(bvals, bvecs, d / "sub-noise_dwi.bval", d / "sub-noise_dwi.bvec")
    (d / "sub-noise_dwi.json").write_text(json.dumps(sidecar))
    out = root.parent / "derivatives"
    df = P.run_cohort(root, out, n_jobs=1, progress=False, qc_png=True)
    table = pd.read_csv(out / "alps.tsv", sep="\t", dtype={"error": str}, keep_default_na=False)
    _COHORT.update({"root": root, "out": out, "df": df, "table": table.set_index("participant_id"),
                    "expected": expected})
    return _COHORT


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return bad_cohort(tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_bad_input_direct(case, tmp_path):
    """The validating function raises an error naming the file and the problem."""
    if case in SKIP:
        pytest.skip("running as root: a chmod-000 file is still readable")
    root = tmp_path / "bids"
    bad_file, pattern = _build(case, root, _label(case))
    with pytest.raises((aio.InputError, GradientError)) as info:
        if case in DISCOVERY:
            aio.discover(root, strict=True)
        else:
            (item,) = aio.discover(root)
            _direct(root, item)
    msg = str(info.value)
    assert str(bad_file) in msg, msg
    assert re.search(pattern, msg), (pattern, msg)
    if case in DISCOVERY:  # non-strict discovery records the problem on the scan instead
        (item,) = aio.discover(root, strict=False)
        assert item.error and re.search(pattern, item.error)


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_bad_input_recorded_by_cohort_runner(case, cohort):
    if case in SKIP:
        pytest.skip("running as root: a chmod-000 file is still readable")
    bad_file, pattern = cohort["expected"][case]
    row = cohort["table"].loc[f"sub-{_label(case)}"]
    assert row["status"] == "failed"
    assert str(bad_file) in row["error"], row["error"]
    assert re.search(pattern, row["error"]), (pattern, row["error"])
    assert row["alps"] == "n/a"


def test_other_subjects_finish(cohort):
    t = cohort["table"]
    assert t.loc["sub-good", "status"] == "ok" and t.loc["sub-good", "error"] == ""
    assert 1.3 < float(t.loc["sub-good", "alps"]) < 1.7
    assert (t.drop(index="sub-good")["status"] == "failed").all()
    assert len(t) == len(cohort["expected"]) + 2
    # alps.tsv holds no timing / run-dependent columns (they are in timings.tsv)
    assert not [c for c in t.columns if c.startswith("time_") or c.endswith("_reused")]
    timings = pd.read_csv(cohort["out"] / "timings.tsv", sep="\t")
    assert "time_registration_s" in timings.columns and len(timings) == len(t)


def test_registration_failure_recorded(cohort):
    """A registration that converges to nonsense (noise image) is rejected by the QC thresholds."""
    row = cohort["table"].loc["sub-noise"]
    assert row["status"] == "failed"
    assert "RegistrationError" in row["error"] and "registration QC failed" in row["error"]
    assert "sub-noise_dwi.nii.gz" in row["error"]
    rec = P.read_json(cohort["out"] / "sub-noise" / "dwi" / "sub-noise_desc-preprocess.json")
    assert rec["status"] == "failed" and "registration QC failed" in rec["error"]
    assert not (cohort["out"] / "sub-noise" / "dwi" / "sub-noise_desc-alps.json").exists()


def test_wrong_transform_fails_check_metrics(cohort):
    """Feed check_metrics the metrics of a deliberately wrong transform: it must raise."""
    from alps.imaging import registration as R

    d = cohort["out"] / "sub-good" / "dwi"
    rec = P.read_json(d / "sub-good_desc-preprocess.json")
    fa = nib.load(d / "sub-good_desc-FA_dwimap.nii.gz")
    mask = np.asarray(nib.load(d / "sub-good_desc-brain_mask.nii.gz").dataobj) > 0
    good = P.load_registration(rec, d)
    R.check_metrics(rec["registration"]["metrics"])  # the real one passes
    wrong_ras = good.template_to_subject @ np.array(
        [[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 40.0], [0, 0, 0, 1]], float)  # 90° about z + 40 mm
    xfm = R.write_ants_affine(R.ras_to_lps(wrong_ras), d.parent / "wrong.mat")
    wrong = R.Registration(kind="affine", template_to_subject=wrong_ras, forward_transforms=[str(xfm)],
                           inverse_transforms=[str(xfm)], inverse_invert=[True])
    metrics = R.registration_metrics(wrong, fa, mask)
    with pytest.raises(R.RegistrationError, match="registration QC failed"):
        R.check_metrics(metrics)
    xfm.unlink()


def test_slab_not_reaching_roi_level(cohort):
    """A slab that stops below MNI z = 27 mm (after registration) cannot contain the ROIs."""
    from alps.imaging.roi import DEFAULT_CENTERS_MM

    d = cohort["out"] / "sub-good" / "dwi"
    rec = P.read_json(d / "sub-good_desc-preprocess.json")
    reg = P.load_registration(rec, d)
    fa = nib.load(d / "sub-good_desc-FA_dwimap.nii.gz")
    P.check_roi_coverage(fa.shape, fa.affine, reg, DEFAULT_CENTERS_MM, 2.5, path="full.nii.gz")
    # keep only native slices whose centre maps below template z = 15 mm
    aff = fa.affine
    ks = np.arange(fa.shape[2])
    centre_ij = np.array([fa.shape[0] / 2, fa.shape[1] / 2])
    zt = [reg.points_to_template((aff[:3, :3] @ [*centre_ij, k] + aff[:3, 3])[None])[0, 2] for k in ks]
    keep = ks[np.asarray(zt) < 15]
    slab_aff = aff.copy()
    slab_aff[:3, 3] = aff[:3, :3] @ [0, 0, keep.min()] + aff[:3, 3]
    shape = (fa.shape[0], fa.shape[1], len(keep))
    with pytest.raises(ValueError, match=r"slab_dwi.nii.gz: field of view does not contain the ALPS ROI"):
        P.check_roi_coverage(shape, slab_aff, reg, DEFAULT_CENTERS_MM, 2.5, path="slab_dwi.nii.gz")


# ----------------------------------------------------------------------------- tables, atlas, CLI
PARTICIPANTS = """participant_id\tgroup\tage\tsex\tduration_years\tattacks_per_month\tvas\thit6\tpsqi\tdhi
sub-01\tMO\t34\tF\t5\t4\t6\t60\t7\tn/a
sub-02\tVM\t41\tM\t8\t3\t5\t58\t9\t40
sub-03\tHC\t38\tF\tn/a\tn/a\tn/a\tn/a\t4\tn/a
"""


@pytest.mark.parametrize("case, pattern", [
    ("duplicate_participant_id", r"duplicate participant_id\(s\) \['sub-02'\]"),
    ("unknown_group_label", r"unknown group label\(s\) \['migraine'\] for \['sub-02'\]"),
    ("non_numeric_clinical_value", r"column 'age': non-numeric value\(s\) \['forty-one'\] for \['sub-02'\]"),
    ("missing_column", r"missing required column\(s\) \['dhi'\]"),
    ("bad_sex_code", r"column 'sex' must be 'F' or 'M'"),
], ids=["duplicate_participant_id", "unknown_group_label", "non_numeric_clinical_value", "missing_column",
        "bad_sex_code"])
def test_participants_table_errors(tmp_path, case, pattern):
    from alps.io import tables as io_tables

    text = PARTICIPANTS
    if case == "duplicate_participant_id":
        text += "sub-02\tVM\t45\tF\t1\t1\t1\t50\t3\t20\n"
    elif case == "unknown_group_label":
        text = text.replace("sub-02\tVM", "sub-02\tmigraine")
    elif case == "non_numeric_clinical_value":
        text = text.replace("sub-02\tVM\t41", "sub-02\tVM\tforty-one")
    elif case == "missing_column":
        text = "\n".join(line.rsplit("\t", 1)[0] for line in text.strip().splitlines()) + "\n"
    elif case == "bad_sex_code":
        text = text.replace("\tF\t5", "\tfemale\t5")
    path = tmp_path / "participants.tsv"
    path.write_text(text)
    from alps.stats.design import from_profile

    study = from_profile("default")  # the design says which labels and columns the table must have
    with pytest.raises(ValueError) as info:
        io_tables.load_participants(path, groups=study.labels, numeric=study.numeric_columns)
    assert str(path) in str(info.value), str(info.value)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_participants_missing_subject_reported(tmp_path):
    """A scanned subject absent from participants.tsv is excluded with a reason, never silently."""
    from alps.io import tables as io_tables

    (tmp_path / "participants.tsv").write_text(PARTICIPANTS)
    (tmp_path / "alps.tsv").write_text("participant_id\tstatus\talps_L\talps_R\talps\n"
                                       "sub-01\tok\t1.5\t1.5\t1.5\nsub-02\tok\t1.4\t1.4\t1.4\n"
                                       "sub-03\tfailed\tn/a\tn/a\tn/a\nsub-99\tok\t1.6\t1.6\t1.6\n")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df, ex = io_tables.load_cohort(tmp_path / "alps.tsv", tmp_path / "participants.tsv")
    assert list(df["participant_id"]) == ["sub-01", "sub-02"]
    reasons = ex.set_index("participant_id")["reason"]
    assert reasons["sub-99"] == "not in participants table"
    assert "failed" in reasons["sub-03"]
    assert any("sub-99 (not in participants table)" in str(x.message) for x in w)
    with pytest.raises(ValueError, match=r"alps.tsv\): duplicate participant_id"):
        (tmp_path / "dup.tsv").write_text("participant_id\talps_L\talps_R\talps\nsub-01\t1\t1\t1\nsub-01\t1\t1\t1\n")
        (tmp_path / "dup.tsv").rename(tmp_path / "alps.tsv")
        io_tables.load_alps(tmp_path / "alps.tsv")


def _atlas(mirrored: bool, same_side: bool = False):
    """A synthetic JHU-like label image on a 2 mm MNI grid: SCR 25/26, SLF 41/42 at z = 27 mm."""
    aff = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    lab = np.zeros((91, 109, 91), np.int16)
    inv = np.linalg.inv(aff)

    def put(label, x):
        i, j, k = np.rint(inv[:3, :3] @ [x, -16, 27] + inv[:3, 3]).astype(int)
        lab[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2] = label

    # FSL naming: 25 = SCR right (x > 0) ... ; the mricron copy is mirrored (25 at x < 0)
    s = -1 if mirrored else 1
    put(25, s * 26)
    put(26, -s * 26 if not same_side else s * 26 + 6)
    put(41, s * 38)
    put(42, -s * 38)
    return nib.Nifti1Image(lab, aff)


def test_atlas_hemisphere_from_world_x_not_names():
    """Wrong hemisphere naming (mirrored header) does not swap L/R: hemispheres come from world x."""
    from alps.imaging.atlas import alps_labels_from_atlas

    a = np.asarray(alps_labels_from_atlas(_atlas(False)).dataobj)
    b = np.asarray(alps_labels_from_atlas(_atlas(True)).dataobj)
    assert np.array_equal(a, b)
    aff = _atlas(False).affine
    for v, sign in ((1, -1), (2, 1), (3, -1), (4, 1)):  # proj_L, proj_R, assoc_L, assoc_R
        x = (aff[:3, :3] @ np.argwhere(a == v).mean(0) + aff[:3, 3])[0]
        assert np.sign(x) == sign


def test_atlas_one_hemisphere_missing():
    """An atlas whose two SCR labels lie in the same hemisphere is rejected, naming the ROI."""
    from alps.imaging.atlas import alps_labels_from_atlas

    with pytest.raises(ValueError, match=r"no voxel for proj_L"):
        alps_labels_from_atlas(_atlas(False, same_side=True))


def test_jhu_atlas_file_missing(tmp_path):
    from alps.imaging.atlas import AtlasNotFound, find_jhu

    with pytest.raises(AtlasNotFound, match=r"nope.nii.gz: JHU atlas file not found"):
        find_jhu(tmp_path / "nope.nii.gz")


def test_single_file_non_dwi_and_cli_exit_codes(tmp_path, capsys):
    """Invalid input -> exit 2; every scan failing -> exit 1 with each failure named."""
    from alps.cli import main

    t1 = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(_data()[..., 0], AFF), t1)
    with pytest.raises(aio.InputError, match=r"sub-01_T1w.nii.gz: BIDS suffix '_T1w' is not a diffusion image"):
        aio.discover(t1)
    assert main(["run", str(t1), str(tmp_path / "o1")]) == 2
    assert "invalid input" in capsys.readouterr().out
    root = tmp_path / "bids"
    for case in ("bval_no_b0", "image_nan_voxels"):
        _build(case, root, _label(case))
    rc = main(["run", str(root), str(tmp_path / "o2"), "--n-jobs", "1"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "0/2 scans processed" in out
    assert re.search(r"FAILED sub-bvalnob0: .*sub-bvalnob0_dwi.bval: no b=0 volume", out)
    assert re.search(r"FAILED sub-imagenanvoxels: .*sub-imagenanvoxels_dwi.nii.gz: 1 NaN/Inf", out)


def test_two_series_of_one_participant_say_what_to_do(tmp_path):
    """A dir-AP/dir-PA pair (or run-1/run-2) gives one participant two rows of alps.tsv: the
    statistics refuse it, and the message says why and how to keep one (issue 25)."""
    from alps.io import tables as io_tables

    (tmp_path / "alps.tsv").write_text("participant_id\tdir\tstatus\talps_L\talps_R\talps\n"
                                       "sub-01\tAP\tok\t1.4\t1.4\t1.4\nsub-01\tPA\tok\t1.5\t1.5\t1.5\n"
                                       "sub-02\tAP\tok\t1.3\t1.3\t1.3\n")
    with pytest.raises(ValueError, match=r"duplicate participant_id\(s\) \['sub-01'\]; they are several series "
                                         r"\(dir-\) of one participant: .*--bids-filter-file"):
        io_tables.load_alps(tmp_path / "alps.tsv")
