"""Planted eddy-current distortions, head motion and slice dropout on a simulated scan: the
planted truth of :mod:`alps.imaging.eddy`.

Physics planted (the forward model of :mod:`alps.imaging.eddy_transform`):

* *head motion*: volume ``n`` sees the head turned by ``R_n`` and shifted by ``t_n`` (about the
  brain's centre). The diffusion contrast turns with the head while the gradient stays in scanner
  axes, so the volume is the reference head's signal for the gradient ``R_nᵀ g_n`` (computed exactly
  by :func:`alps.simulation.signal.simulate_subject` with that gradient), moved by ``(R_n, t_n)``;
  the b-vector written is ``g_n`` (what the scanner applied);
* *eddy currents*: each diffusion gradient leaves residual field gradients proportional to it
  (Jezzard et al. 1998), so the displacement along the phase-encoding axis is linear in position with
  coefficients ``c_n = K g_n`` (``K`` 3x3, mm at 100 mm per unit gradient; row = the residual field
  gradient along voxel axis i, j, k, column = the diffusion gradient's component: mostly diagonal —
  a gradient along i shears the PE displacement along i, one along the PE axis j scales it, one along
  k shears it through the slices); the b = 0 volumes have none;
* the signal is conserved (intensity divided by the Jacobian), cubic B-spline resampling of the
  noise-free volume, then Rician noise of the simulation's σ;
* *dropout*: chosen (volume, slice) pairs of the acquired slices multiplied by a factor < 1 before
  the noise (signal lost to through-plane motion during the diffusion encoding).
"""
from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from ..imaging import eddy_transform as ET
from ..imaging.dti import design_matrix
from ..imaging.tensor import vectors_world_to_voxel
from ..io.gradients import B0_THRESHOLD, voxel_to_fsl
from .pose import native_grid
from .signal import noise_sigma, simulate_subject

#: default eddy-current matrix K (mm at 100 mm per unit gradient): rows = the linear terms (i, j, k)
#: of the displacement along the PE axis, columns = the diffusion gradient's voxel-axis component.
#: Diagonal-dominant with small cross terms: about 1.5–2.5 mm of displacement at the brain's edge.
DEFAULT_K = np.array([[2.0, 0.3, -0.2],
                      [-0.3, 2.5, 0.4],
                      [0.2, -0.4, 1.8]])


@dataclass(frozen=True)
class PlantedEddy:
    """The planted truth of one scan: each volume's transform (reference → volume), the geometry it
    acts on, the b-vectors of the reference frame (world axes, ``R_nᵀ g_n``), the dropout
    ``(volume, slice, factor)`` list and the slice axis."""

    transforms: tuple
    geometry: ET.Geometry
    gradients_ref: np.ndarray
    dropout: tuple
    slice_axis: int

    def table(self, mask) -> pd.DataFrame:
        """Planted per-volume parameters in the columns of :func:`alps.imaging.eddy.parameters_table`."""
        pts = np.argwhere(np.asarray(mask, bool)).astype(float)
        terms = ET.ec_terms(self.geometry.model)
        rows = []
        for n, tr in enumerate(self.transforms):
            rv = np.degrees(Rotation.from_matrix(tr.rotation).as_rotvec())
            row = {"volume": n, "trans_x": tr.translation[0], "trans_y": tr.translation[1],
                   "trans_z": tr.translation[2], "rot_x": rv[0], "rot_y": rv[1], "rot_z": rv[2],
                   "rot_deg": float(np.linalg.norm(rv)), "trans_mm": float(np.linalg.norm(tr.translation))}
            for i, a in enumerate(self.geometry.pe_axes):
                for k, name in enumerate(terms):
                    row[f"ec_{ET.AXES[a]}_{name}"] = float(tr.ec[i, k]) if tr.ec.size else np.nan
            row["max_disp_mm"] = float(ET.displacement_mm(tr, self.geometry, pts).max())
            row["max_ec_disp_mm"] = (float(ET.displacement_mm(tr, self.geometry, pts, ec_only=True).max())
                                     if tr.ec.size else 0.0)
            row["n_dropout_slices"] = sum(1 for v, _, _ in self.dropout if v == n)
            rows.append(row)
        return pd.DataFrame(rows)

    def displacement_errors(self, transforms, geometry, mask) -> tuple[np.ndarray, np.ndarray]:
        """How well estimated per-volume ``transforms`` (on ``geometry``, e.g. those of an
        :class:`alps.imaging.eddy.EddyCorrection`) recover the planted ones: per volume, the largest
        distance (mm) over the ``mask`` voxels between where the estimate and the truth move a voxel,
        ``max_x |T̂_n(x) − T_n(x)|``, and the planted displacement's own largest size,
        ``max_x |T_n(x) − x|``."""
        pts = np.argwhere(np.asarray(mask, bool)).astype(float)
        errs, sizes = [], []
        for est, plant in zip(transforms, self.transforms):
            xa, _ = ET.forward(est, geometry, pts)
            xb, _ = ET.forward(plant, geometry, pts)
            errs.append(np.linalg.norm((xa - xb) @ geometry.lin.T, axis=1).max())
            sizes.append(np.linalg.norm((xb - pts) @ geometry.lin.T, axis=1).max())
        return np.array(errs), np.array(sizes)


def draw_transforms(bvals, g_vox, geom: ET.Geometry, *, rng, K=DEFAULT_K, max_rotation_deg: float = 1.0,
                    max_translation_mm: float = 1.0, visible_only: bool = False,
                    b0_threshold: float = B0_THRESHOLD) -> tuple:
    """Per-volume planted transforms: the first b = 0 volume is the reference (identity); every other
    volume gets a uniform random rotation (axis random, angle ≤ ``max_rotation_deg``) and translation
    (each component within ±``max_translation_mm``); diffusion-weighted volumes also the linear
    eddy-current coefficients ``K g`` (``g`` in voxel axes) along each displaced axis of ``geom``.

    ``visible_only``: the diffusion-weighted volumes' motion parameters (translation, rotation vector)
    are projected, each over the volumes, onto the complement of the quadratic forms of the gradient
    direction — the part a registration to tensor predictions can see (:func:`alps.imaging.eddy.visible_update`):
    planted truth that a correction can be held to exactly."""
    bvals = np.asarray(bvals, float)
    b0 = bvals <= b0_threshold
    first = int(np.flatnonzero(b0)[0])
    K = np.asarray(K, float)
    rv = np.zeros((len(bvals), 3))
    trans = np.zeros((len(bvals), 3))
    for n in range(len(bvals)):
        if n == first:
            continue
        axis = rng.normal(size=3)
        rv[n] = np.radians(rng.uniform(0, max_rotation_deg)) * axis / np.linalg.norm(axis)
        trans[n] = rng.uniform(-max_translation_mm, max_translation_mm, 3)
    if visible_only:
        dw = np.flatnonzero(~b0)
        X = design_matrix(bvals[dw], np.asarray(g_vox, float)[dw])
        Q = np.eye(len(dw)) - X @ np.linalg.pinv(X)
        rv[dw], trans[dw] = Q @ rv[dw], Q @ trans[dw]
    out = []
    for n in range(len(bvals)):
        ec = np.zeros((len(geom.pe_axes), len(ET.ec_terms(geom.model))))
        if not b0[n]:
            ec[:, :3] = K @ np.asarray(g_vox[n], float)
        out.append(ET.VolumeTransform(Rotation.from_rotvec(rv[n]).as_matrix(), trans[n], ec))
    return tuple(out)


def simulate_eddy_scan(fields, pose, planted_alps: dict, *, scheme, snr=30.0, seed=0, voxel_mm=3.0,
                       pe_axis: int = 1, slice_axis: int = 2, K=DEFAULT_K, max_rotation_deg: float = 1.0,
                       max_translation_mm: float = 1.0, visible_only: bool = False, dropout=(),
                       orientation: str = "LAS", oblique: bool = False, transforms=None):
    """A simulated scan with planted eddy currents, motion and dropout (module docstring).

    Parameters
    ----------
    fields, pose, planted_alps : as :func:`alps.simulation.signal.simulate_subject`
    scheme : (bvals, bvecs_world) the applied gradients (scanner axes)
    snr : b = 0 white-matter SNR (Rician σ as the simulator's)
    seed : seed of the planted transforms and of the noise
    voxel_mm, orientation, oblique : the native grid
    pe_axis, slice_axis : voxel axes of the phase encoding and of the slices
    K, max_rotation_deg, max_translation_mm, visible_only : see :func:`draw_transforms`
    dropout : ``(volume, slice, factor)`` triples
    transforms : planted transforms to use instead of drawing them (one per volume)

    Returns
    -------
    img : nibabel image (float32) of the distorted, noisy series
    bvals, bvecs_fsl : the gradient table as the scanner writes it (applied gradients, FSL convention)
    truth : dict — ``planted`` (:class:`PlantedEddy`), ``clean`` (reference-frame noise-free series,
        gradients ``R_nᵀ g_n``), ``undistorted`` (the reference-frame series with the same noise
        draw: what a perfect correction could give), ``bvecs_fsl_ref`` (FSL b-vectors of ``R_nᵀ g_n``),
        ``mask`` (the phantom brain on the native grid), ``sigma``, and ``extras`` of the simulator
    """
    rng = np.random.default_rng(seed)
    bvals, g_world = (np.asarray(v, float) for v in scheme)
    b0 = bvals <= B0_THRESHOLD
    shape, affine = native_grid(fields, pose, orientation=orientation, oblique=oblique, voxel_mm=voxel_mm)
    tpl = np.argwhere(fields.mask) @ fields.affine[:3, :3].T + fields.affine[:3, 3]
    centre = pose.forward(tpl.mean(axis=0))          # the brain's centre in the scanner
    geom = ET.Geometry(affine, shape, centre, (int(pe_axis),), "linear")
    g_vox = vectors_world_to_voxel(g_world, affine)
    if transforms is None:
        transforms = draw_transforms(bvals, g_vox, geom, rng=rng, K=K, max_rotation_deg=max_rotation_deg,
                                     max_translation_mm=max_translation_mm, visible_only=visible_only)
    if len(transforms) != len(bvals):
        raise ValueError(f"{len(transforms)} planted transforms for {len(bvals)} volumes")
    g_ref = np.array([g if b0[n] else tr.rotation.T @ g for n, (tr, g) in enumerate(zip(transforms, g_world))])
    clean_img, _, _, extras = simulate_subject(fields, pose, planted_alps, snr=None, scheme=(bvals, g_ref),
                                               dtype="float32", orientation=orientation, oblique=oblique,
                                               voxel_mm=voxel_mm)
    clean = np.asarray(clean_img.dataobj, np.float32)
    brain = clean[..., int(np.flatnonzero(b0)[0])] > 0
    distorted = np.stack([ET.distort(clean[..., n], tr, geom) for n, tr in enumerate(transforms)], axis=-1)
    for vol, sl, factor in dropout:
        idx = [slice(None)] * 3
        idx[slice_axis] = int(sl)
        distorted[tuple(idx) + (int(vol),)] *= float(factor)
    sigma = noise_sigma(fields, snr)
    n1 = rng.standard_normal(clean.shape, dtype=np.float32) * sigma
    n2 = rng.standard_normal(clean.shape, dtype=np.float32) * sigma
    noisy = np.sqrt((distorted + n1) ** 2 + n2 ** 2)
    undistorted = np.sqrt((clean + n1) ** 2 + n2 ** 2)
    img = nib.Nifti1Image(noisy.astype(np.float32), affine)
    img.header.set_xyzt_units("mm")
    fsl = voxel_to_fsl(g_vox, affine)
    fsl[b0] = 0.0
    fsl_ref = voxel_to_fsl(vectors_world_to_voxel(g_ref, affine), affine)
    fsl_ref[b0] = 0.0
    planted = PlantedEddy(tuple(transforms), geom, g_ref, tuple(dropout), slice_axis)
    truth = {"planted": planted, "clean": clean, "undistorted": undistorted.astype(np.float32),
             "bvecs_fsl_ref": fsl_ref + 0.0, "mask": brain, "sigma": sigma, "extras": extras}
    return img, bvals, fsl + 0.0, truth
