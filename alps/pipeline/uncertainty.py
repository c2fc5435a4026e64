"""Each scan's uncertainty: standard errors of the ALPS index from the leverage-adjusted wild
bootstrap of the scan's own estimator (:mod:`alps.imaging.noise`, :mod:`alps.imaging.estimators`),
for the scan's own ROI weights.

``alps_se``, ``alps_L_se``, ``alps_R_se`` (template axes) are the SDs (``ddof = 1``) of
``se_replicates`` wild-bootstrap replicates of the index, the signs drawn from ``se_seed``: the
same inputs and parameters give the same numbers. They are the thermal-noise part of the
index's variability for the scan's fixed ROIs (the registration's own variability is not in
it; see :mod:`alps.imaging.noise`). With 200 replicates the SE itself is uncertain by about
``1/√(2·199) ≈ 5 %`` (relative).

The bootstrap resamples what stage 1 fitted, from its :class:`~alps.pipeline.contract.Preprocessed`:
the prepared DWI — the volumes the tensor model used (b = 0 and the shells of a multi-shell scan
it fits), with the gradient table as fitted (the gradient check's correction applied once, in
:class:`~alps.pipeline.contract.PreparedDWI`) — around the fit of the same tensor model
(``dti`` with its ``fit_method``, ``fwdti``, ``dki``) and refits every replicate with it. The
signal is read from the input file (stage 1 keeps no copy, and only the ROI's bounding box is
read); when stage 1 changed the signal (MP-PCA, Gibbs removal, motion correction) the input no
longer is what was fitted and the SEs are NaN (``se_note`` says why).

``se_high`` flags a scan whose ``alps_se`` exceeds ``se_max`` (:class:`~alps.pipeline.params.MeasureParams`).
"""
from __future__ import annotations

import time

import numpy as np

#: columns of :func:`scan_se` in ``alps.tsv`` (``se_note`` and ``time_se_s`` besides).
SE_COLUMNS = ("alps_se", "alps_L_se", "alps_R_se", "se_high")
#: what :func:`scan_se` returns besides its time: the SE columns and ``se_note``.
SE_KEYS = SE_COLUMNS + ("se_note",)


def scan_se(pre, weights, *, n_boot: int, seed: int, se_max: float, registration=None) -> dict:
    """Standard errors of ``alps``, ``alps_L``, ``alps_R`` of one scan (module docstring).

    Parameters
    ----------
    pre : its :class:`~alps.pipeline.contract.Preprocessed` (prepared DWI, parameters, registration)
    weights : its native ROI weights (as used for the index)
    n_boot : bootstrap replicates (0: no SEs, the columns are NaN)
    seed : seed of the bootstrap signs
    se_max : ``se_high`` is ``alps_se > se_max``
    registration : the registration of the template axes (default: ``pre.registration``)

    Returns
    -------
    dict with :data:`SE_KEYS` (``se_note``: empty, or why the SEs are NaN) and ``time_se_s``.
    """
    t0 = time.perf_counter()
    out = {"alps_se": np.nan, "alps_L_se": np.nan, "alps_R_se": np.nan, "se_high": False, "se_note": ""}
    if n_boot == 0:
        out["se_note"] = "se_replicates=0"
    elif pre.signal_changed:
        out["se_note"] = "signal changed by " + "+".join(pre.signal_changed) + " (not kept): no bootstrap"
    else:
        boot = _bootstrap(pre, registration or pre.registration, weights, n_boot=n_boot, seed=seed)
        sd = boot[["alps", "alps_L", "alps_R"]].std(ddof=1)
        out.update(alps_se=float(sd["alps"]), alps_L_se=float(sd["alps_L"]), alps_R_se=float(sd["alps_R"]))
        out["se_high"] = bool(out["alps_se"] > se_max)
    out["time_se_s"] = round(time.perf_counter() - t0, 3)
    return out


def _bootstrap(pre, registration, weights, *, n_boot, seed):
    """:func:`alps.imaging.noise.bootstrap_roi_alps` of the scan's estimator on its prepared DWI,
    read only in the bounding box of the ROI voxels."""
    from ..imaging import noise
    from ..imaging import tensor as T

    dwi, p = pre.dwi, pre.params
    used = np.any([np.asarray(w) > 0 for w in weights.values()], axis=0)
    idx = np.argwhere(used)
    lo, hi = idx.min(0), idx.max(0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    rotation = registration.rotation @ T.polar_rotation(np.asarray(dwi.affine, float)[:3, :3])
    return noise.bootstrap_roi_alps(dwi.read(box), dwi.bvals, dwi.bvecs_voxel,
                                    {k: np.asarray(w)[box] for k, w in weights.items()}, rotation,
                                    n_boot=n_boot, seed=seed, model=p.tensor_model, fit_method=p.fit_method,
                                    b0_threshold=p.b0_threshold)
