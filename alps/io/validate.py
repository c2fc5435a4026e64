"""Up-front validation of an input dataset: every problem, per file, before anything is computed.

:func:`validate_dataset` runs discovery (:func:`alps.io.bids.discover`, non-strict) and then, per
scan, the cheap checks of :func:`alps.io.dwi.load_dwi` that need no voxel data: the files exist and
are readable, the gradient table parses and matches the image's volume count (header only), a given
mask has the image's grid, the sidecars are readable JSON. A file under ``sub-*/`` that looks like a
diffusion image but breaks BIDS naming is an error naming the file and each rule it breaks (it
would not be processed); other NIfTI files of a ``dwi/`` folder not named ``*_dwi`` (and so
ignored) are warnings. ``alps validate`` prints it.
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import pandas as pd

from .bids import check_input_files, discover
from .bidsnames import merged_sidecar
from .errors import GradientError, InputError
from .gradients import read_bvals_bvecs

__all__ = ["validate_dataset", "COLUMNS"]

#: columns of the validation report.
COLUMNS = ["file", "severity", "problem"]


def _scan_problems(item, scan_checks=()) -> list[tuple[str, str, str]]:
    if item.invalid:  # breaks BIDS naming: one error naming every rule; nothing else is checked
        return [(str(item.dwi), "error", item.error)]
    out = []
    if item.error:
        for msg in item.error.split("; "):
            out.append((str(item.dwi), "error", msg))
    try:
        check_input_files(item)
        img = nib.load(str(item.dwi))
        shape = img.shape
        if len(shape) != 4:
            raise InputError(f"{item.dwi}: expected a 4D diffusion series, got shape {shape}")
        bvals, _ = read_bvals_bvecs(item.bval, item.bvec, n_volumes=shape[3])
        out += [(str(item.dwi), severity, text) for check in scan_checks for severity, text in check(item, bvals)]
        if item.mask is not None:
            mshape = nib.load(str(item.mask)).shape[:3]
            if tuple(mshape) != tuple(shape[:3]):
                raise InputError(f"{item.mask}: mask grid {tuple(mshape)} differs from the image's "
                                 f"{tuple(shape[:3])}")
    except (InputError, GradientError) as exc:
        out.append((str(item.dwi), "error", str(exc)))
    except Exception as exc:  # nibabel's header errors
        out.append((str(item.dwi), "error", f"{item.dwi}: not a readable NIfTI image ({type(exc).__name__}: {exc})"))
    _, probs = merged_sidecar(item.sidecars)
    out += [(str(item.dwi), "warning", p) for p in probs]
    if not item.sidecars:
        out.append((str(item.dwi), "warning", f"{item.dwi}: no JSON sidecar applies; scanner metadata "
                    "columns will be empty"))
    return out


def _ignored_files(root: Path) -> list[tuple[str, str, str]]:
    out = []
    for d in sorted(list(root.glob("sub-*/dwi")) + list(root.glob("sub-*/ses-*/dwi"))):
        for f in sorted(d.iterdir()):
            name = f.name
            if not (name.endswith(".nii") or name.endswith(".nii.gz")):
                continue
            stem = name[:-7] if name.endswith(".nii.gz") else name[:-4]
            if stem.endswith("_dwi") or stem.endswith("_mask") or stem.endswith("_dwiref"):
                continue
            out.append((str(f), "warning", f"{f}: not named *_dwi.nii[.gz]; ignored"))
    return out


def validate_dataset(input_path, *, participant_label=None, bids_filter=None, mask=None,
                     scan_checks=()) -> pd.DataFrame:
    """Every problem of an input dataset (or one DWI file), one row per (file, problem).

    ``scan_checks``: callables ``check(item, bvals) -> [(severity, message), ...]`` run on every
    scan whose gradient table reads (the pipeline's own checks, e.g. which shells its tensor model
    will fit: :func:`alps.pipeline.preprocess.acquisition_check`).

    Returns a DataFrame with :data:`COLUMNS` (``severity`` ``error``: that scan will fail;
    ``warning``: it will run; ``info``: what will be done to it), sorted by file; empty when
    everything is valid and no check had anything to say.
    """
    root = Path(input_path)
    rows: list[tuple[str, str, str]] = []
    warnings: list[str] = []
    try:
        items = discover(root, participant_label=participant_label, bids_filter=bids_filter, mask=mask,
                         strict=False, warnings=warnings)
    except InputError as exc:
        return pd.DataFrame([(str(root), "error", str(exc))], columns=COLUMNS)
    if root.is_dir():
        if not (root / "dataset_description.json").is_file():
            rows.append((str(root / "dataset_description.json"), "warning",
                         f"{root}: no dataset_description.json (required by BIDS)"))
        named = {str(it.dwi) for it in items if it.invalid}  # already errors
        rows += [r for r in _ignored_files(root) if r[0] not in named]
    rows += [(w.split(": ", 1)[0], "warning", w) for w in warnings]
    for item in items:
        rows += _scan_problems(item, scan_checks)
    df = pd.DataFrame(rows, columns=COLUMNS).drop_duplicates()
    return df.sort_values(["file", "severity", "problem"], kind="stable").reset_index(drop=True)
