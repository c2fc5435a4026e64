"""Stage 2's hook for the ROIs' placement and the registration's share of each scan's
uncertainty (issue 24): it only wires :mod:`alps.imaging.placement` (tract-guided spheres,
``roi_placement='tract'``) and :mod:`alps.imaging.regse` (``alps_reg_se``, ``reg_se=True``) to
:class:`~alps.pipeline.params.MeasureParams` and to :attr:`alps.pipeline.contract.ScanResult.placement`.

Its cells of ``alps.tsv`` (declared in :mod:`alps.pipeline.columns`): ``alps_reg_se``,
``alps_L_reg_se``, ``alps_R_reg_se`` (the SD of the index over the sigma points of the
registration's sandwich covariance), ``alps_total_se``, ``alps_L_total_se``, ``alps_R_total_se``
(``sqrt(se² + reg_se²)``), ``roi_sd_<roi>`` and ``roi_sd_max`` (mm: how far the registration's
uncertainty moves each ROI centre; ``reg_unstable`` in ``qc_flags`` above ``qc_max_roi_sd``),
``roi_shift_<roi>`` (mm the tract-guided placement moved each sphere; 0 with
``roi_placement='template'``) and ``reg_se_note`` (why the registration SEs are NaN, when they are).
"""
from __future__ import annotations

import nibabel as nib
import numpy as np

from ..imaging import measure
from ..imaging.roi import DEFAULT_CENTERS_MM, ROI_NAMES

INDICES = ("alps", "alps_L", "alps_R")


def place(tensor, affine, registration, p) -> dict | None:
    """Sphere centres {roi: template mm} for ``p.roi_placement``: ``None`` (the default centres)
    for ``'template'``, :func:`alps.imaging.placement.place_rois` for ``'tract'``."""
    if p.roi_placement != "tract":
        return None
    from ..imaging.placement import place_rois

    return place_rois(tensor, affine, registration, radius_mm=p.roi_radius).centers_mm


def _nan(note: str) -> dict:
    out = {f"{k}_reg_se": np.nan for k in INDICES}
    out["roi_sd_max"] = np.nan
    return {**out, "reg_se_note": note}


def reg_se(mask, fa, tensor, affine, registration, centres, weights_at, p) -> dict:
    """:func:`alps.imaging.regse.registration_se` for a scan (its brain ``mask``, ``fa``,
    ``tensor`` on the grid ``affine``), the sphere ``centres`` (``None``: the default ones) held
    fixed in template space. ``weights_at(registration, centres) -> (weights, centres)`` maps the
    ROIs as stage 2 does (used unless the ROIs are unfiltered trilinear spheres, which take the
    fast route of :func:`alps.imaging.regse.sphere_alps`). NaN columns and ``reg_se_note`` when
    the SEs are off (``reg_se=False``), do not apply (non-linear registration, nearest-neighbour
    label ROIs) or cannot be computed."""
    from ..imaging import tensor as T
    from ..imaging.registration import moving_image
    from ..imaging.regse import registration_se, sphere_alps
    from ..imaging.roi import default_spheres

    if not p.reg_se:
        return _nan("reg_se=False")
    if registration.kind not in ("affine", "rigid"):
        return _nan(f"registration '{registration.kind}': the SEs cover linear registrations only")
    if p.roi == "jhu" and p.roi_weighting == "centre":
        return _nan("JHU labels with 'centre' weighting are warped by ANTs: no registration SE")
    moving = np.asarray(moving_image(nib.Nifti1Image(fa, affine), np.asarray(mask, bool)).dataobj)
    used = centres or {n: DEFAULT_CENTERS_MM[n] for n in ROI_NAMES}
    if p.roi == "spheres" and p.roi_weighting == "trilinear" and p.fa_min is None and p.purity_min is None:
        six = T.to_six(tensor)
        spheres = default_spheres(radius_mm=p.roi_radius, centers_mm=used)

        def measure_at(r):
            return sphere_alps(six, affine, r, spheres, lattice_mm=p.lattice_mm), used
    else:
        def measure_at(r):
            w, _ = weights_at(r, centres)
            return measure.measure(tensor, affine, r, w), used

    try:
        out = registration_se(moving, affine, registration, measure_at)
    except ValueError as exc:
        return _nan(str(exc))
    return {**out, "reg_se_note": ""}


def columns(centres, reg_se_row: dict, se: dict) -> dict:
    """The cells of the module docstring from the placement (``centres``, ``None``: the default
    ones), the registration SEs (:func:`reg_se`, without its ``scatter``) and the noise SEs ``se``
    (``alps_se`` ..., :func:`alps.pipeline.uncertainty.scan_se`)."""
    out = dict(reg_se_row)
    for k in INDICES:
        s, rse = se.get(f"{k}_se", np.nan), out.get(f"{k}_reg_se", np.nan)
        out[f"{k}_total_se"] = float(np.hypot(s, rse)) if np.isfinite(s) and np.isfinite(rse) else np.nan
    for n in ROI_NAMES:
        moved = np.subtract(centres[n], DEFAULT_CENTERS_MM[n]) if centres else np.zeros(3)
        out[f"roi_shift_{n}"] = float(np.linalg.norm(moved))
    return out
