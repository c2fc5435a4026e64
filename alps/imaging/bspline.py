"""Cubic B-splines for smooth fields and for sampling images along one axis.

Two building blocks of the susceptibility correction (:mod:`alps.imaging.pepolar`,
:mod:`alps.imaging.susceptibility`, :mod:`alps.imaging.fieldmap`):

* a **tensor-product cubic B-spline field** ``f(i, j, k) = Σ c_abc β((i − t_a)/h₀) β((j − t_b)/h₁)
  β((k − t_c)/h₂)`` on a voxel grid, with knots every ``h`` voxels (centred on the grid, one knot
  beyond each edge). It is stored as three 1-D basis matrices (:class:`SplineBasis`); the field,
  its derivatives and the transposes that carry a voxel-wise gradient back to the coefficients
  are separable products (:func:`separable`);
* **1-D cubic-spline interpolation along one axis** (:func:`sample_along`): an image's
  interpolating spline along the axis (``scipy.ndimage.spline_filter1d``, mirror boundary) is
  evaluated at ``i + d(x)`` with its exact derivative, the operation of a phase-encoding
  displacement.

With the cubic B-spline ``β(u) = 2/3 − u² + |u|³/2`` for ``|u| < 1``, ``(2 − |u|)³/6`` for
``1 ≤ |u| < 2`` and 0 beyond, a value at ``p = i₀ + t`` (``0 ≤ t < 1``) is
``Σ_{m=−1..2} c_{i₀+m} w_m(t)`` with ``w_{−1} = (1 − t)³/6``, ``w₀ = (3t³ − 6t² + 4)/6``,
``w₁ = (−3t³ + 3t² + 3t + 1)/6``, ``w₂ = t³/6`` (Unser 1999, "Splines: a perfect fit for signal and
image processing", IEEE Signal Process. Mag. 16:22–38).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["beta3", "basis_matrix", "SplineBasis", "separable", "sample_along", "spline_coefficients",
           "LineSplines", "bending_energy", "bending_adjoint", "single_blas_thread"]


def beta3(u, deriv: int = 0) -> np.ndarray:
    """Cubic B-spline ``β(u)`` (``deriv = 0``) or its first/second derivative."""
    u = np.asarray(u, float)
    a = np.abs(u)
    inner, outer = a < 1, (a >= 1) & (a < 2)
    out = np.zeros_like(u)
    if deriv == 0:
        out[inner] = 2.0 / 3.0 - a[inner] ** 2 + 0.5 * a[inner] ** 3
        out[outer] = (2.0 - a[outer]) ** 3 / 6.0
    elif deriv == 1:
        out[inner] = -2.0 * u[inner] + 1.5 * u[inner] * a[inner]
        out[outer] = -np.sign(u[outer]) * 0.5 * (2.0 - a[outer]) ** 2
    elif deriv == 2:
        out[inner] = -2.0 + 3.0 * a[inner]
        out[outer] = 2.0 - a[outer]
    else:
        raise ValueError(f"deriv must be 0, 1 or 2, got {deriv}")
    return out


def knots(n: int, spacing: float) -> np.ndarray:
    """Knot positions (voxel units) of a grid of ``n`` points: every ``spacing`` voxels, centred,
    covering ``[0, n − 1]`` with one knot beyond each end (``β`` has support ±2 knots)."""
    if spacing <= 0:
        raise ValueError(f"knot spacing must be positive, got {spacing}")
    inner = max(int(np.ceil((n - 1) / spacing)), 1)
    start = (n - 1 - inner * spacing) / 2.0
    return start + spacing * np.arange(-1, inner + 2)


def basis_matrix(coords, spacing: float, n: int, deriv: int = 0) -> np.ndarray:
    """``B[i, m] = d^deriv/dx^deriv β((x_i − t_m)/h)`` at points ``coords`` (voxel units of a grid
    of ``n`` points), knots from :func:`knots`."""
    t = knots(n, spacing)
    u = (np.asarray(coords, float)[:, None] - t[None, :]) / spacing
    return beta3(u, deriv) / spacing ** deriv


@dataclass(frozen=True)
class SplineBasis:
    """Separable cubic B-spline basis of a 3-D grid: ``mats[d][axis]`` is the 1-D basis matrix of
    ``axis`` differentiated ``d`` times (``d`` = 0, 1, 2), in voxel units of the full grid.

    ``coords`` are the sample positions along each axis (voxel units of the full grid of
    ``shape``); a sub-sampled level evaluates the same field at block centres.
    """

    shape: tuple
    spacing: tuple
    mats: tuple

    @classmethod
    def build(cls, shape, spacing, coords=None) -> "SplineBasis":
        shape = tuple(int(n) for n in shape)
        spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, float), (3,)))
        coords = coords or tuple(np.arange(n, dtype=float) for n in shape)
        mats = tuple(tuple(basis_matrix(coords[a], spacing[a], shape[a], d) for a in range(3))
                     for d in range(3))
        return cls(shape, spacing, mats)

    @property
    def n_coef(self) -> tuple:
        return tuple(m.shape[1] for m in self.mats[0])

    @property
    def grid_shape(self) -> tuple:
        return tuple(m.shape[0] for m in self.mats[0])

    def ops(self, derivs=(0, 0, 0)) -> tuple:
        """The three matrices of the operator differentiating ``derivs[a]`` times along axis a."""
        return tuple(self.mats[d][a] for a, d in enumerate(derivs))

    def field(self, coef, derivs=(0, 0, 0)) -> np.ndarray:
        """Field (or its derivative) on the grid from coefficients ``(M0, M1, M2)``."""
        return separable(coef, self.ops(derivs))

    def adjoint(self, values, derivs=(0, 0, 0)) -> np.ndarray:
        """Transpose of :meth:`field`: carries a voxel-wise gradient back to the coefficients."""
        return separable(values, tuple(m.T for m in self.ops(derivs)))

    def fit(self, values, weights=None, *, lam: float = 0.0, scale=(1.0, 1.0, 1.0)) -> np.ndarray:
        """Coefficients minimising ``Σ w (f − values)² / Σ w + lam · bending_energy(f)``
        (:func:`bending_energy` with derivatives per unit of ``scale``), by conjugate gradients on
        the normal equations."""
        from scipy.sparse.linalg import LinearOperator, cg

        shape_c = self.n_coef
        w = np.ones(self.grid_shape) if weights is None else np.asarray(weights, float)
        rhs = self.adjoint(w * np.asarray(values, float)).ravel()
        n = float(w.size)

        def matvec(x):
            c = x.reshape(shape_c)
            out = self.adjoint(w * self.field(c))
            if lam:
                out = out + lam * w.sum() / n * bending_adjoint(self, c, scale)
            return out.ravel()

        op = LinearOperator((rhs.size, rhs.size), matvec=matvec, dtype=float)
        x0 = separable(np.asarray(values, float), tuple(np.linalg.pinv(m) for m in self.ops()))
        sol, _ = cg(op, rhs, x0=x0.ravel(), maxiter=200, rtol=1e-6)
        return sol.reshape(shape_c)


#: second-derivative terms of the bending energy and their weights:
#: ``∫ f_xx² + f_yy² + f_zz² + 2 f_xy² + 2 f_xz² + 2 f_yz²``.
BENDING_TERMS = (((2, 0, 0), 1.0), ((0, 2, 0), 1.0), ((0, 0, 2), 1.0),
                 ((1, 1, 0), 2.0), ((1, 0, 1), 2.0), ((0, 1, 1), 2.0))


def _gram(basis: SplineBasis, derivs, scale):
    s = np.prod([scale[a] ** (-2 * d) for a, d in enumerate(derivs)])
    return [m.T @ m for m in basis.ops(derivs)], s


def bending_energy(basis: SplineBasis, coef, scale=(1.0, 1.0, 1.0)) -> float:
    """Mean over the grid of the bending energy density of the field (derivatives per unit of
    ``scale``, e.g. mm when ``scale`` is the voxel size). Each term ``Σ_x (D f)²`` is the
    quadratic form ``cᵀ (G₀ ⊗ G₁ ⊗ G₂) c`` with the 1-D Gram matrices ``G_a = D_aᵀ D_a``."""
    return float(np.sum(coef * bending_adjoint(basis, coef, scale))) / float(np.prod(basis.grid_shape))


def bending_adjoint(basis: SplineBasis, coef, scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    """``Σ_terms w (G₀ ⊗ G₁ ⊗ G₂) c``: half the gradient of :func:`bending_energy` times the
    number of grid points."""
    out = np.zeros(basis.n_coef)
    for derivs, w in BENDING_TERMS:
        grams, s = _gram(basis, derivs, scale)
        out += (w * s) * separable(coef, grams)
    return out


def single_blas_thread():
    """Context manager: single-threaded BLAS for the many small matrix products of the spline
    code (more threads only add contention on a shared machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn (a nilearn dependency) brings it
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def separable(arr, mats) -> np.ndarray:
    """``arr ×₀ M₀ ×₁ M₁ ×₂ M₂``: apply one matrix per axis of a 3-D array (``M_a`` maps axis
    a's length to the new one), as three BLAS matrix products."""
    out = np.asarray(arr, float)
    m0, m1, m2 = mats
    n0, n1, n2 = out.shape
    out = (m0 @ out.reshape(n0, n1 * n2)).reshape(m0.shape[0], n1, n2)
    out = np.matmul(m1, out)
    return out @ m2.T


def spline_coefficients(volume, axis: int) -> np.ndarray:
    """1-D cubic interpolating-spline coefficients of ``volume`` along ``axis`` (mirror boundary)."""
    return ndimage.spline_filter1d(np.asarray(volume, float), order=3, axis=axis, mode="mirror")


class LineSplines:
    """The 1-D cubic splines of a 3-D volume along its **last** axis, ready for fast sampling.

    Each interval ``[i, i + 1)`` (``i = −1 … n``, mirror boundary) stores its cubic
    ``a₀ + a₁t + a₂t² + a₃t³``: ``a₀ = (c₋₁ + 4c₀ + c₁)/6``, ``a₁ = (c₁ − c₋₁)/2``,
    ``a₂ = (c₋₁ − 2c₀ + c₁)/2``, ``a₃ = (−c₋₁ + 3c₀ − 3c₁ + c₂)/6`` from the spline coefficients
    ``c`` around it, so that sampling is one gather and a Horner evaluation.
    """

    def __init__(self, volume):
        vol = np.ascontiguousarray(volume, dtype=float)
        coef = spline_coefficients(vol, -1)
        self.n = n = vol.shape[-1]
        c = np.pad(coef, [(0, 0)] * (vol.ndim - 1) + [(2, 3)], mode="reflect")  # index i -> i + 2
        cm, c0, c1, c2 = (c[..., k:k + n + 2] for k in range(4))  # intervals i = -1 .. n
        poly = np.stack([(cm + 4 * c0 + c1) / 6.0, 0.5 * (c1 - cm), 0.5 * (cm - 2 * c0 + c1),
                         (-cm + 3 * c0 - 3 * c1 + c2) / 6.0], axis=-1)
        self.poly = np.ascontiguousarray(poly).reshape(-1, 4)
        rows = int(np.prod(vol.shape[:-1]))
        self._row0 = (np.arange(rows) * (n + 2) + 1).reshape(vol.shape[:-1] + (1,))

    def __call__(self, positions, *, derivative: bool = False):
        """Values (and ``∂/∂position``) at ``positions`` (voxel units along the last axis; same
        shape as the volume), clamped to ``[−1, n]``."""
        p = np.clip(np.asarray(positions, float), -1.0, float(self.n) - 1e-9)
        i0 = np.floor(p)
        t = (p - i0).ravel()
        idx = (self._row0 + i0.astype(np.intp)).ravel()
        a = np.take(self.poly, idx, axis=0)
        a0, a1, a2, a3 = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        val = (a0 + t * (a1 + t * (a2 + t * a3))).reshape(p.shape)
        if not derivative:
            return val
        return val, (a1 + t * (2.0 * a2 + 3.0 * t * a3)).reshape(p.shape)


def sample_along(volume, positions, axis: int, *, derivative: bool = False):
    """Cubic-spline interpolation of ``volume`` along ``axis`` at ``positions`` (same shape as the
    volume; voxel units along ``axis``, the other indices the array's own; clamped to one voxel
    beyond the grid). Returns the values, and with ``derivative=True`` also ``∂/∂position``."""
    vol = np.moveaxis(np.asarray(volume, float), axis, -1)
    pos = np.moveaxis(np.asarray(positions, float), axis, -1)
    out = LineSplines(vol)(np.ascontiguousarray(pos), derivative=derivative)
    if derivative:
        return tuple(np.moveaxis(o, -1, axis) for o in out)
    return np.moveaxis(out, -1, axis)
