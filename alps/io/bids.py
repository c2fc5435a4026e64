"""Discovery of the diffusion scans of a BIDS dataset, or of one DWI file.

Dataset problems found here — two DWI runs for one subject/session, a file whose ``sub-`` label
differs from its folder — are recorded on the :class:`SubjectInput` as ``error`` so that the
cohort runner fails only that subject (``discover(..., strict=True)`` raises instead).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from .dwi import gradient_files_for
from .errors import GradientError, InputError
from .files import check_readable, sha256, strip_nii

__all__ = ["SubjectInput", "discover", "check_input_files", "input_hashes"]


@dataclass(frozen=True)
class SubjectInput:
    """One diffusion scan to process: the DWI and its gradient files."""

    participant_id: str          # "sub-XX"
    dwi: Path
    bval: Path
    bvec: Path
    session_id: str | None = None  # "ses-YY" or None
    sidecar: Path | None = None    # BIDS .json, if present (never read by the pipeline)
    error: str | None = None       # a problem found at discovery (duplicate run, misplaced file)

    @property
    def key(self) -> str:
        """Unique output prefix: ``sub-XX`` or ``sub-XX_ses-YY``."""
        return self.participant_id if not self.session_id else f"{self.participant_id}_{self.session_id}"


def check_input_files(item: SubjectInput) -> None:
    """Cheap checks before hashing/loading: the DWI and its gradient files exist, are regular,
    readable, non-empty files (errors name the file). Raises :class:`InputError` /
    :class:`GradientError`."""
    check_readable(Path(item.dwi), "image file")
    check_readable(Path(item.bval), "gradient file (.bval)", GradientError)
    check_readable(Path(item.bvec), "gradient file (.bvec)", GradientError)


_BIDS_LABEL = re.compile(r"[^A-Za-z0-9]")


def _entity(name: str, key: str):
    m = re.search(rf"(?:^|_){key}-([A-Za-z0-9]+)", name)
    return m.group(1) if m else None


def _normalise_labels(labels):
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [labels]
    out = []
    for lab in labels:
        lab = str(lab)
        out.append(lab[4:] if lab.startswith("sub-") else lab)
    return out


#: BIDS suffixes that are certainly not diffusion series (single-file input check).
_NON_DWI_SUFFIXES = {"T1w", "T2w", "FLAIR", "PD", "PDw", "T2starw", "bold", "sbref", "epi", "phasediff",
                     "magnitude", "magnitude1", "magnitude2", "fieldmap", "asl", "m0scan", "dseg", "mask",
                     "angio", "cbv", "physio", "events"}


def discover(input_path, *, participant_label=None, bval=None, bvec=None, strict: bool = True
             ) -> list[SubjectInput]:
    """List the diffusion scans to process.

    Parameters
    ----------
    input_path : path-like
        A BIDS dataset root (``sub-*/[ses-*/]dwi/*_dwi.nii[.gz]``) or one DWI file.
    participant_label : str or list of str, optional
        BIDS subject labels to keep (with or without ``sub-``); others are ignored. A requested
        label with no DWI is an error. For a single file whose name has no ``sub-`` entity, one
        label names its participant (default: from the file name).
    bval, bvec : path-like, optional
        Gradient files for a single-file input (default: beside the image, same stem).
    strict : bool
        Per-scan problems found here — more than one DWI for a subject/session, a file whose
        ``sub-``/``ses-`` label differs from its folder — raise :class:`InputError` when True
        (default); when False they are recorded in :attr:`SubjectInput.error` (one item per
        affected subject/session) so that a cohort runner fails only that scan.

    Returns
    -------
    list of SubjectInput, sorted by key. Existence of gradient files is checked later
    (:func:`check_input_files`); their content by :func:`load_dwi`.

    Raises
    ------
    InputError
        Missing input, no DWI found, unknown labels, a non-diffusion single file; with
        ``strict`` also the per-scan problems above.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise InputError(f"{input_path}: input not found")
    labels = _normalise_labels(participant_label)
    if input_path.is_file():
        if not (input_path.name.endswith(".nii.gz") or input_path.name.endswith(".nii")):
            raise InputError(f"{input_path}: expected a .nii or .nii.gz DWI file")
        stem = strip_nii(input_path)
        suffix = stem.rsplit("_", 1)[-1] if "_" in stem else ""
        if suffix in _NON_DWI_SUFFIXES:
            raise InputError(f"{input_path}: BIDS suffix '_{suffix}' is not a diffusion image (expected *_dwi)")
        sub = _entity(stem, "sub") or _BIDS_LABEL.sub("", stem) or "01"
        ses = _entity(stem, "ses")
        if labels is not None and _entity(stem, "sub") is None:  # the label names the participant
            if len(labels) != 1:
                raise InputError(f"{input_path}: one participant label for a single file, got {labels}")
            sub = labels[0]
            if _BIDS_LABEL.search(sub):
                raise InputError(f"{input_path}: participant label {sub!r} must be letters and digits only")
        if labels is not None and sub not in labels:
            raise InputError(f"{input_path}: participant label(s) {labels} do not match this file (sub-{sub})")
        dbval, dbvec = gradient_files_for(input_path)
        bval_p = Path(bval) if bval else dbval
        bvec_p = Path(bvec) if bvec else dbvec
        side = input_path.with_name(stem + ".json")
        return [SubjectInput(f"sub-{sub}", input_path, bval_p, bvec_p,
                             f"ses-{ses}" if ses else None, side if side.is_file() else None)]
    if bval or bvec:
        raise InputError("--bval/--bvec are only for a single DWI file input, not a BIDS dataset")
    files = sorted(list(input_path.glob("sub-*/dwi/*_dwi.nii.gz")) + list(input_path.glob("sub-*/dwi/*_dwi.nii"))
                   + list(input_path.glob("sub-*/ses-*/dwi/*_dwi.nii.gz"))
                   + list(input_path.glob("sub-*/ses-*/dwi/*_dwi.nii")))
    if not files:
        raise InputError(f"{input_path}: no BIDS diffusion images (sub-*/[ses-*/]dwi/*_dwi.nii[.gz]) found")
    out: dict[str, SubjectInput] = {}
    problems: dict[str, list[str]] = {}

    def problem(key, msg):
        if strict:
            raise InputError(msg)
        problems.setdefault(key, []).append(msg)

    for f in files:
        stem = strip_nii(f)
        sub = _entity(stem, "sub")
        if sub is None:
            continue
        rel = f.relative_to(input_path).parts
        folder_sub = rel[0][4:]
        folder_ses = rel[1][4:] if len(rel) == 4 else None
        ses = _entity(stem, "ses")
        if labels is not None and sub not in labels and folder_sub not in labels:
            continue
        bval_p, bvec_p = gradient_files_for(f)
        # BIDS inheritance: top-level dwi.bval/bvec
        if not bval_p.is_file() and (input_path / "dwi.bval").is_file():
            bval_p = input_path / "dwi.bval"
        if not bvec_p.is_file() and (input_path / "dwi.bvec").is_file():
            bvec_p = input_path / "dwi.bvec"
        side = f.with_name(stem + ".json")
        if sub != folder_sub or ses != folder_ses:
            # misplaced file: file it under its folder's key and fail that scan
            item = SubjectInput(f"sub-{folder_sub}", f, bval_p, bvec_p,
                                f"ses-{folder_ses}" if folder_ses else None, side if side.is_file() else None)
            problem(item.key, f"{f}: file labels (sub-{sub}{', ses-' + ses if ses else ''}) do not match "
                              f"its folder ({'/'.join(rel[:-2])}); misplaced or mis-named file")
        else:
            item = SubjectInput(f"sub-{sub}", f, bval_p, bvec_p, f"ses-{ses}" if ses else None,
                                side if side.is_file() else None)
        if item.key in out:
            problem(item.key, f"{f}: more than one DWI for {item.key} (also {out[item.key].dwi.name}); "
                              "select one run per subject/session")
            continue
        out[item.key] = item
    for key, msgs in problems.items():
        out[key] = replace(out[key], error="; ".join(msgs))
    if labels is not None:
        found = {s.participant_id[4:] for s in out.values()}
        missing = [lab for lab in labels if lab not in found]
        if missing:
            raise InputError(f"{input_path}: no DWI found for participant label(s) {missing}")
    if not out:
        raise InputError(f"{input_path}: no diffusion images matched")
    return [out[k] for k in sorted(out)]


def input_hashes(item: SubjectInput) -> dict[str, str]:
    """SHA-256 of the DWI, bval and bvec files of one scan (provenance)."""
    return {"dwi": sha256(item.dwi), "bval": sha256(item.bval), "bvec": sha256(item.bvec)}
