"""Tract-guided ROI placement (alps.imaging.placement) on planted tracts: a native tensor field built
from a template-space field with known tract positions, under known head poses. The placement
must find a planted association band that lies medial of the default sphere (as the SLF of the
shared Canon head does), leave spheres that already sit on their tract where they are, and never
leave its search box or let the association sphere cross the projection one."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from alps.imaging import measure as M
from alps.imaging import placement as P
from alps.imaging import tensor as T
from alps.imaging.roi import DEFAULT_CENTERS_MM, ROI_NAMES, default_spheres

from test_measure import AffineRegistration

LPAR, LPERP, LISO = 1.6e-3, 0.4e-3, 0.8e-3


def template_tensor(xyz, *, assoc_band=(31.0, 36.0), proj_band=(19.0, 29.0)):
    """Template-axis tensors at template points: projection fibres (z) for |x| in ``proj_band``,
    association fibres (y) for |x| in ``assoc_band``, elsewhere nearly isotropic tissue whose
    principal direction is x (so it counts as neither tract)."""
    a = np.abs(np.asarray(xyz, float)[:, 0])
    d = np.zeros((len(a), 3, 3))
    d[:] = np.diag([LISO * 1.12, LISO, LISO])
    for (lo, hi), ax in ((proj_band, 2), (assoc_band, 1)):
        sel = (a >= lo) & (a <= hi)
        v = np.full(3, LPERP)
        v[ax] = LPAR
        d[sel] = np.diag(v)
    return d


def native_field(pose_deg=(0.0, 0.0, 0.0), shift=(2.0, -3.0, 4.0), vox=2.0, **bands):
    """A native grid (``vox`` mm, axes along the subject's world axes) holding the planted field
    of a head posed by ``pose_deg`` (template → subject rotation) and ``shift``; returns
    ``(tensor in voxel axes, affine, registration)``."""
    rot = Rotation.from_euler("xyz", pose_deg, degrees=True).as_matrix()
    t2s = np.eye(4)
    t2s[:3, :3] = rot
    t2s[:3, 3] = shift
    shape = (60, 40, 30)
    aff = np.diag([vox, vox, vox, 1.0])
    aff[:3, 3] = [-59.0, -56.0, -4.0]  # covers x ±60, y −56..22, z −4..54 mm (subject world)
    ijk = np.indices(shape).reshape(3, -1).T
    world = ijk @ aff[:3, :3].T + aff[:3, 3]
    tmpl = (world - t2s[:3, 3]) @ rot  # rot⁻¹ (y − t)
    d = T.rotate(template_tensor(tmpl, **bands), rot).reshape(shape + (3, 3))
    return d, aff, AffineRegistration(t2s)


def _measured(tensor, aff, reg, centres):
    w = M.sphere_weights(tensor.shape[:3], aff, reg, default_spheres(centers_mm=centres))
    return M.measure(tensor, aff, reg, w)


@pytest.mark.parametrize("pose", [(0.0, 0.0, 0.0), (10.0, -5.0, 30.0)])
def test_placement_finds_a_planted_association_band_medial_of_the_default(pose):
    tensor, aff, reg = native_field(pose)
    before = _measured(tensor, aff, reg, None)
    assert before["purity_assoc_L"] < 0.3 and before["purity_assoc_R"] < 0.3  # default |x| = 38 misses
    assert before["purity_proj_L"] > 0.95 and before["purity_proj_R"] > 0.95
    pl = P.place_rois(tensor, aff, reg)
    after = _measured(tensor, aff, reg, pl.centers_mm)
    for hemi, sign in (("L", -1), ("R", 1)):
        x_assoc = pl.centers_mm[f"assoc_{hemi}"][0]
        assert 31.5 <= sign * x_assoc <= 35.5, pl.centers_mm  # inside the planted 31–36 mm band
        assert after[f"purity_assoc_{hemi}"] >= 0.9
        assert after[f"purity_proj_{hemi}"] >= 0.95
        # both spheres of a hemisphere on one axial level and one left-right line
        assert pl.centers_mm[f"assoc_{hemi}"][1:] == pl.centers_mm[f"proj_{hemi}"][1:]
    # the projection spheres sat on their tract already: they follow their association sphere's
    # axial level and line, and move in x by no more than the partial-volume step of the edge
    for n in ("proj_L", "proj_R"):
        assert abs(pl.centers_mm[n][0] - DEFAULT_CENTERS_MM[n][0]) <= 1.0 and pl.shift_mm[n] <= 2.0
    # the evidence of 'purity' is the ROI's purity under trilinear weighting (up to the grid)
    for n in ROI_NAMES:
        assert pl.evidence[n] == pytest.approx(after[f"purity_{n}"], abs=0.06)
        assert pl.evidence_default[n] == pytest.approx(before[f"purity_{n}"], abs=0.06)


def test_colour_centring_with_a_purity_gate_finds_the_band_too():
    """The evaluated alternative (gate 0.8, candidates of purity ≥ 0.8 ranked by the colour
    evidence of the tensor smoothed by 3 mm) lands in the same planted band."""
    tensor, aff, reg = native_field((10.0, -5.0, 30.0))
    pl = P.place_rois(tensor, aff, reg, evidence="colour", smooth_mm=3.0, gate=0.8, min_purity=0.8, penalty=0.002)
    after = _measured(tensor, aff, reg, pl.centers_mm)
    for hemi, sign in (("L", -1), ("R", 1)):
        assert 31.5 <= sign * pl.centers_mm[f"assoc_{hemi}"][0] <= 35.5, pl.centers_mm
        assert after[f"purity_assoc_{hemi}"] >= 0.8
    # on tract already: the gate keeps every sphere
    tensor, aff, reg = native_field((5.0, 5.0, -12.0), assoc_band=(34.0, 46.0))
    assert max(P.place_rois(tensor, aff, reg, gate=0.8, tolerance=0.0).shift_mm.values()) == 0.0


def test_spheres_on_their_tracts_do_not_move():
    """Every default sphere on its tract (purity 0.97–1.00): within the tolerance nothing moves;
    without it, a 0.03 purity gain at the projection band's edge moves a sphere by 1 mm."""
    tensor, aff, reg = native_field((5.0, 5.0, -12.0), assoc_band=(34.0, 46.0))
    assert max(P.place_rois(tensor, aff, reg, tolerance=0.0).shift_mm.values()) > 0
    pl = P.place_rois(tensor, aff, reg, tolerance=0.1)
    assert all(pl.shift_mm[n] == 0.0 for n in ROI_NAMES), pl.centers_mm
    assert pl.centers_mm == {n: tuple(float(c) for c in DEFAULT_CENTERS_MM[n]) for n in ROI_NAMES}


def test_placement_stays_in_its_box_and_keeps_the_association_sphere_lateral():
    """No association fibres anywhere near: a band only at |x| 47–55 mm, beyond the ±6 mm box
    about 38. The sphere may move to the box's edge, never further; with the projection band
    widened laterally up to 40 mm, the association sphere cannot come within the gap of the
    projection sphere."""
    tensor, aff, reg = native_field((0.0, 8.0, 15.0), assoc_band=(47.0, 55.0), proj_band=(19.0, 40.0))
    pl = P.place_rois(tensor, aff, reg, search_x_mm=6.0, min_gap_mm=8.0)
    for hemi in ("L", "R"):
        c = np.asarray(pl.centers_mm[f"assoc_{hemi}"])
        c0 = np.asarray(DEFAULT_CENTERS_MM[f"assoc_{hemi}"])
        assert np.all(np.abs(c - c0) <= np.array([6.0, 4.0, 4.0]) + 1e-9)
        gap = abs(c[0]) - abs(pl.centers_mm[f"proj_{hemi}"][0])
        assert gap >= 8.0 - 1e-9


def test_placement_validates_its_options():
    tensor, aff, reg = native_field()
    with pytest.raises(ValueError, match="evidence must be one of"):
        P.place_rois(tensor, aff, reg, evidence="fa")
    with pytest.raises(ValueError, match="search_x_mm must be zero or positive"):
        P.place_rois(tensor, aff, reg, search_x_mm=-1)
    with pytest.raises(ValueError, match="no placement satisfies"):
        P.place_rois(tensor, aff, reg, min_gap_mm=40.0)
