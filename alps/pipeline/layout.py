"""The derivatives layout: the one place where the name of every output is decided.

``OUT_DIR`` is a BIDS derivatives dataset. Per scan (``<key>`` = ``sub-X`` or ``sub-X_ses-Y``, then
the scan's series entities ``acq``, ``rec``, ``dir``, ``run``, ``space`` when its input has them, e.g.
``sub-X_ses-Y_dir-AP_run-2``; the lock of such a scan is ``.<key>.alps-run.lock``)::

    OUT_DIR/sub-X[/ses-Y]/.alps-run.lock                   the scan's lock
    OUT_DIR/sub-X[/ses-Y]/<key>_desc-run.json              its row of the cohort tables (alps group)
    OUT_DIR/sub-X[/ses-Y]/dwi/<key>_desc-brain_mask.nii.gz
                              <key>_desc-tensor_dwimap.nii.gz   (Dxx Dxy Dxz Dyy Dyz Dzz, voxel axes)
                              <key>_desc-FA_dwimap.nii.gz, _desc-MD_, _desc-colorFA_
                              <key>_from-dwi_to-MNI152NLin2009aSym_mode-image_xfm.mat   (ANTs affine)
                              <key>_from-dwi_to-MNI152NLin2009aSym_mode-image_desc-warp_xfm.nii.gz   (SyN)
                              <key>_from-MNI152NLin2009aSym_to-dwi_mode-image_desc-warp_xfm.nii.gz   (SyN)
                              <key>_from-dwi_to-MNI152NLin2009aSym_desc-RAS4x4_xfm.txt   (affine part, RAS)
                              <key>_desc-preprocess.json    stage-1 record (provenance, registration)
                              <key>_desc-alpsrois_dseg.nii.gz, <key>_desc-qc.png
                              <key>_desc-alps.json          stage-2 record (the scan's results)

and the cohort tables :data:`COHORT_TABLES` in ``OUT_DIR``. The ``from-dwi_to-MNI...`` transforms
map DWI images into template space (the fMRIPrep/QSIPrep sense of ``from``/``to``).
Everything that reads or writes a derivative asks :func:`scan_layout` (or :func:`find_scan`)
for its path and loads it back through the functions here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..imaging.template import SPACE
from ..io.bids import scan_key
from ..io.bidsnames import SCAN_ENTITIES

__all__ = ["ScanLayout", "scan_layout", "find_scan", "run_records", "COHORT_TABLES", "COHORT_FILES", "RELIABILITY_FILES", "LOCK_NAME", "SPACE",
           "read_json", "load_registration", "id_columns", "row_entities", "row_layout", "ENTITY_COLUMNS"]

#: columns of the cohort tables holding a scan's series entities (present when some scan has them).
ENTITY_COLUMNS = SCAN_ENTITIES

#: the cohort tables under OUT_DIR, in the order they are written (``timings.tsv`` holds the
#: run-dependent columns; the others are deterministic).
COHORT_TABLES = ("timings.tsv", "preprocess.tsv", "alps.tsv", "qc.tsv", "provenance.tsv")
#: the cohort tables and their data dictionaries (``alps.json`` beside ``alps.tsv``, :mod:`.columns`).
COHORT_FILES = COHORT_TABLES + tuple(n.replace(".tsv", ".json") for n in COHORT_TABLES)

#: what ``alps reliability OUT_DIR`` writes there (:mod:`alps.cli.reliability`): the table, the
#: Bland-Altman data and the figure stem (``.png`` + ``.pdf``).
RELIABILITY_FILES = {"table": "reliability.tsv", "bland_altman": "reliability_bland_altman.tsv",
                     "figure": "reliability_bland_altman"}

#: name of the advisory lock files (OUT_DIR's and each scan's).
LOCK_NAME = ".alps-run.lock"

#: stage-1 derivative files recorded (and hashed) in the preprocess record, by role.
PREPROCESS_FILES = ("mask", "tensor", "fa", "md", "colorfa", "xfm_ras")


@dataclass(frozen=True)
class ScanLayout:
    """Paths of one scan's derivatives under ``root`` (OUT_DIR)."""

    root: Path
    participant_id: str
    session_id: str | None = None
    entities: tuple = ()  # series entities: (("dir", "AP"), ("run", "1"))

    @property
    def key(self) -> str:
        """Output prefix: ``sub-X`` or ``sub-X_ses-Y``, then the series entities."""
        return scan_key(self.participant_id, self.session_id, self.entities)

    @property
    def scan_dir(self) -> Path:
        """``OUT_DIR/sub-X[/ses-Y]``: holds the lock and the run record."""
        d = Path(self.root) / self.participant_id
        return d / self.session_id if self.session_id else d

    @property
    def dir(self) -> Path:
        """``OUT_DIR/sub-X[/ses-Y]/dwi``: the derivative files."""
        return self.scan_dir / "dwi"

    def _f(self, suffix: str) -> Path:
        return self.dir / f"{self.key}_{suffix}"

    # stage 1
    mask = property(lambda self: self._f("desc-brain_mask.nii.gz"))
    tensor = property(lambda self: self._f("desc-tensor_dwimap.nii.gz"))
    fa = property(lambda self: self._f("desc-FA_dwimap.nii.gz"))
    md = property(lambda self: self._f("desc-MD_dwimap.nii.gz"))
    colorfa = property(lambda self: self._f("desc-colorFA_dwimap.nii.gz"))
    xfm_ras = property(lambda self: self._f(f"from-dwi_to-{SPACE}_desc-RAS4x4_xfm.txt"))
    preprocess_json = property(lambda self: self._f("desc-preprocess.json"))
    # stage 2
    dseg = property(lambda self: self._f("desc-alpsrois_dseg.nii.gz"))
    qc_png = property(lambda self: self._f("desc-qc.png"))
    result_json = property(lambda self: self._f("desc-alps.json"))
    # the scan as a whole
    lock = property(lambda self: self.scan_dir / (f".{self.key}{LOCK_NAME}" if self.entities else LOCK_NAME))
    run_record = property(lambda self: self.scan_dir / f"{self.key}_desc-run.json")

    def transform_names(self) -> dict[str, str]:
        """File names of the registration's transforms by role (:func:`alps.imaging.registration.register`)."""
        return {"affine": f"{self.key}_from-dwi_to-{SPACE}_mode-image_xfm.mat",
                "warp": f"{self.key}_from-dwi_to-{SPACE}_mode-image_desc-warp_xfm.nii.gz",
                "inverse_warp": f"{self.key}_from-{SPACE}_to-dwi_mode-image_desc-warp_xfm.nii.gz"}

    def file_names(self) -> frozenset:
        """The names of every file this scan writes: its derivatives in :attr:`dir` and its run
        record in :attr:`scan_dir` (what its temporaries are named after; the other scans of
        the folder write none of them)."""
        own = (self.mask, self.tensor, self.fa, self.md, self.colorfa, self.xfm_ras, self.preprocess_json,
               self.dseg, self.qc_png, self.result_json, self.run_record)
        return frozenset([p.name for p in own] + list(self.transform_names().values()))

    def relative(self, path) -> str:
        """``path`` relative to OUT_DIR, with ``/`` separators (as tables list it)."""
        return Path(path).relative_to(self.root).as_posix()

    def read_preprocess(self) -> dict | None:
        return read_json(self.preprocess_json)

    def read_result(self) -> dict | None:
        return read_json(self.result_json)


def scan_layout(out_dir, item) -> ScanLayout:
    """The layout of a scan (anything with ``participant_id`` and ``session_id``)."""
    return ScanLayout(Path(out_dir), item.participant_id, item.session_id or None,
                      tuple(getattr(item, "entities", ()) or ()))


def id_columns(item) -> dict:
    """The identifying columns of a scan's row: ``participant_id``, ``session_id`` and one
    column per series entity it has (:data:`ENTITY_COLUMNS`)."""
    out = {"participant_id": item.participant_id, "session_id": item.session_id}
    out.update(dict(getattr(item, "entities", ()) or ()))
    return out


def _label(v):
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v) if str(v) else None


def row_entities(row) -> tuple:
    """The series entities of a table row (inverse of :func:`id_columns`)."""
    return tuple((k, _label(row.get(k))) for k in ENTITY_COLUMNS if _label(row.get(k)) is not None)


def row_layout(root, row) -> ScanLayout:
    """The layout of the scan of a table row (``participant_id``, ``session_id``, entities)."""
    ses = _label(row.get("session_id"))
    return ScanLayout(Path(root), row["participant_id"], ses, row_entities(row))


def find_scan(out_dir, participant_id: str, session_id: str | None = None, entities=()) -> ScanLayout:
    """The layout of a scan known by its ids (e.g. a row of ``alps.tsv``); with no
    ``session_id`` and no session-less derivatives, the participant's only session.

    Raises ``FileNotFoundError`` naming OUT_DIR when the scan has no derivatives, and
    ``ValueError`` when it has several sessions and none was given.
    """
    out_dir = Path(out_dir)
    session_id = session_id if isinstance(session_id, str) and session_id else None
    lay = ScanLayout(out_dir, participant_id, session_id, tuple(entities))
    if lay.dir.is_dir() or session_id:
        if not lay.dir.is_dir():
            raise FileNotFoundError(f"{lay.dir}: no derivatives for {lay.key} (has the pipeline run?)")
        return lay
    sessions = sorted(p.parent.name for p in (out_dir / participant_id).glob("ses-*/dwi") if p.is_dir())
    if not sessions:
        raise FileNotFoundError(f"{out_dir}/{participant_id}: no derivatives (has the pipeline run?)")
    if len(sessions) > 1:
        raise ValueError(f"{out_dir}/{participant_id}: derivatives of several sessions {sessions}; say which")
    return ScanLayout(out_dir, participant_id, sessions[0], tuple(entities))


def run_records(out_dir) -> list[Path]:
    """Every scan's run record under OUT_DIR (``sub-*/[ses-*/]*_desc-run.json``), sorted."""
    out_dir = Path(out_dir)
    return sorted(list(out_dir.glob("sub-*/*_desc-run.json")) + list(out_dir.glob("sub-*/ses-*/*_desc-run.json")))


def read_json(path) -> dict | None:
    """A JSON object from ``path``, or None when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def load_registration(record: dict, base):
    """The :class:`alps.imaging.registration.Registration` of a preprocess record, its transform
    files resolved against ``base`` (the scan's ``dwi`` directory)."""
    from ..imaging.registration import load_registration as _load

    info = dict(record["registration"])
    info["forward_transforms"] = [str(Path(base) / f) for f in info["forward_transforms"]]
    info["inverse_transforms"] = [str(Path(base) / f) for f in info["inverse_transforms"]]
    return _load(info)
