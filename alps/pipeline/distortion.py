"""Stage 1's susceptibility-distortion correction (``sdc``): which field a scan has, the correction
of its series, its derivatives and its record.

For a scan of a BIDS dataset (not a single file, not a preprocessed QSIPrep input) the field source
is found from the files and their sidecars (:func:`alps.io.fmap.field_source`, in order of
preference: the other ``dir-`` DWI series of opposite phase encoding, reverse-PE b = 0 images in
``fmap/``, a GRE phase difference, a field map); with ``sdc: auto`` (the default) a scan that has
one is corrected (:mod:`alps.imaging.susceptibility`), and one without is left as it is
(``sdc_source`` ``none``). Missing or contradictory ``PhaseEncodingDirection``/``TotalReadoutTime``
are an :class:`~alps.io.InputError` naming the file: that scan fails, the cohort goes on.

* ``pepolar-dwi`` — both full series: the field from their mean b = 0 images
  (:func:`~alps.imaging.susceptibility.correct_pepolar`, with the rigid check of the pair), the
  two series taken in the order of their file names, so that the two scans of a pair compute the
  same field whichever runs first (each scan computes it: there is no cache between scans);
  with ``sdc_pairs: auto`` each matched pair of diffusion-weighted volumes also gets its own field
  (:mod:`alps.imaging.volume_pairs`: eddy currents along the phase-encoding axis). Each series
  keeps its own row; :func:`alps.pipeline.sdc_tables.combine_pairs` combines them per participant.
* ``pepolar-epi`` — the opposite ``fmap/*_epi`` b = 0 (on the DWI's grid, or resampled to it)
  against the DWI's own mean b = 0 (or, when ``fmap/`` holds both polarities, the field of the
  two EPIs, resampled to the DWI).
* ``phasediff`` — :func:`~alps.imaging.fieldmap.phasediff_to_hz`, in scanner coordinates (one
  session; :func:`~alps.imaging.susceptibility.correct_fieldmap`).
* ``fieldmap`` — the map times its unit's factor to Hz, in scanner coordinates.

The corrected series is what the mask, the gradient check, the tensor fit and the standard errors
use; stage 1 keeps it as ``<key>_desc-preproc_dwi.nii.gz`` (:mod:`alps.pipeline.signal`). The field (Hz,
on the DWI grid, undistorted space) is written as ``<key>_desc-preproc_fieldmap.nii.gz`` with its
sidecar (``Units: Hz``, the series' ``PhaseEncodingDirection`` and ``TotalReadoutTime``, as
SDCFlows writes its field maps).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import InputError

__all__ = ["dataset_root", "find_source", "field_check", "pairs_planned", "SdcResult", "correct_series",
           "source_provenance", "stage_step", "record_entry", "write_field", "sdc_columns"]


def dataset_root(item) -> Path | None:
    """The BIDS root of a scan (the folder holding its ``sub-X`` folder), or None when its file
    does not lie in a ``sub-X`` folder (a single file given alone: nothing to discover)."""
    dwi = Path(item.dwi)
    for parent in dwi.parents:
        if parent.name == item.participant_id:
            return parent.parent if parent.parent != parent else None
    return None


def find_source(item, params):
    """The scan's :class:`~alps.io.fmap.FieldSource`, or None (``sdc`` off, a single-file or
    already preprocessed input, or no field in the dataset). Raises :class:`~alps.io.InputError`
    naming the file for missing or contradictory phase-encoding metadata."""
    from ..io.fmap import field_source

    if params.sdc == "off" or getattr(item, "preprocessed", False):
        return None
    root = dataset_root(item)
    if root is None:
        return None
    try:
        return field_source(item.dwi, root)
    except InputError as exc:
        raise InputError(f"{exc} (sdc off processes the scan without susceptibility correction)") from None


def field_check(params=None):
    """The check ``alps validate`` and ``alps run`` make of each scan (``check(item, bvals) ->
    [(severity, message)]``): which field source was found and what will be corrected, or the
    error naming the file."""
    from .params import PreprocessParams

    p = params or PreprocessParams()

    def check(item, bvals):
        if p.sdc == "off":
            return []
        try:
            src = find_source(item, p)
        except InputError as exc:
            return [("error", f"{item.dwi}: distortion correction: {exc}")]
        if src is None:
            why = ("preprocessed input" if getattr(item, "preprocessed", False) else
                   "single file" if dataset_root(item) is None else "no reverse phase encoding or field map")
            return [("info", f"{item.dwi}: no susceptibility correction ({why})")]
        pairs = " + per-volume fields of the matched pairs" if pairs_planned(item, p, src) else ""
        return [("info", f"{item.dwi}: susceptibility correction from {src.kind} ({src.via}: "
                 f"{', '.join(f.name for f in src.images)}){pairs}")]

    return check


def pairs_planned(item, params, src=None) -> bool:
    """Whether the per-volume fields of two full reverse-PE series will run for this scan
    (``sdc_pairs`` auto and a ``pepolar-dwi`` source; the matching of volumes is checked when
    the series are loaded). Cheap: sidecars only."""
    if params.sdc == "off" or params.sdc_pairs == "off":
        return False
    src = src if src is not None else find_source(item, params)
    return src is not None and src.kind == "pepolar-dwi"


@dataclass(frozen=True, eq=False)
class SdcResult:
    """The correction of one scan's series: the corrected ``data`` (the volumes stage 1 fits),
    the field (Hz), displacement (voxels along the PE axis) and Jacobian on its grid, the
    :class:`~alps.io.fmap.FieldSource`, the imaging record, the per-volume-pair rows and times."""

    data: np.ndarray
    field_hz: np.ndarray
    displacement_vox: np.ndarray
    jacobian: np.ndarray
    source: object
    record: object
    volume_rows: tuple = ()
    times: dict = dataclasses.field(default_factory=dict)

    def summarised(self, mask, voxel_mm) -> "SdcResult":
        """With the displacement and Jacobian summaries taken within ``mask`` (the brain mask of
        the corrected series)."""
        from ..imaging.susceptibility import field_summary

        s = field_summary(self.displacement_vox, self.jacobian, voxel_mm[self.source.dwi_pe.axis], mask)
        return dataclasses.replace(self, record=dataclasses.replace(self.record, **s))

    def stage_times(self) -> dict:
        """The times of stage 1's table (``time_sdc_s``: the whole correction; ``time_sdc_pairs_s``:
        the per-volume fields within it)."""
        return {k: v for k, v in self.times.items() if k in ("sdc", "sdc_pairs")}

    def as_record(self) -> dict:
        """The ``sdc`` entry of the preprocess record."""
        rec = self.record.as_dict()
        out = {"source": self.source.kind, "via": self.source.via, "images": [p.name for p in self.source.images],
               "method": rec.pop("source"), **rec, "volume_pairs": list(self.volume_rows)}
        out["times_s"] = {k: round(v, 3) for k, v in self.times.items()}
        return out


def _gradients(path: Path, root: Path):
    from ..io.bidsnames import inherited
    from ..io.dwi import gradient_files_for

    found = [inherited(path, root, ext)[0] for ext in (".bval", ".bvec")]
    default = gradient_files_for(path)
    return tuple(f[-1] if f else d for f, d in zip(found, default))


def _image(path):
    from ..io.dwi import load_image

    img = load_image(path)
    data = np.asarray(img.dataobj, np.float32)
    return (data.mean(axis=3) if data.ndim == 4 else data), np.asarray(img.affine, float)


def _on_grid(vol, affine, shape, target_affine):
    from ..imaging.fieldmap import resample_field

    if vol.shape == tuple(shape) and np.allclose(affine, target_affine, atol=1e-4):
        return vol
    return np.maximum(resample_field(vol, affine, shape, target_affine), 0.0).astype(np.float32)


def _pepolar_dwi(item, dwi, data, src, p, voxel_mm):
    from .. import io as aio
    from ..imaging import preprocess as prep
    from ..imaging.susceptibility import correct_pepolar
    from ..imaging.volume_pairs import correct_volume_pairs, matched_volumes
    from .contract import select

    other_path = src.images[0]
    bval, bvec = _gradients(other_path, dataset_root(item))
    other = aio.load_dwi(other_path, bval, bvec, b0_threshold=p.b0_threshold)
    if other.data.shape[:3] != data.shape[:3] or not np.allclose(other.affine, dwi.affine, atol=1e-3):
        raise InputError(f"{other_path}: the reverse phase-encoded series is not on the grid of {item.dwi} "
                         f"({other.data.shape[:3]} vs {data.shape[:3]}); cannot pair them")
    index, _ = select(other.bvals, p, path=bval)
    o_data, o_bvals, o_bvecs = other.data[..., index], other.bvals[index], other.bvecs[index]
    if getattr(p, "eddy_correction", False):  # the other series as this one was: eddy/motion-corrected
        from . import eddy_step

        o_mask = prep.brain_mask(o_data, np.where(o_bvals <= p.b0_threshold, 0.0, o_bvals))
        enc = eddy_step.encoding(item)  # slices as this series'; phase encoding from the other's sidecar
        enc = eddy_step.Encoding(src.pe[0].axis, "PhaseEncodingDirection", enc.slice_axis)
        res = eddy_step.correct_series(o_data, other.affine, o_bvals, o_bvecs, o_mask, p, encoding=enc,
                                       model=eddy_step.model_for(p, pairs=pairs_planned(item, p, src)))
        o_data, o_bvecs = res.data, np.asarray(res.bvecs, float)
    me = (data, dwi.bvals, dwi.bvecs, src.dwi_pe, Path(item.dwi).name)
    it = (o_data, o_bvals, o_bvecs, src.pe[0], Path(other_path).name)
    a, b = (me, it) if me[4] <= it[4] else (it, me)  # one order for both scans of the pair
    times = {}
    t = time.perf_counter()
    ca, cb, _ = correct_pepolar(a[0], a[1], a[3], b[0], b[1], b[3], dwi.affine, inputs=(a[4], b[4]),
                                seed=p.seed)
    times["sdc_field"] = time.perf_counter() - t
    rows = ()
    pairs = matched_volumes(a[1], a[2], b[1], b[2]) if p.sdc_pairs == "auto" else []
    if pairs:
        t = time.perf_counter()
        mask = prep.brain_mask(ca.data, np.where(a[1] <= p.b0_threshold, 0.0, a[1]))
        ca, cb, vrows = correct_volume_pairs(ca, cb, pairs, a[3], b[3], voxel_mm, mask=mask)
        if a is it:  # rows as this scan's volumes
            vrows = [dict(r, volume_a=r["volume_b"], volume_b=r["volume_a"]) for r in vrows]
        rows = tuple(vrows)
        times["sdc_pairs"] = time.perf_counter() - t
    mine = ca if a is me else cb
    return mine, rows, times


def _pepolar_epi(dwi, data, src, p):
    from ..imaging.pepolar import estimate_field
    from ..imaging.susceptibility import _voxel_mm, correct_fieldmap, correct_pepolar

    opp, opp_aff = _image(src.images[0])
    names = tuple(Path(f).name for f in src.images)
    if len(src.images) > 1:  # both polarities in fmap/: the field of the two EPIs
        same, same_aff = _image(src.images[1])
        same = _on_grid(same, same_aff, opp.shape, opp_aff)
        est = estimate_field(opp, same, axis=src.pe[0].axis, signs=(src.pe[0].sign, src.pe[1].sign),
                             readout_s=(src.pe[0].readout_s, src.pe[1].readout_s), voxel_mm=_voxel_mm(opp_aff))
        return correct_fieldmap(data, dwi.bvals, src.dwi_pe, dwi.affine, est.field_hz, opp_aff, source="pepolar",
                                inputs=names)
    opp = _on_grid(opp, opp_aff, data.shape[:3], dwi.affine)
    corr, _, _ = correct_pepolar(data, dwi.bvals, src.dwi_pe, opp, None, src.pe[0], dwi.affine,
                                 inputs=(Path(dwi.path).name,) + names, correct_b=False, seed=p.seed)
    return corr


def _measured(dwi, data, src):
    from ..imaging.fieldmap import phasediff_to_hz
    from ..imaging.susceptibility import _voxel_mm, correct_fieldmap

    names = tuple(Path(f).name for f in src.images)
    fmap, aff = _image(src.images[0])
    if src.kind == "phasediff":
        mag, mag_aff = _image(src.images[1])
        if mag.shape != fmap.shape:
            raise InputError(f"{src.images[1]}: magnitude grid {mag.shape} differs from the phase difference's "
                             f"{fmap.shape}")
        try:
            field, _, _ = phasediff_to_hz(fmap, mag, src.echo_times, _voxel_mm(aff), name=str(src.images[0]))
        except ValueError as exc:
            raise InputError(str(exc)) from None
    else:
        field = fmap * src.hz_per_unit
    return correct_fieldmap(data, dwi.bvals, src.dwi_pe, dwi.affine, field, aff, source=src.kind, inputs=names)


def correct_series(item, dwi, data, params, src) -> SdcResult:
    """Correct ``data`` (the selected volumes of the loaded :class:`alps.io.DWI` ``dwi``, after
    any earlier stage-1 step) for the field of ``src`` (:func:`find_source`); module docstring."""
    t0 = time.perf_counter()
    voxel_mm = dwi.zooms
    rows, times = (), {}
    if src.kind == "pepolar-dwi":
        corr, rows, times = _pepolar_dwi(item, dwi, data, src, params, voxel_mm)
    elif src.kind == "pepolar-epi":
        corr = _pepolar_epi(dwi, data, src, params)
    else:
        corr = _measured(dwi, data, src)
    times["sdc"] = time.perf_counter() - t0
    return SdcResult(corr.data, corr.field_hz, corr.displacement_vox, corr.jacobian, src, corr.record,
                     rows, times)


def source_provenance(src) -> dict:
    """What of a field source decides whether stage 1 is reused: its kind, the SHA-256 of its
    images, and the phase encodings and readout times read from the sidecars."""
    from ..io.files import sha256

    return {"kind": src.kind, "images": {Path(f).name: sha256(f) for f in src.images},
            "pe": [[pe.direction, pe.readout_s] for pe in (src.dwi_pe, *src.pe)],
            "echo_times": list(src.echo_times), "hz_per_unit": src.hz_per_unit}


def stage_step(item, dwi, data, mask, params, src, *, mask_given: bool):
    """Stage 1's step: correct ``data`` (the scan's selected volumes after the earlier steps) for
    the field of ``src`` (:func:`find_source`; None: nothing to do); the brain mask is
    recomputed on the corrected series unless it was given. Returns ``(data, mask, SdcResult or
    None)``."""
    if src is None:
        return data, mask, None
    res = correct_series(item, dwi, data, params, src)
    if not mask_given:
        from ..imaging import preprocess as prep

        mask = prep.brain_mask(res.data, np.where(dwi.bvals <= params.b0_threshold, 0.0, dwi.bvals))
    return res.data, mask, res.summarised(mask, dwi.zooms)


def record_entry(res: SdcResult | None, params) -> dict | None:
    """The ``sdc`` entry of the preprocess record: the correction's, ``{"source": "none"}`` when
    nothing was found (or the input is a single file or preprocessed), None when ``sdc`` is off."""
    if params.sdc == "off":
        return None
    return res.as_record() if res is not None else {"source": "none"}


def write_field(lay, res: SdcResult, affine) -> list:
    """The field (Hz) and its sidecar as derivatives (:attr:`ScanLayout.fieldmap`); returns the
    names written."""
    from .. import atomic
    from ..imaging.susceptibility import fieldmap_sidecar
    from .preprocess import save_map

    save_map(res.field_hz, affine, lay.fieldmap)
    side = fieldmap_sidecar(res.record, intended_for=("bids::" + lay.relative(lay.preproc_dwi),))
    side["FieldSource"] = res.source.kind
    atomic.write_json(lay.fieldmap_json, side)
    return [lay.fieldmap.name, lay.fieldmap_json.name]


def _mean_b0(path, bvals, b0_threshold):
    import nibabel as nib

    proxy = nib.load(str(path)).dataobj
    idx = np.flatnonzero(np.asarray(bvals) <= b0_threshold)
    return np.mean([np.asarray(proxy[..., int(i)], np.float32) for i in idx], axis=0)


def qc_rows(pre, dseg) -> tuple:
    """The QC image's row of the correction (:func:`alps.imaging.qc_distortion.distortion_row`:
    the field, the mean b = 0 before and after) for a corrected scan's
    :class:`~alps.pipeline.contract.Preprocessed`; empty otherwise."""
    import nibabel as nib

    from ..imaging.qc_distortion import distortion_row
    from ..io.gradients import read_bvals_bvecs

    rec = pre.sdc or {}
    if not rec.get("pe_direction") or not pre.layout.fieldmap.is_file():
        return ()
    lay, thr = pre.layout, pre.params.b0_threshold
    field = np.asarray(nib.load(str(lay.fieldmap)).dataobj, np.float32)
    bvals, _ = read_bvals_bvecs(pre.item.bval, pre.item.bvec, b0_threshold=thr)
    before = _mean_b0(pre.item.dwi, bvals, thr)
    after = _mean_b0(pre.dwi.path, pre.dwi.bvals, thr)
    idx = np.argwhere(np.asarray(dseg) > 0)
    centre = np.round(idx.mean(axis=0)).astype(int) if len(idx) else np.array(field.shape) // 2
    draw = distortion_row(field, before, after, pre.mask(), pre.dwi.affine, centre, source=rec["source"],
                          pe_direction=rec["pe_direction"], displacement_max_mm=rec["displacement_max_mm"])
    return ((4.2, draw),)


def sdc_columns(rec) -> dict:
    """The scan's ``sdc_*`` cells from the ``sdc`` entry of its preprocess record (None: ``sdc``
    was off)."""
    if rec is None:
        return {"sdc_source": "off"}
    if not rec.get("pe_direction"):  # searched, nothing found
        return {"sdc_source": rec.get("source", "none")}
    rigid = rec.get("rigid_mm_deg") or []
    pairs = rec.get("volume_pairs") or []
    return {"sdc_source": rec["source"], "sdc_inputs": ";".join(rec.get("images") or []),
            "sdc_readout_s": rec["readout_s"],
            "sdc_displacement_p95_mm": rec["displacement_p95_mm"], "sdc_displacement_max_mm": rec["displacement_max_mm"],
            "sdc_min_jacobian": rec["min_jacobian"], "sdc_mismatch_before": rec["mismatch_before"],
            "sdc_mismatch_after": rec["mismatch_after"],
            "sdc_rigid_mm": max((abs(v) for v in rigid[:3]), default=np.nan),
            "sdc_rigid_deg": max((abs(v) for v in rigid[3:]), default=np.nan),
            "sdc_volume_pairs": len(pairs),
            "sdc_volume_field_rms_hz": rec["volume_field_rms_hz"] if pairs else np.nan}
