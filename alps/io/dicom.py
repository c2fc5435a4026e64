"""DICOM → BIDS through ``dcm2niix`` (the PyPI package ships the converter binary).

:func:`convert` runs ``dcm2niix -b y -ba y -z y -m o`` (series never merged) on a folder of DICOM
files into a scratch folder, keeps the diffusion series (those dcm2niix writes ``.bval``/``.bvec`` for) and writes them
as ``BIDS_DIR/sub-<label>/[ses-<label>/]dwi/sub-<label>[_ses-<label>][_run-<n>]_dwi.*`` (several
diffusion series: ``run-1, 2, ...`` in series-number order), with their sidecars and
``dataset_description.json``.

Privacy: nothing identifying reaches the outputs. The subject label is given, never taken from
the DICOM; sidecar fields matching :data:`IDENTIFYING` (patient name, ID, birth date, sex, age,
weight, dates and times, UIDs, institution, physicians, operators, device serial number,
station) are dropped even when dcm2niix's anonymisation left them (it keeps ``InstitutionName``),
and the NIfTI header's free-text fields (``descrip`` holds the acquisition time) are cleared.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import InputError

__all__ = ["convert", "IDENTIFYING", "clean_sidecar"]

#: sidecar keys never written (regular expressions, matched against the whole key).
IDENTIFYING = (r"Patient.*", r".*UID", r".*Date.*", r".*Time(?:stamp)?OfDay", r"(?:Acquisition|Study|Series|Content)Time",
               r"Institution.*", r".*Physician.*", r"Operator.*", r"DeviceSerialNumber", r"StationName",
               r"AccessionNumber", r"StudyID", r"ReferringPhysician.*", r"BidsGuess", r"ProcedureStepDescription")
_IDENT = re.compile("|".join(f"(?:{p})" for p in IDENTIFYING))
_LABEL = re.compile(r"^[A-Za-z0-9]+$")


def clean_sidecar(meta: dict) -> dict:
    """``meta`` without the identifying keys (:data:`IDENTIFYING`)."""
    return {k: v for k, v in meta.items() if not _IDENT.fullmatch(k)}


def _dcm2niix(dicom_dir: Path, out: Path) -> None:
    try:
        import dcm2niix
    except ImportError as exc:  # pragma: no cover - a dependency
        raise InputError("alps convert needs the 'dcm2niix' package (pip install dcm2niix)") from exc
    proc = subprocess.run([dcm2niix.bin, "-b", "y", "-ba", "y", "-z", "y", "-m", "o", "-f", "%s_%p", "-o", str(out),
                           str(dicom_dir)], capture_output=True, text=True)
    if proc.returncode not in (0, 8):  # 8: some files were not DICOM (a README...), the rest converted
        raise InputError(f"{dicom_dir}: dcm2niix failed (exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-400:]}")


def _clear_header_text(src: Path, dst: Path) -> None:
    import nibabel as nib

    from .. import atomic

    src_img = nib.load(str(src))
    slope, inter = src_img.header.get_slope_inter()
    img = nib.Nifti1Image(src_img.dataobj.get_unscaled(), src_img.affine, src_img.header)
    img.header.set_slope_inter(slope, inter)  # the stored values and their scaling, unchanged
    for field in ("descrip", "aux_file", "db_name", "intent_name"):
        img.header[field] = b""
    atomic.save_nifti(dst, img)


def convert(dicom_dir, bids_dir, *, subject: str = "01", session: str | None = None) -> list[Path]:
    """Convert the diffusion series of ``dicom_dir`` into BIDS under ``bids_dir``.

    Parameters
    ----------
    dicom_dir : path-like — folder of DICOM files (searched recursively by dcm2niix)
    bids_dir : path-like — BIDS root (created; an existing dataset gets the new subject/session)
    subject, session : BIDS labels (letters and digits) for the output names

    Returns
    -------
    The written ``*_dwi.nii.gz`` files.

    Raises
    ------
    InputError
        Missing folder, invalid labels, dcm2niix failure, no diffusion series, or an output that
        exists already (never overwritten).
    """
    from .. import atomic

    dicom_dir, bids_dir = Path(dicom_dir), Path(bids_dir)
    if not dicom_dir.is_dir():
        raise InputError(f"{dicom_dir}: DICOM folder not found")
    for what, lab in (("subject", subject), ("session", session)):
        if lab is not None and not _LABEL.match(str(lab)):
            raise InputError(f"{what} label {lab!r} must be letters and digits only (BIDS)")
    with tempfile.TemporaryDirectory(prefix="alps-dcm2niix-") as tmp:
        tmp = Path(tmp)
        _dcm2niix(dicom_dir, tmp)
        series = sorted(tmp.glob("*.bval"), key=lambda p: (int(p.name.split("_", 1)[0])
                                                           if p.name.split("_", 1)[0].isdigit() else 0, p.name))
        series = [s for s in series if s.with_suffix(".bvec").is_file() and s.with_suffix(".nii.gz").is_file()]
        if not series:
            raise InputError(f"{dicom_dir}: no diffusion series found (dcm2niix wrote no .bval/.bvec)")
        d = bids_dir / f"sub-{subject}" / (f"ses-{session}" if session else "") / "dwi"
        prefix = f"sub-{subject}" + (f"_ses-{session}" if session else "")
        stems = ([f"{prefix}_dwi"] if len(series) == 1
                 else [f"{prefix}_run-{i}_dwi" for i in range(1, len(series) + 1)])
        targets = [d / f"{s}.nii.gz" for s in stems]
        clash = [t for t in targets if t.exists()]
        if clash:
            raise InputError(f"{clash[0]}: exists already; convert into another subject/session")
        d.mkdir(parents=True, exist_ok=True)
        for src, stem in zip(series, stems):
            _clear_header_text(src.with_suffix(".nii.gz"), d / f"{stem}.nii.gz")
            shutil.copyfile(src, d / f"{stem}.bval")
            shutil.copyfile(src.with_suffix(".bvec"), d / f"{stem}.bvec")
            side = src.with_suffix(".json")
            meta = json.loads(side.read_text()) if side.is_file() else {}
            atomic.write_json(d / f"{stem}.json", clean_sidecar(meta))
    desc = bids_dir / "dataset_description.json"
    if not desc.is_file():
        import dcm2niix

        atomic.write_json(desc, {"Name": "converted with alps convert", "BIDSVersion": "1.9.0",
                                 "GeneratedBy": [{"Name": "dcm2niix", "Version": dcm2niix.__version__}]})
    return targets
