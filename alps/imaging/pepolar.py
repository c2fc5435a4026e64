"""Susceptibility field from images with opposite phase encoding (PEPOLAR), pip-only.

The model is FSL topup's (Andersson, Skare & Ashburner 2003, NeuroImage 20:870–888): an
off-resonance field ``f(x)`` (Hz) displaces the signal of an EPI along its phase-encoding (PE) axis
by ``d(x) = s · T · f(x)`` voxels (``s = ±1`` the PE polarity, ``T`` the total readout time in
seconds), and compresses or stretches it by the Jacobian ``J(x) = 1 + ∂d/∂x_PE``. An image ``I``
acquired with ``(s, T)`` is corrected, in the undistorted space ``x``, by

    U(x) = I(x + d(x) e_PE) · J(x)                                            (1)

and the two corrections of a pair acquired with opposite polarities must agree. ``f`` is a cubic
B-spline (:mod:`alps.imaging.bspline`) whose coefficients minimise

    E(c) = ½ mean_x (U_a − U_b)² + ½ λ · B(φ)                                 (2)

with ``φ = f · T_a`` the displacement of the first image in voxels and ``B`` the bending energy of
``φ`` (derivatives per mm). The analytic gradient (chain rule through the 1-D spline
interpolation of each image along the PE axis and through ``J``) drives L-BFGS (scipy), coarse to
fine: each level smooths the images (Gaussian, ``fwhm_mm``), sets the knot spacing
(``knot_mm``) and λ, and starts from the previous level's field. Both images are corrected towards
the common undistorted space, i.e. the estimate "meets halfway" by construction. Each image is
first divided by its mean over the head (the voxels where either image exceeds 10 % of its 99th
percentile), so that λ does not depend on the scanner's intensity scale.

Several pairs (e.g. the b = 0 pair and the mean diffusion-weighted pair of two full series acquired
with the same gradient table) enter (2) as a sum. Movement between the two acquisitions is not
modelled here (topup's ``--estmov``); :func:`alps.imaging.susceptibility.correct_pepolar` aligns
the pair rigidly first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, optimize

from .bspline import LineSplines, SplineBasis, bending_adjoint, bending_energy, separable, single_blas_thread

__all__ = ["Level", "DEFAULT_LEVELS", "FieldEstimate", "estimate_field", "pepolar_cost"]


@dataclass(frozen=True)
class Level:
    """One resolution level of the estimation."""

    fwhm_mm: float      # Gaussian smoothing of the images
    knot_mm: float      # B-spline knot spacing of the field
    lam: float          # weight λ of the bending energy in (2)
    maxiter: int        # L-BFGS iterations
    subsample: int = 1  # images averaged in blocks of subsample³ voxels (coarse levels)


#: coarse to fine; the knot spacing stops at 2 voxels of a 3 mm scan (topup's b02b0.cnf ends at
#: 4 mm knots on 2 mm data, also 2 voxels). λ (per mm⁴ of the bending energy of φ in voxels) was
#: chosen on planted truth (:mod:`alps.simulation.distortion`): the field error within the brain
#: was 0.52, 0.39, 0.35 and 0.94 Hz RMS for λ at the 12 mm level of 0.01–1, 10, 100 and 1000
#: (the other levels scaled alike); 100 also leaves no folding (J > 0) on the real XA30 pair.
DEFAULT_LEVELS = (
    Level(8.0, 24.0, 1000.0, 40, 2),
    Level(6.0, 16.0, 300.0, 40, 2),
    Level(4.0, 12.0, 100.0, 40),
    Level(2.0, 8.0, 33.0, 60),
    Level(0.0, 6.0, 10.0, 80),
)


@dataclass(frozen=True)
class FieldEstimate:
    """Result of :func:`estimate_field`: the field (Hz) on the images' grid and diagnostics."""

    field_hz: np.ndarray
    cost_before: float          # mean squared difference of the normalised images, no correction
    cost_after: float           # the same after correction with the field
    iterations: tuple           # L-BFGS iterations per level
    min_jacobian: float         # smallest J over both images (folding if ≤ 0)


def _normalise(vols):
    """Each volume divided by its mean over the head (the voxels where any exceeds 10 % of its
    99th percentile)."""
    head = np.zeros(vols[0].shape, bool)
    for v in vols:
        head |= v > 0.1 * np.percentile(v, 99)
    return [v / max(float(v[head].mean()), 1e-12) for v in vols]


def _smooth(vol, fwhm_mm, voxel_mm):
    if fwhm_mm <= 0:
        return vol
    sigma = [fwhm_mm / np.sqrt(8 * np.log(2)) / z for z in voxel_mm]
    return ndimage.gaussian_filter(vol, sigma, mode="nearest")


def pepolar_cost(coef, basis: SplineBasis, pairs, taus, lam: float, voxel_mm, sub: int = 1):
    """Cost (2) and its gradient for the spline coefficients ``coef`` (flattened), with the
    phase-encoding axis **last**.

    ``pairs`` holds one :class:`~alps.imaging.bspline.LineSplines` per image of each pair;
    ``taus = (τ_a, τ_b)`` scale the displacement ``φ`` (voxels of image a's readout) to each
    image's own: ``d_k = τ_k φ`` (``τ_a = s_a``, ``τ_b = s_b T_b / T_a``). On a level
    sub-sampled by ``sub`` the images are block averages, the basis is evaluated at the block
    centres (full-grid voxel units) and a displacement moves ``φ/sub`` coarse voxels.
    """
    c = coef.reshape(basis.n_coef)
    phi = basis.field(c)
    dphi = basis.field(c, _PE_LAST)
    grid = np.arange(phi.shape[-1], dtype=float)
    n = phi.size
    g_phi = np.zeros_like(phi)
    g_dphi = np.zeros_like(phi)
    data = 0.0
    for pair in pairs:
        warped = []
        for spl, tau in zip(pair, taus):
            w, g = spl(grid + (tau / sub) * phi, derivative=True)
            g = g / sub
            warped.append((w, g, 1.0 + tau * dphi, tau))
        r = warped[0][0] * warped[0][2] - warped[1][0] * warped[1][2]
        data += 0.5 * float(np.mean(r * r))
        for sign, (w, g, jac, tau) in zip((1.0, -1.0), warped):
            g_phi += (sign * tau) * r * g * jac
            g_dphi += (sign * tau) * r * w
    reg = 0.5 * lam * bending_energy(basis, c, voxel_mm)
    grad = (basis.adjoint(g_phi) + basis.adjoint(g_dphi, _PE_LAST)) / n
    grad += lam / n * bending_adjoint(basis, c, voxel_mm)
    return data + reg, grad.ravel()


_PE_LAST = (0, 0, 1)


def _blocks(vol, sub: int):
    """Block means of ``sub``³ voxels (trailing voxels that do not fill a block are dropped)."""
    if sub == 1:
        return vol
    n = [d // sub for d in vol.shape]
    v = vol[: n[0] * sub, : n[1] * sub, : n[2] * sub]
    return v.reshape(n[0], sub, n[1], sub, n[2], sub).mean(axis=(1, 3, 5))


def _level_basis(shape, lev: Level, voxel_mm) -> SplineBasis:
    s = int(lev.subsample)
    coords = tuple(s * np.arange(n // s, dtype=float) + (s - 1) / 2.0 for n in shape)
    return SplineBasis.build(shape, tuple(lev.knot_mm / z for z in voxel_mm), coords)


def _mismatch(pairs_raw, phi, taus):
    """Mean squared difference of the corrected pairs (unsmoothed images, PE axis last) for a
    displacement φ, and the smallest Jacobian."""
    grid = np.arange(phi.shape[-1], dtype=float)
    dphi = np.gradient(phi, axis=-1)
    total, jmin = 0.0, np.inf
    for pair in pairs_raw:
        u = []
        for vol, tau in zip(pair, taus):
            jac = 1.0 + tau * dphi
            jmin = min(jmin, float(jac.min()))
            u.append(LineSplines(vol)(grid + tau * phi) * jac)
        total += float(np.mean((u[0] - u[1]) ** 2))
    return total / len(pairs_raw), jmin


def estimate_field(images_a, images_b, *, axis: int, signs, readout_s, voxel_mm,
                   levels=DEFAULT_LEVELS) -> FieldEstimate:
    """Estimate the off-resonance field (Hz) from images with opposite phase-encoding polarity.

    Parameters
    ----------
    images_a, images_b : ndarray (X, Y, Z) or (X, Y, Z, P)
        The images of each polarity on one grid; the P volumes of a and b are paired (same
        contrast, e.g. b = 0 and mean diffusion-weighted).
    axis : int
        Phase-encoding voxel axis (0, 1, 2).
    signs : (int, int)
        PE polarities ``s_a, s_b`` (+1 for ``i``/``j``/``k``, −1 for ``i-``...); must differ.
    readout_s : (float, float)
        Total readout times ``T_a, T_b`` (s).
    voxel_mm : sequence of 3 floats
    levels : sequence of :class:`Level`

    Returns
    -------
    FieldEstimate
        ``field_hz`` such that image k is displaced by ``s_k T_k f`` voxels along ``axis``.
    """
    a = np.asarray(images_a, float)
    b = np.asarray(images_b, float)
    if a.shape != b.shape or a.ndim not in (3, 4):
        raise ValueError(f"the two polarities need images of one 3-D/4-D shape, got {a.shape} and {b.shape}")
    if a.ndim == 3:
        a, b = a[..., None], b[..., None]
    s_a, s_b = (int(s) for s in signs)
    if {s_a, s_b} != {1, -1}:
        raise ValueError(f"the two images must have opposite phase-encoding polarity, got signs {signs}")
    t_a, t_b = (float(t) for t in readout_s)
    if not (t_a > 0 and t_b > 0):
        raise ValueError(f"total readout times must be positive, got {readout_s}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    # work with the PE axis last (contiguous lines); the field is moved back at the end
    order = [x for x in range(3) if x != axis] + [axis]
    voxel_mm = tuple(float(voxel_mm[x]) for x in order)
    a = np.ascontiguousarray(np.moveaxis(a, axis, 2))
    b = np.ascontiguousarray(np.moveaxis(b, axis, 2))
    taus = (float(s_a), s_b * t_b / t_a)
    raw = [tuple(_normalise([a[..., p], b[..., p]])) for p in range(a.shape[-1])]
    shape = a.shape[:3]
    phi = np.zeros(shape)
    cost_before, _ = _mismatch(raw, phi, taus)
    iters = []
    with single_blas_thread():
        for lev in levels:
            basis = _level_basis(shape, lev, voxel_mm)
            full = SplineBasis.build(shape, basis.spacing)
            c0 = separable(phi, tuple(np.linalg.pinv(m) for m in full.ops()))
            pairs = [tuple(LineSplines(_blocks(_smooth(v, lev.fwhm_mm, voxel_mm), lev.subsample)) for v in pr)
                     for pr in raw]
            res = optimize.minimize(pepolar_cost, c0.ravel(), jac=True, method="L-BFGS-B",
                                    args=(basis, pairs, taus, lev.lam, voxel_mm, int(lev.subsample)),
                                    options={"maxiter": int(lev.maxiter), "maxcor": 20, "ftol": 1e-10, "gtol": 1e-10})
            phi = full.field(res.x.reshape(basis.n_coef))
            iters.append(int(res.nit))
    cost_after, jmin = _mismatch(raw, phi, taus)
    field = np.moveaxis(phi / t_a, 2, axis).astype(np.float32)
    return FieldEstimate(field_hz=field, cost_before=cost_before, cost_after=cost_after,
                         iterations=tuple(iters), min_jacobian=jmin)
