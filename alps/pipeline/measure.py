"""Stage 2 of a scan: template ROIs → native weights → ALPS in template and scanner axes →
QC flags and image → standard errors, from stage 1's result
(:class:`~alps.pipeline.contract.Preprocessed`, :mod:`alps.pipeline.preprocess`).

Writes ``<key>_desc-alpsrois_dseg.nii.gz``, ``<key>_desc-qc.png`` and ``<key>_desc-alps.json``.
"""
from __future__ import annotations

import time

import nibabel as nib
import numpy as np

from .. import atomic
from ..imaging import coverage, dti, measure, qc, shells
from ..imaging import tensor as T
from ..imaging import template as tpl
from ..imaging.roi import DEFAULT_CENTERS_MM, ROI_NAMES, default_spheres
from ..io.files import sha256
from . import distortion, eddy_step
from .contract import Preprocessed, ScanResult
from .layout import load_registration, read_json, scan_layout
from .params import MeasureParams
from .preprocess import save_map
from . import placement
from . import provenance as _prov
from .provenance import reuse_key
from .records import unlink
from .uncertainty import scan_se


def check_roi_coverage(shape, affine, registration, centers_mm, radius_mm, *, path="<image>") -> None:
    """Raise ``ValueError`` if a template ROI (sphere ``radius_mm`` about each centre) is not
    entirely inside the native field of view after registration (e.g. a slab that does not
    reach MNI z = 27 mm), naming the ROIs, the template z range the slab covers there and what it
    must cover (:func:`alps.imaging.coverage.roi_level_problem`). ``centers_mm``: {name: (x, y, z)}
    in template mm."""
    problem = coverage.roi_level_problem(registration, shape, affine, centers_mm=centers_mm, radius_mm=radius_mm)
    if problem:
        raise ValueError(f"{path}: {problem}")


def measure_subject(pre, out_dir, *, params: MeasureParams | None = None, force: bool = False,
                    qc_png: bool = True, **overrides) -> ScanResult:
    """ROIs → ALPS (template and scanner axes) → QC → standard errors, from stage 1's result.

    ``pre``: the :class:`~alps.pipeline.contract.Preprocessed` of
    :func:`alps.pipeline.preprocess_subject`, or the scan (its finished stage 1 is loaded from
    OUT_DIR). ``params`` (default: the defaults) with ``overrides`` (names of
    :class:`~alps.pipeline.params.MeasureParams`). Returns the typed
    :class:`~alps.pipeline.contract.ScanResult` (its record is written to ``<key>_desc-alps.json``).
    """
    p = (params or MeasureParams()).replace(**overrides)
    if not isinstance(pre, Preprocessed):
        pre = Preprocessed.load(pre, out_dir)
    item, lay = pre.item, pre.layout
    provenance = {"preprocess": pre.record["provenance"], "preprocess_outputs_sha256": pre.record["outputs_sha256"],
                  "parameters": p.as_dict(), "versions": _prov.package_versions()}
    if p.roi == "jhu":
        from ..imaging.atlas import find_jhu

        provenance["atlas_sha256"] = sha256(find_jhu(p.atlas_path))
    old = read_json(lay.result_json)
    outputs = [lay.dseg] + ([lay.qc_png] if qc_png else [])
    if (not force and old and old.get("status") == "ok" and "values" in old
            and reuse_key(old.get("provenance") or {}) == reuse_key(provenance)
            and all(f.is_file() for f in outputs)):
        return ScanResult.from_record(old, reused=True)
    unlink(lay.result_json)
    unlink(lay.qc_png)

    t0 = time.perf_counter()
    tensor, aff = dti.load_tensor_image(lay.tensor)
    fa = np.asarray(nib.load(str(lay.fa)).dataobj, np.float32)
    md = np.asarray(nib.load(str(lay.md)).dataobj, np.float32)
    reg = pre.registration
    check_roi_coverage(fa.shape, aff, reg, DEFAULT_CENTERS_MM,
                       p.roi_radius if p.roi == "spheres" else 0.0, path=item.dwi)

    def weights_at(r, centres=None):  # ROI weights (and sphere centres) through a registration
        if centres is None and p.roi == "spheres":
            centres = placement.place(tensor, aff, r, p)
        w = measure.roi_weights(p.roi, fa.shape, aff, r, radius_mm=p.roi_radius, weighting=p.roi_weighting,
                                supersample=p.supersample, lattice_mm=p.lattice_mm, atlas_path=p.atlas_path,
                                centers_mm=centres)
        if p.fa_min is not None or p.purity_min is not None:
            q = r.rotation @ T.polar_rotation(aff[:3, :3])
            _, evecs = T.eig(tensor)
            w = measure.filter_weights(w, fa=fa, fa_min=p.fa_min, v1_template=evecs[..., :, 0] @ q.T,
                                       purity_min=p.purity_min)
        return w, centres

    weights, centres = weights_at(reg)
    values = measure.measure(tensor, aff, reg, weights, fa=fa, md=md)
    dseg = measure.dseg_from_weights(weights, fa.shape)
    save_map(dseg, aff, lay.dseg, np.uint8)
    times = {"measure": round(time.perf_counter() - t0, 3)}
    # the standard errors before the flags: se_high is one of them
    se = scan_se(pre, weights, n_boot=p.se_replicates, seed=p.se_seed, se_max=p.se_max)
    times["se"] = se.pop("time_se_s")
    # flag (not fail) the band between the preprocess failure threshold and the QC warning one
    # the ROIs' placement and the registration's share of the uncertainty (alps.pipeline.placement)
    t = time.perf_counter()
    rse = placement.reg_se(pre.mask(), fa, tensor, aff, reg, centres, weights_at, p)
    scatter = rse.pop("scatter", None)
    placed = placement.columns(centres, rse, se)
    if p.reg_se:
        times["reg_se"] = round(time.perf_counter() - t, 3)
    flags = qc.flags({**values, **pre.columns(), **se, **placed},
                     min_reg_corr=max(p.qc_min_reg_corr, pre.params.min_reg_corr),
                     min_reg_dice=max(qc.DEFAULTS["min_reg_dice"], pre.params.min_reg_dice), max_roi_sd=p.qc_max_roi_sd)
    flags += shells.fit_flags(pre.acquisition, model=pre.params.tensor_model, max_bval=pre.params.max_bval)
    if qc_png:
        t = time.perf_counter()
        _qc_png(lay, fa, tensor, aff, reg, dseg, p, centres=centres, scatter=scatter,
                extra_rows=eddy_step.qc_rows(pre) + distortion.qc_rows(pre, dseg))
        times["qc"] = round(time.perf_counter() - t, 3)
    result = ScanResult(values=values, qc_flags=tuple(flags), se=se, times=times, provenance=provenance,
                        placement=placed)
    atomic.write_json(lay.result_json, result.as_record(item))
    return result


def _qc_png(lay, fa, tensor, aff, reg, dseg, p: MeasureParams, *, centres=None, scatter=None, extra_rows=()):
    ref = tpl.load("wm", resolution=2)
    slices = qc.template_slices(fa, tensor, aff, reg, ref)
    labels = None
    extra = {}
    if scatter:
        extra["centre_scatter"] = [scatter[n] for n in ROI_NAMES if n in scatter]
    if p.roi == "spheres":
        centers = [s.center_mm for s in default_spheres(radius_mm=p.roi_radius, centers_mm=centres)]
        if centres:
            extra["default_centers_mm"] = [DEFAULT_CENTERS_MM[n] for n in ROI_NAMES]
            z = float(np.mean([c[2] for c in centres.values()]))
            if abs(z - DEFAULT_CENTERS_MM["proj_L"][2]) > 1:  # show the level the spheres went to
                extra["zoom_slices"] = qc.template_slices(fa, tensor, aff, reg, ref, z_mm=z)
        radius = p.roi_radius
        what = f"spheres, r = {p.roi_radius:g} mm"
    else:  # JHU labels, shown as outlines on the template slices
        from nilearn.image import resample_to_img

        centers, radius = list(DEFAULT_CENTERS_MM.values()), 1.0
        labels = np.rint(resample_to_img(measure.template_rois("jhu", atlas_path=p.atlas_path), ref,
                                         interpolation="nearest", force_resample=True,
                                         copy_header=True).get_fdata()).astype(np.uint8)
        what = "JHU labels SCR 25/26, SLF 41/42"
    qc.figure(lay.qc_png, slices=slices, wm_t=ref.get_fdata(), centers_mm=centers, radius_mm=radius,
              title=f"{lay.key}  ({what})", native_fa=fa, native_dseg=dseg, native_affine=aff,
              template_labels=labels, extra_rows=extra_rows, **extra)


def failure_qc(item, out_dir, reason: str, params: MeasureParams | None = None, *, draw: bool = True) -> dict:
    """The QC image of a scan that failed after its registration (the registration QC, or the ROI
    level outside the field of view): the template-space panels of :func:`alps.imaging.qc.figure`
    (colour FA at the ROI level, warped FA on the template WM, axial and coronal, with the ROIs)
    and ``reason`` under the title. Returns ``{"qc_png": path relative to OUT_DIR}`` and the
    registration metrics of the preprocess record, or ``{}`` when the scan did not get as far as a
    registration (or the image cannot be drawn: it never raises). ``draw=False``: the metrics only
    (a run with ``qc_png=False``)."""
    p = params or MeasureParams()
    lay = scan_layout(out_dir, item)
    pre = read_json(lay.preprocess_json)
    if not pre or "registration" not in pre:
        return {}
    out = dict(pre["registration"].get("metrics") or {})
    if not draw:
        return out
    try:
        tensor, aff = dti.load_tensor_image(lay.tensor)
        fa = np.asarray(nib.load(str(lay.fa)).dataobj, np.float32)
        reg = load_registration(pre, lay.dir)
        ref = tpl.load("wm", resolution=2)
        centers = [s.center_mm for s in default_spheres(radius_mm=p.roi_radius)]
        qc.figure(lay.qc_png, slices=qc.template_slices(fa, tensor, aff, reg, ref), wm_t=ref.get_fdata(),
                  centers_mm=centers, radius_mm=p.roi_radius, title=f"{lay.key}: FAILED", note=reason)
    except Exception:  # noqa: BLE001 - a QC image must never turn a failure into a crash
        return out
    out["qc_png"] = lay.relative(lay.qc_png)
    return out
