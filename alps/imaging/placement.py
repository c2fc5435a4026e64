"""Tract-guided ROI placement: move each template sphere, within a bounded neighbourhood of its
default centre, onto the fibres it is meant to sample, as a reader placing ALPS ROIs on the
colour-FA map does.

Why. The default spheres sit at fixed MNI coordinates (:mod:`alps.imaging.roi`); an affine
registration aligns the brain as a whole, not each subject's tracts. On the shared Canon head
the superior longitudinal fasciculus at the ventricle-body level runs 3–5 mm medial of
MNI |x| = 38 mm, so the association spheres sample mixed tissue (purity 0.07–0.56, where the
Toshiba, Philips and XA30 scans give 0.85–1.00), and small registration differences between
acquisitions move them across the tract's edge.

What is searched (all in template mm, template axes)
---------------------------------------------------
For each hemisphere ``h`` the projection (SCR) and association (SLF) spheres move together in
y and z — one shared offset ``(dy, dz)`` with ``|dy| ≤ search_y``, ``|dz| ≤ search_z``: manual
ALPS reads both ROIs on one axial slice along one left-right line, the direction of the
medullary veins — and each moves along x by ``|dx| ≤ search_x``, the association sphere staying
lateral of the projection sphere by at least ``min_gap_mm`` (centre to centre). Nothing can
wander into another tract: the search box of each sphere is a few millimetres around its
default centre and the two cannot swap.

Evidence. Each native voxel gets the indicator ``e_a = 1`` when its principal eigenvector,
rotated into template axes (``q = R_reg · polar(A)``, as :func:`alps.imaging.measure.measure`
does), is closest to the expected axis ``a`` (z for projection, y for association), else 0
(``evidence='purity'``), or the colour-FA channel ``FA·|v1_a|`` (``evidence='colour'``). The
evidence of a candidate sphere is the mean of the trilinear interpolation of that native field
over the sphere (template points on a ``step_mm`` grid); for ``'purity'`` this is the ROI's
``purity_*`` of :func:`alps.imaging.measure.measure` under trilinear weighting (the identity
``Σ w_i f_i = Σ_p f(p)`` of :func:`alps.imaging.measure.trilinear_weights`), up to the grid.

Choice. Per hemisphere, over the candidates ``(dx_p, dx_a, dy, dz)`` (step ``step_mm``), the one
maximising

.. math:: E_{proj}(c_p) + E_{assoc}(c_a) - \\lambda\\,(|c_p - c_p^0|^2 + |c_a - c_a^0|^2)

(``penalty`` = λ per mm², the shared ``dy, dz`` paid by both spheres), unless the default
candidate's score is within ``tolerance`` of the best: then nothing moves. So spheres that sit
on their tracts stay where the registration put them (on the shared Toshiba and Philips scans,
the XA30 AP scan and the simulated cohort nothing moves; on the XA30 PA scan the left hemisphere
does, association purity 0.89 → 0.97), and a hemisphere whose spheres miss their tract moves as
far as the evidence needs and no further. Ties go to the first candidate in
array order (deterministic). Options evaluated and kept off by default: ``gate`` (a hemisphere
whose two default purities are ≥ ``gate`` stays), ``min_purity`` (only candidates whose two
purities reach it), and centring on the colour evidence of the tensor smoothed by ``smooth_mm``.

Defaults, chosen on the Canon tilt head and reported on the Toshiba one (and the reverse), with
``benchmarks/placement.py`` (purity evidence, λ = 0.004/mm², tolerance 0.1; search ±6 mm in x,
±4 mm in y and z; gap 6 mm): every ROI's purity ≥ 0.85 on every shared real scan (Canon
association spheres from 0.07–0.56); the summed Cochran's Q (mean, left, right index) falls
on the Canon tilts from 143 to 73 and on the Canon head-turned trio from 249 to 75 and stays
at 41 on the Toshiba tilts (untouched). It does not bring the Canon heads within noise: with
the ROIs carried between series by the heads' own motion (the oracle), on-tract spheres still
spread by 0.16 (Canon tilts) — the acquisitions themselves differ there. Neighbouring settings
(λ 0.01, tolerance 0.2) give Q 94–121 (Canon) and 75–122 (turned): better than the default
spheres, not reliably better than each other.

The index is then measured with the moved spheres exactly as with the default ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import tensor as T
from .measure import EXPECTED_AXIS
from .roi import DEFAULT_CENTERS_MM, ROI_NAMES

#: per-voxel evidence kinds of :func:`evidence_fields`.
EVIDENCE = ("purity", "colour")

#: default search bounds (mm) and penalty (per mm²).
SEARCH_X_MM = 6.0
SEARCH_Y_MM = 4.0
SEARCH_Z_MM = 4.0
MIN_GAP_MM = 6.0
PENALTY = 0.004
STEP_MM = 1.0
TOLERANCE = 0.1


@dataclass(frozen=True)
class Placement:
    """Where the spheres went and why.

    ``centers_mm``: {roi: (x, y, z)} template mm (what :func:`alps.imaging.roi.default_spheres`
    takes as ``centers_mm``); ``default_mm``: the starting centres; ``evidence``/``evidence_default``:
    {roi: E} of the chosen and of the default spheres; ``shift_mm``: {roi: distance moved}.
    """

    centers_mm: dict
    default_mm: dict
    evidence: dict
    evidence_default: dict
    purity: dict = field(default_factory=dict)
    purity_default: dict = field(default_factory=dict)
    shift_mm: dict = field(default_factory=dict)

    def as_row(self) -> dict:
        """Flat columns: ``roi_x_<roi>``, ``roi_y_<roi>``, ``roi_z_<roi>`` (template mm),
        ``roi_shift_<roi>`` (mm), ``evidence_<roi>`` and ``evidence_default_<roi>``."""
        row = {}
        for name in ROI_NAMES:
            for k, v in zip("xyz", self.centers_mm[name]):
                row[f"roi_{k}_{name}"] = float(v)
            row[f"roi_shift_{name}"] = float(self.shift_mm[name])
            row[f"evidence_{name}"] = float(self.evidence[name])
            row[f"evidence_default_{name}"] = float(self.evidence_default[name])
        return row


def evidence_fields(tensor_vox, affine, rotation, *, kind: str = "purity", fa=None,
                    smooth_mm: float = 0.0) -> dict[str, np.ndarray]:
    """Native per-voxel evidence of each fibre type (``{'proj': (X,Y,Z), 'assoc': (X,Y,Z)}``).

    ``rotation``: the subject → template rotation (``registration.rotation``); the tensor is in
    voxel axes and is taken to template axes by ``rotation @ polar(affine)``. ``kind``: see the
    module docstring; ``fa`` is needed for ``'colour'`` (default: computed from the tensor).
    """
    if kind not in EVIDENCE:
        raise ValueError(f"evidence must be one of {EVIDENCE}, got {kind!r}")
    tensor_vox = np.asarray(tensor_vox)
    if smooth_mm > 0:
        from scipy.ndimage import gaussian_filter

        vox = np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)
        six = T.to_six(tensor_vox)
        six = np.stack([gaussian_filter(six[..., c].astype(np.float64), smooth_mm / vox) for c in range(6)], -1)
        tensor_vox = T.from_six(six)
        fa = None
    q = np.asarray(rotation, float) @ T.polar_rotation(np.asarray(affine, float)[:3, :3])
    evals, evecs = T.eig(tensor_vox)
    v1 = evecs[..., :, 0] @ q.T  # template axes
    ok = np.isfinite(v1).all(-1) & (evals[..., 0] > 0)
    out = {}
    if kind == "purity":
        best = np.argmax(np.abs(v1), axis=-1)
        for fibre, ax in EXPECTED_AXIS.items():
            out[fibre] = ((best == ax) & ok).astype(np.float32)
    else:
        if fa is None:
            fa, _ = T.fa_md(tensor_vox)
        fa = np.nan_to_num(np.clip(np.asarray(fa, float), 0, 1))
        for fibre, ax in EXPECTED_AXIS.items():
            out[fibre] = np.where(ok, fa * np.abs(v1[..., ax]), 0.0).astype(np.float32)
    return out


def search_box(shape, affine, registration, centers, reach_mm, *, margin_mm: float = 0.0):
    """The native-grid slices (a tuple for ``array[box]``) holding every template point within
    ``reach_mm`` (per axis) of the ``centers``, plus ``margin_mm`` and one voxel."""
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T * np.asarray(reach_mm)
    pts = (np.asarray(centers, float)[:, None, :] + corners[None]).reshape(-1, 3)
    inv = np.linalg.inv(np.asarray(affine, float))
    ijk = registration.points_to_subject(pts) @ inv[:3, :3].T + inv[:3, 3]
    vox = np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)
    pad = np.ceil(margin_mm / vox).astype(int) + 1
    lo = np.maximum(np.floor(ijk.min(0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(ijk.max(0)).astype(int) + pad + 1, np.asarray(shape[:3]))
    if np.any(hi <= lo):
        raise ValueError("the ROI search region lies outside the image")
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def crop(affine, box) -> np.ndarray:
    """The affine of ``array[box]``."""
    out = np.asarray(affine, float).copy()
    out[:3, 3] = out[:3, :3] @ np.array([b.start or 0 for b in box], float) + out[:3, 3]
    return out


def _ball(radius_mm: float, step_mm: float) -> np.ndarray:
    n = int(np.floor(radius_mm / step_mm))
    g = np.arange(-n, n + 1) * step_mm
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1)
    return ((pts ** 2).sum(-1) <= radius_mm ** 2 + 1e-9).astype(float)


def sphere_evidence_map(field_native, affine, registration, origin_mm, shape, *, radius_mm: float,
                        step_mm: float = STEP_MM) -> np.ndarray:
    """Mean of the trilinearly interpolated native ``field_native`` over a sphere of
    ``radius_mm``, for every centre of a template grid (``origin_mm`` + ``step_mm``·index,
    ``shape``). Points outside the native field of view count as 0."""
    from scipy.ndimage import convolve, map_coordinates

    ball = _ball(radius_mm, step_mm)
    pad = ball.shape[0] // 2
    full = tuple(int(s) + 2 * pad for s in shape)
    idx = np.stack(np.meshgrid(*[np.arange(s) - pad for s in full], indexing="ij"), -1).reshape(-1, 3)
    pts = np.asarray(origin_mm, float) + idx * step_mm
    sub = registration.points_to_subject(pts)
    inv = np.linalg.inv(np.asarray(affine, float))
    ijk = (sub @ inv[:3, :3].T + inv[:3, 3]).T
    vals = map_coordinates(np.asarray(field_native, np.float32), ijk, order=1, mode="constant",
                           cval=0.0).reshape(full)
    conv = convolve(vals, ball / ball.sum(), mode="constant", cval=0.0)
    return conv[pad:pad + shape[0], pad:pad + shape[1], pad:pad + shape[2]]


def placement_fields(tensor_vox, affine, rotation, *, evidence: str = "colour", smooth_mm: float = 3.0,
                     fa=None) -> dict[str, np.ndarray]:
    """The native fields :func:`place_rois` reads: ``purity_proj``/``purity_assoc`` (the
    indicators of :func:`evidence_fields` ``'purity'``, unsmoothed: what the ROI's ``purity_*``
    is made of) and ``proj``/``assoc`` (the ``evidence`` fields, from the tensor smoothed by
    ``smooth_mm``)."""
    pur = evidence_fields(tensor_vox, affine, rotation, kind="purity")
    out = {f"purity_{k}": v for k, v in pur.items()}
    if evidence == "purity" and smooth_mm == 0:
        out.update(pur)
    else:
        out.update(evidence_fields(tensor_vox, affine, rotation, kind=evidence, fa=fa, smooth_mm=smooth_mm))
    return out


def place_rois(tensor_vox, affine, registration, *, radius_mm: float = 2.5, centers_mm=None,
               evidence: str = "purity", smooth_mm: float = 0.0, gate: float | None = None,
               min_purity: float | None = None, search_x_mm: float = SEARCH_X_MM,
               search_y_mm: float = SEARCH_Y_MM, search_z_mm: float = SEARCH_Z_MM,
               min_gap_mm: float = MIN_GAP_MM, penalty: float = PENALTY, step_mm: float = STEP_MM,
               tolerance: float = TOLERANCE, fa=None, fields=None) -> Placement:
    """Tract-guided sphere centres (module docstring) for one scan.

    Parameters
    ----------
    tensor_vox : (X, Y, Z, 3, 3) tensor in voxel axes
    affine : its 4x4 affine
    registration : subject → template :class:`~alps.imaging.registration.Registration`
    radius_mm : sphere radius
    centers_mm : default centres {roi: (x, y, z)} (default :data:`alps.imaging.roi.DEFAULT_CENTERS_MM`)
    evidence, smooth_mm : what the spheres are centred on: ``'colour'`` (FA·|v1_a|) or ``'purity'``
        of the tensor smoothed by a Gaussian of SD ``smooth_mm`` (:func:`placement_fields`)
    gate : a hemisphere whose two default spheres both have purity ≥ ``gate`` is left as it is
        (``None``: always search)
    min_purity : only candidates whose two spheres both have purity ≥ this are considered
        (``None``: all); when there is none, the candidate of highest summed purity is taken
    search_x_mm, search_y_mm, search_z_mm : half-widths of the search (mm)
    min_gap_mm : smallest |x| distance of the association centre lateral of the projection one
    penalty : λ, evidence units per mm² of displacement
    step_mm : grid step of the search
    tolerance : keep the default when its score is within this of the best
    fa : FA map (for ``'colour'`` without smoothing)
    fields : precomputed :func:`placement_fields` on the whole grid (optional)

    Returns
    -------
    :class:`Placement`
    """
    for name, v in (("search_x_mm", search_x_mm), ("search_y_mm", search_y_mm), ("search_z_mm", search_z_mm),
                    ("penalty", penalty), ("smooth_mm", smooth_mm), ("tolerance", tolerance)):
        if not v >= 0:
            raise ValueError(f"{name} must be zero or positive, got {v!r}")
    if not step_mm > 0:
        raise ValueError(f"step_mm must be positive, got {step_mm!r}")
    if evidence not in EVIDENCE:
        raise ValueError(f"evidence must be one of {EVIDENCE}, got {evidence!r}")
    centers = {k: tuple(float(c) for c in v) for k, v in dict(centers_mm or DEFAULT_CENTERS_MM).items()}
    reach = np.array([search_x_mm, search_y_mm, search_z_mm]) + radius_mm + step_mm
    if fields is None:
        box = search_box(np.asarray(tensor_vox).shape[:3], affine, registration, list(centers.values()), reach,
                         margin_mm=3 * smooth_mm)
        crop_affine = crop(affine, box)
        fields = placement_fields(np.asarray(tensor_vox)[box], crop_affine, registration.rotation,
                                  evidence=evidence, smooth_mm=smooth_mm,
                                  fa=None if fa is None else np.asarray(fa)[box])
    else:
        crop_affine = np.asarray(affine, float)
    nx, ny, nz = (int(np.floor(s / step_mm + 1e-9)) for s in (search_x_mm, search_y_mm, search_z_mm))
    dx = np.arange(-nx, nx + 1) * step_mm
    dy = np.arange(-ny, ny + 1) * step_mm
    dz = np.arange(-nz, nz + 1) * step_mm
    out_c, ev, ev0, pur, pur0 = {}, {}, {}, {}, {}
    for hemi in ("L", "R"):
        p0, a0 = np.asarray(centers[f"proj_{hemi}"]), np.asarray(centers[f"assoc_{hemi}"])
        maps = {}
        for key in ("proj", "assoc", "purity_proj", "purity_assoc"):
            c0 = p0 if key.endswith("proj") else a0
            maps[key] = sphere_evidence_map(fields[key], crop_affine, registration, c0 + np.array([dx[0], dy[0], dz[0]]),
                                            (len(dx), len(dy), len(dz)), radius_mm=radius_mm, step_mm=step_mm)
        side = np.sign(a0[0] - p0[0]) or 1.0  # +1: association lateral towards +x (right hemisphere)
        gap_ok = (side * ((a0[0] + dx)[None, :] - (p0[0] + dx)[:, None])) >= min_gap_mm - 1e-9  # (ip, ia)
        pen = penalty * ((dx ** 2)[:, None, None, None] + (dx ** 2)[None, :, None, None]
                         + 2 * (dy[:, None] ** 2 + dz[None, :] ** 2)[None, None])
        # candidate (ip, ia, iy, iz): projection x, association x, shared y and z
        score = maps["proj"][:, None] + maps["assoc"][None, :] - pen
        pp, pa = maps["purity_proj"][:, None], maps["purity_assoc"][None, :]
        ok = np.broadcast_to(gap_ok[:, :, None, None], score.shape)
        if not ok.any():
            raise ValueError(f"no placement satisfies the {min_gap_mm} mm gap in hemisphere {hemi}")
        feasible = ok & (pp >= min_purity) & (pa >= min_purity) if min_purity is not None else ok
        if feasible.any():
            tot = np.where(feasible, score, -np.inf)
        else:  # nowhere pure enough: the purest candidate
            tot = np.where(ok, pp + pa - pen, -np.inf)
        i0 = (nx, nx, ny, nz)
        best = np.unravel_index(int(np.argmax(tot)), tot.shape)
        stay = gate is not None and maps["purity_proj"][nx, ny, nz] >= gate and maps["purity_assoc"][nx, ny, nz] >= gate
        stay = stay or (np.isfinite(tot[i0]) and tot[i0] >= tot[best] - tolerance)
        ip, ia, iy, iz = i0 if stay else best
        for fibre, c0, i in (("proj", p0, ip), ("assoc", a0, ia)):
            name = f"{fibre}_{hemi}"
            out_c[name] = (float(c0[0] + dx[i]), float(c0[1] + dy[iy]), float(c0[2] + dz[iz]))
            ev[name], ev0[name] = float(maps[fibre][i, iy, iz]), float(maps[fibre][nx, ny, nz])
            pur[name] = float(maps[f"purity_{fibre}"][i, iy, iz])
            pur0[name] = float(maps[f"purity_{fibre}"][nx, ny, nz])
    shift = {n: float(np.linalg.norm(np.subtract(out_c[n], centers[n]))) for n in ROI_NAMES}
    keep = {n: centers[n] for n in ROI_NAMES}
    return Placement(centers_mm={n: out_c[n] for n in ROI_NAMES}, default_mm=keep,
                     evidence={n: ev[n] for n in ROI_NAMES}, evidence_default={n: ev0[n] for n in ROI_NAMES},
                     purity={n: pur[n] for n in ROI_NAMES}, purity_default={n: pur0[n] for n in ROI_NAMES},
                     shift_mm=shift)
