"""Susceptibility-distortion correction without FSL: the spline machinery, the PEPOLAR field
estimate against planted fields on every phase-encoding axis and polarity, the Jacobian, the GRE
phase-difference field map, and planted truth on a simulated AP/PA pair (with and without head
motion between the two series). Real data (XA30 pair vs its GRE field map) is in
``test_susceptibility_real.py``; the figures in ``benchmarks/bench_distortion.py``."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from alps.imaging import bspline, fieldmap, pepolar
from alps.imaging.susceptibility import correct_fieldmap, correct_pepolar, jacobian, rigid_parameters, unwarp
from alps.io.fmap import PhaseEncoding
from alps.simulation.distortion import distort, planted_field

VOX = (3.0, 3.0, 3.0)
FAST = (pepolar.Level(6.0, 18.0, 300.0, 30), pepolar.Level(3.0, 12.0, 100.0, 30),
        pepolar.Level(0.0, 8.0, 30.0, 40))


def _phantom(shape=(30, 34, 26), seed=0):
    """A head-like object: an ellipsoid with smooth texture, ventricle-like holes and a bright rim."""
    rng = np.random.default_rng(seed)
    idx = np.indices(shape, dtype=float)
    c = [(n - 1) / 2 for n in shape]
    r = np.sqrt(sum(((idx[a] - c[a]) / (0.38 * shape[a])) ** 2 for a in range(3)))
    tex = ndimage.gaussian_filter(rng.random(shape), 1.5)
    img = (r < 1) * (600 + 1500 * (tex - tex.mean())) + 400 * ((r > 0.85) & (r < 1))
    holes = np.sqrt(((idx[0] - c[0]) / 3) ** 2 + ((idx[1] - c[1]) / 6) ** 2 + ((idx[2] - c[2]) / 3) ** 2) < 1
    img[holes] = 1200
    return ndimage.gaussian_filter(np.clip(img, 0, None), 0.6), r < 0.95


def _bump_field(shape, centre_frac=(0.5, 0.7, 0.35), amp=40.0, sigma=5.0):
    idx = np.indices(shape, dtype=float)
    c = [f * (n - 1) for f, n in zip(centre_frac, shape)]
    r2 = sum((idx[a] - c[a]) ** 2 for a in range(3))
    return (amp * np.exp(-r2 / (2 * sigma ** 2)) + 0.3 * (idx[2] - c[2])).astype(np.float32)


# ----------------------------------------------------------------------------- splines

def test_line_splines_match_scipy_cubic_interpolation():
    rng = np.random.default_rng(1)
    vol = rng.random((7, 9, 11))
    for axis in range(3):
        pos = np.indices(vol.shape, dtype=float)
        p = np.clip(pos[axis] + rng.uniform(-2.5, 2.5, vol.shape), 0, vol.shape[axis] - 1)
        coords = pos.copy()
        coords[axis] = p
        ref = ndimage.map_coordinates(vol, coords, order=3, mode="mirror")
        assert np.allclose(bspline.sample_along(vol, p, axis), ref, atol=1e-12)
        # exact derivative of the same spline
        val, der = bspline.sample_along(vol, p, axis, derivative=True)
        h = 1e-5
        num = (bspline.sample_along(vol, p + h, axis) - bspline.sample_along(vol, p - h, axis)) / (2 * h)
        inner = (p > 0.01) & (p < vol.shape[axis] - 1.01)
        assert np.allclose(der[inner], num[inner], atol=1e-5)


def test_spline_basis_reproduces_linear_fields_and_fits():
    basis = bspline.SplineBasis.build((12, 15, 9), (3.0, 4.0, 2.5))
    idx = np.indices((12, 15, 9), dtype=float)
    lin = 2.0 + 0.5 * idx[0] - 0.25 * idx[1] + idx[2]
    coef = basis.fit(lin)  # cubic B-splines reproduce linear functions exactly
    assert np.allclose(basis.field(coef), lin, atol=1e-6)
    d1 = basis.field(coef, (0, 1, 0))
    assert np.allclose(d1, -0.25, atol=1e-6)


def test_pepolar_cost_gradient_is_exact():
    rng = np.random.default_rng(0)
    shape = (14, 16, 9)
    a = ndimage.gaussian_filter(rng.random(shape), 1.5)
    b = ndimage.gaussian_filter(rng.random(shape), 1.5)
    for sub in (1, 2):
        basis = pepolar._level_basis(shape, pepolar.Level(0, 8.0, 0.01, 1, sub), (2.0, 2.0, 3.0))
        pairs = [(bspline.LineSplines(pepolar._blocks(a, sub)), bspline.LineSplines(pepolar._blocks(b, sub)))]
        c = rng.normal(0, 0.5, basis.n_coef).ravel()
        args = (basis, pairs, (1.0, -1.3), 0.01, (2.0, 2.0, 3.0), sub)
        _, g = pepolar.pepolar_cost(c, *args)
        for i in rng.choice(c.size, 12, replace=False):
            e = np.zeros_like(c)
            e[i] = 1e-6
            num = (pepolar.pepolar_cost(c + e, *args)[0] - pepolar.pepolar_cost(c - e, *args)[0]) / 2e-6
            assert num == pytest.approx(g[i], rel=1e-5, abs=1e-9 * np.abs(g).max())


# ----------------------------------------------------------------------------- unwarping, every axis

@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("sign", [1, -1])
def test_unwarp_undoes_a_planted_distortion_on_every_axis_and_polarity(axis, sign):
    """``distort`` (simulation, inverse map + scipy) and ``unwarp`` (correction, spline pull) are
    independent implementations of the two directions of one model."""
    img, inside = _phantom()
    field = _bump_field(img.shape)
    pe = PhaseEncoding("ijk"[axis] + ("-" if sign < 0 else ""), axis, sign, 0.05)
    seen = distort(img, field, pe)
    assert np.abs(seen - img)[inside].mean() > 15  # the distortion is real (mean |Δ| of ~600)
    fixed, disp, jac = unwarp(seen, field, pe)
    assert np.allclose(disp, sign * 0.05 * field)
    err = np.abs(fixed - img)[inside]
    assert err.mean() < 0.15 * np.abs(seen - img)[inside].mean()
    # the sign matters: the opposite polarity's correction makes it worse
    wrong, _, _ = unwarp(seen, field, PhaseEncoding("x", axis, -sign, 0.05))
    assert np.abs(wrong - img)[inside].mean() > np.abs(seen - img)[inside].mean()
    # signal is conserved along each line (Jacobian modulation)
    assert fixed.sum() == pytest.approx(img.sum(), rel=2e-3)


def test_jacobian_is_one_plus_the_derivative_along_the_axis():
    idx = np.indices((6, 30, 5), dtype=float)
    disp = 0.1 * idx[1] ** 2 / 12
    jac = jacobian(disp, 1)  # the mirror boundary bends the spline only near the edges
    assert np.allclose(jac[:, 6:-6], 1 + 0.2 * idx[1][:, 6:-6] / 12, atol=1e-3)
    assert np.allclose(jacobian(disp, 0), 1.0)


# ----------------------------------------------------------------------------- field estimation

@pytest.mark.parametrize("axis, signs", [(0, (1, -1)), (1, (-1, 1)), (2, (1, -1))])
def test_pepolar_recovers_a_planted_field_on_any_axis(axis, signs):
    img, inside = _phantom()
    field = _bump_field(img.shape)
    trt = (0.05, 0.04)  # different readout times are allowed
    pes = [PhaseEncoding("ijk"[axis] + ("-" if s < 0 else ""), axis, s, t) for s, t in zip(signs, trt)]
    a, b = (distort(img, field, pe) for pe in pes)
    est = pepolar.estimate_field(a, b, axis=axis, signs=signs, readout_s=trt, voxel_mm=VOX, levels=FAST)
    err = (est.field_hz - field)[inside]
    planted = np.sqrt(np.mean(field[inside] ** 2))
    assert np.sqrt(np.mean(err ** 2)) < 0.12 * planted, (np.sqrt(np.mean(err ** 2)), planted)
    assert est.cost_after < 0.1 * est.cost_before
    assert est.min_jacobian > 0
    # the same field whichever image comes first
    rev = pepolar.estimate_field(b, a, axis=axis, signs=signs[::-1], readout_s=trt[::-1], voxel_mm=VOX, levels=FAST)
    assert np.sqrt(np.mean((rev.field_hz - est.field_hz)[inside] ** 2)) < 0.05 * planted


def test_a_reverse_b0_epi_corrects_a_series():
    """The ``fmap/*_epi`` case: a 3-D reverse-PE b = 0 image and a series of the other polarity."""
    img, inside = _phantom()
    field = _bump_field(img.shape)
    pe_s, pe_e = PhaseEncoding("j-", 1, -1, 0.05), PhaseEncoding("j", 1, 1, 0.05)
    series = np.stack([distort(img, field, pe_s), 0.5 * distort(img, field, pe_s)], -1)
    ca, cb, est = correct_pepolar(series, [0, 1000], pe_s, distort(img, field, pe_e), None, pe_e, np.diag([3.0] * 3 + [1]),
                                  levels=FAST, correct_b=False, align=False)
    assert cb is None and ca.data.shape == series.shape
    assert np.abs(ca.data[..., 0] - img)[inside].mean() < 0.15 * np.abs(series[..., 0] - img)[inside].mean()


def test_pepolar_refuses_what_it_cannot_estimate():
    img, _ = _phantom((12, 12, 10))
    with pytest.raises(ValueError, match="opposite phase-encoding polarity"):
        pepolar.estimate_field(img, img, axis=1, signs=(1, 1), readout_s=(0.05, 0.05), voxel_mm=VOX)
    with pytest.raises(ValueError, match="readout times must be positive"):
        pepolar.estimate_field(img, img, axis=1, signs=(1, -1), readout_s=(0.05, 0.0), voxel_mm=VOX)
    with pytest.raises(ValueError, match="one 3-D/4-D shape"):
        pepolar.estimate_field(img, img[:-1], axis=1, signs=(1, -1), readout_s=(0.05, 0.05), voxel_mm=VOX)
    pa, ap = PhaseEncoding("j", 1, 1, 0.05), PhaseEncoding("i-", 0, -1, 0.05)
    data = np.stack([img, img], -1)
    with pytest.raises(ValueError, match="not opposite phase encodings"):
        correct_pepolar(data, [0, 0], pa, data, [0, 0], ap, np.eye(4), levels=FAST)


# ----------------------------------------------------------------------------- GRE field map

def test_phase_conventions():
    assert np.allclose(fieldmap.phase_to_radians(np.array([-4096.0, 0.0, 4096.0])), [-np.pi, 0, np.pi])
    assert np.allclose(fieldmap.phase_to_radians(np.array([0.0, 2048.0, 4095.0])), [-np.pi, 0, 4095 / 2048 * np.pi - np.pi])
    assert np.allclose(fieldmap.phase_to_radians(np.array([-3.0, 3.0])), [-3.0, 3.0])
    with pytest.raises(ValueError, match="x_phasediff.nii.gz: values"):
        fieldmap.phase_to_radians(np.array([-9000.0, 9000.0]), name="x_phasediff.nii.gz")


def test_phasediff_with_wraps_gives_the_field_in_hz():
    shape = (40, 44, 30)
    idx = np.indices(shape, dtype=float)
    mag, inside = _phantom(shape)
    field = _bump_field(shape, amp=380.0, sigma=7.0) - 40.0  # ±π at ΔTE 2.46 ms is ±203 Hz
    dte = 0.00246
    wrapped = np.angle(np.exp(2j * np.pi * field * dte))
    assert np.abs(wrapped - 2 * np.pi * field * dte)[inside].max() > 6  # it does wrap
    stored = np.round(wrapped / np.pi * 4096)  # Siemens −4096…4096
    smooth, raw, mask = fieldmap.phasediff_to_hz(stored, mag, (0.01, 0.01246), VOX, name="sub-01_phasediff.nii.gz")
    core = mask & inside
    assert np.abs(raw - field)[core].max() < 1.0  # exact up to the 12-bit quantisation
    assert np.sqrt(np.mean((smooth - field)[core] ** 2)) < 8.0
    with pytest.raises(ValueError, match="EchoTime2"):
        fieldmap.phasediff_to_hz(stored, mag, (0.0125, 0.01), VOX)
    del idx


def test_field_map_resampling_follows_world_coordinates():
    """A field map on a shifted, coarser grid lands on the DWI grid at the same world points."""
    shape = (30, 34, 26)
    aff = np.diag([-3.0, 3.0, 3.0, 1.0])
    aff[:3, 3] = [45, -50, -40]
    world_fn = lambda x, y, z: 0.5 * x - 0.2 * y + 0.1 * z  # noqa: E731
    f_aff = np.diag([-3.4, 3.4, 3.4, 1.0])
    f_aff[:3, 3] = [50, -55, -45]
    ijk = np.indices((32, 34, 28), dtype=float)
    xyz = np.einsum("ij,j...->i...", f_aff[:3, :3], ijk) + f_aff[:3, 3, None, None, None]
    out = fieldmap.resample_field(world_fn(*xyz), f_aff, shape, aff)
    t = np.indices(shape, dtype=float)
    txyz = np.einsum("ij,j...->i...", aff[:3, :3], t) + aff[:3, 3, None, None, None]
    inner = (slice(4, -4),) * 3  # cubic prefiltering bends a linear ramp only near the edges
    assert np.allclose(out[inner], world_fn(*txyz)[inner], atol=0.01)
    assert np.abs(out[inner] - world_fn(*txyz)[inner]).mean() < 1e-3


def test_correct_fieldmap_undoes_the_distortion_of_the_measured_field():
    img, inside = _phantom()
    field = _bump_field(img.shape)
    pe = PhaseEncoding("j-", 1, -1, 0.05)
    seen = np.stack([distort(img, field, pe)] * 2, -1)
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    corr = correct_fieldmap(seen, [0, 1000], pe, aff, field, aff, source="phasediff", inputs=("x",), mask=inside)
    assert np.abs(corr.data[..., 0] - img)[inside].mean() < 0.15 * np.abs(seen[..., 0] - img)[inside].mean()
    assert corr.record.source == "phasediff" and corr.record.pe_direction == "j-"
    assert corr.record.displacement_max_mm == pytest.approx(3 * 0.05 * np.abs(field[inside]).max(), rel=1e-3)


def test_rigid_parameters_of_a_known_matrix():
    from alps.simulation.pose import rotation_matrix

    m = np.eye(4)
    m[:3, :3] = rotation_matrix(2.0, -1.0, 3.0)
    m[:3, 3] = [1.0, -2.0, 0.5]
    assert rigid_parameters(m) == pytest.approx((1.0, -2.0, 0.5, 2.0, -1.0, 3.0), abs=1e-3)


# ----------------------------------------------------------------------------- planted truth

@pytest.fixture(scope="module")
def fields():
    from alps.simulation.phantom import make_template_fields

    return make_template_fields()


SCHEME = (np.r_[0.0, np.full(6, 1000.0)],
          np.vstack([[0, 0, 0], np.eye(3), np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1]]) / np.sqrt(2)]))


@pytest.mark.slow
def test_planted_field_on_a_simulated_ap_pa_pair(fields):
    from alps.simulation.distortion import simulate_pepolar_pair
    from alps.simulation.pose import Pose

    pair = simulate_pepolar_pair(fields, Pose((3.0, -4.0, 5.0), (2.0, -3.0, 1.0)), {"alps_L": 1.5, "alps_R": 1.45},
                                 seed=1, snr=30, scheme=SCHEME)
    m = pair.mask
    a, b = pair.images["j"], pair.images["j-"]
    ca, cb, est = correct_pepolar(np.asarray(a.dataobj), pair.bvals, pair.pe["j"], np.asarray(b.dataobj),
                                  pair.bvals, pair.pe["j-"], a.affine, mask=m, inputs=("dir-PA", "dir-AP"))
    planted = np.sqrt(np.mean(pair.field_hz[m] ** 2))
    err = np.sqrt(np.mean((est.field_hz - pair.field_hz)[m] ** 2))
    assert planted > 5 and err < 0.1 * planted, (err, planted)
    # the frontal/temporal displacement is a few mm and the correction removes most of the image error
    assert 3.0 < ca.record.displacement_max_mm < 12.0
    for corr, img in ((ca, a), (cb, b)):
        before = np.sqrt(np.mean((np.asarray(img.dataobj) - pair.truth)[m] ** 2))
        after = np.sqrt(np.mean((corr.data - pair.truth)[m] ** 2))
        noise = np.sqrt(np.mean((np.asarray(pair.undistorted.dataobj) - pair.truth)[m] ** 2))
        assert after < 0.6 * before and after < 1.6 * noise, (before, after, noise)
    assert ca.record.rigid_mm_deg == () and max(map(abs, cb.record.rigid_mm_deg)) < 0.3
    assert ca.record.inputs == ("dir-PA", "dir-AP") and ca.record.source == "pepolar"


def test_planted_field_folds_are_refused():
    img, _ = _phantom((12, 40, 10))
    field = np.zeros(img.shape, np.float32)
    field[:, 20:, :] = -400.0  # a falling step: folds the image for PE j
    with pytest.raises(ValueError, match="folds"):
        distort(img, field, PhaseEncoding("j", 1, 1, 0.05))


def test_planted_field_is_where_the_air_is(fields):
    from alps.simulation.pose import Pose, native_grid

    shape, aff = native_grid(fields, Pose(), voxel_mm=3.0)
    f = planted_field(shape, aff, Pose())
    ijk = np.round(np.linalg.solve(aff, [0.0, 38.0, -12.0, 1.0])[:3]).astype(int)
    assert f[tuple(ijk)] == pytest.approx(60.0 - 0.2 * 12, abs=2.0)
    assert f[tuple(np.round(np.linalg.solve(aff, [0.0, -20.0, 30.0, 1.0])[:3]).astype(int))] < 10.0


def test_rigid_registration_recovers_a_known_motion_in_the_right_direction(fields):
    """``register_rigid(fixed, moving)`` maps fixed-world points to moving-world points (the
    phantom brain's b0 at 4 mm)."""
    from alps.simulation.distortion import _moved
    from alps.simulation.pose import Pose

    img = fields.s0()[::2, ::2, ::2]
    aff = fields.affine.copy()
    aff[:3, :3] *= 2
    for motion in (Pose((0.0, 0.0, 3.0), (2.0, -1.5, 1.0)), Pose((2.0, -2.0, 1.0), (1.0, 1.0, -2.0))):
        moved = _moved(img, aff, motion)  # the head moved: moved(y) = img(motion⁻¹ y)
        expected = np.eye(4)
        expected[:3, :3] = motion.R
        expected[:3, 3] = motion.trans_mm
        got = rigid_parameters(fieldmap.register_rigid(img, aff, moved, aff))
        assert got == pytest.approx(rigid_parameters(expected), abs=0.25), got


@pytest.mark.slow
def test_a_pair_that_moved_between_its_b0s_is_realigned(fields):
    """1.5 mm and 1.5° of head motion between the two series: without realignment the field
    absorbs part of it and is wrong by ~4 Hz RMS; realigned, by less than half that, and the
    motion is recorded. (A translation along the PE axis and the PE part of a rotation are
    indistinguishable from a field for one pair, so not all of the motion is recovered.)"""
    from alps.simulation.distortion import simulate_pepolar_pair
    from alps.simulation.pose import Pose

    pair = simulate_pepolar_pair(fields, Pose((3.0, -4.0, 5.0), (2.0, -3.0, 1.0)), {"alps_L": 1.5, "alps_R": 1.45},
                                 seed=1, snr=30, scheme=SCHEME, motion=Pose((0.0, 0.0, 1.5), (1.5, 0.0, 0.0)))
    m = pair.mask
    a, b = (np.asarray(pair.images[d].dataobj) for d in ("j", "j-"))
    errs = {}
    for align in (False, True):
        ca, cb, _ = correct_pepolar(a, pair.bvals, pair.pe["j"], b, pair.bvals, pair.pe["j-"], pair.images["j"].affine,
                                    mask=m, align=align)
        errs[align] = (np.sqrt(np.mean((ca.field_hz - pair.field_hz)[m] ** 2)),
                       np.sqrt(np.mean((cb.field_hz - pair.extras["field_hz_b"])[m] ** 2)))
    assert max(errs[True]) < 0.6 * min(errs[False]), errs
    tx, _, _, _, _, rz = cb.record.rigid_mm_deg
    assert 1.0 < tx < 1.8 and 0.8 < rz < 1.8, cb.record.rigid_mm_deg


def test_matched_volumes_pairs_same_gradient_either_sign():
    from alps.imaging.volume_pairs import matched_volumes

    g = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0.6, 0.8]], float)
    bv = np.array([0, 1000, 1000, 1000, 2000])
    order = [0, 3, 1, 4, 2]
    pairs = matched_volumes(bv, g, bv[order], -g[order])
    assert pairs == [(1, 2), (2, 4), (3, 1), (4, 3)]
    assert matched_volumes(bv, g, bv * 2, g) == []


@pytest.mark.slow
def test_paired_volumes_recover_planted_eddy_fields(fields):
    """Per-volume eddy-current fields (a constant and a gradient, different for every direction,
    the same in both series) displace the two series' volumes oppositely; the pair of each
    direction gives its field back, and the corrected diffusion-weighted volumes reach the noise
    floor (the b0 field alone leaves them at twice it)."""
    from alps.imaging.volume_pairs import correct_volume_pairs, matched_volumes
    from alps.simulation.distortion import _linear_field, simulate_pepolar_pair
    from alps.simulation.pose import Pose

    pair = simulate_pepolar_pair(fields, Pose((3.0, -4.0, 5.0), (2.0, -3.0, 1.0)), {"alps_L": 1.5, "alps_R": 1.45},
                                 seed=1, snr=30, scheme=SCHEME, eddy_hz=15.0)
    m, aff, dw = pair.mask, pair.images["j"].affine, pair.bvals > 50
    a, b = (np.asarray(pair.images[d].dataobj) for d in ("j", "j-"))
    ca, cb, _ = correct_pepolar(a, pair.bvals, pair.pe["j"], b, pair.bvals, pair.pe["j-"], aff, mask=m, align=False)
    pairs = matched_volumes(pair.bvals, pair.bvecs, pair.bvals, pair.bvecs)
    assert pairs == [(k, k) for k in np.where(dw)[0]]
    ea, eb, rows = correct_volume_pairs(ca, cb, pairs, pair.pe["j"], pair.pe["j-"], (3.0, 3.0, 3.0), mask=m)
    for r in rows:
        true = _linear_field(pair.extras["eddy_hz"][r["volume_a"]], pair.truth.shape, aff)[m]
        assert r["field_mean_hz"] == pytest.approx(true.mean(), abs=0.5)
        assert r["field_sd_hz"] == pytest.approx(true.std(), rel=0.1)
    rms = lambda x: np.sqrt(np.mean((x[..., dw] - pair.truth[..., dw])[m] ** 2))  # noqa: E731
    floor = rms(np.asarray(pair.undistorted.dataobj))
    assert rms(ca.data) > 1.5 * floor and rms(ea.data) < 1.1 * floor and rms(eb.data) < 1.1 * floor
    assert ea.record.n_volume_pairs == len(pairs) and ea.record.volume_field_rms_hz > 5
    # the b = 0 volume is left as the susceptibility correction made it
    assert np.array_equal(ea.data[..., 0], ca.data[..., 0])
