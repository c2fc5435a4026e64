"""The registration's covariance (alps.imaging.regse) against a second implementation: the SD of
the parameters that an independent least-squares fit (scipy) finds over many realisations of a
moving image with planted, spatially correlated mismatch, and the unscented transform against
functions whose variance is known exactly."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from alps.imaging import regse
from alps.imaging import template as tpl


def _subject(t2s, *, vox=3.0, shape=(64, 76, 60), z_range=None):
    """The template WM map resampled onto a subject grid through ``t2s`` (template → subject)."""
    aff = np.diag([vox, vox, vox, 1.0])
    aff[:3, 3] = -np.asarray(shape) * vox / 2 + np.array([0.0, -18.0, 18.0])
    if z_range is not None:  # a partial slab: the grid covers only z_range (subject mm)
        shape = (shape[0], shape[1], int(round((z_range[1] - z_range[0]) / vox)))
        aff[2, 3] = z_range[0]
    wm = tpl.load("wm", resolution=2)
    ijk = np.indices(shape).reshape(3, -1).T
    world = ijk @ aff[:3, :3].T + aff[:3, 3]
    s2t = np.linalg.inv(t2s)
    tmpl = world @ s2t[:3, :3].T + s2t[:3, 3]
    t_ijk = (tmpl - wm.affine[:3, 3]) @ np.linalg.inv(wm.affine[:3, :3]).T
    return map_coordinates(wm.get_fdata(), t_ijk.T, order=1, cval=0.0).reshape(shape), aff


def _pose():
    t2s = np.eye(4)
    t2s[:3, :3] = Rotation.from_euler("xyz", [8.0, -4.0, 12.0], degrees=True).as_matrix() * 1.03
    t2s[:3, 3] = [2.0, -3.0, 5.0]
    return t2s


def _fit(moving, aff, t2s, xyz, f, smooth_mm):
    """Independent estimator: least squares of f on a + b·M(T(x + δ(x; θ))) over (a, b, θ)."""
    vox = np.linalg.norm(aff[:3, :3], axis=0)
    m_img = gaussian_filter(moving, smooth_mm / vox)
    inv = np.linalg.inv(aff)
    c = xyz.mean(0)

    def resid(p):
        a, b, u, w, s = p[0], p[1], p[2:5], p[5:8], p[8]
        x = c + (1 + s) * (xyz - c) @ Rotation.from_rotvec(w).as_matrix().T + u
        y = x @ t2s[:3, :3].T + t2s[:3, 3]
        ijk = y @ inv[:3, :3].T + inv[:3, 3]
        return f - a - b * map_coordinates(m_img, ijk.T, order=1, cval=0.0)

    return least_squares(resid, np.r_[0.0, 1.0, np.zeros(7)], x_scale=np.r_[1, 1, 1, 1, 1, .01, .01, .01, .01],
                         diff_step=1e-4).x[2:]


def test_sandwich_sd_matches_the_spread_of_an_independent_fit_over_planted_mismatch():
    """16 realisations of the moving image = template WM through a known pose + mismatch
    (white noise smoothed to 3 mm, SD 0.08, well inside the 16 mm blocks): the SD of the
    translation that an independent least-squares fit finds agrees with the sandwich SD."""
    t2s = _pose()
    clean, aff = _subject(t2s)
    xyz, f = regse._points(regse.STEP_MM, regse.SMOOTH_MM)
    rng = np.random.default_rng(3)
    est, pred = [], []
    for _ in range(16):
        noise = gaussian_filter(rng.normal(size=clean.shape), 1.0)
        noisy = clean + 0.08 * noise / noise.std()
        est.append(_fit(noisy, aff, t2s, xyz, f, regse.SMOOTH_MM))
        pred.append(np.diag(regse.registration_covariance(noisy, aff, t2s).cov))
    est, pred = np.asarray(est), np.asarray(pred)
    ratio = est[:, :3].std(0, ddof=1) / np.sqrt(pred[:, :3].mean(0))
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
    # and the planted pose is recovered: no bias beyond the spread
    assert np.all(np.abs(est[:, :3].mean(0)) < 3 * est[:, :3].std(0, ddof=1) / 4 + 0.02)


def test_less_coverage_leaves_the_registration_less_determined():
    t2s = _pose()
    full, aff = _subject(t2s)
    slab, aff_slab = _subject(t2s, z_range=(5.0, 45.0))
    rng = np.random.default_rng(0)
    noise = 0.05 * gaussian_filter(rng.normal(size=full.shape), 1.0)
    c_full = regse.registration_covariance(full + noise, aff, t2s)
    c_slab = regse.registration_covariance(slab + noise[:, :, :slab.shape[2]], aff_slab, t2s)
    centre = (38.0, -16.0, 27.0)
    assert c_slab.n_points < c_full.n_points
    assert c_slab.roi_sd(centre) > 1.2 * c_full.roi_sd(centre)  # a third of the points: ~1.4x


def test_unscented_transform_is_exact_for_linear_and_quadratic_readouts():
    cov = np.diag([0.3, 0.2, 0.5, 1e-4, 2e-4, 3e-4, 1e-4]) ** 1
    rc = regse.RegistrationCovariance(cov=cov, centre_mm=np.array([1.0, -2.0, 3.0]), n_points=1, n_blocks=1, corr=1)
    t2s = _pose()
    c = np.array([26.0, -16.0, 27.0])

    def readout(m):  # where the template point c lands, in the planted template frame
        moved = np.linalg.solve(t2s, m)  # template → perturbed template
        p = moved[:3, :3] @ c + moved[:3, 3]
        return {"x": p[0], "y": p[1], "z": p[2]}

    sd = regse.index_spread(rc, t2s, readout)
    cc = rc.roi_covariance(c)
    for i, k in enumerate("xyz"):
        assert sd[k] == pytest.approx(np.sqrt(cc[i, i]), rel=0.02)
    assert rc.roi_sd(c) == pytest.approx(np.sqrt(np.trace(cc)))


def test_registration_covariance_refuses_bad_input():
    t2s = _pose()
    img, aff = _subject(t2s)
    with pytest.raises(ValueError, match="block_mm and step_mm must be positive"):
        regse.registration_covariance(img, aff, t2s, block_mm=0)
    far = t2s.copy()
    far[:3, 3] += 500.0
    with pytest.raises(ValueError, match="map inside the image"):
        regse.registration_covariance(img, aff, far)


def test_fast_sphere_index_equals_the_measurement_with_trilinear_weights():
    """regse.sphere_alps (interpolate, average) and measure.measure over sphere_weights (weights,
    weighted mean) are two routes to the same number."""
    from alps.imaging import measure
    from alps.imaging import tensor as T
    from alps.imaging.roi import default_spheres

    from test_measure import AffineRegistration

    rng = np.random.default_rng(1)
    shape = (40, 44, 30)
    aff = np.diag([-2.5, 2.5, 2.5, 1.0])
    aff[:3, 3] = [50.0, -60.0, -10.0]
    evals = rng.uniform(0.3e-3, 1.7e-3, size=shape + (3,))
    evecs = Rotation.random(int(np.prod(shape)), random_state=2).as_matrix().reshape(shape + (3, 3))
    tensor = T.from_eig(evals, evecs)
    reg = AffineRegistration(_pose())
    spheres = default_spheres(radius_mm=2.5)
    w = measure.sphere_weights(shape, aff, reg, spheres)
    slow = measure.measure(tensor, aff, reg, w)
    fast = regse.sphere_alps(T.to_six(tensor), aff, reg, spheres)
    for k in ("alps", "alps_L", "alps_R"):
        assert fast[k] == pytest.approx(slow[k], rel=1e-9)


def test_reg_unstable_flag_fires_above_the_centre_sd_threshold():
    from alps.imaging import qc

    row = {"alps": 1.4, "alps_L": 1.4, "alps_R": 1.4}
    assert "reg_unstable" not in qc.flags({**row, "roi_sd_max": 1.2})
    assert "reg_unstable" in qc.flags({**row, "roi_sd_max": 1.3})
    assert "reg_unstable" in qc.flags({**row, "roi_sd_max": 0.6}, max_roi_sd=0.5)
    assert "reg_unstable" not in qc.flags({**row, "roi_sd_max": float("nan")})
    # the default is the 2.5 mm sphere radius over 1.96, rounded
    assert qc.DEFAULTS["max_roi_sd"] == pytest.approx(2.5 / 1.96, abs=0.05)
