"""Per-volume fields of two full diffusion series acquired with opposite phase encoding and the
same gradient table (e.g. ``dir-AP`` and ``dir-PA`` DWI): eddy currents, pip-only.

The eddy currents of a diffusion gradient add, during the EPI readout, an off-resonance field
``e_k(x)`` that is smooth — to first order constant plus linear in ``x`` (Jezzard et al. 1998,
MRM 39:801–812) — and specific to volume ``k``'s gradient. Like the susceptibility field it
displaces the signal along the phase-encoding axis by ``s T e_k(x)`` voxels, so the two volumes of
one gradient acquired with opposite polarities are displaced in opposite directions, and the pair
gives the field by the same estimate as the b = 0 pair (:mod:`alps.imaging.pepolar`). After the
susceptibility correction (:func:`alps.imaging.susceptibility.correct_pepolar`) each matched pair
of diffusion-weighted volumes ``(a_k, b_k)`` is compared, the residual field ``e_k`` is estimated
(one level: 6 mm smoothing, a cubic B-spline with a single interval per axis and a bending-energy
weight of 10⁴, i.e. a smooth, nearly linear field, :data:`VOLUME_LEVELS`) and both volumes are
corrected with it (the Jacobian included), meeting halfway as the b = 0 pair does. Whatever else
displaces the two volumes of a pair in opposite directions along the axis is removed with it;
head motion between them only in its phase-encoding part.

This needs both full series with matched volumes (:func:`matched_volumes`); for a single series
the model-based eddy-current correction (registration to a prediction) is the tool.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..io.gradients import B0_THRESHOLD
from .pepolar import Level, estimate_field
from .susceptibility import Correction, unwarp

__all__ = ["VOLUME_LEVELS", "matched_volumes", "correct_volume_pairs"]

#: the one level of a per-volume field (see the module docstring).
VOLUME_LEVELS = (Level(6.0, 400.0, 1e4, 40),)


def matched_volumes(bvals_a, bvecs_a, bvals_b, bvecs_b, *, b_tol: float = 50.0, angle_deg: float = 3.0):
    """Pairs ``(i_a, i_b)`` of diffusion-weighted volumes of two series with the same b-value
    (within ``b_tol``) and direction (within ``angle_deg``, either sign), each volume used once,
    in the order of series a. The b-vectors must be in one frame (the FSL convention of two
    series on one grid)."""
    ba, bb = np.asarray(bvals_a, float), np.asarray(bvals_b, float)
    ga, gb = np.asarray(bvecs_a, float), np.asarray(bvecs_b, float)
    cos_min = np.cos(np.radians(angle_deg))
    used, pairs = set(), []
    for i in np.where(ba > B0_THRESHOLD)[0]:
        for j in np.where(bb > B0_THRESHOLD)[0]:
            if j in used or abs(ba[i] - bb[j]) > b_tol:
                continue
            na, nb = np.linalg.norm(ga[i]), np.linalg.norm(gb[j])
            if na > 0 and nb > 0 and abs(ga[i] @ gb[j]) / (na * nb) >= cos_min:
                pairs.append((int(i), int(j)))
                used.add(j)
                break
    return pairs


def correct_volume_pairs(corr_a: Correction, corr_b: Correction, pairs, pe_a, pe_b, voxel_mm, *,
                         mask=None, levels=VOLUME_LEVELS):
    """Estimate and remove the residual field of each matched volume pair (module docstring).

    Parameters
    ----------
    corr_a, corr_b : Correction
        The susceptibility-corrected series (:func:`alps.imaging.susceptibility.correct_pepolar`).
    pairs : list of (int, int)
        From :func:`matched_volumes`.
    pe_a, pe_b : PhaseEncoding
    voxel_mm : sequence of 3 floats
    mask : ndarray of bool, optional
        Where the per-volume field is summarised (default: the whole grid).

    Returns
    -------
    (Correction, Correction, list of dict)
        The series with every paired volume corrected again (the other volumes as they were; the
        record gains ``volume_field_rms_hz``, the RMS over pairs of each field's RMS within the
        mask), and one row per pair: ``volume_a``, ``volume_b``, ``field_mean_hz``,
        ``field_sd_hz`` (within the mask), ``mismatch_before``, ``mismatch_after``.
    """
    m = np.ones(corr_a.data.shape[:3], bool) if mask is None else np.asarray(mask, bool)
    out_a, out_b = corr_a.data.copy(), corr_b.data.copy()
    rows = []
    for ia, ib in pairs:
        est = estimate_field(corr_a.data[..., ia], corr_b.data[..., ib], axis=pe_a.axis,
                             signs=(pe_a.sign, pe_b.sign), readout_s=(pe_a.readout_s, pe_b.readout_s),
                             voxel_mm=voxel_mm, levels=levels)
        out_a[..., ia], _, _ = unwarp(corr_a.data[..., ia], est.field_hz, pe_a)
        out_b[..., ib], _, _ = unwarp(corr_b.data[..., ib], est.field_hz, pe_b)
        f = est.field_hz[m]
        rows.append({"volume_a": ia, "volume_b": ib, "field_mean_hz": float(f.mean()), "field_sd_hz": float(f.std()),
                     "mismatch_before": est.cost_before, "mismatch_after": est.cost_after})
    rms = float(np.sqrt(np.mean([r["field_mean_hz"] ** 2 + r["field_sd_hz"] ** 2 for r in rows]))) if rows else 0.0
    new = []
    for corr, data in ((corr_a, out_a), (corr_b, out_b)):
        rec = replace(corr.record, volume_field_rms_hz=rms, n_volume_pairs=len(rows))
        new.append(Correction(data, corr.field_hz, corr.displacement_vox, corr.jacobian, rec))
    return new[0], new[1], rows
