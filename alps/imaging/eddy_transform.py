"""The transform of eddy-current and motion correction: rigid head motion, then an eddy-current
displacement along the phase-encoding axis (Jezzard et al. 1998; Andersson & Sotiropoulos 2016).

A point of the head at voxel position ``y`` of the reference grid (the b = 0 image's frame) is seen
in diffusion-weighted volume ``n`` at voxel position ``x = W_n(y)``:

1. head motion, rigid in world (RAS mm) coordinates about the centre ``c`` (the brain mask's
   centroid): ``q = R (p − c) + c + t`` with ``p = A y`` (``A`` the image affine);
2. the EPI read-out displaces what is at scanner voxel position ``u = A⁻¹ q`` along the
   phase-encoding (PE) voxel axis ``a`` by the eddy-current field's displacement
   ``x = u + d(u) e_a``, ``d`` (voxels) ``= Σ_k c_k φ_k(s) / v_a`` with ``s = (u − u_c) ⊙ v`` the
   position in mm along the voxel axes from the centre, ``v`` the voxel sizes, and the polynomial
   terms (units: every coefficient ``c_k`` is the displacement in mm at 100 mm from the centre)

   * ``linear``: ``φ = s_i/100, s_j/100, s_k/100`` — a shear of the PE displacement along each
     in-plane/through-plane axis and, for the PE axis itself, a scaling (the classic eddy-current
     shear/scale of Haselgrove & Moore 1996); FSL eddy's ``--flm linear``;
   * ``quadratic``: also ``s_i², s_j², s_k², s_i s_j, s_i s_k, s_j s_k`` (/100²), ``--flm quadratic``;
   * ``rigid``: none (b = 0 volumes: FSL eddy's ``--b0_flm movement``).

   The constant term (a translation along PE) is left out: it cannot be told from head motion
   along PE (FSL eddy separates it with a model of the offsets across volumes; here it is part of
   the translation ``t``). When the PE axis is not known the displacement has a field of its own
   along each in-plane voxel axis (i and j; BIDS' default slice axis is k).

Signal is conserved by the distortion, so the corrected image is ``I_n(W(y)) · J(y)`` with
``J = det ∂x/∂u`` (the Jacobian intensity correction; ``R`` has determinant 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

#: eddy-current models of the diffusion-weighted volumes.
EC_MODELS = ("rigid", "linear", "quadratic")
AXES = "ijk"
_TERMS = {"rigid": (), "linear": ("i", "j", "k"), "quadratic": ("i", "j", "k", "ii", "jj", "kk", "ij", "ik", "jk")}
#: the basis is in units of this length (mm): each coefficient is the displacement at 100 mm
SCALE_MM = 100.0


def ec_terms(model: str) -> tuple:
    """Names of the polynomial terms of an eddy-current model (:data:`EC_MODELS`)."""
    if model not in _TERMS:
        raise ValueError(f"eddy-current model must be one of {EC_MODELS}, got {model!r}")
    return _TERMS[model]


def basis(s, model: str):
    """Polynomial terms ``φ_k(s)`` ``(M, K)`` and their derivatives ``∂φ_k/∂s_b`` ``(M, K, 3)``
    at positions ``s`` (mm from the centre along the voxel axes, ``(M, 3)``)."""
    terms = ec_terms(model)
    u = np.asarray(s, float) / SCALE_MM
    m = len(u)
    phi = np.empty((m, len(terms)))
    dphi = np.zeros((m, len(terms), 3))
    for k, name in enumerate(terms):
        a = [AXES.index(c) for c in name]
        if len(a) == 1:
            phi[:, k] = u[:, a[0]]
            dphi[:, k, a[0]] = 1.0 / SCALE_MM
        else:
            phi[:, k] = u[:, a[0]] * u[:, a[1]]
            dphi[:, k, a[0]] += u[:, a[1]] / SCALE_MM
            dphi[:, k, a[1]] += u[:, a[0]] / SCALE_MM
    return phi, dphi


@dataclass(frozen=True)
class Geometry:
    """The image grid and what the transform acts along: ``affine`` (4x4 voxel → RAS mm),
    ``shape`` (3D), the rotation and basis centre ``centre`` (world mm), the voxel axes the
    eddy-current field displaces (``pe_axes``: the PE axis, or (0, 1) when it is unknown) and the
    eddy-current model of the diffusion-weighted volumes."""

    affine: np.ndarray
    shape: tuple
    centre: np.ndarray
    pe_axes: tuple
    model: str = "linear"
    lin: np.ndarray = field(init=False, repr=False)
    lin_inv: np.ndarray = field(init=False, repr=False)
    vox: np.ndarray = field(init=False, repr=False)
    centre_vox: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        ec_terms(self.model)
        aff = np.asarray(self.affine, float)
        object.__setattr__(self, "affine", aff)
        object.__setattr__(self, "lin", aff[:3, :3])
        object.__setattr__(self, "lin_inv", np.linalg.inv(aff[:3, :3]))
        object.__setattr__(self, "vox", np.linalg.norm(aff[:3, :3], axis=0))
        c = np.asarray(self.centre, float)
        object.__setattr__(self, "centre", c)
        object.__setattr__(self, "centre_vox", np.linalg.inv(aff[:3, :3]) @ (c - aff[:3, 3]))

    def n_ec(self, model: str | None = None) -> int:
        return len(self.pe_axes) * len(ec_terms(self.model if model is None else model))


@dataclass(frozen=True)
class VolumeTransform:
    """One volume's transform (module docstring): rotation ``R`` (3x3), translation ``t`` (mm) and
    the eddy-current coefficients ``ec`` ``(len(pe_axes), K)`` (mm at 100 mm; K = 0 for rigid)."""

    rotation: np.ndarray
    translation: np.ndarray
    ec: np.ndarray

    @classmethod
    def identity(cls, geom: Geometry, model: str | None = None) -> "VolumeTransform":
        k = len(ec_terms(geom.model if model is None else model))
        return cls(np.eye(3), np.zeros(3), np.zeros((len(geom.pe_axes), k)))

    def rigid_matrix(self, geom: Geometry) -> np.ndarray:
        """4x4 world (RAS mm) matrix of the head motion: reference point → its position in this volume."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = geom.centre + self.translation - self.rotation @ geom.centre
        return m


def _rows(tr: VolumeTransform, geom: Geometry, s):
    """Displacements (voxels) ``d_a`` and rows ``f_a = ∇_u d_a`` ``(M, 3)`` of ``F = ∂x/∂u = I + Σ_a e_a f_aᵀ``
    for each displaced axis ``a``, at positions ``s`` (mm from the centre along the voxel axes)."""
    terms = ec_terms(geom.model)
    q = np.asarray(s, float) / SCALE_MM
    disp, rows = [], []
    for n, a in enumerate(geom.pe_axes):
        c = tr.ec[n]
        d = np.zeros(len(q))
        f = np.zeros((len(q), 3))
        for k, name in enumerate(terms):
            if c[k] == 0.0:
                continue
            ax = [AXES.index(ch) for ch in name]
            if len(ax) == 1:
                d += c[k] * q[:, ax[0]]
                f[:, ax[0]] += c[k] / SCALE_MM
            else:
                d += c[k] * q[:, ax[0]] * q[:, ax[1]]
                f[:, ax[0]] += c[k] * q[:, ax[1]] / SCALE_MM
                f[:, ax[1]] += c[k] * q[:, ax[0]] / SCALE_MM
        disp.append(d / geom.vox[a])
        rows.append(f * geom.vox[None, :] / geom.vox[a])
    return disp, rows


def jacobian(rows, geom: Geometry) -> np.ndarray:
    """``J = det F`` from the rows of :func:`_rows` (one or two displaced axes)."""
    if len(geom.pe_axes) == 1:
        a = geom.pe_axes[0]
        return 1.0 + rows[0][:, a]
    a, b = geom.pe_axes
    fa, fb = rows
    return (1.0 + fa[:, a]) * (1.0 + fb[:, b]) - fa[:, b] * fb[:, a]


def forward(tr: VolumeTransform, geom: Geometry, y, *, aux: bool = False):
    """Voxel positions ``x = W(y)`` ``(M, 3)`` in the volume of reference-grid points ``y`` and the
    Jacobian ``J`` ``(M,)``; with ``aux`` also a dict of the intermediate terms the registration's
    derivatives need (``v = R (p − c)``, the rows ``f`` of ``F = ∂x/∂u``, ``phi``, ``dphi``)."""
    y = np.asarray(y, float)
    lin = geom.lin_inv @ tr.rotation @ geom.lin
    off = geom.lin_inv @ (tr.rotation @ (geom.affine[:3, 3] - geom.centre) + geom.centre + tr.translation
                          - geom.affine[:3, 3])
    u = y @ lin.T + off
    x = u.copy()
    rows = []
    if tr.ec.size:
        s = (u - geom.centre_vox) * geom.vox
        disp, rows = _rows(tr, geom, s)
        for d, a in zip(disp, geom.pe_axes):
            x[:, a] += d
        jac = jacobian(rows, geom)
    else:
        jac = np.ones(len(u))
    if not aux:
        return x, jac
    v = (y @ geom.lin.T + geom.affine[:3, 3] - geom.centre) @ tr.rotation.T
    phi = dphi = None
    if tr.ec.size:
        phi, dphi = basis((u - geom.centre_vox) * geom.vox, geom.model)
    return x, jac, {"v": v, "rows": rows, "phi": phi, "dphi": dphi}


def inverse(tr: VolumeTransform, geom: Geometry, x, *, n_iter: int = 50):
    """Reference-grid positions ``y = W⁻¹(x)`` of volume voxel positions ``x`` ``(M, 3)`` (the
    eddy-current part by fixed-point iteration, converged for displacements that change by less
    than a voxel per voxel)."""
    x = np.asarray(x, float)
    u = x.copy()
    if tr.ec.size:
        for _ in range(n_iter):
            disp, _ = _rows(tr, geom, (u - geom.centre_vox) * geom.vox)
            new = x.copy()
            for d, a in zip(disp, geom.pe_axes):
                new[:, a] -= d
            done = np.abs(new - u).max() < 1e-7
            u = new
            if done:
                break
    q = u @ geom.lin.T + geom.affine[:3, 3]
    p = (q - geom.centre - tr.translation) @ tr.rotation + geom.centre
    return (p - geom.affine[:3, 3]) @ geom.lin_inv.T


def grid_points(shape) -> np.ndarray:
    """Voxel indices of a 3D grid ``(X·Y·Z, 3)`` in C order."""
    return np.indices(tuple(shape[:3]), dtype=float).reshape(3, -1).T


def resample(volume, tr: VolumeTransform, geom: Geometry, *, order: int = 3, points=None) -> np.ndarray:
    """Correct one volume: ``I(W(y)) · J(y)`` on the reference grid (float32; cubic B-spline by
    default, outside the field of view the nearest edge value); with ``points`` (voxel indices
    ``(M, 3)``) only there, as an ``(M,)`` array."""
    y = grid_points(geom.shape) if points is None else np.asarray(points, float)
    x, jac = forward(tr, geom, y)
    out = ndimage.map_coordinates(np.asarray(volume, np.float32), x.T, order=order, mode="nearest")
    out = (out * jac).astype(np.float32)
    return out.reshape(geom.shape) if points is None else out


def distort(volume, tr: VolumeTransform, geom: Geometry, *, order: int = 3) -> np.ndarray:
    """The inverse of :func:`resample`: what the volume of a reference-frame image looks like,
    ``S(W⁻¹(x)) / J(W⁻¹(x))`` (the simulator's forward model; prediction in a volume's own space)."""
    x = grid_points(geom.shape)
    y = inverse(tr, geom, x)
    _, jac = forward(tr, geom, y)
    out = ndimage.map_coordinates(np.asarray(volume, np.float32), y.T, order=order, mode="nearest")
    return (out / jac).reshape(geom.shape).astype(np.float32)


def displacement_mm(tr: VolumeTransform, geom: Geometry, y, *, ec_only: bool = False) -> np.ndarray:
    """Length (mm) of the displacement ``x − y`` (world mm) of reference points ``y``; with
    ``ec_only`` only the eddy-current part ``x − u``."""
    y = np.asarray(y, float)
    x, _ = forward(tr, geom, y)
    if ec_only:
        rigid = VolumeTransform(tr.rotation, tr.translation, tr.ec[:, :0])
        base, _ = forward(rigid, geom, y)
    else:
        base = y
    return np.linalg.norm((x - base) @ geom.lin.T, axis=1)
