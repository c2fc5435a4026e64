"""Stage 1 of a scan: load + validate → the volumes of the tensor model (b0 + shells <= max b by
default, :mod:`alps.imaging.shells`) → brain mask (or the given one) → optional MP-PCA / Gibbs /
motion correction (skipped for preprocessed inputs) → eddy-current and motion correction
(:mod:`alps.pipeline.eddy_step`, optional) → susceptibility-distortion correction when the dataset
has a field source (:mod:`alps.pipeline.distortion`; the mask is then recomputed on the corrected
series) → the corrected series kept when a correction ran (:mod:`alps.pipeline.signal`) → gradient
check (optional) → tensor fit (DTI, or FWE-DTI / DKI) → registration of FA to MNI152 2009a.

Writes the mask, tensor, FA, MD, colour FA, the transforms and ``<key>_desc-preprocess.json``
(:mod:`alps.pipeline.layout`); the record is written last and lists the SHA-256 of the outputs.
"""
from __future__ import annotations

import dataclasses
import io
import os
import time

import nibabel as nib
import numpy as np

from .. import atomic
from ..imaging import coverage, dti
from ..imaging import preprocess as prep
from ..imaging import registration as reg_mod
from ..imaging import shells
from ..imaging.template import SPACE
from .. import io as aio
from ..io import InputError, input_hashes
from . import eddy_step
from .contract import GradientCheck, PreparedDWI, Preprocessed, select
from .layout import PREPROCESS_FILES, read_json, scan_layout
from .params import PreprocessParams
from . import distortion
from . import provenance as _prov
from .provenance import reuse_key
from .records import files_sha256, outputs_intact, unlink
from .signal import SIGNAL_FILES, keep as keep_signal

#: the four default ALPS spheres span 76 mm + 2 radii left-right; an image whose largest field
#: of view is below 80 % of that (brains are ~±20 % in size) cannot contain them.
MIN_FOV_MM = 0.8 * (76.0 + 2 * 2.5)


def check_fov(dwi) -> None:
    """Raise :class:`alps.io.InputError` if the image's field of view is too small to contain
    the ALPS ROIs (cheap, before any fitting or registration)."""
    ext = np.asarray(dwi.data.shape[:3], float) * np.asarray(dwi.zooms)
    if ext.max() < MIN_FOV_MM:
        raise InputError(
            f"{dwi.path}: field of view {' x '.join(f'{e:.0f}' for e in ext)} mm cannot contain the ALPS "
            f"ROIs (the default spheres span 81 mm left-right; need >= {MIN_FOV_MM:.0f} mm along some axis)")


def acquisition_check(params: PreprocessParams | None = None):
    """The check ``alps validate`` (:func:`alps.io.validate.validate_dataset`'s ``scan_checks``) and
    ``alps run`` make of each scan before anything is computed: which shells the tensor model of
    ``params`` will fit, whether it is flagged ``high_b``, or why it cannot be fitted
    (:func:`alps.imaging.shells.fit_plan`); with ``eddy_correction``, the phase-encoding axis the
    correction will use (:func:`alps.pipeline.eddy_step.check`). Returns ``check(item, bvals) ->
    [(severity, message)]``."""
    p = params or PreprocessParams()

    def check(item, bvals):
        out = [shells.fit_plan(bvals, model=p.tensor_model, max_bval=p.max_bval, b0_threshold=p.b0_threshold,
                               tolerance=p.shell_tolerance, path=item.bval)]
        if p.eddy_correction and not getattr(item, "preprocessed", False):
            out.append(eddy_step.check(item))
        return out

    return check


def save_map(data, affine, path, dtype=np.float32) -> None:
    """A derivative map as NIfTI with a fresh header (mm units), atomically: nothing of the
    input's header or extensions is copied (privacy)."""
    img = nib.Nifti1Image(np.asarray(data).astype(dtype), affine)
    img.header.set_xyzt_units("mm")
    atomic.save_nifti(path, img)


def matrix_text(matrix, header: str) -> str:
    """``np.savetxt`` format (``# header`` line, ``%.10f`` values) as a string."""
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(matrix, float), fmt="%.10f", header=header)
    return buf.getvalue()


def _gradcheck(mode, data, dwi, bvecs, mask) -> GradientCheck:
    """The gradient check of ``mode`` ('report'/'correct') on the data as fitted (its verdict;
    :meth:`GradientCheck.apply` gives the b-vectors to fit)."""
    from ..imaging import gradcheck
    from ..io.gradients import fsl_to_voxel

    scores = gradcheck.check_gradients(data, dwi.bvals, fsl_to_voxel(bvecs, dwi.affine), mask,
                                       voxel_sizes=np.linalg.norm(dwi.affine[:3, :3], axis=0))
    return GradientCheck.from_scores(scores, correct=mode == "correct")


def given_brain_mask(path, shape) -> np.ndarray:
    """A brain mask given with the input (QSIPrep's ``desc-brain_mask``, ``--mask``): non-zero
    voxels, on the DWI's grid. Raises :class:`alps.io.InputError` naming the file otherwise."""
    img = aio.load_image(path)
    data = np.asarray(img.dataobj)
    data = data[..., 0] if data.ndim == 4 and data.shape[3] == 1 else data
    if data.shape != tuple(shape):
        raise InputError(f"{path}: brain mask grid {data.shape} differs from the DWI's {tuple(shape)}")
    mask = np.isfinite(data) & (data != 0)
    if not mask.any():
        raise InputError(f"{path}: brain mask is empty")
    return mask


def preprocess_subject(item, out_dir, *, params: PreprocessParams | None = None, force: bool = False,
                       hashes=None, **overrides) -> Preprocessed:
    """Load, validate, mask, (denoise/Gibbs/motion), fit tensors, register; write derivatives.

    ``params`` (default: the defaults) with ``overrides`` (parameter names of
    :class:`~alps.pipeline.params.PreprocessParams`, validated). Returns the typed result
    (:class:`~alps.pipeline.contract.Preprocessed`: the prepared DWI, mask, registration, gradient
    check ...); its record is written to ``<key>_desc-preprocess.json``. Reuses an existing record
    when inputs, parameters and package versions are identical (``force`` recomputes). Raises on
    any failure (invalid input, registration below QC thresholds...).
    """
    p = (params or PreprocessParams()).replace(**overrides)
    lay = scan_layout(out_dir, item)
    hashes = hashes or input_hashes(item)
    inputs = {"dwi": str(item.dwi), "bval": str(item.bval), "bvec": str(item.bvec)}
    if getattr(item, "mask", None) is not None:
        inputs["mask"] = str(item.mask)
    provenance = {"inputs": inputs,
                  "sha256": hashes, "parameters": p.as_dict(), "versions": _prov.package_versions()}
    try:  # the field source is an input too: its files and phase encoding decide reuse
        src = distortion.find_source(item, p)
    except InputError:
        for f in (lay.preprocess_json, lay.result_json, lay.qc_png):
            unlink(f)
        raise
    if src is not None:
        provenance["field_source"] = distortion.source_provenance(src)
    old = read_json(lay.preprocess_json)
    if (not force and old and old.get("status") == "ok"
            and reuse_key(old.get("provenance") or {}) == reuse_key(provenance)
            and outputs_intact(lay.dir, old)):
        return Preprocessed.from_record(item, out_dir, old, reused=True)
    # invalidate first: from here on no record claims these derivatives are finished
    unlink(lay.preprocess_json)
    unlink(lay.result_json)
    unlink(lay.qc_png)
    for role in SIGNAL_FILES + ("eddy_motion", "fieldmap", "fieldmap_json"):  # optional outputs of an earlier run
        unlink(getattr(lay, role))

    times = {}
    t0 = time.perf_counter()
    dwi = aio.load_dwi(item.dwi, item.bval, item.bvec, b0_threshold=p.b0_threshold)
    check_fov(dwi)
    index, acquisition = select(dwi.bvals, p, path=item.bval)
    prepared = PreparedDWI.from_dwi(dwi, index)
    if index.size != len(dwi.bvals):  # a multi-shell scan: only the volumes of the model
        dwi = dataclasses.replace(dwi, data=dwi.data[..., index], bvals=dwi.bvals[index],
                                  bvecs=dwi.bvecs[index])
    b0_bvals = np.where(dwi.bvals <= p.b0_threshold, 0.0, dwi.bvals)  # what the b0 helpers read
    times["load"] = time.perf_counter() - t0

    t = time.perf_counter()
    data, bvecs = dwi.data, dwi.bvecs
    given_mask = getattr(item, "mask", None)
    mask = given_brain_mask(given_mask, data.shape[:3]) if given_mask else prep.brain_mask(data, b0_bvals)
    preprocessed = bool(getattr(item, "preprocessed", False))
    if p.denoise and not preprocessed:
        data = prep.denoise_mppca(data, mask)
    if p.gibbs and not preprocessed:
        data = prep.remove_gibbs(data, axis=prep.slice_axis(dwi.affine))
    motion = None
    if p.motion_correction and not preprocessed:
        lay.dir.mkdir(parents=True, exist_ok=True)
        data, bvecs, xfms = prep.motion_correct(data, dwi.affine, b0_bvals, bvecs, model=p.motion_model,
                                                reference=p.motion_reference, return_transforms=True,
                                                scratch_dir=lay.dir, scratch_owner=lay.key)
        motion = prep.motion_summary(xfms, dwi.affine, dwi.data.shape, b0_bvals)
    times["preprocess"] = time.perf_counter() - t
    kept, extra_files = [], []
    eddy = signal_rec = None
    if p.eddy_correction and not preprocessed:
        t = time.perf_counter()
        data, bvecs, eddy = eddy_step.run(item, data, dwi.affine, dwi.bvals, bvecs, mask, p, lay,
                                          pairs=src is not None and distortion.pairs_planned(item, p, src))
        times["eddy"] = time.perf_counter() - t
        if eddy:
            kept.append("eddy")
    data, mask, sdc = distortion.stage_step(item, dwi, data, mask, p, src, mask_given=bool(given_mask))
    if sdc is not None:
        times.update(sdc.stage_times())
        kept.append("sdc")
        extra_files += distortion.write_field(lay, sdc, dwi.affine)
    if kept:  # the fit, and the SEs' bootstrap, use the corrected signal as written (alps.pipeline.signal)
        t = time.perf_counter()
        prepared, bvals_kept, bvecs, signal_rec = keep_signal(lay, data, dwi.bvals, bvecs, dwi.affine, steps=kept,
                                                              b0_threshold=p.b0_threshold)
        dwi = dataclasses.replace(dwi, bvals=bvals_kept)
        times["signal"] = time.perf_counter() - t

    check = None
    if p.gradcheck != "off":
        t = time.perf_counter()
        check = _gradcheck(p.gradcheck, data, dwi, bvecs, mask)
        bvecs = check.apply(bvecs, dwi.affine)
        times["gradcheck"] = time.perf_counter() - t

    t = time.perf_counter()
    if p.tensor_model == "dti":
        maps = dti.fit_tensor(data, dwi.bvals, bvecs, dwi.affine, mask, method=p.fit_method)
    else:
        q, _ = shells.fit_model_tensor(data, dwi.bvals, bvecs, dwi.affine, mask, model=p.tensor_model,
                                       b0_threshold=p.b0_threshold)
        maps = dti.maps_from_tensor(q, mask, dwi.affine)
    times["tensor_fit"] = time.perf_counter() - t
    del data

    aff = dwi.affine
    t = time.perf_counter()
    lay.dir.mkdir(parents=True, exist_ok=True)
    save_map(mask, aff, lay.mask, np.uint8)
    atomic.save_nifti(lay.tensor, dti.tensor_image(maps.tensor, aff))
    save_map(maps.fa, aff, lay.fa)
    save_map(maps.md, aff, lay.md)
    save_map(maps.color_fa("world"), aff, lay.colorfa)
    times["write"] = time.perf_counter() - t

    t = time.perf_counter()
    registration = reg_mod.register(
        nib.Nifti1Image(maps.fa, aff), mask, kind=p.registration, out_dir=lay.dir,
        names=lay.transform_names(), seed=p.seed, threads=1, check=False,
        sampling_strategy=p.registration_sampling, scratch_owner=lay.key)
    times["registration"] = time.perf_counter() - t
    t = time.perf_counter()
    atomic.write_text(lay.xfm_ras, matrix_text(
        registration.subject_to_template, f"subject (scanner RAS mm) -> {SPACE} (RAS mm), 4x4 affine part"))

    record = {
        "participant_id": item.participant_id,
        "session_id": item.session_id,
        "status": "ok",
        "error": "",
        "provenance": provenance,
        "shape": list(maps.fa.shape),
        "voxel_size_mm": [float(v) for v in np.linalg.norm(aff[:3, :3], axis=0)],
        "n_volumes": int(len(dwi.bvals)),
        "acquisition": acquisition,
        "mask_source": "given" if given_mask else "computed",
        "preprocessed_input": preprocessed,
        "mask_volume_ml": float(mask.sum() * abs(np.linalg.det(aff[:3, :3])) / 1000.0),
        "registration": reg_mod.registration_info(registration, relative_to=lay.dir),
        "gradcheck": check.as_record() if check else None,
        "motion": motion,
        "eddy": eddy,
        "sdc": distortion.record_entry(sdc, p),
        "signal": signal_rec,
        "files": {k: getattr(lay, k).name for k in PREPROCESS_FILES
                  + (("eddy_motion",) if eddy else ()) + (SIGNAL_FILES if signal_rec else ())},
    }
    reg_files = [os.path.relpath(f, lay.dir) for f in
                 list(registration.forward_transforms) + list(registration.inverse_transforms)]
    record["outputs_sha256"] = files_sha256(lay.dir, list(record["files"].values()) + reg_files + extra_files)
    times["write"] += time.perf_counter() - t
    record["times_s"] = {k: round(v, 3) for k, v in times.items()}
    try:
        reg_mod.check_metrics(registration.metrics, min_correlation=p.min_reg_corr, min_dice=p.min_reg_dice,
                              min_coverage=p.min_reg_coverage)
    except reg_mod.RegistrationError as exc:
        # whether the field of view, as (wrongly) registered, reaches the ROI level; for a slab, what it must cover
        level = coverage.roi_level_problem(registration, maps.fa.shape, aff, registered=False)
        if not level and registration.metrics.get("reg_coverage", 1.0) < 0.995:
            level = f"a partial-brain slab must cover {coverage.ROI_LEVEL}: the QC image shows where it was placed"
        record["status"] = "failed"
        record["error"] = str(exc) + (f"; {level}" if level else "")
        atomic.write_json(lay.preprocess_json, record)
        raise reg_mod.RegistrationError(f"{item.dwi}: {record['error']}") from None
    atomic.write_json(lay.preprocess_json, record)
    return Preprocessed.from_record(item, out_dir, record, reused=False, dwi=prepared)
