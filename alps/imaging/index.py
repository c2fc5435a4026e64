"""The DTI-ALPS index from ROI-averaged diffusivities or from a tensor field and ROI masks.

.. math::

    \\mathrm{ALPS} = \\frac{\\tfrac12 (D_{xx}^{proj} + D_{xx}^{assoc})}
                          {\\tfrac12 (D_{yy}^{proj} + D_{zz}^{assoc})}

Taoka T, Masutani Y, Kawai H, et al. Evaluation of glymphatic system activity with the diffusion
MR technique: diffusion tensor image analysis along the perivascular space (DTI-ALPS) in
Alzheimer's disease cases. Jpn J Radiol 2017;35:172-178. doi:10.1007/s11604-017-0617-z
"""
from __future__ import annotations

import numpy as np

from .roi import ROI_NAMES


def alps_ratio(dxx_proj, dxx_assoc, dyy_proj, dzz_assoc):
    """ALPS index from the four ROI-mean diffusivities (any consistent units).

    Raises
    ------
    ValueError
        If the denominator is not positive (no meaningful index).
    """
    num = 0.5 * (np.asarray(dxx_proj, float) + np.asarray(dxx_assoc, float))
    den = 0.5 * (np.asarray(dyy_proj, float) + np.asarray(dzz_assoc, float))
    if np.any(~(den > 0)):
        raise ValueError(f"ALPS denominator mean(Dyy_proj, Dzz_assoc) must be > 0, got {den}")
    return num / den


def roi_mean_tensors(tensor, masks):
    """Mean tensor (3x3) in each ROI mask; ``tensor`` has shape ``grid + (3, 3)``.

    Averaging is linear, so the mean of rotated tensors equals the rotated mean tensor.
    """
    tensor = np.asarray(tensor, dtype=float)
    out = {}
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tensor.shape[:3]:
            raise ValueError(f"ROI {name}: mask shape {mask.shape} != tensor grid {tensor.shape[:3]}")
        if not mask.any():
            raise ValueError(f"ROI {name} is empty")
        out[name] = tensor[mask].mean(axis=0)
    return out


def alps_from_roi_tensors(mean_tensors) -> dict[str, float]:
    """Left, right and mean ALPS from the ROI-mean tensors (keys of :data:`alps.imaging.roi.ROI_NAMES`).

    Returns
    -------
    dict
        ``alps_L``, ``alps_R``, ``alps`` (mean of hemispheres) and the per-ROI diagonal
        components ``dxx_proj_L``, ``dyy_proj_L``, ``dzz_proj_L``, ... .
    """
    missing = [n for n in ROI_NAMES if n not in mean_tensors]
    if missing:
        raise ValueError(f"missing ROI tensors: {missing}")
    row: dict[str, float] = {}
    for name in ROI_NAMES:
        fibre, hemi = name.split("_")
        d = np.asarray(mean_tensors[name])
        for axis, comp in zip("xyz", (d[0, 0], d[1, 1], d[2, 2])):
            row[f"d{axis}{axis}_{fibre}_{hemi}"] = float(comp)
    for hemi in ("L", "R"):
        row[f"alps_{hemi}"] = float(
            alps_ratio(
                row[f"dxx_proj_{hemi}"], row[f"dxx_assoc_{hemi}"],
                row[f"dyy_proj_{hemi}"], row[f"dzz_assoc_{hemi}"],
            )
        )
    row["alps"] = 0.5 * (row["alps_L"] + row["alps_R"])
    return row


def alps_from_tensor_field(tensor, masks) -> dict[str, float]:
    """ALPS (L, R, mean) of a ``grid + (3, 3)`` tensor field within the four ROI masks."""
    return alps_from_roi_tensors(roi_mean_tensors(tensor, masks))
