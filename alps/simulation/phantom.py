"""Digital brain phantom in MNI152 (2009a) space: tissue fractions, S0, and a diffusion-tensor field.

Anatomy
-------
The white-matter (``f_wm``) and grey-matter (``f_gm``) fractions are the MNI152 2009a probability
maps shipped with nilearn (:func:`alps.imaging.template.load`); cerebrospinal fluid is what is left of the
brain mask, ``f_csf = clip(mask − f_gm − f_wm, 0, 1)`` (ventricles included). Outside the mask
all fractions are 0 (no signal). At the four default ALPS ROIs the template WM fraction is already
high (mean 0.93 in the SCR spheres, 0.998 in the SLF spheres of radius 2.5 mm), so it is used
unchanged.

Each voxel's tensor is the fraction-weighted mix ("tensor partial volume") of

* WM: ``λ⊥ I + (λ∥ − λ⊥) M(x) + p_h s(x) e_x e_xᵀ``
* GM: ``d_gm I``;  CSF: ``d_csf I``

and S0 is the fraction-weighted mix of the tissue S0 values (CSF bright, as on a b = 0 image).

Fibre orientation ``M(x) = Σ_k w_k(x) v_k v_kᵀ`` (``Σ w_k = 1``, trace 1) blends three
directions with smooth (cosine-ramp) weights of the template position (mm, ``a = |x|``):

* commissural ``v = e_x`` (corpus callosum): ``w_x = down(a; 12, 18) · band(z; 0, 6, 36, 42) ·
  band(y; −48, −40, 28, 36)``;
* association ``v = e_y`` (SLF and the other lateral long association tracts):
  ``w_y = up(a; 31, 34) · (1 − w_x)``;
* projection ``v = e_z`` (corona radiata, internal capsule, brain stem): ``w_z = 1 − w_x − w_y``.

So the projection direction is pure for 18 ≤ |x| ≤ 31 mm and the association direction for
|x| ≥ 34 mm: at least 4 mm of coherent orientation around the ROI centres |x| = 26 and 38 mm
(ROI radius 2.5 mm + 1.5 mm registration slack on the inner side; more elsewhere).

Perivascular (ALPS) component: an extra diffusivity ``p_h`` along x (right–left, the
medullary-vein direction) in the WM compartment, weighted by the smooth slab
``s(x) = band(z; 13, 18, 36, 41) · up(a; 14, 19) · band(y; −52, −42, 22, 32)`` (ventricle-body
level, lateral to the ventricles), with ``p_L`` for x < 0 and ``p_R`` for x > 0 (s = 0 near the
midline, so the split is smooth). In a pure WM voxel of either ROI type
``ALPS = (λ⊥ + p)/λ⊥``; because the ROIs contain some GM and s < 1 is possible, ``p`` is instead
*calibrated* by :func:`calibrate_perivascular` so that the ALPS computed on the noise-free
template-space field within the default ROIs equals the planted value exactly (it is linear in p).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..imaging import template
from ..imaging.index import alps_from_roi_tensors, alps_from_tensor_field
from ..imaging.roi import ROI_NAMES, default_spheres, sphere_masks, voxel_world_coords
from ..imaging.tensor import from_six

#: Tissue diffusivities (mm²/s) and b = 0 signal (a.u.), simulation parameters.
TISSUE = {
    "wm_lambda_par": 1.65e-3,   # per-subject draw U(1.60, 1.70)e-3, see alps.simulation
    "wm_lambda_perp": 0.40e-3,  # per-subject draw U(0.35, 0.45)e-3
    "gm_d": 0.80e-3,
    "csf_d": 3.00e-3,
    "s0_wm": 400.0,
    "s0_gm": 500.0,
    "s0_csf": 1000.0,
}


def _up(v, a, b):
    """Cosine ramp: 0 for v ≤ a, 1 for v ≥ b, C¹-smooth in between."""
    t = np.clip((np.asarray(v, float) - a) / (b - a), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def _down(v, a, b):
    return 1.0 - _up(v, a, b)


def _band(v, a, b, c, d):
    """1 on [b, c], ramping from 0 at a and to 0 at d."""
    return _up(v, a, b) * _down(v, c, d)


def orientation_weights(xyz):
    """Weights ``(w_x, w_y, w_z)`` of the commissural, association and projection directions
    at template points ``xyz`` (mm, shape ``(..., 3)``); they sum to 1."""
    xyz = np.asarray(xyz, float)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    a = np.abs(x)
    w_x = _down(a, 12, 18) * _band(z, 0, 6, 36, 42) * _band(y, -48, -40, 28, 36)
    w_y = _up(a, 31, 34) * (1.0 - w_x)
    w_z = 1.0 - w_x - w_y
    return w_x, w_y, w_z


def perivascular_weight(xyz):
    """Smooth slab weight ``s(x)`` in [0, 1] of the perivascular x-diffusivity (see module doc)."""
    xyz = np.asarray(xyz, float)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return _band(z, 13, 18, 36, 41) * _up(np.abs(x), 14, 19) * _band(y, -52, -42, 22, 32)


@dataclass(frozen=True)
class TemplateFields:
    """Noise-free template-space building blocks (all arrays on the template grid, float64).

    ``orient6`` holds ``f_wm · M`` in six-component order (xx, xy, xz, yy, yz, zz);
    ``pv_L``/``pv_R`` hold ``f_wm · s`` restricted to x < 0 / x > 0.
    """

    affine: np.ndarray
    shape: tuple
    f_wm: np.ndarray
    f_gm: np.ndarray
    f_csf: np.ndarray
    mask: np.ndarray
    orient6: np.ndarray
    pv_L: np.ndarray
    pv_R: np.ndarray

    def s0(self, tissue=None) -> np.ndarray:
        t = dict(TISSUE, **(tissue or {}))
        return self.f_wm * t["s0_wm"] + self.f_gm * t["s0_gm"] + self.f_csf * t["s0_csf"]

    def tensor6(self, lam_par, lam_perp, p_L=0.0, p_R=0.0, *, gm_d=None, csf_d=None,
                index=None) -> np.ndarray:
        """Six-component tensor field ``(..., 6)`` (mm²/s); ``index`` restricts to a subset
        (any numpy index into the grid)."""
        gm_d = TISSUE["gm_d"] if gm_d is None else gm_d
        csf_d = TISSUE["csf_d"] if csf_d is None else csf_d
        sel = (lambda a: a) if index is None else (lambda a: a[index])
        f_wm, f_gm, f_csf = sel(self.f_wm), sel(self.f_gm), sel(self.f_csf)
        iso = f_wm * lam_perp + f_gm * gm_d + f_csf * csf_d
        out = (lam_par - lam_perp) * sel(self.orient6)
        out[..., 0] += iso + p_L * sel(self.pv_L) + p_R * sel(self.pv_R)
        out[..., 3] += iso
        out[..., 5] += iso
        return out


@functools.lru_cache(maxsize=2)
def make_template_fields(resolution: int = 2) -> TemplateFields:
    """Build (once per process, cached) the template-space phantom building blocks."""
    wm_img = template.load("wm", resolution=resolution)
    f_wm = np.clip(wm_img.get_fdata(), 0, 1)
    f_gm = np.clip(template.load("gm", resolution=resolution).get_fdata(), 0, 1)
    mask = template.load("mask", resolution=resolution).get_fdata() > 0.5
    f_wm = np.where(mask, f_wm, 0.0)
    f_gm = np.where(mask, f_gm, 0.0)
    f_csf = np.where(mask, np.clip(1.0 - f_gm - f_wm, 0, 1), 0.0)
    affine = wm_img.affine.copy()
    xyz = voxel_world_coords(f_wm.shape, affine)
    w_x, w_y, w_z = orientation_weights(xyz)
    orient6 = np.zeros(f_wm.shape + (6,))
    orient6[..., 0] = w_x * f_wm
    orient6[..., 3] = w_y * f_wm
    orient6[..., 5] = w_z * f_wm
    s = perivascular_weight(xyz) * f_wm
    left = xyz[..., 0] < 0
    return TemplateFields(
        affine=affine, shape=f_wm.shape, f_wm=f_wm, f_gm=f_gm, f_csf=f_csf, mask=mask,
        orient6=orient6, pv_L=np.where(left, s, 0.0), pv_R=np.where(left, 0.0, s),
    )


@functools.lru_cache(maxsize=8)
def _roi_masks(shape, affine_bytes, radius_mm):
    affine = np.frombuffer(affine_bytes).reshape(4, 4)
    return sphere_masks(shape, affine, default_spheres(radius_mm=radius_mm))


def roi_masks(shape, affine, radius_mm=2.5):
    """Default ALPS sphere masks on a grid (cached)."""
    return _roi_masks(tuple(shape[:3]), np.asarray(affine, float).tobytes(), float(radius_mm))


def calibrate_perivascular(fields: TemplateFields, lam_par, lam_perp, alps_L, alps_R, *,
                           radius_mm=2.5, gm_d=None, csf_d=None):
    """Perivascular diffusivities ``(p_L, p_R)`` (mm²/s) that make the template-space ROI
    ALPS equal ``alps_L``/``alps_R`` exactly.

    With ROI means (over the sphere voxels) ``X_h = ½(D̄xx,proj + D̄xx,assoc)`` and
    ``Y_h = ½(D̄yy,proj + D̄zz,assoc)`` of the field without the perivascular term and
    ``S_h = ½(s̄_proj + s̄_assoc)`` of the weight ``f_wm·s``, ``ALPS_h = (X_h + p_h S_h)/Y_h``, so
    ``p_h = (ALPS_h Y_h − X_h)/S_h``. For a pure WM voxel with s = 1 this reduces to
    ``p = (ALPS − 1) λ⊥``.
    """
    masks = roi_masks(fields.shape, fields.affine, radius_mm)
    out = []
    for hemi, target in (("L", alps_L), ("R", alps_R)):
        mean6 = {}
        pv = {}
        for fibre in ("proj", "assoc"):
            m = masks[f"{fibre}_{hemi}"]
            mean6[fibre] = fields.tensor6(lam_par, lam_perp, gm_d=gm_d, csf_d=csf_d,
                                          index=m).mean(axis=0)
            pv[fibre] = getattr(fields, f"pv_{hemi}")[m].mean()
        x_ = 0.5 * (mean6["proj"][0] + mean6["assoc"][0])
        y_ = 0.5 * (mean6["proj"][3] + mean6["assoc"][5])
        s_ = 0.5 * (pv["proj"] + pv["assoc"])
        if not s_ > 0.1:
            raise RuntimeError(f"perivascular weight in the {hemi} ROIs is too small ({s_:.3f})")
        out.append(float((target * y_ - x_) / s_))
    if min(out) <= -0.9 * lam_perp:
        raise ValueError(f"planted ALPS {alps_L}, {alps_R} would need a non-physical p = {out}")
    return tuple(out)


def oracle_alps(tensor_field, affine, radius_mm=2.5) -> dict:
    """ALPS of a tensor field (``grid + (3, 3)`` or ``grid + (6,)``) within the default spheres.

    Uses :func:`alps.imaging.roi.default_spheres`, :func:`alps.imaging.roi.sphere_masks` and
    :func:`alps.imaging.index.alps_from_tensor_field`; returns their dict (``alps_L``, ``alps_R``,
    ``alps`` and the ROI diagonal components).
    """
    t = np.asarray(tensor_field)
    if t.ndim == 4 and t.shape[-1] == 6:
        # ROI means are linear: average the six components, then unpack (same result as
        # alps_from_tensor_field on the full (3, 3) field, without building it).
        masks = roi_masks(t.shape[:3], affine, radius_mm)
        means = {name: from_six(t[m].astype(float).mean(axis=0)) for name, m in masks.items()}
        return alps_from_roi_tensors(means)
    t = np.asarray(t, float)
    masks = roi_masks(t.shape[:3], affine, radius_mm)
    return alps_from_tensor_field(t, masks)


__all__ = [
    "TISSUE", "TemplateFields", "make_template_fields", "orientation_weights",
    "perivascular_weight", "calibrate_perivascular", "oracle_alps", "roi_masks", "ROI_NAMES",
]
