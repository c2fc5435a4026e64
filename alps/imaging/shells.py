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
* ``dti`` (default): b = 0 and every shell whose value is at most ``max_bval`` (default 1500). The
  DTI-ALPS literature, and the reproduced study, use one shell at b = 1000: the apparent tensor of
  a non-Gaussian signal depends on b (kurtosis lowers it by about b·MD²·K/6), so fitting all shells
  of a b = 1000/2000/3000 scan gives another number than the protocol the index was defined on.
* ``fwdti`` (Hoy et al. 2014; dipy ``FreeWaterTensorModel``) and ``dki`` (Jensen et al. 2005; dipy
  ``DiffusionKurtosisModel``'s diffusion tensor): every volume; they need at least two non-zero
  shells.

References: Jensen JH et al. MRM 2005;53:1432; Hoy AR et al. NeuroImage 2014;103:323; Henriques RN
et al., dipy FWDTI/DKI documentation.
"""
from __future__ import annotations

import numpy as np

from ..io.errors import InputError
from ..io.gradients import fsl_to_voxel

__all__ = ["TENSOR_MODELS", "detect_shells", "select_volumes", "fit_model_tensor"]

#: tensor models: 'dti' (b0 + shells <= max b), 'fwdti' (free-water-eliminated), 'dki' (kurtosis fit's D).
TENSOR_MODELS = ("dti", "fwdti", "dki")


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


def select_volumes(bvals, *, model: str = "dti", max_bval: float = 1500.0, b0_threshold: float = 50.0,
                   tolerance: float = 100.0, path="<bval>"):
    """The volumes a tensor model is fitted on, and what describes them.

    Returns
    -------
    index : ndarray of int — volumes to fit, in acquisition order
    info : dict — ``shells`` (every non-zero shell of the scan, ``"1000,2000"``), ``bvals_used``
        (``"0,1000"``: b = 0 and the shells fitted), ``n_volumes_used``, ``n_directions``
        (diffusion-weighted volumes of the scan)

    Raises
    ------
    InputError
        Naming ``path``: no shell at or below ``max_bval`` (``dti``); fewer than two non-zero
        shells (``fwdti``, ``dki``).
    """
    if model not in TENSOR_MODELS:
        raise ValueError(f"unknown tensor model {model!r}; choose one of {TENSOR_MODELS}")
    labels, values = detect_shells(bvals, b0_threshold=b0_threshold, tolerance=tolerance)
    if model == "dti":
        keep = [i + 1 for i, v in enumerate(values) if v <= max_bval]
        if not keep:
            raise InputError(f"{path}: no shell at or below the maximum b-value {max_bval:g} s/mm² for the "
                             f"tensor fit (shells: {', '.join(map(str, values)) or 'none'}); raise --max-bval "
                             "or choose --tensor-model dki/fwdti")
    else:
        if len(values) < 2:
            raise InputError(f"{path}: --tensor-model {model} needs at least two non-zero shells; this scan has "
                             f"{len(values)} ({', '.join(map(str, values)) or 'none'})")
        keep = list(range(1, len(values) + 1))
    index = np.flatnonzero(np.isin(labels, [0] + keep))
    info = {"shells": ",".join(map(str, values)),
            "bvals_used": ",".join(["0"] + [str(values[k - 1]) for k in keep]),
            "n_volumes_used": int(index.size), "n_directions": int((labels > 0).sum())}
    return index, info


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
