"""What part of the template an acquisition covers, once registered: partial-brain slabs.

A clinical slab (e.g. 20 slices of 4.2 mm = 84 mm around the lateral ventricles) holds only part
of the brain. Measured against the whole template brain, a perfect registration of such a slab
scores a brain-mask Dice of about ``2c / (1 + c)`` for a covered fraction ``c`` (0.77 at
c = 0.62) and fails a whole-brain threshold however right it is. The registration QC
(:func:`alps.imaging.registration.registration_metrics`) therefore scores the registration on the
part of the template the field of view covers (:func:`fov_in_template`) and reports that part as
``reg_coverage``; :func:`roi_level_problem` says whether the ALPS ROI level (MNI z = 27 mm, the
lateral-ventricle bodies, with its full left-right extent) is inside the field of view.

Too thin a slab cannot be checked this way: a wrong registration of it can still overlap the
template brain well inside its own field of view. The registration QC fails a field of view
covering less than half the template brain (``MIN_COVERAGE`` = 0.5 of
:mod:`alps.imaging.registration`, ``--min-reg-coverage``). Measured on the real Philips 2 mm scan
cropped along z (``tests/test_realdata_slabs.py``): slabs of 60–96 mm about the ventricles
(coverage 0.58–0.84) registered with the ROIs in the right white matter and covered Dice
0.93–0.96, whereas 40 and 48 mm slabs (0.41, 0.38) registered off (a slab above the ROI level
pulled 10 mm down onto it); judged on the whole template brain, a perfect registration of a slab
with c < 2/3 could not reach the Dice threshold 0.8 at all.

All functions take a registration object with ``to_template`` and ``points_to_subject``
(:class:`alps.imaging.registration.Registration`) and the native grid (``shape``, ``affine``).
"""
from __future__ import annotations

import nibabel as nib
import numpy as np

from .roi import DEFAULT_CENTERS_MM

__all__ = ["fov_in_template", "inside_fov", "roi_level_problem", "z_extent", "ROI_LEVEL"]

#: what the ROI level is, for messages.
ROI_LEVEL = ("MNI z = 27 mm (the lateral-ventricle bodies) with the full left-right extent of the ROIs "
             "(x = -38 .. +38 mm)")


def fov_in_template(registration, shape, affine, reference, *, threads: int = 1) -> np.ndarray:
    """Boolean map on ``reference``'s grid: the template voxels whose centre the registration maps
    inside the native field of view (``shape[:3]`` voxels of ``affine``).

    Computed by resampling an all-ones native image with nearest-neighbour interpolation through
    the same transforms (and the same inside test, ITK's) as the warped brain mask of the Dice, so
    a warped native map is never non-zero outside it.
    """
    ones = nib.Nifti1Image(np.ones(tuple(shape[:3]), np.float32), np.asarray(affine, float))
    warped = registration.to_template(ones, reference=reference, interpolator="nearestNeighbor", threads=threads)
    return np.asarray(warped.get_fdata()) > 0.5


def inside_fov(registration, shape, affine, xyz_template, *, margin_vox: float = 0.5) -> np.ndarray:
    """Whether each template point (N, 3) maps inside the native field of view (voxel centres
    ``-margin_vox .. n - 1 + margin_vox`` along each axis)."""
    pts = registration.points_to_subject(np.asarray(xyz_template, float).reshape(-1, 3))
    inv = np.linalg.inv(np.asarray(affine, float))
    ijk = pts @ inv[:3, :3].T + inv[:3, 3]
    hi = np.asarray(tuple(shape[:3]), float) - 1 + margin_vox
    return np.all((ijk >= -margin_vox) & (ijk <= hi), axis=1)


def z_extent(registration, shape, affine, xy_mm, *, z_mm=np.arange(-80.0, 100.5, 1.0)):
    """The template z range (mm) inside the field of view on every one of the vertical template
    lines through ``xy_mm`` ((K, 2) points), as ``(z_min, z_max)``, or None if none of ``z_mm``
    is inside on all of them."""
    xy = np.asarray(xy_mm, float).reshape(-1, 2)
    z = np.asarray(z_mm, float)
    pts = np.column_stack([np.repeat(xy, len(z), axis=0), np.tile(z, len(xy))])
    ok = inside_fov(registration, shape, affine, pts).reshape(len(xy), len(z)).all(axis=0)
    return (float(z[ok].min()), float(z[ok].max())) if ok.any() else None


def roi_level_problem(registration, shape, affine, *, centers_mm=None, radius_mm: float = 0.0,
                      registered: bool = True) -> str:
    """'' when every ROI (each centre of ``centers_mm``, default the ALPS spheres', ± ``radius_mm``
    along each template axis) maps inside the field of view; else what is missing: the ROIs
    outside, the template z range the field of view covers at the ROIs, and :data:`ROI_LEVEL`.
    ``registered=False`` says that the registration itself failed (the mapping may be wrong)."""
    centers = dict(DEFAULT_CENTERS_MM if centers_mm is None else centers_mm)
    offs = np.vstack([np.zeros(3), np.eye(3), -np.eye(3)]) * float(radius_mm)
    out = []
    for name, c in centers.items():
        pts = np.asarray(c, float)[None] + offs
        if not inside_fov(registration, shape, affine, pts).all():
            native = np.round(registration.points_to_subject(pts[:1])[0], 1).tolist()
            out.append(f"{name} (MNI {tuple(float(v) for v in c)} mm, r = {radius_mm:g} mm -> native {native} mm)")
    if not out:
        return ""
    ext = z_extent(registration, shape, affine, [c[:2] for c in centers.values()])
    span = ("does not reach the ROI columns at all" if ext is None
            else f"covers MNI z = {ext[0]:.0f} .. {ext[1]:.0f} mm at the ROIs")
    how = "as registered" if registered else "as (wrongly) registered"
    return (f"field of view does not contain the ALPS ROI(s) after registration: {'; '.join(out)}; the field of "
            f"view {how} {span}; the acquisition must cover {ROI_LEVEL}")
