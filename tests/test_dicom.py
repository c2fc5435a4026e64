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

from alps.imaging.tensor import polar_rotation  # noqa: E402
from alps.io import discover, load_dwi  # noqa: E402
from alps.io.dicom import clean_sidecar, convert  # noqa: E402
from alps.io.errors import InputError  # noqa: E402
from alps.io.gradients import fsl_to_voxel, scheme  # noqa: E402
from alps.io.validate import validate_dataset  # noqa: E402

SECRETS = ("Doe^Jane", "PID-98765", "19700101", "Secret Hospital", "20240102", "Dr^Who")


def write_series(out, bvals, bvecs, *, series_number=7, shape=(10, 12, 5), seed=0):
    """One DWI series as per-slice classic MR Image Storage files (Siemens-like, axial)."""
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
            ds.SeriesDescription = ds.ProtocolName = "ep2d_diff_DTI"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
            ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "EP", "SK", "2D"
            ds.EchoTime, ds.RepetitionTime, ds.FlipAngle = 89.0, 3200.0, 90
            ds.InPlanePhaseEncodingDirection = "COL"
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-nx, -ny, 2.0 * z]
            ds.PixelSpacing, ds.SliceThickness, ds.SpacingBetweenSlices = [2.0, 2.0], 2.0, 2.0
            ds.Rows, ds.Columns, ds.SamplesPerPixel = ny, nx, 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
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
    (root / "dicom" / "README.txt").write_text("not a DICOM file\n")
    files = convert(root / "dicom", root / "bids", subject="p01", session="base")
    return {"root": root, "files": files, "schemes": [(b1, g1), (b2, g2)]}


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
