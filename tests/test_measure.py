"""ROI weights against independent computations: trilinear weights vs scipy's interpolation,
the lattice-sampled sphere against analytic values, and the QC slice sampler vs ANTs resampling."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from alps.imaging import measure as M
from alps.imaging.roi import SphereROI, default_spheres


class AffineRegistration:
    """The two point maps of :class:`alps.imaging.registration.Registration` for a known affine."""

    def __init__(self, template_to_subject):
        self.template_to_subject = np.asarray(template_to_subject, float)

    @property
    def subject_to_template(self):
        return np.linalg.inv(self.template_to_subject)

    @property
    def rotation(self):
        from alps.imaging.tensor import polar_rotation

        return polar_rotation(self.subject_to_template[:3, :3])

    def points_to_subject(self, xyz):
        m = self.template_to_subject
        return np.asarray(xyz, float) @ m[:3, :3].T + m[:3, 3]

    def points_to_template(self, xyz):
        m = self.subject_to_template
        return np.asarray(xyz, float) @ m[:3, :3].T + m[:3, 3]


def _oblique_pose(scale=1.04):
    t2s = np.eye(4)
    t2s[:3, :3] = Rotation.from_euler("xyz", [9.0, -6.0, 14.0], degrees=True).as_matrix() * scale
    t2s[:3, 3] = [3.0, -5.0, 7.0]
    return t2s


def _grid(shape=(60, 70, 60), vox=2.5, codes_flip=True):
    aff = np.diag([-vox if codes_flip else vox, vox, vox, 1.0])
    aff[:3, 3] = -aff[:3, :3] @ (np.array(shape) / 2 - 0.5)
    return shape, aff


def test_trilinear_weights_reproduce_scipy_interpolation():
    rng = np.random.default_rng(0)
    field = rng.normal(size=(7, 8, 9))
    pts = rng.uniform([0, 0, 0], [6, 7, 8], size=(400, 3))
    w = M.trilinear_weights(pts, field.shape)
    assert (w * field).sum() == pytest.approx(map_coordinates(field, pts.T, order=1).sum(), rel=1e-12)
    assert w.sum() == pytest.approx(len(pts))
    # points on a voxel centre put their whole weight there
    w1 = M.trilinear_weights(np.array([[2.0, 3.0, 4.0]]), field.shape)
    assert w1[2, 3, 4] == pytest.approx(1.0) and w1.sum() == pytest.approx(1.0)


def test_trilinear_weights_edges():
    field = np.arange(27, dtype=float).reshape(3, 3, 3)
    # within half a voxel outside the last centre: clamped to the edge value
    w = M.trilinear_weights(np.array([[2.4, 1.0, 1.0]]), field.shape)
    assert (w * field).sum() == pytest.approx(field[2, 1, 1])
    with pytest.raises(ValueError, match="outside"):
        M.trilinear_weights(np.array([[2.6, 1.0, 1.0]]), field.shape)
    with pytest.raises(ValueError, match="outside"):
        M.trilinear_weights(np.array([[-0.6, 1.0, 1.0]]), field.shape)


def test_sphere_lattice_is_symmetric_and_fills_the_sphere():
    pts = M.sphere_lattice((10.0, -4.0, 3.0), 2.5, 0.5)
    assert np.allclose(pts.mean(0), [10.0, -4.0, 3.0])
    assert np.all(np.linalg.norm(pts - [10.0, -4.0, 3.0], axis=1) <= 2.5 + 1e-9)
    # lattice volume vs the sphere's: within 3 % at 0.5 mm spacing
    assert len(pts) * 0.5 ** 3 == pytest.approx(4 / 3 * np.pi * 2.5 ** 3, rel=0.03)
    with pytest.raises(ValueError):
        M.sphere_lattice((0, 0, 0), 2.5, 0.0)


@pytest.mark.parametrize("scale", [1.0, 0.95, 1.06])
def test_trilinear_sphere_mean_of_a_linear_field_is_its_centre_value(scale):
    """Trilinear interpolation reproduces a linear field exactly and the lattice is symmetric, so the
    weighted mean is the field at the sphere centre mapped to the subject, whatever the pose; the
    weights sum to the sphere's volume in native voxels (lattice volume × Jacobian)."""
    shape, aff = _grid()
    reg = AffineRegistration(_oblique_pose(scale))
    xyz = np.indices(shape).reshape(3, -1).T @ aff[:3, :3].T + aff[:3, 3]
    g = np.array([0.3, -1.2, 0.7])
    field = (xyz @ g + 5.0).reshape(shape)
    sphere = SphereROI("proj_L", (-26.0, -16.0, 27.0), 2.5)
    w = M.trilinear_sphere_weights(shape, aff, reg, sphere)
    centre = reg.points_to_subject(np.array([sphere.center_mm]))[0]
    assert M.weighted_mean(field, w) == pytest.approx(centre @ g + 5.0, rel=1e-7)  # float32 weights
    n = len(M.sphere_lattice(sphere.center_mm, 2.5, 0.5))
    expected = n * 0.5 ** 3 * scale ** 3 / 2.5 ** 3
    assert w.sum() == pytest.approx(expected, rel=1e-5)


def test_weightings_give_similar_volumes_and_reject_unknown():
    shape, aff = _grid(vox=2.0)
    reg = AffineRegistration(_oblique_pose())
    spheres = default_spheres(radius_mm=5.0)
    vol = 4 / 3 * np.pi * 5.0 ** 3 * 1.04 ** 3 / 8.0
    for weighting in M.WEIGHTINGS:
        w = M.sphere_weights(shape, aff, reg, spheres, weighting=weighting)
        for name, ww in w.items():
            assert ww.sum() == pytest.approx(vol, rel=0.1), (weighting, name)
    with pytest.raises(ValueError, match="weighting"):
        M.sphere_weights(shape, aff, reg, spheres, weighting="gaussian")


def test_trilinear_sphere_outside_field_of_view_names_the_roi():
    shape, aff = _grid(shape=(20, 20, 20))
    reg = AffineRegistration(np.eye(4))
    with pytest.raises(ValueError, match="ROI proj_L: .* outside the image field of view"):
        M.sphere_weights(shape, aff, reg, default_spheres(radius_mm=2.5))


@pytest.mark.slow
def test_qc_slices_match_ants_resampling(tmp_path):
    """:func:`alps.imaging.qc.template_slices` samples two planes with scipy; ANTs resampling of the whole
    volume through the registration's transform file gives the same FA on those planes."""
    from alps.imaging import qc
    from alps.imaging import registration as R
    from alps.imaging import template as tpl

    shape, aff = _grid(shape=(64, 76, 64), vox=2.5)
    t2s = _oblique_pose(1.0)
    rng = np.random.default_rng(3)
    from scipy.ndimage import gaussian_filter

    fa = gaussian_filter(rng.uniform(0, 1, shape), 2.0).astype(np.float32)
    tensor = np.zeros(shape + (3, 3))
    tensor[..., 0, 0], tensor[..., 1, 1], tensor[..., 2, 2] = 1.2e-3, 0.4e-3, 0.4e-3
    xfm = R.write_ants_affine(R.ras_to_lps(t2s), tmp_path / "t2s.mat")
    reg = R.Registration(kind="affine", template_to_subject=t2s, forward_transforms=[str(xfm)],
                         inverse_transforms=[str(xfm)], inverse_invert=[True])
    ref = tpl.load("wm", resolution=2)
    sl = qc.template_slices(fa, tensor, aff, reg, ref)
    full = reg.to_template(nib.Nifti1Image(fa, aff), reference=ref).get_fdata()
    # compare away from the field-of-view edge, where ITK and scipy handle the last half voxel differently
    from scipy.ndimage import binary_erosion

    inside = binary_erosion(full[:, :, sl["k"]] > 0, iterations=3)
    assert inside.sum() > 2000
    assert np.abs(sl["fa_axial"] - full[:, :, sl["k"]])[inside].max() < 1e-4
    inside_c = binary_erosion(full[:, sl["j"], :] > 0, iterations=3)
    assert inside_c.sum() > 1000
    assert np.abs(sl["fa_coronal"] - full[:, sl["j"], :])[inside_c].max() < 1e-4
    # the voxel-axis x-fibre tensor becomes, in template axes, the template direction of voxel axis i
    v = np.abs(reg.rotation @ (aff[:3, :3] / np.linalg.norm(aff[:3, :3], axis=0))[:, 0])
    rgb = sl["rgb_axial"][inside]
    expected = v[None, :] * np.clip(sl["fa_axial"][inside], 0, 1)[:, None]
    assert np.abs(rgb - expected).max() < 1e-6


def _label_image():
    """A 1 mm template label image with four irregular blobs (labels 1..4 = proj_L, proj_R,
    assoc_L, assoc_R) around the ALPS centres."""
    shape = (100, 60, 30)
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    aff[:3, 3] = [-49.5, -45.5, 12.5]
    xyz = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1) @ aff[:3, :3].T + aff[:3, 3]
    lab = np.zeros(shape, np.uint8)
    for value, (cx, cy, cz) in enumerate([(-26, -16, 27), (26, -16, 27), (-38, -16, 27), (38, -16, 27)], start=1):
        d = (xyz - [cx, cy, cz]) / [3.0, 9.0, 4.0]
        lab[((d ** 2).sum(-1) <= 1) & (xyz[..., 1] < cy + 4)] = value
    return nib.Nifti1Image(lab, aff)


def test_trilinear_label_weights_volume_and_linear_fields():
    """Each label's weights add up to its template volume in native voxels (times the
    registration's volume change), and reproduce the mean of a linear native field over the
    label's template volume exactly (trilinear interpolation is exact for linear fields)."""
    labels = _label_image()
    reg = AffineRegistration(_oblique_pose(scale=1.04))
    shape, aff = _grid()
    w = M.trilinear_label_weights(shape, aff, reg, labels, lattice_mm=0.5)
    lab = np.asarray(labels.dataobj)
    jac = abs(np.linalg.det(reg.template_to_subject[:3, :3]))
    vox = abs(np.linalg.det(aff[:3, :3]))
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    field = ijk @ np.array([0.3, -1.1, 0.7]) + 5.0  # linear in native voxel coordinates
    inv = np.linalg.inv(aff)
    off = (np.stack(np.meshgrid(*[[-0.25, 0.25]] * 3, indexing="ij"), -1).reshape(-1, 3))
    for name, value in M.ROI_LABELS.items():
        n_vox = int((lab == value).sum())
        assert w[name].sum() == pytest.approx(n_vox * jac / vox, rel=1e-5)
        # independent: the field at every sub-voxel point, mapped by hand
        pts = (np.argwhere(lab == value)[:, None, :] + off[None]).reshape(-1, 3) + labels.affine[:3, 3]
        sub = reg.points_to_subject(pts) @ inv[:3, :3].T + inv[:3, 3]
        expected = float((sub @ np.array([0.3, -1.1, 0.7]) + 5.0).mean())
        assert (w[name] * field).sum() / w[name].sum() == pytest.approx(expected, rel=1e-6)


def test_label_weights_trilinear_vs_nearest_agree_on_volume_and_place(monkeypatch):
    """The nearest-neighbour ('centre') label warp and the trilinear sampling cover the same
    volume and place (centroids within a voxel) — they differ in how they treat the boundary."""
    import alps.imaging.atlas as A

    labels = _label_image()
    reg = AffineRegistration(_oblique_pose(scale=1.0))
    shape, aff = _grid(vox=3.0)

    class WarpRegistration(AffineRegistration):  # to_subject by scipy nearest-neighbour resampling
        def to_subject(self, img, ref, interpolator="nearestNeighbor"):
            m = np.linalg.inv(img.affine) @ self.subject_to_template @ ref.affine
            ijk = np.indices(ref.shape).reshape(3, -1).astype(float)
            vals = map_coordinates(np.asarray(img.dataobj, float), m[:3, :3] @ ijk + m[:3, 3:4], order=0)
            return nib.Nifti1Image(vals.reshape(ref.shape), ref.affine)

    wreg = WarpRegistration(reg.template_to_subject)
    monkeypatch.setattr(A, "jhu_alps_labels", lambda path=None, **k: labels)
    tri = M.roi_weights("jhu", shape, aff, wreg, weighting="trilinear")
    nn = M.roi_weights("jhu", shape, aff, wreg, weighting="centre")
    with pytest.raises(ValueError, match="JHU label ROIs take roi weighting"):
        M.roi_weights("jhu", shape, aff, wreg, weighting="partial")
    ijk = np.indices(shape).reshape(3, -1).T
    lab = np.asarray(labels.dataobj)
    for name, value in M.ROI_LABELS.items():
        assert tri[name].sum() == pytest.approx((lab == value).sum() / 27.0, rel=1e-5)  # the synthetic labels
        assert tri[name].sum() == pytest.approx(nn[name].sum(), rel=0.15)
        c_tri = (ijk * tri[name].reshape(-1, 1)).sum(0) / tri[name].sum()
        c_nn = (ijk * nn[name].reshape(-1, 1)).sum(0) / nn[name].sum()
        assert np.linalg.norm(c_tri - c_nn) < 0.5  # native voxels
