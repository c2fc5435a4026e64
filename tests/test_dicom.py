"""``alps convert``: DICOM DWI series that the test writes (pydicom; classic per-slice MR images
with the standard DiffusionBValue (0018,9087) / DiffusionGradientOrientation (0018,9089) tags)
through the dcm2niix package into BIDS. Checked: the b-values survive exactly; the b-vectors,
taken through our FSL convention and the NIfTI affine into world axes, are the DICOM directions
(patient LPS → RAS); nothing identifying reaches any output file."""
from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("dcm2niix")

from alps import paths  # noqa: E402
from alps.imaging.tensor import polar_rotation  # noqa: E402
from alps.io import discover, load_dwi  # noqa: E402
from alps.io.dicom import Series, bids_stems, clean_sidecar, convert, phase_encoding_label, skip_reason  # noqa: E402
from alps.io.errors import InputError  # noqa: E402
from alps.io.gradients import fsl_to_voxel, scheme  # noqa: E402
from alps.io.validate import validate_dataset  # noqa: E402

SECRETS = ("Doe^Jane", "PID-98765", "19700101", "Secret Hospital", "20240102", "Dr^Who",
           # free text a clinical site types in (names, reasons, requests)
           "Jane Doe follow-up", "seen by Dr Who", "rule out MS for Jane", "Doe J. headache")

#: the free-text DICOM fields of a clinical export, with identifying content (SECRETS)
FREE_TEXT = {"StudyDescription": "Jane Doe follow-up", "ImageComments": "seen by Dr Who",
             "RequestedProcedureDescription": "rule out MS for Jane",
             "PerformedProcedureStepDescription": "Doe J. headache"}


def write_series(out, bvals, bvecs, *, series_number=7, shape=(10, 12, 5), seed=0, protocol="ep2d_diff_DTI",
                 image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), diffusion=True):
    """One series as per-slice classic MR Image Storage files (Siemens-like, axial): a DWI, or
    (``diffusion=False``) an image without diffusion tags (a T1w...); ``bvals`` gives the number
    of volumes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study, series, frame = "1.2.3.4", generate_uid(), generate_uid()
    nx, ny, nz = shape
    inst = 0
    for v, (b, g) in enumerate(zip(bvals, bvecs)):
        vol = (1000 * np.exp(-b * 1e-3) + rng.integers(0, 20, (nz, ny, nx))).astype(np.uint16)
        for z in range(nz):
            inst += 1
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = sop = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "MR", "SIEMENS", "Prisma"
            ds.SoftwareVersions, ds.MagneticFieldStrength = "syngo MR XA30", 3
            ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Doe^Jane", "PID-98765", "19700101", "F"
            ds.InstitutionName, ds.ReferringPhysicianName = "Secret Hospital", "Dr^Who"
            ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240102"
            ds.StudyTime = ds.SeriesTime = "101010"
            ds.AcquisitionTime = f"1010{10 + v:02d}.000000"
            ds.PatientPosition = "HFS"
            ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = series_number, inst, v + 1
            ds.SeriesDescription = ds.ProtocolName = protocol
            for key, text in FREE_TEXT.items():
                setattr(ds, key, text)
            ds.ImageType = list(image_type)
            ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "EP", "SK", "2D"
            ds.EchoTime, ds.RepetitionTime, ds.FlipAngle = 89.0, 3200.0, 90
            ds.InPlanePhaseEncodingDirection = "COL"
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-nx, -ny, 2.0 * z]
            ds.PixelSpacing, ds.SliceThickness, ds.SpacingBetweenSlices = [2.0, 2.0], 2.0, 2.0
            ds.Rows, ds.Columns, ds.SamplesPerPixel = ny, nx, 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            if diffusion:
                ds.add_new((0x0018, 0x9087), "FD", float(b))  # DiffusionBValue
                if b > 0:
                    ds.add_new((0x0018, 0x9089), "FD", [float(x) for x in g])  # DiffusionGradientOrientation (LPS)
                ds.add_new((0x0018, 0x9075), "CS", "DIRECTIONAL" if b > 0 else "NONE")
            ds.PixelData = vol[z].tobytes()
            pydicom.dcmwrite(str(out / f"S{series_number}_IM{inst:05d}.dcm"), ds, enforce_file_format=True)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom")
    b1, g1 = scheme(n_b0=2, n_dirs=8, bval=1000, seed=2)
    b2, g2 = scheme(n_b0=1, n_dirs=9, bval=2000, seed=3)
    write_series(root / "dicom" / "a", b1, g1, series_number=7)
    write_series(root / "dicom" / "b", b2, g2, series_number=8, seed=1)
    # what else a clinical export holds: a structural series and the scanner's ADC map
    write_series(root / "dicom" / "t1", [0.0], g1[:1], series_number=3, protocol="t1_mprage_sag",
                 image_type=("ORIGINAL", "PRIMARY", "M", "NORM"), diffusion=False, seed=4)
    write_series(root / "dicom" / "adc", [0.0], g1[:1], series_number=9, protocol="ep2d_diff_DTI_ADC",
                 image_type=("DERIVED", "PRIMARY", "DIFFUSION", "ADC"), diffusion=False, seed=5)
    (root / "dicom" / "README.txt").write_text("not a DICOM file\n")
    said = []
    files = convert(root / "dicom", root / "bids", subject="p01", session="base", log=said.append)
    return {"root": root, "files": files, "schemes": [(b1, g1), (b2, g2)], "log": said}


def test_bids_names_and_gradients_survive(converted):
    files = converted["files"]
    assert [f.name for f in files] == ["sub-p01_ses-base_run-1_dwi.nii.gz", "sub-p01_ses-base_run-2_dwi.nii.gz"]
    for f, (b, g) in zip(files, converted["schemes"]):
        dwi = load_dwi(f)
        np.testing.assert_array_equal(dwi.bvals, b)
        # FSL b-vectors (image axes) -> voxel axes -> world (RAS) must be the DICOM LPS direction
        world = fsl_to_voxel(dwi.bvecs, dwi.affine) @ polar_rotation(dwi.affine[:3, :3]).T
        expect = g * [-1, -1, 1]
        dw = b > 0
        dots = np.abs(np.sum(world[dw] * expect[dw], axis=1))
        np.testing.assert_allclose(dots, 1.0, atol=1e-4)
        assert np.allclose(dwi.zooms, (2.0, 2.0, 2.0))
        assert dwi.data[..., b == 0].mean() > dwi.data[..., b > 0].mean()
    items = discover(converted["root"] / "bids")
    assert [it.key for it in items] == ["sub-p01_ses-base_run-1", "sub-p01_ses-base_run-2"]
    df = validate_dataset(converted["root"] / "bids")
    assert not (df["severity"] == "error").any(), df


def test_sidecar_metadata_kept_identifying_fields_dropped(converted):
    meta = json.loads(converted["files"][0].with_name("sub-p01_ses-base_run-1_dwi.json").read_text())
    assert meta["Manufacturer"] == "Siemens" and meta["EchoTime"] == pytest.approx(0.089)
    assert meta["MagneticFieldStrength"] == 3 and meta["ManufacturersModelName"] == "Prisma"
    for key in meta:
        assert not key.startswith("Patient") and "Institution" not in key and "Date" not in key, key
    for f in (converted["root"] / "bids").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            if f.name.endswith(".gz"):
                data = gzip.decompress(data)
            for s in SECRETS:
                assert s.encode() not in data, (f, s)
    hdr = nib.load(str(converted["files"][0])).header
    assert hdr["descrip"].tobytes().strip(b"\0") == b""


def test_clean_sidecar():
    meta = {"PatientName": "x", "PatientBirthDate": "y", "StudyInstanceUID": "1", "AcquisitionDateTime": "t",
            "InstitutionName": "h", "DeviceSerialNumber": "9", "AcquisitionTime": "10:10", "EchoTime": 0.1,
            "Manufacturer": "GE", "RepetitionTime": 2.0}
    assert clean_sidecar(meta) == {"EchoTime": 0.1, "Manufacturer": "GE", "RepetitionTime": 2.0}


def test_errors_and_cli(converted, tmp_path, capsys):
    from alps.cli import main

    with pytest.raises(InputError, match="exists already"):
        convert(converted["root"] / "dicom", converted["root"] / "bids", subject="p01", session="base")
    with pytest.raises(InputError, match="letters and digits"):
        convert(converted["root"] / "dicom", tmp_path / "b", subject="p_01")
    (tmp_path / "empty").mkdir()
    assert main(["convert", str(tmp_path / "empty"), str(tmp_path / "b")]) == 2
    assert main(["convert", str(converted["root"] / "dicom" / "a"), str(tmp_path / "b2")]) == 0
    assert (tmp_path / "b2" / "sub-01" / "dwi" / "sub-01_dwi.bval").is_file()
    assert "alps validate" in capsys.readouterr().out


# ----------------------------------------------------------------------------- skipped series, free text
def test_skipped_series_are_said_and_listed(converted):
    """The structural series and the scanner's ADC map are skipped with their reason, on the
    log and in the conversion's record; the DWI series say where they went."""
    import pandas as pd

    log = "\n".join(converted["log"])
    assert "series 3 t1_mprage_sag: skipped: not a diffusion series" in log
    assert "series 9 ep2d_diff_DTI_ADC: skipped: scanner-derived ADC map" in log
    assert "series 7 ep2d_diff_DTI: written as" in log and "sub-p01_ses-base_run-1_dwi.nii.gz" in log
    rec = pd.read_csv(converted["root"] / "bids" / "sourcedata" / "alps-convert" / "sub-p01_ses-base_series.tsv",
                      sep="\t")
    assert list(rec["series"]) == [3, 7, 8, 9]
    assert list(rec["written_as"].fillna("")) == ["", "sub-p01_ses-base_run-1_dwi.nii.gz",
                                                  "sub-p01_ses-base_run-2_dwi.nii.gz", ""]
    assert rec["skipped_because"].notna().tolist() == [True, False, False, True]
    assert str(converted["root"] / "bids" / "sourcedata") in log


def test_free_text_fields_dropped(converted):
    meta = json.loads(converted["files"][0].with_name("sub-p01_ses-base_run-1_dwi.json").read_text())
    for key in ("StudyDescription", "ImageComments", "RequestedProcedureDescription",
                "PerformedProcedureStepDescription", "ProcedureStepDescription"):
        assert key not in meta, key
    assert meta["ProtocolName"] == meta["SeriesDescription"] == "ep2d_diff_DTI"  # kept: names the protocol
    assert clean_sidecar({k: "x" for k in ("StudyDescription", "ImageComments", "PatientComments",
                                           "AdditionalPatientHistory", "ReasonForStudy",
                                           "RequestingPhysician", "ScheduledProcedureStepDescription",
                                           "ProtocolName", "SeriesDescription", "BodyPartExamined")}) == {
        "ProtocolName": "x", "SeriesDescription": "x", "BodyPartExamined": "x"}


def test_no_diffusion_series_says_what_there_was(converted, tmp_path):
    with pytest.raises(InputError, match=r"no diffusion series found \(series 3 t1_mprage_sag: not a diffusion"):
        convert(converted["root"] / "dicom" / "t1", tmp_path / "b", subject="t1")


# ----------------------------------------------------------------------------- dir- from the phase encoding
LAS = np.diag([-2.0, 2.0, 2.0, 1.0])


def _rot(axis, deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@pytest.mark.parametrize("pe, affine, label", [
    ("j", LAS, "PA"), ("j-", LAS, "AP"),                       # axial, as dcm2niix writes it
    ("j", np.diag([2.0, 2.0, 2.0, 1.0]), "PA"),               # RAS
    ("j", np.diag([2.0, -2.0, 2.0, 1.0]), "AP"),              # rows stored anterior first (LPS-like)
    ("i", LAS, "RL"), ("i-", LAS, "LR"),
    ("k", LAS, "IS"),
    ("j", _rot(0, 20) @ LAS, "PA"), ("j-", _rot(2, 30) @ LAS, "AP"),  # tilted slabs
    # sagittal: voxel i -> -z... j -> +y (P->A); coronal: j -> +z (I->S)
    ("j", np.array([[0, 0, 2.0, 0], [0, 2.0, 0, 0], [-2.0, 0, 0, 0], [0, 0, 0, 1]]), "PA"),
    ("j", np.array([[-2.0, 0, 0, 0], [0, 0, 2.0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]]), "IS"),
    ("j-", np.array([[-2.0, 0, 0, 0], [0, 0, 2.0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]]), "SI"),
    (None, LAS, None), ("COL", LAS, None), ("", LAS, None),   # polarity unknown (Philips: axis only)
])
def test_phase_encoding_label(pe, affine, label):
    assert phase_encoding_label(pe, affine) == label


REAL_XA30 = paths.REPO_ROOT.parent / "shared" / "data" / "real_dwi" / "siemens_prisma_xa30_pepolar"


def test_phase_encoding_label_of_the_real_xa30_pair():
    """The Siemens XA30 pair: series 10, named PA by the site, has ``j``; series 17, named AP,
    ``j-``; axial LAS images whose ``j`` axis points anterior."""
    if not REAL_XA30.is_dir():
        pytest.skip(f"{REAL_XA30}: real data not present")
    for stem, label in (("10_DWI_dir80_PA", "PA"), ("17_DWI_dir80_AP", "AP")):
        meta = json.loads((REAL_XA30 / f"{stem}.json").read_text())
        assert phase_encoding_label(meta["PhaseEncodingDirection"], nib.load(REAL_XA30 / f"{stem}.nii.gz").affine) \
            == label
        assert meta["BidsGuess"][1].split("_")[2] == f"dir-{label}"  # dcm2niix's own guess agrees


def test_bids_stems():
    def s(direction, n):
        return Series(f"{n}_x", n, "x", None, direction, None)

    assert bids_stems("sub-a", [s("PA", 10), s("AP", 17)]) == ["sub-a_dir-PA_dwi", "sub-a_dir-AP_dwi"]
    assert bids_stems("sub-a", [s("PA", 4), s("AP", 5), s("PA", 6)]) == [
        "sub-a_dir-PA_run-1_dwi", "sub-a_dir-AP_dwi", "sub-a_dir-PA_run-2_dwi"]
    assert bids_stems("sub-a_ses-1", [s(None, 7), s(None, 8)]) == ["sub-a_ses-1_run-1_dwi", "sub-a_ses-1_run-2_dwi"]
    assert bids_stems("sub-a", [s(None, 7)]) == ["sub-a_dwi"]


@pytest.mark.parametrize("meta, stem, grads, expect", [
    ({"ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]}, "10_DWI", "dwi", None),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "M", "NONE"], "BidsGuess": ["anat", "_acq-tfl3p2_run-5_T1w"]}, "5_t1",
     None, "not a diffusion series (anat/T1w)"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "P", "NONE", "PHASE"]}, "9_gre_ph", None, "not a diffusion series (field map)"),
    ({"BidsGuess": ["func", "_task-rest_run-6_bold"]}, "6_rest", None, "not a diffusion series (func/bold)"),
    ({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]}, "11_DWI_ADC", None, "scanner-derived ADC map"),
    ({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]}, "12_DWI_TRACEW", "trace",
     "scanner-derived TRACEW map"),
    ({}, "13_DWI_FA", None, "scanner-derived FA map"),
    ({"ImageType": ["DERIVED", "SECONDARY", "MPR"]}, "14_mpr", None, "scanner-derived images"),
    ({}, "15_DWI", "trace", "trace-weighted images without gradient directions"),
    ({}, "16_b0", "b0", "no diffusion-weighted volume"),
])
def test_skip_reason(meta, stem, grads, expect):
    b = np.array([0.0, 1000, 1000, 1000])
    g = {"dwi": (b, np.c_[[0, 0, 0], np.eye(3)]), "trace": (b, np.zeros((3, 4))),
         "b0": (np.zeros(4), np.zeros((3, 4))), None: (None, None)}[grads]
    got = skip_reason(meta, stem, *g)
    assert got == expect if expect is None else got.startswith(expect), got


def test_convert_the_real_xa30_session(tmp_path, monkeypatch, capsys):
    """The XA30 session as dcm2niix (the PyPI package, same version) wrote it — the P→A/A→P DWI
    pair, a T1w, a GRE field map, plus the scanner's ADC map — through ``alps convert`` (dcm2niix
    itself replaced by a copy of its real outputs): the pair becomes ``dir-PA``/``dir-AP`` (no
    run-), so the README's ``{"dwi": {"direction": "AP"}}`` filter selects the A→P series; every
    other series is skipped with its reason; the site's institution and study description are
    gone."""
    import dcm2niix  # noqa: F401 - the dataset_description names its version

    from alps.cli import main
    from alps.io import dicom

    if not REAL_XA30.is_dir():
        pytest.skip(f"{REAL_XA30}: real data not present")

    def fake_dcm2niix(dicom_dir, out):
        for f in REAL_XA30.iterdir():
            if f.suffix in (".json", ".bval", ".bvec", ".gz"):
                (out / f.name).symlink_to(f)
        adc = json.loads((REAL_XA30 / "10_DWI_dir80_PA.json").read_text())
        adc.update(SeriesNumber=11, ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "ADC"])
        (out / "11_DWI_dir80_PA_ADC.json").write_text(json.dumps(adc))
        (out / "11_DWI_dir80_PA_ADC.nii.gz").symlink_to(REAL_XA30 / "10_DWI_dir80_PA.nii.gz")

    monkeypatch.setattr(dicom, "_dcm2niix", fake_dcm2niix)
    (tmp_path / "dicom").mkdir()
    bids = tmp_path / "bids"
    assert main(["convert", str(tmp_path / "dicom"), str(bids), "--subject", "xa"]) == 0
    out = capsys.readouterr().out
    d = bids / "sub-xa" / "dwi"
    assert sorted(p.name for p in d.glob("*.nii.gz")) == ["sub-xa_dir-AP_dwi.nii.gz", "sub-xa_dir-PA_dwi.nii.gz"]
    for series, why in ((5, "not a diffusion series (anat/T1w)"), (8, "not a diffusion series (fmap/magnitude1)"),
                        (9, "not a diffusion series (fmap/phasediff)"), (11, "scanner-derived ADC map")):
        assert f"series {series} " in out and why in out, (series, out)
    assert "series 10 DWI_dir80_PA: written as" in out and "sub-xa_dir-PA_dwi.nii.gz, phase encoding j" in out
    for f in bids.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            data = gzip.decompress(data) if f.name.endswith(".gz") else data
            for secret in (b"Indiana University", b"Bloomington", b"Cheng test", b"67093", b"MRC35062"):
                assert secret not in data, (f, secret)
    from alps.io.bidsnames import load_filter_file

    (tmp_path / "filter.json").write_text(json.dumps({"dwi": {"direction": "AP"}}))
    items = discover(bids, bids_filter=load_filter_file(tmp_path / "filter.json"))
    assert [it.key for it in items] == ["sub-xa_dir-AP"]
    df = validate_dataset(bids)
    assert not (df["severity"] == "error").any(), df
