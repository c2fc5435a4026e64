"""The per-scan contract between the stages, in types.

::

    item ──preprocess_subject──► Preprocessed ──measure_subject──► ScanResult
                                     │   (the prepared DWI,            (index, per-ROI values,
                                     │    mask, registration,           QC flags, SEs)
                                     │    gradient check, acquisition)
                                     └──────────scan_se──────────► (inside ScanResult)

* :class:`PreparedDWI` — the DWI the tensor model is fitted on: the input's volumes the model
  uses (:func:`alps.imaging.shells.select_volumes`), their b-values and b-vectors in one stated
  frame (FSL convention as stored beside the image; :attr:`PreparedDWI.bvecs_voxel` gives the
  voxel axes the tensor is fitted in) with the gradient check's correction applied — here, once
  (:meth:`PreparedDWI.corrected`) — and the image's affine. The voxel data is read from the
  input file when asked (:meth:`PreparedDWI.read`, a bounding box for the standard errors).
* :class:`Preprocessed` — stage 1's result: the prepared DWI, the mask, the registration, the
  gradient check, the acquisition and motion summaries, the parameters, and the record written
  as ``*_desc-preprocess.json``. Stage 2 and the uncertainty take it; a reused stage 1 gives
  the same object (:meth:`Preprocessed.load`).
* :class:`ScanResult` — stage 2's result (written as ``*_desc-alps.json``).

Each result's :meth:`columns` are its cells of the scan's row (:mod:`alps.pipeline.columns`
declares and orders them); the row is made once, in :func:`alps.pipeline.subject.process_subject`.
Adding a stage-1 step: a field of :class:`Preprocessed` (from its record) and its
:meth:`Preprocessed.columns`; a column: :mod:`alps.pipeline.columns` and the ``columns()`` that
fills it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..imaging import shells
from .layout import ScanLayout, load_registration, read_json, scan_layout
from .params import PreprocessParams
from .records import outputs_intact

__all__ = ["GradientCheck", "PreparedDWI", "Preprocessed", "ScanResult", "select", "stage_columns"]


@dataclass(frozen=True)
class GradientCheck:
    """The gradient-orientation check of a scan (:func:`alps.imaging.gradcheck.check_gradients`):
    the ``best`` candidate transform of the table (voxel-axis label), its score ``margin`` over
    the table as given, whether it ``flag``-ged, and whether the fit used the ``corrected`` table."""

    best: str
    margin: float
    flag: bool
    corrected: bool = False

    @classmethod
    def from_scores(cls, scores, *, correct: bool) -> "GradientCheck":
        """From the check's verdict (:class:`alps.imaging.gradcheck.GradientScores`);
        ``correct``: the run corrects a flagged table."""
        return cls(best=str(scores.best), margin=float(scores.margin), flag=bool(scores.flag),
                   corrected=bool(correct and scores.flag))

    @classmethod
    def from_record(cls, rec) -> "GradientCheck | None":
        return None if not rec else cls(str(rec["best"]), float(rec["margin"]), bool(rec["flag"]),
                                        bool(rec["corrected"]))

    def as_record(self) -> dict:
        return {"best": self.best, "margin": self.margin, "flag": self.flag, "corrected": self.corrected}

    def apply(self, bvecs_fsl, affine) -> np.ndarray:
        """The b-vectors the fit uses: corrected when :attr:`corrected`, else as given."""
        if not self.corrected:
            return np.asarray(bvecs_fsl, float)
        from ..imaging.gradcheck import correct_bvecs

        return correct_bvecs(bvecs_fsl, self.best, affine=affine)

    def columns(self) -> dict:
        return {"gradcheck_best": self.best, "gradcheck_margin": self.margin, "gradcheck_flag": self.flag,
                "gradcheck_corrected": self.corrected}


def select(bvals, params: PreprocessParams, *, path="<bval>"):
    """The volumes ``params``' tensor model is fitted on and what describes them
    (:func:`alps.imaging.shells.select_volumes` with the stage's parameters)."""
    return shells.select_volumes(bvals, model=params.tensor_model, max_bval=params.max_bval,
                                 b0_threshold=params.b0_threshold, tolerance=params.shell_tolerance, path=path)


@dataclass(frozen=True, eq=False)
class PreparedDWI:
    """The DWI the tensor model is fitted on (module docstring): volumes ``volumes`` of the file
    ``path`` (grid ``shape``, ``affine``), b-values ``bvals`` and b-vectors ``bvecs`` (FSL
    convention, the gradient check's correction applied)."""

    path: Path
    volumes: np.ndarray
    bvals: np.ndarray
    bvecs: np.ndarray
    affine: np.ndarray
    shape: tuple
    gradcheck: GradientCheck | None = None

    @property
    def bvecs_voxel(self) -> np.ndarray:
        """The b-vectors in the image's voxel axes: the frame the tensor is fitted in."""
        from ..io.gradients import fsl_to_voxel

        return fsl_to_voxel(self.bvecs, self.affine)

    @classmethod
    def from_dwi(cls, dwi, volumes) -> "PreparedDWI":
        """The selected ``volumes`` of a loaded, validated :class:`alps.io.DWI`."""
        volumes = np.asarray(volumes, int)
        return cls(Path(dwi.path), volumes, np.asarray(dwi.bvals, float)[volumes],
                   np.asarray(dwi.bvecs, float)[volumes], np.asarray(dwi.affine, float), tuple(dwi.data.shape[:3]))

    @classmethod
    def from_files(cls, item, params: PreprocessParams, *, shape=None) -> "PreparedDWI":
        """The same from the input files, without reading the voxel data (a reused stage 1):
        header, affine and gradient table checked again; ``shape``: the grid stage 1 saw."""
        from ..io.dwi import check_affine, load_image
        from ..io.gradients import read_bvals_bvecs

        img = load_image(item.dwi)
        if len(img.shape) != 4 or (shape is not None and list(img.shape[:3]) != list(shape)):
            raise RuntimeError(f"{item.dwi}: grid {img.shape[:3]} differs from the preprocessed one "
                               f"{list(shape)}; the input changed since stage 1, rerun it")
        affine = check_affine(img.affine, item.dwi)
        bvals, bvecs = read_bvals_bvecs(item.bval, item.bvec, n_volumes=img.shape[3], b0_threshold=params.b0_threshold)
        volumes, _ = select(bvals, params, path=item.bval)
        return cls(Path(item.dwi), volumes, bvals[volumes], bvecs[volumes], affine, tuple(img.shape[:3]))

    def corrected(self, check: GradientCheck | None) -> "PreparedDWI":
        """With the gradient check's verdict, its correction applied to :attr:`bvecs` (the one place)."""
        if check is None:
            return self
        return dataclasses.replace(self, bvecs=check.apply(self.bvecs, self.affine), gradcheck=check)

    def read(self, box=None) -> np.ndarray:
        """The selected volumes' voxel data, float32 (X, Y, Z, N), from the file; ``box``: a tuple
        of three slices to read only that part."""
        import nibabel as nib

        box = tuple(box) if box is not None else (slice(None),) * 3
        data = np.asarray(nib.load(str(self.path)).dataobj[box + (slice(None),)], np.float32)
        return data[..., self.volumes] if len(self.volumes) != data.shape[3] else data


def stage_columns(times: dict) -> dict:
    """``time_<step>_s`` columns of a stage's step times."""
    return {f"time_{k}_s": v for k, v in (times or {}).items()}


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """Stage 1's result for one scan (module docstring); ``record`` is ``*_desc-preprocess.json``."""

    item: object
    layout: ScanLayout
    params: PreprocessParams
    dwi: PreparedDWI
    registration: object
    acquisition: dict
    gradcheck: GradientCheck | None
    motion: dict | None
    record: dict = field(repr=False)
    reused: bool = False
    sdc: dict | None = None  # the susceptibility correction (alps.pipeline.distortion); None: sdc off
    eddy: dict | None = None   # the eddy-current and motion correction's summary (alps.pipeline.eddy_step)

    @classmethod
    def from_record(cls, item, out_dir, record: dict, *, reused: bool, dwi: PreparedDWI | None = None) -> "Preprocessed":
        """From a stage-1 record (``dwi``: the prepared DWI when stage 1 just made it; else it is
        described from the input files, :meth:`PreparedDWI.from_files`)."""
        lay = scan_layout(out_dir, item)
        params = PreprocessParams.from_mapping(record["provenance"]["parameters"], source=str(lay.preprocess_json))
        check = GradientCheck.from_record(record.get("gradcheck"))
        if dwi is None and record.get("signal"):  # the corrected signal stage 1 kept (alps.pipeline.signal)
            from .signal import prepared

            dwi = prepared(lay, record["signal"], b0_threshold=params.b0_threshold)
        elif dwi is None:
            dwi = PreparedDWI.from_files(item, params, shape=record.get("shape"))
        return cls(item=item, layout=lay, params=params, dwi=dwi.corrected(check),
                   registration=load_registration(record, lay.dir), acquisition=dict(record.get("acquisition") or {}),
                   gradcheck=check, motion=record.get("motion"), eddy=(record.get("eddy") or {}).get("summary"),
                   record=record, reused=reused, sdc=record.get("sdc"))

    @classmethod
    def load(cls, item, out_dir) -> "Preprocessed":
        """A finished stage 1 from its record on disk; raises ``RuntimeError`` when there is none or
        its outputs are missing or modified."""
        lay = scan_layout(out_dir, item)
        rec = read_json(lay.preprocess_json)
        if not rec or rec.get("status") != "ok":
            raise RuntimeError(f"{lay.preprocess_json}: no successful preprocessing for {item.key}; "
                               "run preprocess_subject first")
        if not outputs_intact(lay.dir, rec):
            raise RuntimeError(f"{lay.preprocess_json}: preprocessing outputs of {item.key} are missing or "
                               "modified; rerun preprocess_subject")
        return cls.from_record(item, out_dir, rec, reused=True)

    @property
    def signal_changed(self) -> tuple:
        """The stage-1 steps that changed the signal before the fit (the input no longer is what
        was fitted)."""
        p = self.params
        return tuple(k for k in ("denoise", "gibbs", "motion_correction") if getattr(p, k))

    @property
    def signal_kept(self) -> tuple:
        """The stage-1 steps whose corrected signal was kept (``desc-preproc_dwi``,
        :mod:`alps.pipeline.signal`): the prepared DWI is that signal, the SEs bootstrap it."""
        return tuple((self.record.get("signal") or {}).get("steps") or ())

    @property
    def times(self) -> dict:
        return dict(self.record.get("times_s") or {})

    def mask(self) -> np.ndarray:
        """The brain mask (the derivative written by stage 1)."""
        import nibabel as nib

        return np.asarray(nib.load(str(self.layout.mask)).dataobj) > 0

    def columns(self) -> dict:
        """Stage 1's cells of the scan's row: registration metrics, acquisition, motion summary,
        gradient check."""
        out = dict(self.registration.metrics)
        out.update(self.acquisition)
        out.update(self.motion or {})
        out.update(self.eddy or {})
        out.update(self.gradcheck.columns() if self.gradcheck else {})
        from .distortion import sdc_columns

        out.update(sdc_columns(self.sdc))
        return out


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Stage 2's result for one scan: ``values`` (:func:`alps.imaging.measure.measure`: the index
    in template and scanner axes, per-ROI values), ``qc_flags``, the standard errors ``se``
    (:func:`alps.pipeline.uncertainty.scan_se`), step ``times``, ``provenance``, and
    ``placement``: where the ROIs went and the registration's share of the uncertainty
    (:func:`alps.pipeline.placement.columns`: ``alps_reg_se``, ``alps_total_se``, ``roi_sd_*``,
    ``roi_shift_*`` ...); ``record`` is ``*_desc-alps.json``."""

    values: dict
    qc_flags: tuple
    se: dict
    times: dict
    provenance: dict = field(repr=False)
    reused: bool = False
    placement: dict = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict, *, reused: bool) -> "ScanResult":
        from .uncertainty import SE_KEYS

        return cls(values=dict(record["values"]), qc_flags=tuple(record["qc_flags"]),
                   se={k: record["se"][k] for k in SE_KEYS}, times=dict(record.get("times_s") or {}),
                   provenance=record["provenance"], reused=reused, placement=dict(record.get("placement") or {}))

    def as_record(self, item) -> dict:
        """``*_desc-alps.json``: the scan, the result and its provenance."""
        return {"participant_id": item.participant_id, "session_id": item.session_id, "status": "ok", "error": "",
                "values": self.values, "qc_flags": list(self.qc_flags), "se": self.se, "placement": self.placement,
                "times_s": self.times, "provenance": self.provenance}

    def columns(self) -> dict:
        """Stage 2's cells of the scan's row."""
        out = dict(self.values)
        out["qc_flags"] = ";".join(self.qc_flags)
        out["qc_pass"] = not self.qc_flags
        out.update(self.se)
        out.update(self.placement)
        out.update(stage_columns(self.times))
        return out
