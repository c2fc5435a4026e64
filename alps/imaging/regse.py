"""How well a scan's registration pins down where the ROIs land: the covariance of the
registration's parameters from the scan's own image–template mismatch, and what it does to the
ROI centres and to the index (``alps_reg_se``).

Model
-----
The registration maximises the correlation of the template white-matter map ``F`` with the
subject's FA ``M`` mapped through ``y = T(x)`` (template mm → subject mm) over template points
``x_i`` (:mod:`alps.imaging.registration`). Maximising ``ρ²`` is the same as the least-squares fit

.. math:: \\min_{a, b, θ} \\sum_i \\big(f_i - a - b\\, m_i(θ)\\big)^2, \\qquad
          f_i = F(x_i),\\; m_i(θ) = M\\big(T(x_i + δ(x_i; θ))\\big),

(the residual sum of squares is ``‖f − f̄‖² (1 − ρ²)`` and ``‖f − f̄‖`` does not depend on θ),
with the registration perturbed in template space by
``δ(x; θ) = u + ω × (x − c) + s (x − c)`` (translation ``u``, small rotation ``ω``, log-scale ``s``:
the 7 parameters of the similarity stage; ``c`` the centroid of the points). At the optimum
θ = 0, the cluster-robust ("sandwich") covariance of the M-estimator (Huber 1967; Liang & Zeger
1986; Cameron & Miller 2015) is

.. math:: \\mathrm{Cov}(\\hat θ) = \\big[H^{-1} B H^{-1}\\big]_{θθ}, \\quad H = \\sum_i X_i X_iᵀ,
          \\quad B = \\frac{K}{K-1} \\sum_{k=1}^{K} S_k S_kᵀ,\\quad S_k = \\sum_{i \\in k} r_i X_i,

with ``X_i = (1, m_i, b ∇M·A·∂δ/∂θ)`` the derivatives of the fitted value, ``r_i`` the residuals
and ``k`` the ``K`` template blocks (cubes of ``block_mm``) the points fall in. The blocks let
the mismatch be spatially correlated (a tract misaligned, a distorted or missing region of a
slab): the covariance is what the fit would do if the brain's regions were resampled, i.e. how
much the optimum depends on which regions drive it. Points at ``step_mm`` spacing inside the
registration's metric mask; both images smoothed by ``smooth_mm`` (the last level's smoothing);
points that map outside the subject's field of view are left out, as ITK does.

From the covariance: each ROI centre moves by ``δ(c_roi; θ)`` (its 3x3 covariance
``D Cov Dᵀ``, ``D = ∂δ/∂θ`` at the centre); the index's registration SE is the SD of the index
over the ``2p`` symmetric sigma points ``θ = ±√p · L_j`` (``Cov = L Lᵀ``; the unscented transform,
Julier & Uhlmann 2004), each a perturbed registration through which the ROIs are mapped again
(tract-guided centres, :mod:`alps.imaging.placement`, held where they were placed: the SE is the
index's sensitivity to where the ROIs land, not a re-run of the placement).

References: Huber PJ. The behavior of maximum likelihood estimates under nonstandard conditions.
Proc Fifth Berkeley Symp 1967;1:221-233. Liang KY, Zeger SL. Longitudinal data analysis using
generalized linear models. Biometrika 1986;73:13-22. Cameron AC, Miller DL. A practitioner's
guide to cluster-robust inference. J Hum Resour 2015;50:317-372. Julier SJ, Uhlmann JK.
Unscented filtering and nonlinear estimation. Proc IEEE 2004;92:401-422.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import template as tpl

#: defaults of :func:`registration_covariance`.
BLOCK_MM = 16.0
STEP_MM = 4.0
SMOOTH_MM = 2.0
N_PARAMS = 7


@dataclass(frozen=True)
class RegistrationCovariance:
    """Covariance ``cov`` (7x7: u (mm), ω (rad), s) of the similarity perturbation about
    ``centre_mm`` (template mm); ``n_points`` and ``n_blocks`` used; ``corr`` the correlation at
    the optimum."""

    cov: np.ndarray
    centre_mm: np.ndarray
    n_points: int
    n_blocks: int
    corr: float

    def roi_covariance(self, c_mm) -> np.ndarray:
        """3x3 covariance (mm²) of the displacement of a template point ``c_mm``."""
        d = _ddelta(np.asarray(c_mm, float)[None] - self.centre_mm)[0]
        return d @ self.cov @ d.T

    def roi_sd(self, c_mm) -> float:
        """RMS displacement SD (mm) of a template point: ``√trace`` of its covariance."""
        return float(np.sqrt(max(np.trace(self.roi_covariance(c_mm)), 0.0)))

    def sigma_points(self) -> np.ndarray:
        """``(2p, p)`` symmetric sigma points ``±√p L_j`` of the unscented transform."""
        w, v = np.linalg.eigh((self.cov + self.cov.T) / 2)
        L = v * np.sqrt(np.clip(w, 0, None))
        p = self.cov.shape[0]
        return np.vstack([np.sqrt(p) * L.T, -np.sqrt(p) * L.T])

    def perturb(self, template_to_subject, theta) -> np.ndarray:
        """The template → subject 4x4 with the template-space perturbation ``θ`` applied first:
        ``x ↦ c + (1 + s) Rot(ω) (x − c) + u``."""
        return np.asarray(template_to_subject, float) @ _similarity(theta, self.centre_mm)


def _skew(v):
    v = np.asarray(v, float)
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1), np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def _ddelta(rel):
    """``∂δ/∂θ`` (N, 3, 7) at points ``rel = x − c``: [I | −[rel]× | rel]."""
    n = rel.shape[0]
    return np.concatenate([np.broadcast_to(np.eye(3), (n, 3, 3)), -_skew(rel), rel[:, :, None]], axis=2)


def _similarity(theta, c):
    from scipy.spatial.transform import Rotation

    theta = np.asarray(theta, float)
    m = np.eye(4)
    lin = (1.0 + theta[6]) * Rotation.from_rotvec(theta[3:6]).as_matrix()
    m[:3, :3] = lin
    m[:3, 3] = np.asarray(c) + theta[:3] - lin @ np.asarray(c)
    return m


@functools.lru_cache(maxsize=4)
def _points(step_mm: float, smooth_mm: float):
    """Template points (mm, (N, 3)) and their smoothed WM values (read-only, cached)."""
    from scipy.ndimage import gaussian_filter

    from .registration import metric_mask_image

    wm = tpl.load("wm", resolution=2)
    mm = metric_mask_image(2)
    k = max(int(round(step_mm / 2.0)), 1)
    ijk = np.argwhere(np.asarray(mm.dataobj) > 0)
    ijk = ijk[np.all(ijk % k == 0, axis=1)]
    f = gaussian_filter(wm.get_fdata().astype(np.float64), smooth_mm / 2.0)[tuple(ijk.T)]
    xyz = ijk @ wm.affine[:3, :3].T + wm.affine[:3, 3]
    xyz.flags.writeable = False
    f.flags.writeable = False
    return xyz, f


def registration_covariance(moving, affine, template_to_subject, *, block_mm: float = BLOCK_MM,
                            step_mm: float = STEP_MM, smooth_mm: float = SMOOTH_MM) -> RegistrationCovariance:
    """Sandwich covariance of the registration's similarity parameters (module docstring).

    Parameters
    ----------
    moving : (X, Y, Z) the image the registration moved (the FA, masked as the registration masks it)
    affine : its 4x4 affine
    template_to_subject : the registration's 4x4 RAS map (template mm → subject mm)
    block_mm : edge of the template cubes whose points share their mismatch
    step_mm : spacing of the template points
    smooth_mm : Gaussian SD of the smoothing of both images
    """
    from scipy.ndimage import gaussian_filter, map_coordinates

    if not block_mm > 0 or not step_mm > 0 or not smooth_mm >= 0:
        raise ValueError("block_mm and step_mm must be positive and smooth_mm zero or positive")
    xyz, f = _points(float(step_mm), float(smooth_mm))
    aff = np.asarray(affine, float)
    vox = np.linalg.norm(aff[:3, :3], axis=0)
    m_img = gaussian_filter(np.asarray(moving, np.float64), smooth_mm / vox) if smooth_mm > 0 else \
        np.asarray(moving, np.float64)
    t2s = np.asarray(template_to_subject, float)
    inv = np.linalg.inv(aff)
    ijk = (xyz @ t2s[:3, :3].T + t2s[:3, 3]) @ inv[:3, :3].T + inv[:3, 3]
    inside = np.all((ijk >= 0) & (ijk <= np.asarray(m_img.shape) - 1), axis=1)
    xyz, f, ijk = xyz[inside], f[inside], ijk[inside]
    if len(f) < 100:
        raise ValueError(f"only {len(f)} template points map inside the image; no registration covariance")
    m = map_coordinates(m_img, ijk.T, order=1)
    grads = np.gradient(m_img)
    g_vox = np.stack([map_coordinates(g, ijk.T, order=1) for g in grads], -1)  # ∂M/∂ijk
    g_world = g_vox @ inv[:3, :3]  # ∂M/∂y = (∂ijk/∂y)ᵀ ∂M/∂ijk
    c = xyz.mean(0)
    J = np.einsum("nk,kl,nlp->np", g_world, t2s[:3, :3], _ddelta(xyz - c))  # ∂m_i/∂θ
    mc, fc = m - m.mean(), f - f.mean()
    b = float((fc * mc).sum() / (mc * mc).sum())
    a = float(f.mean() - b * m.mean())
    r = f - a - b * m
    X = np.column_stack([np.ones_like(m), m, b * J])
    H = X.T @ X
    blocks = np.floor(xyz / float(block_mm)).astype(np.int64)
    _, label = np.unique(blocks, axis=0, return_inverse=True)
    label = label.ravel()
    K = int(label.max()) + 1
    S = np.zeros((K, X.shape[1]))
    np.add.at(S, label, r[:, None] * X)
    S -= S.mean(0)  # the ANTs optimum is not exactly this estimator's: centre the block scores
    B = K / (K - 1) * S.T @ S
    Hinv = np.linalg.inv(H)
    cov = (Hinv @ B @ Hinv)[2:, 2:]
    corr = float((fc * mc).sum() / np.sqrt((fc * fc).sum() * (mc * mc).sum()))
    return RegistrationCovariance(cov=cov, centre_mm=c, n_points=int(len(f)), n_blocks=K, corr=corr)


def index_spread(cov: RegistrationCovariance, template_to_subject, evaluate) -> dict:
    """SDs of the values ``evaluate(t2s)`` returns (a dict of numbers, e.g. ``alps``, ``alps_L``,
    ``alps_R``) over the sigma points of ``cov`` (unscented transform: ``SD² = Σ (v − v̄)² / 2p``
    with ``v̄`` the mean over the sigma points)."""
    vals = [evaluate(cov.perturb(template_to_subject, th)) for th in cov.sigma_points()]
    keys = vals[0].keys()
    out = {}
    for k in keys:
        v = np.array([d[k] for d in vals], float)
        out[k] = float(np.sqrt(((v - v.mean()) ** 2).mean()))
    return out


def sphere_alps(six_vox, affine, registration, spheres, *, lattice_mm: float = 0.5) -> dict:
    """``alps``, ``alps_L``, ``alps_R`` of trilinear-weighted spheres, fast: each ROI-mean tensor is
    the mean, over the sphere's lattice points mapped to the native grid, of the trilinearly
    interpolated tensor components ``six_vox`` ((X, Y, Z, 6), voxel axes) — by the identity
    ``Σ w_i f_i = Σ_p f(p)`` the same number as :func:`alps.imaging.measure.measure` with
    :func:`alps.imaging.measure.sphere_weights` (``'trilinear'``), without building the weight
    volumes (used for the sigma points of :func:`registration_se`)."""
    from scipy.ndimage import map_coordinates

    from . import tensor as T
    from .index import alps_from_roi_tensors
    from .measure import sphere_lattice

    aff = np.asarray(affine, float)
    inv = np.linalg.inv(aff)
    dims = np.asarray(six_vox.shape[:3])
    q = registration.rotation @ T.polar_rotation(aff[:3, :3])
    means = {}
    for sph in spheres:
        pts = registration.points_to_subject(sphere_lattice(sph.center_mm, sph.radius_mm, lattice_mm))
        ijk = np.clip(pts @ inv[:3, :3].T + inv[:3, 3], 0, dims - 1).T  # the edge clamp of trilinear_weights
        comp = np.array([map_coordinates(six_vox[..., c], ijk, order=1).mean() for c in range(6)])
        means[sph.name] = T.rotate(T.from_six(comp), q)
    r = alps_from_roi_tensors(means)
    return {k: r[k] for k in ("alps", "alps_L", "alps_R")}


#: columns of :func:`registration_se` (besides ``roi_sd_<roi>``).
REG_SE_COLUMNS = ("alps_reg_se", "alps_L_reg_se", "alps_R_reg_se", "roi_sd_max")


def registration_se(moving, affine, registration, measure_at, *, block_mm: float = BLOCK_MM) -> dict:
    """One scan's registration SEs (module docstring).

    Parameters
    ----------
    moving : the registration's moving image (:func:`alps.imaging.registration.moving_image`), array
    affine : its 4x4 affine
    registration : the scan's :class:`~alps.imaging.registration.Registration` (its affine part)
    measure_at : ``f(registration) -> (values, centres)``: the index (``alps``, ``alps_L``,
        ``alps_R``) measured with the ROIs mapped through a registration, and the ROI centres used
        {roi: template mm}
    block_mm : see :func:`registration_covariance`

    Returns
    -------
    dict: ``alps_reg_se``, ``alps_L_reg_se``, ``alps_R_reg_se`` (SD over the sigma points);
    ``roi_sd_<roi>`` (mm, √trace of the centre's covariance) and ``roi_sd_max``; and under
    ``"scatter"`` {roi: (2p, 3)} where each ROI centre lands at the sigma points, in the frame of
    ``registration``'s template (for the QC image).
    """
    from .registration import Registration

    t2s = np.asarray(registration.template_to_subject, float)
    cov = registration_covariance(moving, affine, t2s, block_mm=block_mm)
    scatter: dict = {}

    def evaluate(m):
        values, centres = measure_at(Registration(kind="affine", template_to_subject=m, forward_transforms=[],
                                                  inverse_transforms=[]))
        s = np.linalg.solve(t2s, m)  # perturbed template -> this registration's template frame
        for name, c in centres.items():
            scatter.setdefault(name, []).append(s[:3, :3] @ np.asarray(c, float) + s[:3, 3])
        return {k: values[k] for k in ("alps", "alps_L", "alps_R")}

    sd = index_spread(cov, t2s, evaluate)
    _, centres = measure_at(registration)
    out = {f"{k}_reg_se": sd[k] for k in ("alps", "alps_L", "alps_R")}
    roi_sd = {f"roi_sd_{n}": cov.roi_sd(c) for n, c in centres.items()}
    out.update(roi_sd)
    out["roi_sd_max"] = max(roi_sd.values())
    out["scatter"] = {n: np.asarray(v) for n, v in scatter.items()}
    return out
