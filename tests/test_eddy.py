"""Eddy-current and motion correction (alps.imaging.eddy) against planted truth.

The simulated scans (alps.simulation.eddy) carry known per-volume transforms: head motion (the
diffusion contrast turns with the head, the b-vector written is the applied one) and eddy currents
proportional to the applied gradient along the phase-encoding axis; optionally a slice with lost
signal. Motion is planted in the part a registration to tensor predictions can see
(``visible_only``; the invisible part is the subject of ``test_visible_update_*``).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from alps.imaging import dti, eddy as E, eddy_transform as ET, tensor as T
from alps.imaging.dti import design_matrix
from alps.imaging.eddy_predict import loo_tensor_prediction
from alps.io import gradients

SCHEME = gradients.scheme(n_b0=1, n_dirs=12, bval=1500, seed=3)


# ----------------------------------------------------------------------------- fast: pieces
def _geom(model="linear", pe_axes=(1,), shape=(40, 44, 30), vox=3.0, det_positive=False):
    aff = np.diag([vox if det_positive else -vox, vox, vox, 1.0])
    aff[:3, :3] = Rotation.from_euler("xyz", [10, -5, 15], degrees=True).as_matrix() @ aff[:3, :3]  # oblique
    aff[:3, 3] = -aff[:3, :3] @ ((np.array(shape) - 1) / 2)
    return ET.Geometry(aff, shape, np.array([2.0, -3.0, 1.0]), pe_axes, model)


def _blob(shape):
    x = np.indices(shape, dtype=float)
    c = (np.array(shape) - 1)[:, None, None, None] / 2
    r = np.sqrt((((x - c) / (np.array(shape)[:, None, None, None] * 0.3)) ** 2).sum(0))
    return (1000.0 / (1 + np.exp((r - 1) * 6)) * (1 + 0.2 * np.sin(x[0] / 3.0))).astype(np.float32)


@pytest.mark.parametrize("model,pe_axes", [("linear", (1,)), ("quadratic", (0,)), ("linear", (0, 1))])
def test_forward_inverse_and_signal_conservation(model, pe_axes):
    geom = _geom(model, pe_axes)
    k = len(ET.ec_terms(model))
    tr = ET.VolumeTransform(Rotation.from_rotvec(np.radians([1.0, -2.0, 1.5])).as_matrix(), np.array([0.8, -1.2, 0.5]),
                            np.linspace(-2.0, 2.5, len(pe_axes) * k).reshape(len(pe_axes), k))
    y = ET.grid_points(geom.shape)[::37]
    x, jac = ET.forward(tr, geom, y)
    assert np.abs(ET.inverse(tr, geom, x) - y).max() < 1e-6
    # the Jacobian is the determinant of the numerical derivative of x(y) along the voxel axes
    h = 1e-4
    num = np.stack([(ET.forward(tr, geom, y + h * e)[0] - ET.forward(tr, geom, y - h * e)[0]) / (2 * h) for e in np.eye(3)], -1)
    assert np.abs(np.linalg.det(num) - jac).max() < 1e-6
    # distorting then correcting gives the image back; the distortion conserves the total signal
    img = _blob(geom.shape)
    back = ET.resample(ET.distort(img, tr, geom), tr, geom)
    inner = ndimage.binary_erosion(img > 50, iterations=4)
    assert np.abs(back - img)[inner].max() < 0.02 * img.max()
    assert abs(ET.distort(img, tr, geom).sum() / img.sum() - 1) < 2e-3


def test_loo_prediction_is_the_refit_without_the_volume():
    bvals, g = SCHEME
    D = np.diag([1.7e-3, 0.4e-3, 0.35e-3])
    rng = np.random.default_rng(0)
    clean = 900 * np.exp(-bvals * np.einsum("ni,ij,nj->n", g, D, g))
    sig = np.abs(clean + rng.normal(0, 30, (6, len(bvals))))
    loo = loo_tensor_prediction(sig, bvals, g, columns=np.arange(1, len(bvals)))
    X = design_matrix(bvals, g)
    y = np.log(sig)
    for m in range(len(sig)):
        w = np.exp(2 * (X @ np.linalg.pinv(X) @ y[m]))      # the WLS weights of the full fit
        for n in range(1, len(bvals)):
            keep = np.arange(len(bvals)) != n
            Xk, wk = X[keep], w[keep]
            beta = np.linalg.solve((Xk * wk[:, None]).T @ Xk, (Xk * wk[:, None]).T @ y[m, keep])
            assert loo[m, n] == pytest.approx(np.exp(X[n] @ beta), rel=1e-6)  # float32 output


def test_visible_update_recovers_visible_motion_and_gradient_eddy_currents():
    """Given exactly what a registration pass sees, ``θ̂ − θ = D (I − H)(θ_true − θ)``, one update gives
    the visible part of the motion and the whole eddy-current pattern ``K g`` (with K of full rank
    on this scheme); the quadratic-form part of the motion stays unseen."""
    bvals, g = SCHEME
    dw = bvals > 50
    G = g[dw]
    X = design_matrix(bvals[dw], G)
    H = X @ np.linalg.pinv(X)
    lev = np.diag(H)
    rng = np.random.default_rng(1)
    K = rng.normal(size=(3, 3))
    motion = rng.normal(size=(dw.sum(), 6))
    truth = np.column_stack([motion, G @ K.T])
    theta = np.zeros_like(truth)
    seen = ((np.eye(len(lev)) - H) @ truth) / (1 - lev)[:, None]
    new = E.visible_update(theta, theta + seen, bvals[dw], G, G, ec=True)
    visible = (np.eye(len(lev)) - H) @ motion
    assert np.abs(new[:, :6] - visible).max() < 1e-9
    assert np.abs(new[:, 6:] - G @ K.T).max() < 1e-9
    assert np.abs(new[:, :6] - motion).max() > 0.3          # the invisible part is really missing


def test_invalid_inputs_are_refused():
    data = np.ones((8, 8, 8, 13), np.float32)
    mask = np.ones((8, 8, 8), bool)
    bvals, g = SCHEME
    with pytest.raises(ValueError, match="slice axis"):
        E.correct_eddy_motion(data, np.eye(4), bvals, g, mask, pe_axis=2)
    with pytest.raises(ValueError, match="eddy-current model"):
        E.correct_eddy_motion(data, np.eye(4), bvals, g, mask, model="cubic")
    with pytest.raises(ValueError, match="b-values"):
        E.correct_eddy_motion(data, np.eye(4), bvals[:-1], g, mask)
    with pytest.raises(ValueError, match="mask"):
        E.correct_eddy_motion(data, np.eye(4), bvals, g, mask[:-1])
    with pytest.raises(ValueError, match="leave-one-out"):
        E.correct_eddy_motion(data[..., :7], np.eye(4), bvals[:7], g[:7], mask)


# ----------------------------------------------------------------------------- slow: a planted scan
@pytest.fixture(scope="module")
def planted():
    """A head turned 15/-10/20 degrees in an oblique RAS grid (det > 0: the FSL x flip applies), 3 mm,
    1 b0 + 12 directions at b = 1500, moving by up to 3 degrees / 1 mm between volumes, eddy currents
    up to ~2.5 mm along j, and one slice of volume 5 at 30 % signal."""
    from alps.simulation import eddy as SE
    from alps.simulation import phantom
    from alps.simulation.pose import Pose

    img, bvals, fsl, truth = SE.simulate_eddy_scan(
        phantom.make_template_fields(), Pose((15.0, -10.0, 20.0), (1.0, 2.0, -2.0), 1.0), {"alps_L": 1.5, "alps_R": 1.4},
        scheme=SCHEME, snr=30, seed=4, visible_only=True, max_rotation_deg=3.0, orientation="RAS", oblique=True,
        dropout=((5, 20, 0.3),))
    data = np.asarray(img.dataobj, np.float32)
    res = E.correct_eddy_motion(data, img.affine, bvals, fsl, truth["mask"], pe_axis=1,
                                centre=truth["planted"].geometry.centre, max_points=10000)
    return data, img.affine, bvals, fsl, truth, res


def _displacement_errors(res, truth):
    return truth["planted"].displacement_errors(res.transforms, res.geometry, truth["mask"])


@pytest.mark.slow
def test_planted_eddy_currents_and_motion_are_recovered(planted):
    data, aff, bvals, fsl, truth, res = planted
    err, size = _displacement_errors(res, truth)
    assert size.max() > 3.0                      # a real distortion was planted
    assert err.max() < 1.0 and np.median(err) < 0.5 and err.max() < 0.3 * size.max(), (err, size)
    est = res.parameters
    plant = truth["planted"].table(truth["mask"])
    dw = bvals > 50
    ec = [c for c in est.columns if c.startswith("ec_")]
    ec_err = np.sqrt(((est.loc[dw, ec].to_numpy() - plant.loc[dw, ec].to_numpy()) ** 2).mean())
    ec_rms = np.sqrt((plant.loc[dw, ec].to_numpy() ** 2).mean())
    assert ec_err < 0.3 * ec_rms, (ec_err, ec_rms)
    mot = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    assert np.abs(est.loc[dw, mot].to_numpy() - plant.loc[dw, mot].to_numpy()).max() < 0.25
    m = truth["mask"]
    before = np.sqrt(np.mean((data[m] - truth["undistorted"][m]) ** 2))
    after = np.sqrt(np.mean((res.data[m] - truth["undistorted"][m]) ** 2))
    assert after < 0.85 * before, (before, after)


@pytest.mark.slow
def test_dropout_slice_is_flagged_and_replaced(planted):
    data, aff, bvals, fsl, truth, res = planted
    assert res.outlier_slices[5, 20]
    assert res.parameters.loc[5, "outlier"] and res.parameters["outlier"].sum() == 1
    assert res.summary()["eddy_outlier_volumes"] == "5"
    sl = np.zeros(truth["mask"].shape, bool)
    sl[:, :, 18:23] = truth["mask"][:, :, 18:23]
    und = truth["undistorted"][..., 5]
    assert np.abs(res.data[..., 5] - und)[sl].mean() < 0.5 * np.abs(data[..., 5] - und)[sl].mean()


def _principal_angle(data, bvals, bvecs, aff, ref_evec, sel):
    maps = dti.fit_tensor(data, bvals, bvecs, aff, sel)
    cos = np.abs(np.einsum("ni,ni->n", maps.evecs[sel][:, :, 0], ref_evec))
    return float(np.median(np.degrees(np.arccos(np.clip(cos, 0, 1)))))


@pytest.mark.slow
def test_bvecs_turned_on_a_rotated_head(planted):
    """The corrected b-vectors are the applied ones turned by each volume's rotation (the reference
    frame's), and the tensors fitted with them are the planted tensors' — closer than with the
    b-vectors as written or turned the wrong way."""
    data, aff, bvals, fsl, truth, res = planted
    assert np.linalg.det(aff[:3, :3]) > 0
    dw = bvals > 50
    ref = truth["bvecs_fsl_ref"]

    def angles(b):
        return np.degrees(np.arccos(np.clip(np.abs((b[dw] * ref[dw]).sum(1)), 0, 1)))

    assert angles(fsl).max() > 1.0                    # the written b-vectors are off by the motion
    assert angles(res.bvecs).max() < 0.35, angles(res.bvecs)
    # the wrong sense: R g instead of Rᵀ g
    w = T.vectors_voxel_to_world(gradients.fsl_to_voxel(fsl, aff), aff)
    wrong = np.array([tr.rotation @ v for tr, v in zip(res.transforms, w)])
    wrong = gradients.voxel_to_fsl(T.vectors_world_to_voxel(wrong, aff), aff)
    wrong[~dw] = 0
    clean = dti.fit_tensor(truth["clean"], bvals, ref, aff, truth["mask"])
    sel = truth["mask"] & (clean.fa > 0.5)
    ref_evec = clean.evecs[sel][:, :, 0]
    ok = _principal_angle(res.data, bvals, res.bvecs, aff, ref_evec, sel)
    none = _principal_angle(res.data, bvals, fsl, aff, ref_evec, sel)
    bad = _principal_angle(res.data, bvals, wrong, aff, ref_evec, sel)
    assert ok < none and ok < bad, (ok, none, bad)


@pytest.mark.slow
def test_deterministic(planted):
    data, aff, bvals, fsl, truth, res = planted
    runs = [E.correct_eddy_motion(data, aff, bvals, fsl, truth["mask"], pe_axis=1, sigmas_vox=(), max_passes=1,
                                  outliers="flag", max_points=4000) for _ in range(2)]
    assert np.array_equal(runs[0].data, runs[1].data) and np.array_equal(runs[0].bvecs, runs[1].bvecs)
    assert runs[0].parameters.equals(runs[1].parameters)
