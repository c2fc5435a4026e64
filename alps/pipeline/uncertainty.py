"""Each scan's uncertainty: standard errors of the ALPS index from the leverage-adjusted wild
bootstrap of the tensor fit (:mod:`alps.imaging.noise`), for the scan's own ROI weights.

``alps_se``, ``alps_L_se``, ``alps_R_se`` (template axes) are the SDs (``ddof = 1``) of
``se_replicates`` wild-bootstrap replicates of the index, the signs drawn from ``se_seed``: the
same inputs and parameters give the same numbers. They are the thermal-noise part of the
index's variability for the scan's fixed ROIs (the registration's own variability is not in
it; see :mod:`alps.imaging.noise`). With 200 replicates the SE itself is uncertain by about
``1/√(2·199) ≈ 5 %`` (relative).

The bootstrap needs the signal the tensors were fitted on. Stage 1 (:mod:`alps.pipeline.preprocess`)
does not keep it, so the input DWI is read again; when stage 1 changed the signal (MP-PCA,
Gibbs removal, motion correction) the input no longer is what was fitted and the SEs are
NaN (``se_note`` says why). A gradient table corrected by ``gradcheck='correct'`` is corrected
here in the same way, and only the volumes the tensor was fitted on are used (b = 0 and the
shells of :func:`alps.imaging.shells.select_volumes`, with the record's parameters). The
replicates are refitted by WLS whatever ``fit_method`` was; the bootstrap is of the DTI fit, so
a ``fwdti`` or ``dki`` tensor gets no SEs (``se_note`` says so).

``se_high`` flags a scan whose ``alps_se`` exceeds ``se_max`` (:class:`~alps.pipeline.params.MeasureParams`).
"""
from __future__ import annotations

import time

import numpy as np

#: columns of :func:`scan_se` in ``alps.tsv`` (``se_note`` and ``time_se_s`` besides).
SE_COLUMNS = ("alps_se", "alps_L_se", "alps_R_se", "se_high")

#: stage-1 options that change the signal before the tensor fit (the SEs are then NaN).
SIGNAL_CHANGING = ("denoise", "gibbs", "motion_correction")


def scan_se(item, preprocess_record: dict, registration, weights, *, n_boot: int, seed: int,
            se_max: float) -> dict:
    """Standard errors of ``alps``, ``alps_L``, ``alps_R`` of one scan (module docstring).

    Parameters
    ----------
    item : the scan (``dwi``, ``bval``, ``bvec`` paths)
    preprocess_record : its stage-1 record (parameters, gradient check, grid shape)
    registration : its :class:`alps.imaging.registration.Registration`
    weights : its native ROI weights (as used for the index)
    n_boot : bootstrap replicates (0: no SEs, the columns are NaN)
    seed : seed of the bootstrap signs
    se_max : ``se_high`` is ``alps_se > se_max``

    Returns
    -------
    dict with :data:`SE_COLUMNS`, ``se_note`` (empty, or why the SEs are NaN) and ``time_se_s``.
    """
    t0 = time.perf_counter()
    out = {"alps_se": np.nan, "alps_L_se": np.nan, "alps_R_se": np.nan, "se_high": False, "se_note": ""}
    pre_params = preprocess_record["provenance"]["parameters"]
    changed = [k for k in SIGNAL_CHANGING if pre_params.get(k)]
    if n_boot == 0:
        out["se_note"] = "se_replicates=0"
    elif changed:
        out["se_note"] = "signal changed by " + "+".join(changed) + " (not kept): no bootstrap"
    elif pre_params.get("tensor_model", "dti") != "dti":
        out["se_note"] = f"tensor_model={pre_params['tensor_model']}: the bootstrap is of the DTI fit, no SEs"
    else:
        boot = _bootstrap(item, preprocess_record, registration, weights, n_boot=n_boot, seed=seed)
        sd = boot[["alps", "alps_L", "alps_R"]].std(ddof=1)
        out.update(alps_se=float(sd["alps"]), alps_L_se=float(sd["alps_L"]), alps_R_se=float(sd["alps_R"]))
        out["se_high"] = bool(out["alps_se"] > se_max)
    out["time_se_s"] = round(time.perf_counter() - t0, 3)
    return out


def _bootstrap(item, record, registration, weights, *, n_boot, seed):
    """:func:`alps.imaging.noise.bootstrap_roi_alps` on the input DWI, read only in the bounding
    box of the ROI voxels (stage 1 validated the whole file; here the grid, the affine and the
    gradient table are checked again)."""
    from ..imaging import noise, shells
    from ..imaging import tensor as T
    from ..io.dwi import check_affine, load_image
    from ..io.gradients import fsl_to_voxel, read_bvals_bvecs

    img = load_image(item.dwi)
    if len(img.shape) != 4 or list(img.shape[:3]) != list(record["shape"]):
        raise RuntimeError(f"{item.dwi}: grid {img.shape[:3]} differs from the preprocessed one "
                           f"{record['shape']}; the input changed since stage 1, rerun it")
    affine = check_affine(img.affine, item.dwi)
    bvals, bvecs = read_bvals_bvecs(item.bval, item.bvec, n_volumes=img.shape[3])
    p = record["provenance"]["parameters"]
    index, _ = shells.select_volumes(bvals, model="dti", max_bval=p.get("max_bval"),
                                     b0_threshold=p.get("b0_threshold", 50.0),
                                     tolerance=p.get("shell_tolerance", 100.0), path=item.bval)
    gc = record.get("gradcheck")
    if gc and gc.get("corrected"):
        from ..imaging.gradcheck import correct_bvecs

        bvecs = correct_bvecs(bvecs, gc["best"], affine=affine)
    used = np.any([np.asarray(w) > 0 for w in weights.values()], axis=0)
    idx = np.argwhere(used)
    lo, hi = idx.min(0), idx.max(0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    data = np.asarray(img.dataobj[box + (slice(None),)], np.float32)
    if index.size != len(bvals):  # a multi-shell scan: the volumes of the fit only
        data, bvals, bvecs = data[..., index], bvals[index], bvecs[index]
    rotation = registration.rotation @ T.polar_rotation(np.asarray(affine, float)[:3, :3])
    return noise.bootstrap_roi_alps(data, bvals, fsl_to_voxel(bvecs, affine), {k: np.asarray(w)[box] for k, w in
                                                                               weights.items()},
                                    rotation, n_boot=n_boot, seed=seed)
