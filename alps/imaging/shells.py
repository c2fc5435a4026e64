"""Multi-shell data: shell detection, the volumes a tensor model is fitted on, and the tensors of
free-water-eliminated DTI and DKI.

Shells
------
:func:`detect_shells` clusters the b-values: volumes with ``b <= b0_threshold`` are b = 0 (5 or
0.001 s/mm² as scanners write them); the others are sorted and a new shell starts wherever two
consecutive b-values differ by more than ``tolerance`` (995/1000/1005 are one shell). A shell's
value is the median of its b-values, rounded to an integer.

Which volumes are fitted (:func:`select_volumes`)
-------------------------------------------------
Each model is fitted on b = 0 and the shells at or below its maximum b-value (``max_bval``; by
default :data:`MODEL_MAX_BVAL`, the range where the model holds):

* ``dti`` (default; 1500 s/mm²). The DTI-ALPS literature, and the reproduced study, use one shell
  at b = 1000: the apparent tensor of a non-Gaussian signal depends on b (kurtosis lowers it by
  about b·MD²·K/6), so fitting all shells of a b = 1000/2000/3000 scan gives another number than
  the protocol the index was defined on. A scan with **no** shell at or below the maximum (a
  single-shell b = 2000 or 2500 acquisition) is fitted on its lowest shell, and flagged
  ``high_b`` (:func:`fit_flags`): on planted truth with K = 0.6 its index reads +11.5 % (b = 2000)
  and +20 % (b = 2500) against the b = 1000 protocol's, so it is not comparable with b ≈ 1000
  studies.
* ``fwdti`` (Hoy et al. 2014; dipy ``FreeWaterTensorModel``; 1500 s/mm²): the tissue tensor of
  free-water-eliminated DTI; needs two non-zero shells at or below the maximum. The model has no
  kurtosis term; on planted truth (K = 0.6, ``benchmarks/bench_multishell.py``) its index reads
  +20 % (b = 500/1000), +36 % (1000/1500), +51 % (1000/2000) and +103 % (1000/2000/3000) against
  the tissue's, growing with the largest b. Hoy et al. designed it on b = 500/1500, and dipy's
  example keeps b <= 2000 "to decrease the influence of non-Gaussian diffusion effects of the
  tissue which are not taken into account by the free water elimination model".
* ``dki`` (Jensen et al. 2005; dipy ``DiffusionKurtosisModel``'s diffusion tensor; 3000 s/mm²):
  needs two non-zero shells; the fourth-order expansion holds up to b of about 2000–3000 in brain
  tissue (Jensen & Helpern 2010); on planted truth (whose signal is that expansion) it recovers
  the Gaussian tensor's index exactly at any b.

A larger ``max_bval`` fits higher shells anyway, flagged ``high_b``. A model that cannot be
fitted on a scan raises :class:`~alps.io.InputError` naming the ``.bval`` file, with the
alternatives that *do* work for that scan and what each would fit.

References: Jensen JH et al. MRM 2005;53:1432; Hoy AR et al. NeuroImage 2014;103:323; Henriques RN
et al., dipy FWDTI/DKI documentation; Jensen JH, Helpern JA. NMR Biomed 2010;23:698.
"""
from __future__ import annotations

import numpy as np

from ..io.errors import InputError
from ..io.gradients import fsl_to_voxel

__all__ = ["TENSOR_MODELS", "MODEL_MAX_BVAL", "MIN_SHELLS", "detect_shells", "select_volumes", "fit_flags",
           "fit_plan", "model_max_bval", "fit_model_tensor"]

#: tensor models: 'dti' (b0 + shells <= max b), 'fwdti' (free-water-eliminated), 'dki' (kurtosis fit's D).
TENSOR_MODELS = ("dti", "fwdti", "dki")
#: the largest shell (s/mm²) each model is fitted on by default: where it holds (module docstring).
MODEL_MAX_BVAL = {"dti": 1500.0, "fwdti": 1500.0, "dki": 3000.0}
#: the fewest non-zero shells each model needs.
MIN_SHELLS = {"dti": 1, "fwdti": 2, "dki": 2}
#: why each model stops at its maximum (for messages).
WHY = {"dti": "the index is defined on b = 1000 data and a tensor fitted at higher b reads it higher (planted "
              "truth, kurtosis 0.6: +11.5 % at b = 2000, +20 % at 2500): not comparable with b = 1000 studies",
       "fwdti": "free-water elimination ignores the tissue's kurtosis, which biases the index more the higher the "
                "b-value (planted truth, kurtosis 0.6: +51 % at b = 1000/2000, +103 % at 1000/2000/3000)",
       "dki": "the kurtosis expansion does not hold above about 3000 s/mm² in brain tissue"}


def detect_shells(bvals, *, b0_threshold: float = 50.0, tolerance: float = 100.0):
    """Cluster b-values into shells.

    Returns
    -------
    labels : ndarray (N,) int — 0 for b = 0 volumes, 1, 2, ... for the shells by increasing b
    values : list of int — the shells' b-values (median of each cluster, rounded), b = 0 excluded
    """
    b = np.asarray(bvals, float).ravel()
    labels = np.zeros(len(b), int)
    dw = np.flatnonzero(b > b0_threshold)
    values = []
    if dw.size:
        order = dw[np.argsort(b[dw], kind="stable")]
        starts = np.r_[True, np.diff(b[order]) > tolerance]
        shell = np.cumsum(starts)
        labels[order] = shell
        values = [int(round(float(np.median(b[order][shell == s])))) for s in range(1, shell.max() + 1)]
    return labels, values


def model_max_bval(model: str, max_bval: float | None = None) -> float:
    """The largest shell ``model`` is fitted on: ``max_bval``, or the model's default
    (:data:`MODEL_MAX_BVAL`) when None."""
    if model not in TENSOR_MODELS:
        raise ValueError(f"unknown tensor model {model!r}; choose one of {TENSOR_MODELS}")
    return MODEL_MAX_BVAL[model] if max_bval is None else float(max_bval)


def select_volumes(bvals, *, model: str = "dti", max_bval: float | None = None, b0_threshold: float = 50.0,
                   tolerance: float = 100.0, path="<bval>"):
    """The volumes a tensor model is fitted on, and what describes them.

    b = 0 and the shells at or below :func:`model_max_bval` (``max_bval``, default by model:
    :data:`MODEL_MAX_BVAL`); ``dti`` on a scan with no shell there takes its lowest shell
    (flagged ``high_b`` by :func:`fit_flags`).

    Returns
    -------
    index : ndarray of int — volumes to fit, in acquisition order
    info : dict — ``shells`` (every non-zero shell of the scan, ``"1000,2000"``), ``bvals_used``
        (``"0,1000"``: b = 0 and the shells fitted), ``bval_fit`` (the largest b-value fitted, an
        int), ``n_volumes_used``, ``n_directions`` (diffusion-weighted volumes of the scan)

    Raises
    ------
    InputError
        Naming ``path``: no diffusion-weighted volume; ``fwdti``/``dki`` with fewer than two
        non-zero shells (in the scan, or at or below the maximum), with the alternatives that work.
    """
    limit = model_max_bval(model, max_bval)
    labels, values = detect_shells(bvals, b0_threshold=b0_threshold, tolerance=tolerance)
    if not values:
        raise InputError(f"{path}: no diffusion-weighted volume (every b-value is at or below {b0_threshold:g}); "
                         "a tensor needs at least one shell")
    keep = _shells_fitted(values, model, limit)
    if keep is None:
        within = [v for v in values if v <= limit]
        listed = ", ".join(map(str, values))
        others = [h for h in (_hint(values, m, max_bval) for m in TENSOR_MODELS if m != model) if h]
        if len(values) < MIN_SHELLS[model]:
            raise InputError(f"{path}: --tensor-model {model} needs at least two non-zero shells; this scan has "
                             f"{len(values)} ({listed}): use " + " or ".join(others))
        raise InputError(
            f"{path}: --tensor-model {model} is fitted on the shells at or below {limit:g} s/mm² ({WHY[model]}); "
            f"this scan has {len(within)} of its shells {listed} there: use " + ", ".join(others)
            + f", or --max-bval {max(values)} to fit {model} on every shell anyway (flagged high_b)")
    index = np.flatnonzero(np.isin(labels, [0] + keep))
    used = [values[k - 1] for k in keep]
    info = {"shells": ",".join(map(str, values)),
            "bvals_used": ",".join(["0"] + [str(v) for v in used]), "bval_fit": int(max(used)),
            "n_volumes_used": int(index.size), "n_directions": int((labels > 0).sum())}
    return index, info


def _shells_fitted(values, model: str, limit: float):
    """Shell numbers (1-based) ``model`` fits among the shells ``values``, or None if it cannot."""
    within = [i + 1 for i, v in enumerate(values) if v <= limit]
    if MIN_SHELLS[model] == 1:
        return within or [len(within) + 1]  # none at or below the maximum: the lowest shell above it
    return within if len(within) >= MIN_SHELLS[model] else None


def _hint(values, model, max_bval) -> str:
    """``"--tensor-model M (b = 0,1000)"`` when ``model`` can be fitted on the shells ``values``, else ''."""
    keep = _shells_fitted(values, model, model_max_bval(model, max_bval))
    if keep is None:
        return ""
    info = {"bvals_used": ",".join(["0"] + [str(values[k - 1]) for k in keep])}
    flagged = ", flagged high_b" if fit_flags(info, model=model, max_bval=max_bval) else ""
    return f"--tensor-model {model} (b = {info['bvals_used']}{flagged})"


def fit_flags(info: dict, *, model: str, max_bval: float | None = None) -> list[str]:
    """QC flags of a fit described by ``info`` (of :func:`select_volumes`): ``['high_b']`` when
    it used a shell above the model's maximum (its default, :data:`MODEL_MAX_BVAL`, or a lower
    ``max_bval``) — a single-shell high-b scan, or a raised ``max_bval`` — else ``[]``."""
    used = [float(v) for v in str(info.get("bvals_used", "")).split(",") if v.strip()]
    if not used:
        return []
    ceiling = min(model_max_bval(model, max_bval), MODEL_MAX_BVAL[model])
    return ["high_b"] if max(used) > ceiling else []


def fit_plan(bvals, *, model: str = "dti", max_bval: float | None = None, b0_threshold: float = 50.0,
             tolerance: float = 100.0, path="<bval>") -> tuple[str, str]:
    """What the pipeline will fit on a scan, said in advance (``alps validate``): ``(severity,
    message)`` with severity ``'info'`` (the plain case), ``'warning'`` (flagged ``high_b``: what
    and why) or ``'error'`` (the model cannot be fitted: the reason and what works)."""
    try:
        _, info = select_volumes(bvals, model=model, max_bval=max_bval, b0_threshold=b0_threshold,
                                 tolerance=tolerance, path=path)
    except InputError as exc:
        return "error", str(exc)
    limit = model_max_bval(model, max_bval)
    text = f"{path}: tensor fit: {model} on b = {info['bvals_used']} s/mm² (shells of the scan: {info['shells']})"
    if not fit_flags(info, model=model, max_bval=max_bval):
        dropped = [v for v in info["shells"].split(",") if float(v) > limit]
        return "info", text + (f"; shells above {limit:g} left out" if dropped else "")
    above = (f"no shell at or below {limit:g} s/mm², the lowest one is fitted" if info["bval_fit"] > limit
             else f"above the default maximum {MODEL_MAX_BVAL[model]:g} s/mm²")
    return "warning", f"{text}: {above}; flagged high_b: {WHY[model]}"


def fit_model_tensor(data, bvals, bvecs_fsl, affine, mask, *, model: str, b0_threshold: float = 50.0):
    """The diffusion tensor of a ``fwdti`` or ``dki`` fit, in voxel axes, for the voxels of ``mask``.

    Parameters
    ----------
    data : (X, Y, Z, N), bvals : (N,), bvecs_fsl : (N, 3) FSL convention, affine : 4x4, mask : (X, Y, Z)

    Returns
    -------
    q : (M, 3, 3) tensors of the in-mask voxels (non-finite fits set to 0), mm²/s
    extra : dict of (M,) maps — ``fw_fraction`` (fwdti) or ``mean_kurtosis`` (dki)
    """
    from dipy.core.gradients import gradient_table

    mask = np.asarray(mask, bool)
    gtab = gradient_table(np.asarray(bvals, float), bvecs=fsl_to_voxel(bvecs_fsl, affine),
                          b0_threshold=b0_threshold)
    vox = np.maximum(np.asarray(data, np.float64)[mask], 1e-3)
    if model == "fwdti":
        from dipy.reconst.fwdti import FreeWaterTensorModel

        fit = FreeWaterTensorModel(gtab).fit(vox)
        extra = {"fw_fraction": np.asarray(fit.f, float)}
    elif model == "dki":
        from dipy.reconst.dki import DiffusionKurtosisModel

        fit = DiffusionKurtosisModel(gtab).fit(vox)
        extra = {"mean_kurtosis": np.asarray(fit.mk(min_kurtosis=0, max_kurtosis=3), float)}
    else:
        raise ValueError(f"fit_model_tensor fits 'fwdti' or 'dki', not {model!r}")
    q = np.asarray(fit.quadratic_form, float)
    q = np.where(np.isfinite(q), q, 0.0)
    return q, extra
