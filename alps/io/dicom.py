"""DICOM → BIDS through ``dcm2niix`` (the PyPI package ships the converter binary).

:func:`convert` runs ``dcm2niix -b y -ba y -z y -m o`` (series never merged) on a folder of DICOM
files into a scratch folder, keeps the diffusion series (those dcm2niix writes ``.bval``/``.bvec``
for, with diffusion-weighted volumes and gradient directions, not scanner-derived) and writes them as
``BIDS_DIR/sub-<label>/[ses-<label>/]dwi/sub-<label>[_ses-<label>][_dir-<PE>][_run-<n>]_dwi.*``, with
their sidecars and ``dataset_description.json``:

* ``dir-`` is the phase-encoding direction in world terms (:func:`phase_encoding_label`: ``PA``
  for ``PhaseEncodingDirection`` ``j`` of an axial image whose ``j`` axis points anterior), set
  when the sidecar gives the polarity (Siemens, GE, UIH; not Philips or some Canon versions);
* ``run-`` (in series-number order) only where two series would otherwise share a name.

Every other series is skipped with its reason (:func:`skip_reason`: T1w, BOLD, field maps,
scanner-derived ADC/FA/TRACE maps...), said through ``log`` and listed, with what was written, in
``BIDS_DIR/sourcedata/alps-convert/sub-<label>[_ses-<label>]_series.tsv``.

Privacy: nothing identifying reaches the outputs. The subject label is given, never taken from
the DICOM; sidecar fields matching :data:`IDENTIFYING` (patient name, ID, birth date, sex, age,
weight, dates and times, UIDs, institution, physicians, operators, device serial number,
station, and the free-text fields that clinical sites fill with names and reasons:
``StudyDescription``, ``ImageComments``, the procedure-step and requested-procedure descriptions)
are dropped even when dcm2niix's anonymisation left them (it keeps ``InstitutionName`` and
``StudyDescription``), and the NIfTI header's free-text fields (``descrip`` holds the acquisition
time) are cleared. ``ProtocolName`` and ``SeriesDescription`` are kept: they name the protocol
(set in the scanner's protocol tree, not per patient) and are what tells a lab's series apart.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["convert", "IDENTIFYING", "clean_sidecar", "phase_encoding_label", "skip_reason", "bids_stems",
           "Series", "SERIES_LOG"]

#: sidecar keys never written (regular expressions, matched against the whole key).
IDENTIFYING = (r".*Patient.*", r".*UID", r".*Date.*", r".*Time(?:stamp)?OfDay",
               r"(?:Acquisition|Study|Series|Content)Time", r"Institution.*", r".*Physician.*", r"Operator.*",
               r"DeviceSerialNumber", r"StationName", r"AccessionNumber", r"StudyID", r"ReferringPhysician.*",
               r"BidsGuess",
               # free text that clinical sites fill with names, reasons and requests
               r"StudyDescription", r".*Comments?", r".*ProcedureStep.*", r"RequestedProcedure.*", r"Requesting.*",
               r"ReasonFor.*", r"AdmittingDiagnos.*", r"Occupation", r"MedicalAlerts", r"Allergies",
               r"EthnicGroup")
_IDENT = re.compile("|".join(f"(?:{p})" for p in IDENTIFYING))
_LABEL = re.compile(r"^[A-Za-z0-9]+$")

#: the conversion's record of every series, relative to BIDS_DIR (``{key}``: ``sub-X[_ses-Y]``).
SERIES_LOG = "sourcedata/alps-convert/{key}_series.tsv"

#: ``dir-`` label of a phase-encoding traversal by (world axis, sign), RAS: from the side where
#: it starts to the side it goes to.
_TRAVERSAL = {(0, 1): "LR", (0, -1): "RL", (1, 1): "PA", (1, -1): "AP", (2, 1): "IS", (2, -1): "SI"}

#: ImageType values (and dcm2niix file-name suffixes) of scanner-derived diffusion maps.
DERIVED_MAPS = ("ADC", "EADC", "FA", "COLFA", "TRACEW", "TRACE", "EXP", "ISOTROPIC", "CALC_BVALUE", "MD")


def clean_sidecar(meta: dict) -> dict:
    """``meta`` without the identifying keys (:data:`IDENTIFYING`)."""
    return {k: v for k, v in meta.items() if not _IDENT.fullmatch(k)}


def phase_encoding_label(direction, affine) -> str | None:
    """The BIDS ``dir-`` label of a phase-encoding direction, in world terms.

    ``direction`` is the sidecar's ``PhaseEncodingDirection`` (``i``, ``j``, ``k``, optionally
    followed by ``-``): the phase is encoded from the first to the last voxel of that axis of the
    NIfTI image (the reverse with ``-``). Its direction in world (RAS) space is
    ``t = s · A[:3, axis]`` with ``A`` the image's affine and ``s = ±1``; the label names the side
    where the traversal starts and the side it goes to along the dominant world axis of ``t``
    (``+y`` = toward anterior → ``PA``; ``−y`` → ``AP``; ``±x`` → ``LR``/``RL``; ``±z`` →
    ``IS``/``SI``). An axial image stored LAS or RAS (as dcm2niix writes it) with ``j`` is
    ``PA``, with ``j-`` ``AP``, the convention of dcm2niix's own guess and of BIDS datasets; a
    sagittal or coronal image gets the label of its own geometry. ``None`` when the polarity is
    unknown (no ``PhaseEncodingDirection``, e.g. Philips, which gives only the axis).
    """
    m = re.fullmatch(r"\s*([ijk])(-?)\s*", str(direction)) if direction is not None else None
    if not m:
        return None
    axis, sign = "ijk".index(m.group(1)), (-1.0 if m.group(2) else 1.0)
    t = sign * np.asarray(affine, float)[:3, axis]
    world = int(np.argmax(np.abs(t)))
    if not np.isfinite(t).all() or t[world] == 0:
        return None
    return _TRAVERSAL[(world, 1 if t[world] > 0 else -1)]


def _image_type(meta: dict) -> list[str]:
    it = meta.get("ImageType") or []
    if isinstance(it, str):
        it = re.split(r"[\\_ ]+", it)
    return [str(t).upper() for t in it]


def skip_reason(meta: dict, stem: str, bvals=None, bvecs=None) -> str | None:
    """Why one output of dcm2niix is not a diffusion series to convert (``None``: it is one).

    ``meta`` is its sidecar, ``stem`` its file name without extension, ``bvals``/``bvecs`` the
    gradient table dcm2niix wrote for it (``None`` when it wrote none). Skipped: scanner-derived
    images (``ImageType`` ``DERIVED`` or an ADC/FA/TRACE... map, :data:`DERIVED_MAPS`); series
    without gradient files (T1w, BOLD, field maps... — named after dcm2niix's ``BidsGuess`` when
    it gives one); series without diffusion weighting or without gradient directions
    (trace-weighted images).
    """
    image_type = _image_type(meta)
    suffix = stem.rsplit("_", 1)[-1].upper()
    derived = [t for t in image_type if t in DERIVED_MAPS] or ([suffix] if suffix in DERIVED_MAPS else [])
    if derived or "DERIVED" in image_type:
        what = f"{derived[0]} map" if derived else "images"
        return f"scanner-derived {what} (ImageType {'/'.join(image_type) or 'n/a'})"
    if bvals is None or bvecs is None:
        guess = meta.get("BidsGuess")
        if isinstance(guess, (list, tuple)) and len(guess) == 2:
            kind = f"{guess[0]}/{str(guess[1]).rsplit('_', 1)[-1]}"
        elif "EchoTime1" in meta or "PHASE" in image_type or "P" in image_type:
            kind = "field map"
        else:
            kind = "no b-values"
        return f"not a diffusion series ({kind})"
    bvals, bvecs = np.atleast_1d(np.asarray(bvals, float)), np.asarray(bvecs, float).reshape(3, -1)
    dw = bvals > 50
    if not dw.any():
        return "no diffusion-weighted volume (every b-value at most 50 s/mm²)"
    if not (np.linalg.norm(bvecs[:, dw], axis=0) > 0.5).any():
        return "trace-weighted images without gradient directions"
    return None


@dataclass(frozen=True)
class Series:
    """One output of dcm2niix (a series, or one part of it: an echo, a phase image, a derived map)."""

    stem: str  # dcm2niix's file name without extension, e.g. "10_DWI_dir80_PA"
    number: int | None  # SeriesNumber
    protocol: str
    phase_encoding: str | None  # PhaseEncodingDirection as dcm2niix gives it
    direction: str | None  # the BIDS dir- label (phase_encoding_label)
    reason: str | None  # why it is skipped (None: a diffusion series, converted)


def bids_stems(prefix: str, series) -> list[str]:
    """BIDS names (without extension) of the diffusion ``series`` (in series-number order):
    ``<prefix>[_dir-<label>]_dwi``, with ``_run-<n>`` (1, 2, ... in that order) only among
    series that would otherwise share a name."""
    base = [f"{prefix}_dir-{s.direction}" if s.direction else prefix for s in series]
    count = {b: base.count(b) for b in base}
    seen: dict[str, int] = {}
    out = []
    for b in base:
        if count[b] > 1:
            seen[b] = seen.get(b, 0) + 1
            out.append(f"{b}_run-{seen[b]}_dwi")
        else:
            out.append(f"{b}_dwi")
    return out


def _series(nii: Path) -> Series:
    """Read one dcm2niix output (its sidecar, gradient files and affine) into a :class:`Series`."""
    import nibabel as nib

    stem = nii.name[: -len(".nii.gz")]
    side = nii.with_name(stem + ".json")
    try:
        meta = json.loads(side.read_text()) if side.is_file() else {}
    except (OSError, ValueError):
        meta = {}
    bval, bvec = nii.with_name(stem + ".bval"), nii.with_name(stem + ".bvec")
    grads = (None, None)
    if bval.is_file() and bvec.is_file():
        try:
            grads = (np.loadtxt(bval, ndmin=1), np.loadtxt(bvec, ndmin=2))
        except ValueError:
            grads = (None, None)
    number = meta.get("SeriesNumber")
    if not isinstance(number, int):
        head = stem.split("_", 1)[0]
        number = int(head) if head.isdigit() else None
    pe = meta.get("PhaseEncodingDirection")
    reason = skip_reason(meta, stem, *grads)
    direction = phase_encoding_label(pe, nib.load(str(nii)).affine) if reason is None else None
    protocol = str(meta.get("ProtocolName") or meta.get("SeriesDescription") or stem)
    return Series(stem, number, protocol, pe, direction, reason)


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


def convert(dicom_dir, bids_dir, *, subject: str = "01", session: str | None = None, log=None) -> list[Path]:
    """Convert the diffusion series of ``dicom_dir`` into BIDS under ``bids_dir``.

    Parameters
    ----------
    dicom_dir : path-like — folder of DICOM files (searched recursively by dcm2niix)
    bids_dir : path-like — BIDS root (created; an existing dataset gets the new subject/session)
    subject, session : BIDS labels (letters and digits) for the output names
    log : callable taking one line of text, optional — told what each series became (written as
        which file, or skipped and why); the same is written to :data:`SERIES_LOG`

    Returns
    -------
    The written ``*_dwi.nii.gz`` files.

    Raises
    ------
    InputError
        Missing folder, invalid labels, dcm2niix failure, no diffusion series (the message says
        what each series was), or an output that exists already (never overwritten).
    """
    import pandas as pd

    from .. import atomic

    log = log or (lambda line: None)
    dicom_dir, bids_dir = Path(dicom_dir), Path(bids_dir)
    if not dicom_dir.is_dir():
        raise InputError(f"{dicom_dir}: DICOM folder not found")
    for what, lab in (("subject", subject), ("session", session)):
        if lab is not None and not _LABEL.match(str(lab)):
            raise InputError(f"{what} label {lab!r} must be letters and digits only (BIDS)")
    prefix = f"sub-{subject}" + (f"_ses-{session}" if session else "")
    record = bids_dir / SERIES_LOG.format(key=prefix)
    with tempfile.TemporaryDirectory(prefix="alps-dcm2niix-") as tmp:
        tmp = Path(tmp)
        _dcm2niix(dicom_dir, tmp)
        found = sorted((_series(f) for f in tmp.glob("*.nii.gz")),
                       key=lambda x: (x.number if x.number is not None else -1, x.stem))
        keep = [x for x in found if x.reason is None]
        d = bids_dir / f"sub-{subject}" / (f"ses-{session}" if session else "") / "dwi"
        stems = dict(zip((x.stem for x in keep), bids_stems(prefix, keep)))
        rows = [{"series": x.number, "protocol": x.protocol, "dcm2niix_output": x.stem,
                 "phase_encoding_direction": x.phase_encoding,
                 "written_as": f"{stems[x.stem]}.nii.gz" if x.reason is None else None,
                 "skipped_because": x.reason} for x in found]
        if not keep:
            if found and not record.exists():  # never over another conversion's record
                atomic.write_table(record, pd.DataFrame(rows))
            said = "; ".join(f"series {x.number} {x.protocol}: {x.reason}" for x in found) or "no image at all"
            raise InputError(f"{dicom_dir}: no diffusion series found ({said})")
        targets = [d / f"{stems[x.stem]}.nii.gz" for x in keep]
        clash = [t for t in targets if t.exists()]
        if clash:
            raise InputError(f"{clash[0]}: exists already; convert into another subject/session")
        d.mkdir(parents=True, exist_ok=True)
        for x in keep:
            src, stem = tmp / x.stem, stems[x.stem]
            _clear_header_text(tmp / f"{x.stem}.nii.gz", d / f"{stem}.nii.gz")
            shutil.copyfile(src.with_name(x.stem + ".bval"), d / f"{stem}.bval")
            shutil.copyfile(src.with_name(x.stem + ".bvec"), d / f"{stem}.bvec")
            side = src.with_name(x.stem + ".json")
            meta = json.loads(side.read_text()) if side.is_file() else {}
            atomic.write_json(d / f"{stem}.json", clean_sidecar(meta))
        for x in found:
            if x.reason is None:
                pe = f", phase encoding {x.phase_encoding}" if x.phase_encoding else ", phase-encoding polarity unknown"
                log(f"series {x.number} {x.protocol}: written as {d / stems[x.stem]}.nii.gz{pe}")
            else:
                log(f"series {x.number} {x.protocol}: skipped: {x.reason}")
        atomic.write_table(record, pd.DataFrame(rows))
        log(f"the list of series: {record}")
    desc = bids_dir / "dataset_description.json"
    if not desc.is_file():
        import dcm2niix

        atomic.write_json(desc, {"Name": "converted with alps convert", "BIDSVersion": "1.9.0",
                                 "GeneratedBy": [{"Name": "dcm2niix", "Version": dcm2niix.__version__}]})
    return targets
