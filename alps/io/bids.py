"""Discovery of the diffusion scans of a BIDS dataset, a preprocessed derivatives tree, or one DWI.

Layout and policy
-----------------
* Every ``sub-*/[ses-*/]dwi/*_dwi.nii[.gz]`` is one scan, keyed by its entities ``sub``, ``ses``,
  ``acq``, ``rec``, ``dir``, ``run`` (and ``space`` in derivatives); output names keep them
  (:attr:`SubjectInput.key`, e.g. ``sub-01_ses-1_dir-AP_run-2``). **Several runs of a
  subject/session are each processed** and each get their own row; choose some of them with a
  BIDS filter file (:func:`alps.io.bidsnames.load_filter_file`, ``alps run --bids-filter-file``).
* Gradient files and sidecars follow the BIDS inheritance principle
  (:func:`alps.io.bidsnames.inherited`): a ``dwi.bval`` at the dataset root, a
  ``sub-01_dwi.bvec`` in the subject folder for all its sessions, ``acq-``-level sidecars...
* Preprocessed derivatives (QSIPrep: ``*_space-T1w_desc-preproc_dwi.nii.gz`` with its
  ``.bval``/``.bvec`` and ``*_space-T1w_desc-brain_mask.nii.gz``): when a tree holds
  ``desc-preproc`` DWIs only those are taken, the scan is marked ``preprocessed`` (our optional
  denoising/Gibbs/motion steps are skipped) and the given brain mask is used.

Dataset problems found here — a file whose ``sub-``/``ses-`` labels differ from its folder, two
images with one key, ambiguous inheritance — are recorded on the :class:`SubjectInput` as
``error`` so that the cohort runner fails only that scan (``discover(..., strict=True)`` raises
instead); :func:`alps.io.validate.validate_dataset` reports them per file up front. A file under
``sub-*/`` that looks like a diffusion image but breaks BIDS naming (a label with ``-`` or ``_``,
``_DWI``, a wrong folder...) is never dropped in silence: it becomes an ``invalid`` item (listed
after the scans) whose error names the file and the rules it breaks — a failed row of the run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from .bidsnames import (DWI_NAME_RULE, dwi_path_problems, inherited, looks_like_dwi, matches_filter, parse_name,
                        scan_entities)
from .dwi import gradient_files_for
from .errors import GradientError, InputError
from .files import check_readable, sha256, strip_nii

__all__ = ["SubjectInput", "discover", "check_input_files", "input_hashes", "scan_key", "invalid_items"]


def scan_key(participant_id: str, session_id: str | None = None, entities=()) -> str:
    """``sub-X[_ses-Y][_acq-A][_rec-R][_dir-D][_run-N][_space-S]``: a scan's output prefix."""
    parts = [participant_id] + ([session_id] if session_id else [])
    parts += [f"{k}-{v}" for k, v in entities]
    return "_".join(parts)


@dataclass(frozen=True)
class SubjectInput:
    """One diffusion scan to process: the DWI, its gradient files and what BIDS says about it."""

    participant_id: str          # "sub-XX"
    dwi: Path
    bval: Path
    bvec: Path
    session_id: str | None = None  # "ses-YY" or None
    sidecar: Path | None = None    # the nearest BIDS .json, if any
    error: str | None = None       # a problem found at discovery (misplaced file, duplicate key...)
    entities: tuple = ()           # series entities beyond sub/ses: (("dir", "AP"), ("run", "1"))
    sidecars: tuple = ()           # every applicable .json, root first (BIDS inheritance)
    mask: Path | None = None       # a given brain mask (preprocessed input)
    preprocessed: bool = False     # input already preprocessed (QSIPrep desc-preproc)
    invalid: bool = False          # looks like a DWI but breaks BIDS naming: never processed, a failed row

    @property
    def key(self) -> str:
        """Unique output prefix: ``sub-XX[_ses-YY][_acq-..][_dir-..][_run-..]``."""
        return scan_key(self.participant_id, self.session_id, self.entities)


def check_input_files(item: SubjectInput) -> None:
    """Cheap checks before hashing/loading: the DWI and its gradient files exist, are regular,
    readable, non-empty files (errors name the file). Raises :class:`InputError` /
    :class:`GradientError`."""
    check_readable(Path(item.dwi), "image file")
    check_readable(Path(item.bval), "gradient file (.bval)", GradientError)
    check_readable(Path(item.bvec), "gradient file (.bvec)", GradientError)
    if item.mask is not None:
        check_readable(Path(item.mask), "brain mask")


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


def _mask_for(f: Path) -> Path | None:
    """QSIPrep's brain mask beside a ``desc-preproc`` DWI (``..._desc-brain_mask.nii[.gz]``)."""
    stem = strip_nii(f)
    if "_desc-preproc_dwi" not in stem + "_":
        return None
    base = stem.replace("_desc-preproc_dwi", "_desc-brain_mask")
    for ext in (".nii.gz", ".nii"):
        p = f.with_name(base + ext)
        if p.is_file():
            return p
    return None


def _single_file(input_path: Path, labels, bval, bvec, mask) -> list[SubjectInput]:
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
    ents, _, _ = parse_name(input_path.name)
    dbval, dbvec = gradient_files_for(input_path)
    bval_p = Path(bval) if bval else dbval
    bvec_p = Path(bvec) if bvec else dbvec
    side = input_path.with_name(stem + ".json")
    given_mask = Path(mask) if mask else _mask_for(input_path)
    return [SubjectInput(f"sub-{sub}", input_path, bval_p, bvec_p, f"ses-{ses}" if ses else None,
                         side if side.is_file() else None, entities=scan_entities(ents),
                         sidecars=(side,) if side.is_file() else (), mask=given_mask,
                         preprocessed="_desc-preproc_dwi" in stem + "_")]


def _dwi_files(root: Path) -> list[Path]:
    files = []
    for pattern in ("sub-*/dwi/*_dwi.nii.gz", "sub-*/dwi/*_dwi.nii", "sub-*/ses-*/dwi/*_dwi.nii.gz",
                    "sub-*/ses-*/dwi/*_dwi.nii"):
        files += root.glob(pattern)
    files = sorted(files)
    preproc = [f for f in files if "_desc-preproc_dwi" in f.name]
    return preproc or files


def invalid_items(root, labels=None) -> list[SubjectInput]:
    """Every file under ``sub-*/`` that looks like a diffusion image
    (:func:`alps.io.bidsnames.looks_like_dwi`) but breaks BIDS naming
    (:func:`alps.io.bidsnames.dwi_path_problems`), as an ``invalid`` item whose ``error`` names
    the file and each rule it breaks; filed under its folders' (raw) ``sub-``/``ses-`` names.
    ``labels``: only these subject folders (labels without ``sub-``; None: all)."""
    root = Path(root)
    out = []
    for sub in sorted(p for p in root.glob("sub-*") if p.is_dir()):
        if labels is not None and sub.name[4:] not in labels:
            continue
        for f in sorted(sub.rglob("*")):
            if not f.is_file() or not looks_like_dwi(f):
                continue
            rel = f.relative_to(root)
            rules = dwi_path_problems(rel)
            if not rules:
                continue
            ses = rel.parts[1] if len(rel.parts) > 2 and rel.parts[1].startswith("ses-") else None
            msg = (f"{f}: not a BIDS diffusion image, so it is not processed: {'; '.join(rules)} "
                   f"(BIDS names a diffusion image {DWI_NAME_RULE}); rename it")
            bval, bvec = gradient_files_for(f)
            out.append(SubjectInput(sub.name, f, bval, bvec, ses, error=msg, invalid=True))
    return out


def discover(input_path, *, participant_label=None, bval=None, bvec=None, mask=None, bids_filter=None,
             strict: bool = True, warnings: list | None = None) -> list[SubjectInput]:
    """List the diffusion scans to process.

    Parameters
    ----------
    input_path : path-like
        A BIDS dataset root (``sub-*/[ses-*/]dwi/*_dwi.nii[.gz]``), a QSIPrep-style derivatives
        root (``*_desc-preproc_dwi.nii.gz``) or one DWI file.
    participant_label : str or list of str, optional
        BIDS subject labels to keep (with or without ``sub-``); others are ignored. A requested
        label with no DWI is an error. For a single file whose name has no ``sub-`` entity, one
        label names its participant (default: from the file name).
    bval, bvec, mask : path-like, optional
        Gradient files and a brain mask for a single-file input (default: beside the image, same
        stem; the mask of a ``desc-preproc`` image is its ``desc-brain_mask``).
    bids_filter : dict, optional
        A ``dwi`` query (:func:`alps.io.bidsnames.load_filter_file`): only matching files are kept.
    strict : bool
        Per-scan problems (a file whose ``sub-``/``ses-`` labels differ from its folder, two images
        with one key, ambiguous gradient-file inheritance) raise :class:`InputError` when True
        (default); when False they are recorded in :attr:`SubjectInput.error` so that a cohort
        runner fails only that scan.
    warnings : list, optional
        Receives the messages of tolerated irregularities (several inheritable files at one level
        where one is the most specific).

    Returns
    -------
    list of SubjectInput, sorted by key. Existence of gradient files is checked later
    (:func:`check_input_files`); their content by :func:`load_dwi`.

    Raises
    ------
    InputError
        Missing input, no DWI found, unknown labels, a non-diffusion single file, nothing left
        after the filter; with ``strict`` also the per-scan problems above.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise InputError(f"{input_path}: input not found")
    labels = _normalise_labels(participant_label)
    if input_path.is_file():
        return _single_file(input_path, labels, bval, bvec, mask)
    if bval or bvec or mask:
        raise InputError("--bval/--bvec/--mask are only for a single DWI file input, not a BIDS dataset")
    files = _dwi_files(input_path)
    invalid = invalid_items(input_path, labels)
    if not files and not invalid:
        raise InputError(f"{input_path}: no BIDS diffusion images (sub-*/[ses-*/]dwi/*_dwi.nii[.gz]) found")
    if strict and invalid:
        raise InputError(invalid[0].error)
    invalid_files = {it.dwi for it in invalid}
    out: dict[str, SubjectInput] = {}
    problems: dict[str, list[str]] = {}

    def problem(key, msg):
        if strict:
            raise InputError(msg)
        problems.setdefault(key, []).append(msg)

    n_matched = 0
    for f in files:
        ents, suffix, _ = parse_name(f.name)
        sub = ents.get("sub")
        if sub is None or suffix != "dwi" or f in invalid_files:
            continue
        rel = f.relative_to(input_path).parts
        folder_sub = rel[0][4:]
        folder_ses = rel[1][4:] if len(rel) == 4 else None
        ses = ents.get("ses")
        if labels is not None and sub not in labels and folder_sub not in labels:
            continue
        if bids_filter and not matches_filter(ents, bids_filter):
            continue
        n_matched += 1
        found = {}
        msgs = []
        for ext in (".bval", ".bvec", ".json"):
            chain, probs = inherited(f, input_path, ext)
            found[ext] = chain
            for p in probs:
                (msgs if "ambiguous" in p else (warnings if warnings is not None else [])).append(p)
        dflt_bval, dflt_bvec = gradient_files_for(f)
        bval_p = found[".bval"][-1] if found[".bval"] else dflt_bval
        bvec_p = found[".bvec"][-1] if found[".bvec"] else dflt_bvec
        sidecars = tuple(found[".json"])
        series = scan_entities(ents)
        pid, sid = f"sub-{sub}", f"ses-{ses}" if ses else None
        if sub != folder_sub or ses != folder_ses:
            # misplaced file: file it under its folder's ids and fail that scan
            pid, sid = f"sub-{folder_sub}", f"ses-{folder_ses}" if folder_ses else None
            msgs.append(f"{f}: file labels (sub-{sub}{', ses-' + ses if ses else ''}) do not match "
                        f"its folder ({'/'.join(rel[:-2])}); misplaced or mis-named file")
        item = SubjectInput(pid, f, bval_p, bvec_p, sid, sidecars[-1] if sidecars else None,
                            entities=series, sidecars=sidecars, mask=_mask_for(f),
                            preprocessed="_desc-preproc_dwi" in f.name)
        if item.key in out:
            problem(item.key, f"{f}: more than one DWI for {item.key} (also {out[item.key].dwi.name}); "
                              "remove one of them")
            continue
        out[item.key] = item
        for m in msgs:
            problem(item.key, m)
    for key, msgs in problems.items():
        out[key] = replace(out[key], error="; ".join(msgs))
    if labels is not None:
        found_ids = {s.participant_id[4:] for s in list(out.values()) + invalid}
        missing = [lab for lab in labels if lab not in found_ids]
        if missing:
            raise InputError(f"{input_path}: no DWI found for participant label(s) {missing}")
    if not out and not invalid:
        what = " matching the BIDS filter" if bids_filter and not n_matched else ""
        raise InputError(f"{input_path}: no diffusion images{what} matched")
    return [out[k] for k in sorted(out)] + sorted(invalid, key=lambda it: (it.key, str(it.dwi)))


def input_hashes(item: SubjectInput) -> dict[str, str]:
    """SHA-256 of the DWI, bval and bvec files of one scan (and of a given mask) — provenance."""
    out = {"dwi": sha256(item.dwi), "bval": sha256(item.bval), "bvec": sha256(item.bvec)}
    if item.mask is not None:
        out["mask"] = sha256(item.mask)
    return out
