"""Stage 2 of a scan: template ROIs → native weights → ALPS in template and scanner axes →
QC flags and image, from the outputs of stage 1 (:mod:`alps.pipeline.preprocess`).

Writes ``<key>_desc-alpsrois_dseg.nii.gz``, ``<key>_desc-qc.png`` and ``<key>_desc-alps.json``.
"""
from __future__ import annotations

import time

import nibabel as nib
import numpy as np

from .. import atomic
from ..imaging import dti, measure, qc
from ..imaging import tensor as T
from ..imaging import template as tpl
from ..imaging.roi import DEFAULT_CENTERS_MM, ROI_NAMES, default_spheres
from ..io.files import sha256
from .layout import load_registration, read_json, scan_layout
from .params import MeasureParams
from .preprocess import save_map
from . import placement
from . import provenance as _prov
from .provenance import reuse_key
from .records import outputs_intact, unlink
from .uncertainty import scan_se


def check_roi_coverage(shape, affine, registration, centers_mm, radius_mm, *, path="<image>") -> None:
    """Raise ``ValueError`` if a template ROI (sphere ``radius_mm`` about each centre) is not
    entirely inside the native field of view after registration (e.g. a slab that does not
    reach MNI z = 27 mm). ``centers_mm``: {name: (x, y, z)} in template mm."""
    shape = np.asarray(tuple(shape[:3]), float)
    inv = np.linalg.inv(np.asarray(affine, float))
    offs = np.vstack([np.zeros(3), np.eye(3), -np.eye(3)]) * float(radius_mm)
    problems = []
    for name, c in centers_mm.items():
        pts_t = np.asarray(c, float)[None] + offs
        pts_s = registration.points_to_subject(pts_t)
        ijk = pts_s @ inv[:3, :3].T + inv[:3, 3]
        outside = np.any((ijk < -0.5) | (ijk > shape - 0.5), axis=1)
        if outside.any():
            problems.append(f"{name} (MNI {tuple(float(v) for v in c)} mm, r = {radius_mm} mm -> native "
                            f"{np.round(pts_s[0], 1).tolist()} mm)")
    if problems:
        raise ValueError(f"{path}: field of view does not contain the ALPS ROI(s) after registration: "
                         + "; ".join(problems) + "; the acquisition must cover MNI z = 27 mm "
                         "(lateral-ventricle bodies) with the full left-right extent")


def measure_subject(item, out_dir, *, params: MeasureParams | None = None, force: bool = False,
                    qc_png: bool = True, **overrides) -> dict:
    """ROIs → ALPS (template and scanner axes) → QC, from the outputs of
    :func:`alps.pipeline.preprocess_subject`.

    ``params`` (default: the defaults) with ``overrides`` (names of
    :class:`~alps.pipeline.params.MeasureParams`). Returns the result row (also written to
    ``<key>_desc-alps.json``).
    """
    p = (params or MeasureParams()).replace(**overrides)
    lay = scan_layout(out_dir, item)
    pre = read_json(lay.preprocess_json)
    if not pre or pre.get("status") != "ok":
        raise RuntimeError(f"{lay.preprocess_json}: no successful preprocessing for {item.key}; "
                           "run preprocess_subject first")
    if not outputs_intact(lay.dir, pre):
        raise RuntimeError(f"{lay.preprocess_json}: preprocessing outputs of {item.key} are missing or "
                           "modified; rerun preprocess_subject")
    provenance = {"preprocess": pre["provenance"], "preprocess_outputs_sha256": pre["outputs_sha256"],
                  "parameters": p.as_dict(), "versions": _prov.package_versions()}
    if p.roi == "jhu":
        from ..imaging.atlas import find_jhu

        provenance["atlas_sha256"] = sha256(find_jhu(p.atlas_path))
    old = read_json(lay.result_json)
    outputs = [lay.dseg] + ([lay.qc_png] if qc_png else [])
    if (not force and old and old.get("status") == "ok"
            and reuse_key(old.get("provenance") or {}) == reuse_key(provenance)
            and all(f.is_file() for f in outputs)):
        old["reused"] = True
        return old
    unlink(lay.result_json)

    t0 = time.perf_counter()
    tensor, aff = dti.load_tensor_image(lay.tensor)
    fa = np.asarray(nib.load(str(lay.fa)).dataobj, np.float32)
    md = np.asarray(nib.load(str(lay.md)).dataobj, np.float32)
    reg = load_registration(pre, lay.dir)
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
    row = {"participant_id": item.participant_id, "session_id": item.session_id, "status": "ok", "error": ""}
    row.update(values)
    row.update(pre["registration"]["metrics"])
    gc = pre.get("gradcheck")
    if gc:
        row.update({"gradcheck_best": gc["best"], "gradcheck_margin": gc["margin"],
                    "gradcheck_flag": gc["flag"], "gradcheck_corrected": gc["corrected"]})
    # flag (not fail) the band between the preprocess failure threshold and the QC warning one
    pre_params = pre["provenance"]["parameters"]
    fl = qc.flags(row, min_reg_corr=max(p.qc_min_reg_corr, pre_params["min_reg_corr"]),
                  min_reg_dice=pre_params["min_reg_dice"])
    row["qc_flags"] = ";".join(fl)
    row["qc_pass"] = not fl
    t_measure = time.perf_counter() - t0
    row.update(scan_se(item, pre, reg, weights, n_boot=p.se_replicates, seed=p.se_seed, se_max=p.se_max))
    t = time.perf_counter()
    reg_se = placement.reg_se(lay, fa, tensor, aff, reg, centres, weights_at, p) if p.reg_se else {}
    row["time_reg_se_s"] = round(time.perf_counter() - t, 3)
    scatter = reg_se.pop("scatter", None)
    row.update(placement.columns(centres, reg_se, row))
    if "reg_unstable" in qc.flags({"roi_sd_max": row.get("roi_sd_max")}, max_roi_sd=p.qc_max_roi_sd):
        row["qc_flags"] = ";".join([f for f in row["qc_flags"].split(";") if f] + ["reg_unstable"])
        row["qc_pass"] = False
    if qc_png:
        t = time.perf_counter()
        _qc_png(lay, fa, tensor, aff, reg, dseg, p, centres=centres, scatter=scatter)
        row["time_qc_s"] = round(time.perf_counter() - t, 3)
    row["time_measure_s"] = round(t_measure, 3)
    for k, v in pre.get("times_s", {}).items():
        row[f"time_{k}_s"] = v
    record = dict(row)
    record["provenance"] = provenance
    atomic.write_json(lay.result_json, record)
    record["reused"] = False
    return record


def _qc_png(lay, fa, tensor, aff, reg, dseg, p: MeasureParams, *, centres=None, scatter=None):
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
              template_labels=labels, **extra)
