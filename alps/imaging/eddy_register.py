"""Registration of one volume to its prediction: Gauss–Newton least squares over the transform of
:mod:`alps.imaging.eddy_transform` (rigid + eddy-current terms) and an intensity gain.

The cost over reference-grid sample points ``y`` (the dilated brain mask) is

.. math:: C = \\sum_y w(y) \\big(g\\, J(y)\\, I(W(y)) - P(y)\\big)^2

with ``I`` the volume as acquired, ``P`` its prediction (same contrast, so a sum of squares fits),
``J`` the Jacobian of the eddy-current displacement, ``g = e^γ`` a gain (the prediction's overall
level may differ slightly; it is not applied to the output) and ``w = 1`` (``robust``: Tukey's
biweight of the residual, c = 4.685 robust SDs — off by default: on the 3 mm phantom it gave zero
weight to the brain's edges, where misregistration shows, and stopped at 80 % of a 0.8 mm shift
that the unweighted fit recovers to 0.02 mm; lost slices are replaced before the last passes instead).
Both images may be smoothed first (coarse to fine, FSL eddy's ``--fwhm``). ``I`` is a cubic
B-spline and its value and gradient are the spline's own (:func:`spline`), so the Gauss–Newton
steps agree with the cost they lower. Derivatives of ``J I(W(y))``: with ``∇I`` at ``x = W(y)``,
``w = ∇Iᵀ F A⁻¹`` (``F = ∂x/∂u``, ``A`` the affine): a translation changes it by ``J w·δt``, a
rotation (``R ← exp([δω]×) R``) by ``J (v × w)·δω`` with ``v = R (p − c)``, an eddy-current
coefficient by ``J ∂_a I φ_k / v_a + I ∂J/∂c``. Steps are Levenberg–Marquardt.

(A joint variant — every volume's transform fitted at once to the leave-one-out residuals of one
tensor fit — was tried and rejected: started from the planted truth it drifts away, because moving
all volumes together changes the targets too and a shared model has trivial minima; with a fixed
target per volume the planted truth is kept to 0.1–0.2 mm. See :mod:`alps.imaging.eddy` for how the
per-volume fixed point is reached quickly.)
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from .eddy_transform import Geometry, VolumeTransform, forward

#: stop when a step moves no sample point by more than this (mm)
TOL_MM = 0.01
MAX_ITER = 20


def prepare(volume, sigma_mm, vox):
    """Cubic B-spline coefficients of one volume (smoothed by a Gaussian of ``sigma_mm`` first)."""
    img = np.asarray(volume, np.float32)
    if sigma_mm:
        img = ndimage.gaussian_filter(img, sigma=float(sigma_mm) / np.asarray(vox, float), mode="nearest")
    return ndimage.spline_filter(img, order=3, mode="nearest").astype(np.float64)


def prepare_target(volume, sigma_mm, vox):
    """A prediction smoothed as :func:`prepare` smooths the volume (sampled at voxel centres: no spline)."""
    img = np.asarray(volume, np.float32)
    if sigma_mm:
        img = ndimage.gaussian_filter(img, sigma=float(sigma_mm) / np.asarray(vox, float), mode="nearest")
    return img


def _weights(t):
    """Cubic B-spline weights of the four neighbours ``floor(x) − 1 … floor(x) + 2`` and their derivatives."""
    t2, t3 = t * t, t * t * t
    w = np.stack([(1 - t) ** 3 / 6, (3 * t3 - 6 * t2 + 4) / 6, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6, t3 / 6], axis=1)
    dw = np.stack([-(1 - t) ** 2 / 2, 1.5 * t2 - 2 * t, -1.5 * t2 + t + 0.5, t2 / 2], axis=1)
    return w, dw


def spline(coef, x, *, grad: bool = True):
    """Value and gradient (voxel units) of the cubic B-spline with coefficients ``coef`` at voxel
    positions ``x`` ``(M, 3)`` (outside the grid: the edge coefficients repeated, as ``mode='nearest'``).
    The gradient is the spline's own, so that Gauss–Newton steps agree with the cost they lower."""
    x = np.asarray(x, float)
    fl = np.floor(x)
    t = x - fl
    idx = [np.clip(fl[:, a].astype(int)[:, None] + np.arange(-1, 3)[None, :], 0, coef.shape[a] - 1) for a in range(3)]
    C = coef[idx[0][:, :, None, None], idx[1][:, None, :, None], idx[2][:, None, None, :]]
    (wx, dwx), (wy, dwy), (wz, dwz) = (_weights(t[:, a]) for a in range(3))
    A = np.einsum("mijk,mk->mij", C, wz)
    Bv = np.einsum("mij,mj->mi", A, wy)
    val = np.einsum("mi,mi->m", Bv, wx)
    if not grad:
        return val
    Bdy = np.einsum("mij,mj->mi", A, dwy)
    Bdz = np.einsum("mij,mj->mi", np.einsum("mijk,mk->mij", C, dwz), wy)
    g = np.stack([np.einsum("mi,mi->m", Bv, dwx), np.einsum("mi,mi->m", Bdy, wx), np.einsum("mi,mi->m", Bdz, wx)], 1)
    return val, g


def _djac(aux, geom):
    """``∂J/∂c`` for every eddy-current coefficient ``(M, A·K)``."""
    dphi = aux["dphi"]
    if len(geom.pe_axes) == 1:
        return dphi[:, :, geom.pe_axes[0]]
    a, b = geom.pe_axes
    fa, fb = aux["rows"]
    # J = (1 + fa_a)(1 + fb_b) − fa_b fb_a and ∂f_a[:, x]/∂c_{a,k} = dphi[:, k, x] v_x / v_a
    da = (1.0 + fb[:, b:b + 1]) * dphi[:, :, a] - fb[:, a:a + 1] * dphi[:, :, b] * geom.vox[b] / geom.vox[a]
    db = (1.0 + fa[:, a:a + 1]) * dphi[:, :, b] - fa[:, b:b + 1] * dphi[:, :, a] * geom.vox[a] / geom.vox[b]
    return np.concatenate([da, db], axis=1)


def values(coef, tr: VolumeTransform, geom: Geometry, y) -> np.ndarray:
    """``J · I(W(y))`` at sample points ``y`` (scipy's evaluation of the same spline: faster)."""
    x, jac = forward(tr, geom, y)
    return jac * ndimage.map_coordinates(coef, x.T, order=3, mode="nearest", prefilter=False)


def derivatives(coef, tr: VolumeTransform, geom: Geometry, y):
    """``v = J · I(W(y))`` and its derivatives w.r.t. ``(δt, δω, c)`` ``(M, 6 + n_ec)`` (module docstring)."""
    x, jac, aux = forward(tr, geom, y, aux=True)
    val, grad = spline(coef, x)
    gx = grad.copy()
    for f, a in zip(aux["rows"], geom.pe_axes):
        gx += grad[:, a:a + 1] * f
    w = gx @ geom.lin_inv
    cols = [w, np.cross(aux["v"], w)]
    if tr.ec.size:
        phi = aux["phi"]
        dj = _djac(aux, geom)
        k = phi.shape[1]
        for n, a in enumerate(geom.pe_axes):
            cols.append(grad[:, a:a + 1] * phi / geom.vox[a] + (val / jac)[:, None] * dj[:, n * k:(n + 1) * k])
    return jac * val, jac[:, None] * np.concatenate(cols, axis=1)


def _update(tr: VolumeTransform, step) -> VolumeTransform:
    rot = Rotation.from_rotvec(step[3:6]).as_matrix() @ tr.rotation
    ec = tr.ec + step[6:].reshape(tr.ec.shape) if tr.ec.size else tr.ec
    return VolumeTransform(rot, tr.translation + step[:3], ec)


def register_volume(coef, target, geom: Geometry, y, *, init: VolumeTransform, gain: float = 1.0,
                    robust: bool = False, max_iter: int = MAX_ITER):
    """Register one volume (B-spline coefficients ``coef`` of it as acquired, :func:`prepare`) to
    ``target`` (its prediction at the reference sample points ``y``, ``(M,)``), starting from
    ``init`` (whose ``ec`` shape fixes the model) and the gain ``gain`` (module docstring).

    Returns
    -------
    transform, gain, cost (mean weighted squared residual), number of iterations
    """
    y = np.asarray(y, float)
    target = np.asarray(target, float)
    tr = init
    lam = 1e-3
    state = derivatives(coef, tr, geom, y)
    weights = np.ones(len(y))
    cost, it = 0.0, 0
    for it in range(1, max_iter + 1):
        val, dval = state
        r = gain * val - target
        if robust:
            s = 1.4826 * float(np.median(np.abs(r - np.median(r)))) or 1.0
            u = r / (4.685 * s)
            weights = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
        cost = float(np.sum(weights * r * r))
        Jm = np.column_stack([gain * dval, gain * val])
        JW = Jm * weights[:, None]
        H = JW.T @ Jm
        b = -(JW.T @ r)
        d = np.diag(H).copy()
        d[d <= 0] = 1.0
        accepted = False
        for _ in range(8):
            step = np.linalg.solve(H + lam * np.diag(d), b)
            if not np.all(np.isfinite(step)):
                break
            cand = _update(tr, step[:-1])
            cand_gain = gain * float(np.exp(np.clip(step[-1], -1.0, 1.0)))
            cand_val = values(coef, cand, geom, y)
            new = float(np.sum(weights * (cand_gain * cand_val - target) ** 2))
            if new <= cost:
                accepted = True
                break
            lam *= 10.0
        if not accepted:
            break
        x0 = forward(tr, geom, y[::20])[0]
        moved = float(np.abs((forward(cand, geom, y[::20])[0] - x0) * geom.vox).max())
        tr, gain, cost = cand, cand_gain, new
        lam = max(lam / 10.0, 1e-7)
        if moved < TOL_MM:
            break
        state = derivatives(coef, tr, geom, y)
    return tr, gain, cost / max(float(weights.sum()), 1.0), it
