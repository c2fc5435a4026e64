"""Gradient/orientation handling: the same world-frame tensors must come back whatever the storage
orientation (RAS, LAS, sagittal PSR, ...) or obliquity, and the ANTs LPS <-> RAS conversion of the
registration must recover a known transform."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, apply_orientation, inv_ornt_aff, ornt_transform, io_orientation
from scipy.spatial.transform import Rotation

from alps.imaging import dti, tensor as T
from alps.io import gradients as G
from alps import io as aio
from alps.imaging.measure import measure, sphere_weights
from alps.imaging.roi import default_spheres, voxel_world_coords


def world_tensor_field(xyz):
    """Known world-frame tensors, a smooth function of world position (mm)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    a = 0.7 * np.sin(x / 9.0) + 0.3 * z / 20.0
    b = 0.5 * np.cos(y / 7.0) + 0.2 * x / 20.0
    c = 0.4 * np.sin(z / 5.0)
    rot = Rotation.from_euler("zyx", np.stack([a, b, c], -1).reshape(-1, 3)).as_matrix()
    evals = np.array([1.7e-3, 0.5e-3, 0.3e-3])
    d = np.einsum("nij,j,nkj->nik", rot, evals, rot)
    return d.reshape(xyz.shape[:-1] + (3, 3))


def synthesize(affine, shape, bvals, g_world, s0=1000.0):
    """Noise-free DWI of the world tensor field on a grid, plus FSL bvecs written for it."""
    xyz = voxel_world_coords(shape, affine)
    dw = world_tensor_field(xyz)
    q = np.einsum("ni,...ij,nj->...n", g_world, dw, g_world)
    data = (s0 * np.exp(-bvals * q)).astype(np.float32)
    bvecs_fsl = G.voxel_to_fsl(T.vectors_world_to_voxel(g_world, affine), affine)
    bvecs_fsl[bvals <= 50] = 0
    return data, bvecs_fsl, dw


BASE = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, -12], [0, 0, 2.0, -8], [0, 0, 0, 1]])
SHAPE = (10, 12, 8)


def reoriented(codes):
    """An affine/shape storing the BASE (RAS) grid in the axis order/direction ``codes``."""
    ornt = ornt_transform(io_orientation(BASE), axcodes2ornt(codes))
    dummy = np.zeros(SHAPE)
    shape = apply_orientation(dummy, ornt).shape
    aff = BASE @ inv_ornt_aff(ornt, SHAPE)
    return aff, shape


def oblique(angles, codes=("L", "A", "S")):
    aff, shape = reoriented(codes)
    rot = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    out = aff.copy()
    out[:3, :3] = rot @ aff[:3, :3]
    out[:3, 3] = rot @ aff[:3, 3]
    return out, shape


CASES = {
    "RAS": reoriented(("R", "A", "S")),
    "LAS": reoriented(("L", "A", "S")),
    "LPS": reoriented(("L", "P", "S")),
    "PSR_sagittal": reoriented(("P", "S", "R")),
    "ASL_sagittal": reoriented(("A", "S", "L")),
    "RSA_coronal": reoriented(("R", "S", "A")),
    "LAS_oblique": oblique((20, -10, 15)),
    "RAS_oblique": oblique((-25, 5, 30), ("R", "A", "S")),
    "PSR_oblique": oblique((10, 20, -15), ("P", "S", "R")),
}


@pytest.fixture(scope="module")
def scheme():
    return G.scheme(n_b0=2, n_dirs=20, bval=1000.0, seed=3)


@pytest.mark.parametrize("name", sorted(CASES))
def test_world_tensors_recovered(name, scheme, tmp_path):
    affine, shape = CASES[name]
    bvals, g = scheme
    data, bvecs_fsl, dw = synthesize(affine, shape, bvals, g)
    # round trip through files: the real loader + FSL text files
    p = tmp_path / "sub-01_dwi.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), p)
    G.write_bvals_bvecs(bvals, bvecs_fsl, tmp_path / "sub-01_dwi.bval", tmp_path / "sub-01_dwi.bvec")
    dwi = aio.load_dwi(p)
    maps = dti.fit_tensor(dwi.data, dwi.bvals, dwi.bvecs, dwi.affine, method="WLS")
    d_world = T.voxel_to_world(maps.tensor, dwi.affine)
    err = np.abs(d_world - dw).max()
    assert err < 2e-6, f"{name}: max |ΔD| = {err:.2e} mm²/s"
    # ignoring the FSL x flip must break it whenever the flip applies (det > 0)
    if np.linalg.det(affine[:3, :3]) > 0:
        wrong = dti.fit_tensor(dwi.data, dwi.bvals, dwi.bvecs * [-1, 1, 1], dwi.affine)
        assert np.abs(T.voxel_to_world(wrong.tensor, affine) - dw).max() > 1e-4


def test_fsl_flip_convention():
    aff_pos = np.diag([2.0, 2.0, 2.0, 1.0])
    aff_neg = np.diag([-2.0, 2.0, 2.0, 1.0])
    v = np.array([[0.6, 0.8, 0.0]])
    assert np.allclose(G.fsl_to_voxel(v, aff_pos), [[-0.6, 0.8, 0.0]])
    assert np.allclose(G.fsl_to_voxel(v, aff_neg), v)


class FixedRegistration:
    """Registration stand-in with a known subject -> template affine (for measure())."""

    def __init__(self, s2t):
        self.subject_to_template = np.asarray(s2t, float)
        self.template_to_subject = np.linalg.inv(self.subject_to_template)
        self.rotation = T.polar_rotation(self.subject_to_template[:3, :3])

    def points_to_template(self, xyz):
        m = self.subject_to_template
        return np.asarray(xyz) @ m[:3, :3].T + m[:3, 3]

    def points_to_subject(self, xyz):
        m = self.template_to_subject
        return np.asarray(xyz) @ m[:3, :3].T + m[:3, 3]


@pytest.mark.parametrize("weighting", ["trilinear", "partial", "centre"])
def test_template_axis_alps_invariant_to_head_rotation(weighting):
    """A uniform 'ALPS phantom' (template-frame tensors) seen through rotated heads and
    differently stored grids: template-axis ALPS is exact, scanner-axis ALPS is biased."""
    lam = {"proj": np.diag([0.55e-3, 0.40e-3, 1.2e-3]), "assoc": np.diag([0.60e-3, 1.2e-3, 0.40e-3])}
    expected = ((0.55 + 0.60) / 2) / ((0.40 + 0.40) / 2)
    results = []
    for rot_deg, codes in [((0, 0, 0), ("L", "A", "S")), ((15, 0, 0), ("R", "A", "S")),
                           ((0, -12, 8), ("P", "S", "R")), ((-10, 10, 20), ("L", "P", "S"))]:
        head = Rotation.from_euler("xyz", rot_deg, degrees=True).as_matrix()  # template -> head (world)
        lin = np.diag([2.0, 2.0, 2.0])
        ornt = axcodes2ornt(codes)
        # voxel axes permuted/flipped per codes
        cols = []
        for ax, sign in ornt:
            e = np.zeros(3)
            e[int(ax)] = sign
            cols.append(e * 2.0)
        lin = np.stack(cols, 1)
        aff = np.eye(4)
        aff[:3, :3] = lin
        shape = (52, 52, 52)
        aff[:3, 3] = -lin @ (np.array(shape) / 2 - 0.5)
        xyz = voxel_world_coords(shape, aff)
        x_t = xyz @ head  # world (head) -> template coordinates (head is orthogonal)
        fibre = np.where(np.abs(x_t[..., 0]) < 32, 0, 1)  # proj medial, assoc lateral
        d_t = np.where(fibre[..., None, None] == 0, lam["proj"], lam["assoc"])
        d_world = T.rotate(d_t, head)
        r_v2w = T.polar_rotation(aff[:3, :3])
        d_vox = T.rotate(d_world, r_v2w.T)
        s2t = np.eye(4)
        s2t[:3, :3] = head.T
        reg = FixedRegistration(s2t)
        w = sphere_weights(shape, aff, reg, default_spheres(radius_mm=2.5), weighting=weighting)
        out = measure(d_vox, aff, reg, w)
        results.append(out)
        assert out["alps"] == pytest.approx(expected, rel=1e-9)
        assert out["alps_L"] == pytest.approx(expected, rel=1e-9)
    # the scanner-axis index depends on the head rotation / storage (not invariant)
    assert np.ptp([r["alps_scanner"] for r in results]) > 0.1


def _known_pose_subject():
    """Template WM resampled on an LAS 2.5 mm grid under a known rigid pose: (image, s2t)."""
    from scipy import ndimage

    from alps.imaging import template as tpl

    wm = tpl.load("wm", resolution=2)
    rot = Rotation.from_euler("xyz", [8.0, -5.0, 6.0], degrees=True).as_matrix()
    s2t = np.eye(4)
    s2t[:3, :3], s2t[:3, 3] = rot, [6.0, -4.0, 5.0]
    shape = (76, 90, 76)
    aff = np.diag([-2.5, 2.5, 2.5, 1.0])
    aff[:3, 3] = [94.0, -130.0, -75.0]
    m = np.linalg.inv(wm.affine) @ s2t @ aff
    coords = m[:3, :3] @ np.indices(shape).reshape(3, -1).astype(float) + m[:3, 3:4]
    data = ndimage.map_coordinates(wm.get_fdata(), coords, order=1, cval=0.0).reshape(shape).astype(np.float32)
    return nib.Nifti1Image(data, aff), s2t


@pytest.mark.slow
def test_regular_sampling_is_seeded_and_strategies_are_checked(tmp_path):
    """The default 'regular' metric sampling jitters its points with the seed: the same seed gives
    the same transform bit for bit, another seed a (slightly) different one."""
    from alps.imaging import registration as R

    img, _ = _known_pose_subject()
    mask = img.get_fdata() > 0.05
    # the second run writes to a folder whose name ANTs' parser would misread (its scratch files
    # then go to the system temp dir): same seed, same transform, and no scratch left anywhere
    dirs = [tmp_path / "0", tmp_path / "odd [1],x", tmp_path / "2"]
    mats = [R.register(img, mask, out_dir=d, check=False, erode_mm=0, seed=s).template_to_subject
            for d, s in zip(dirs, (7, 7, 8))]
    assert not [p for d in dirs for p in d.iterdir() if p.name.startswith(R.SCRATCH_PREFIX)]
    assert np.array_equal(mats[0], mats[1])
    assert not np.array_equal(mats[0], mats[2])
    assert np.abs(mats[0] - mats[2]).max() < 0.5
    with pytest.raises(ValueError, match="unknown sampling strategy"):
        R.register(img, mask, out_dir=tmp_path, check=False, sampling_strategy="sparse")
    with pytest.raises(ValueError, match="dense sampling uses every point"):
        R.register(img, mask, out_dir=tmp_path, check=False, sampling_strategy="dense", sampling=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["regular", "dense"])
def test_ants_lps_ras_conversion_recovers_known_transform(tmp_path, strategy):
    """Resample the template WM map with a known rigid transform, register back, compare."""
    from alps.imaging import registration as R

    # subject grid: LAS 2.5 mm; subject value at x = WM(s2t · x)
    img, s2t = _known_pose_subject()
    rot = s2t[:3, :3]
    reg = R.register(img, img.get_fdata() > 0.05, kind="affine", out_dir=tmp_path, check=False, erode_mm=0,
                     sampling_strategy=strategy)
    est = reg.subject_to_template
    pts = np.array([[26, -16, 27], [-38, -16, 27], [0, 30, 0], [0, -60, 10.0]])
    # ROI-level accuracy in template mm
    mapped_true = (np.linalg.inv(s2t) @ np.c_[pts, np.ones(4)].T).T[:, :3]
    mapped_est = reg.points_to_subject(pts)
    assert np.abs(mapped_est - mapped_true).max() < 1.5
    dr = reg.rotation @ rot.T
    angle = np.degrees(np.arccos(np.clip((np.trace(dr) - 1) / 2, -1, 1)))
    assert angle < 1.0, f"rotation error {angle:.2f}°"
    # ANTs .mat on disk and the RAS matrix agree through the documented conjugation
    lps = R.read_ants_affine(reg.forward_transforms[0])
    assert np.allclose(R.lps_to_ras(lps), reg.template_to_subject)
    assert np.allclose(np.linalg.inv(reg.template_to_subject), est)
    assert reg.metrics["reg_corr"] > 0.9


def test_lps_ras_conjugation_roundtrip(tmp_path):
    from alps.imaging import registration as R

    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", [3, 7, -4], degrees=True).as_matrix() * 1.05
    m[:3, 3] = [1.0, -2.0, 3.0]
    p = R.write_ants_affine(R.ras_to_lps(m), tmp_path / "t.mat")
    assert np.allclose(R.lps_to_ras(R.read_ants_affine(p)), m, atol=1e-8)
    # a RAS point mapped by m equals the LPS point mapped by the LPS matrix, flipped back
    x = np.array([10.0, 20.0, 30.0, 1.0])
    flip = np.diag([-1.0, -1, 1, 1])
    assert np.allclose(flip @ (R.ras_to_lps(m) @ (flip @ x)), m @ x)


def _fake_jhu(flip_x: bool):
    """A tiny 'JHU' label image: label 25 on the x<0 side in world space when flip_x (Debian copy)."""
    shape = (40, 20, 20)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-39.0, -30.0, 8.0]
    if flip_x:
        aff[0, 0] = -2.0
        aff[0, 3] = 39.0
    lab = np.zeros(shape, np.uint8)
    # voxel-index halves: i < 20 gets the "_R" labels 25 (SCR) and 41 (SLF)
    lab[6:20, :, :] = np.where(np.arange(6, 20)[:, None, None] < 14, 41, 25)
    lab[20:34, :, :] = np.where(np.arange(20, 34)[:, None, None] < 26, 26, 42)
    return nib.Nifti1Image(lab, aff)


@pytest.mark.parametrize("flip_x", [False, True])
def test_jhu_hemisphere_from_world_x(flip_x):
    from alps.imaging.atlas import alps_labels_from_atlas

    img = _fake_jhu(flip_x)
    out = alps_labels_from_atlas(img, slab_z=(20, 34))
    xyz = voxel_world_coords(out.shape, out.affine)
    lab = np.asarray(out.dataobj)
    for v, side in ((1, -1), (2, 1), (3, -1), (4, 1)):
        assert (np.sign(xyz[lab == v][:, 0]) == side).all()
    assert (xyz[lab > 0][:, 2] >= 20).all() and (xyz[lab > 0][:, 2] <= 34).all()


def test_real_jhu_debian_copy_is_mirrored():
    from alps.imaging.atlas import AtlasNotFound, find_jhu, jhu_alps_labels

    try:
        path = find_jhu(resolution=1)
    except AtlasNotFound as exc:
        pytest.skip(f"JHU atlas not installed: {exc}")
    img = nib.load(str(path))
    lab = np.asarray(img.dataobj)
    xyz = voxel_world_coords(img.shape, img.affine)
    x25 = xyz[lab == 25][:, 0].mean()
    if "mricron" in str(path):
        assert x25 < 0  # "Superior_corona_radiata_R" lies at x < 0 in this copy's world space
    out = jhu_alps_labels(path)
    xyz = voxel_world_coords(out.shape, out.affine)
    o = np.asarray(out.dataobj)
    assert (xyz[o == 1][:, 0] < 0).all() and (xyz[o == 2][:, 0] > 0).all()


@pytest.mark.parametrize("extra_deg", [0.0, 8.0])
def test_fibre_field_agreement_finds_a_misread_table(extra_deg):
    """Two scans of one head (second one oblique, LAS-stored, with 12° of head motion): correct
    tables give no extra rotation; a table read in a frame rotated by 8° is found as 8°."""
    from alps.validation import fibre_field_agreement

    shape = (28, 30, 26)
    aff_a = BASE
    rot_b = Rotation.from_euler("xyz", [20, -10, 5], degrees=True).as_matrix() @ np.diag([-2.0, 2.0, 2.0])
    aff_b = np.eye(4)
    motion = np.eye(4)  # world of b -> world of a
    motion[:3, :3] = Rotation.from_euler("zyx", [12, 4, -3], degrees=True).as_matrix()
    motion[:3, 3] = [3.0, -2.0, 1.5]
    centre_a = aff_a[:3, :3] @ ((np.array(shape) - 1) / 2) + aff_a[:3, 3]
    centre_b = np.linalg.solve(motion[:3, :3], centre_a - motion[:3, 3])  # same anatomy at both centres
    aff_b[:3, :3], aff_b[:3, 3] = rot_b, centre_b - rot_b @ ((np.array(shape) - 1) / 2)
    extra = Rotation.from_rotvec(np.radians(extra_deg) * np.array([0.6, 0.0, 0.8])).as_matrix()

    ra, rb, rm = (T.polar_rotation(m[:3, :3]) for m in (aff_a, aff_b, motion))
    tens_a = T.rotate(world_tensor_field(voxel_world_coords(shape, aff_a)), ra.T)
    xyz_b = voxel_world_coords(shape, aff_b)
    xyz_in_a = xyz_b @ motion[:3, :3].T + motion[:3, 3]
    d_b_world = T.rotate(T.rotate(world_tensor_field(xyz_in_a), rm.T), extra)
    tens_b = T.rotate(d_b_world, rb.T)
    # b's field of view: only where it lies inside a's grid
    vox_a = np.linalg.solve(aff_a[:3, :3], (xyz_in_a - aff_a[:3, 3]).reshape(-1, 3).T).T.reshape(xyz_b.shape)
    inside = np.all((vox_a > 1) & (vox_a < np.array(shape) - 2), axis=-1)
    assert inside.sum() > 2000

    res = fibre_field_agreement(tens_a, aff_a, tens_b, aff_b, motion, mask_b=inside)
    assert res["n_voxels"] > 1000
    assert res["extra_rotation_deg"] == pytest.approx(extra_deg, abs=0.3)
    if extra_deg:
        assert res["cos2_best"] > res["cos2_identity"] + 0.005
    else:
        assert res["median_angle_deg"] < 1.0 and res["cos2_identity"] > 0.999
    # the wrong motion (identity) is not mistaken for agreement
    wrong = fibre_field_agreement(tens_a, aff_a, tens_b, aff_b, np.eye(4), mask_b=inside, fa_threshold=0.0)
    assert wrong["median_angle_deg"] > 5.0


def test_fibre_field_agreement_validates():
    from alps.validation import fibre_field_agreement

    t = np.tile(np.diag([1.7e-3, 0.3e-3, 0.3e-3]), (4, 4, 4, 1, 1))
    with pytest.raises(ValueError, match="b_to_a must be 4x4"):
        fibre_field_agreement(t, np.eye(4), t, np.eye(4), np.eye(3))
    with pytest.raises(ValueError, match="mask_b has shape"):
        fibre_field_agreement(t, np.eye(4), t, np.eye(4), np.eye(4), mask_b=np.ones((2, 2, 2), bool))
    far = np.eye(4)
    far[:3, 3] = 1000.0
    with pytest.raises(ValueError, match="do the images overlap"):
        fibre_field_agreement(t, np.eye(4), t, np.eye(4), far)


@pytest.mark.parametrize("codes", [("R", "A", "S"), ("L", "A", "S"), ("P", "S", "R"), ("L", "P", "I")])
def test_qc_native_view_shows_right_on_the_right_and_anterior_up(codes):
    """The QC PNG's native panels (alps.imaging.qc.native_axial_view): whatever the storage order
    (RAS, LAS, sagittal PSR, LPI), the slice is the voxel plane nearest to axial and a marker at
    world right-anterior appears right and up, as in the RAS image, so the panels' L/R labels hold."""
    from alps.imaging.qc import native_axial_view

    ras = np.zeros((40, 50, 30), np.float32)
    ras[30, 38, 12] = 1.0  # right (x > centre), anterior (y > centre)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = -np.array(ras.shape) + 1.0
    img = nib.Nifti1Image(ras, aff)
    ornt = ornt_transform(io_orientation(img.affine), axcodes2ornt(codes))
    data = apply_orientation(ras, ornt)
    new_aff = img.affine @ inv_ornt_aff(ornt, ras.shape)
    assert nib.aff2axcodes(new_aff) == codes
    idx = np.argwhere(data == 1.0)[0]
    view, axis, s = native_axial_view(data, new_aff, idx)
    ref, _, _ = native_axial_view(ras, aff, (30, 38, 12))
    assert view.shape == ref.shape == (50, 40)  # rows: P->A, columns: L->R
    assert np.array_equal(view, ref)
    row, col = np.argwhere(view == 1.0)[0]
    assert col > view.shape[1] // 2 and row > view.shape[0] // 2
    assert codes[axis] in "SI" and s == idx[axis]
