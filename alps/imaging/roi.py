"""ALPS regions of interest in template (MNI) space.

Default: the automated sphere set widely used for DTI-ALPS (e.g. Liu et al. 2024; Tatekawa et al.
2023): spheres centred at the superior corona radiata (projection fibres, SCR) at (±26, −16, 27)
mm and the superior longitudinal fasciculus (association fibres, SLF) at (±38, −16, 27) mm in MNI
space, at the level of the lateral-ventricle bodies, radius 2.5 mm (5 mm in the older variant).

Hemispheres are decided from **world** x (RAS+: x < 0 is left), never from voxel indices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ROI names in a fixed order: (fibre, hemisphere).
ROI_NAMES = ("proj_L", "proj_R", "assoc_L", "assoc_R")

#: Default sphere centres in MNI mm (x, y, z).
DEFAULT_CENTERS_MM = {
    "proj_L": (-26.0, -16.0, 27.0),
    "proj_R": (26.0, -16.0, 27.0),
    "assoc_L": (-38.0, -16.0, 27.0),
    "assoc_R": (38.0, -16.0, 27.0),
}

DEFAULT_RADIUS_MM = 2.5


@dataclass(frozen=True)
class SphereROI:
    """A sphere in world millimetres."""

    name: str
    center_mm: tuple[float, float, float]
    radius_mm: float


def default_spheres(*, radius_mm: float = DEFAULT_RADIUS_MM, centers_mm=None) -> list[SphereROI]:
    """The four default ALPS spheres (``proj_L, proj_R, assoc_L, assoc_R``) in MNI mm."""
    if not radius_mm > 0:
        raise ValueError(f"ROI radius must be positive, got {radius_mm!r} mm")
    centers = dict(DEFAULT_CENTERS_MM if centers_mm is None else centers_mm)
    missing = set(ROI_NAMES) - set(centers)
    if missing:
        raise ValueError(f"ROI centres missing for {sorted(missing)}")
    return [SphereROI(n, tuple(float(c) for c in centers[n]), float(radius_mm)) for n in ROI_NAMES]


def voxel_world_coords(shape, affine):
    """World (mm) coordinates of every voxel centre, shape ``shape + (3,)``."""
    ijk = np.indices(tuple(shape[:3]), dtype=float).reshape(3, -1)
    xyz = np.asarray(affine)[:3, :3] @ ijk + np.asarray(affine)[:3, 3:4]
    return xyz.T.reshape(tuple(shape[:3]) + (3,))


def sphere_mask(shape, affine, center_mm, radius_mm) -> np.ndarray:
    """Boolean mask of voxels whose centre lies within ``radius_mm`` of ``center_mm`` (world mm).

    Raises
    ------
    ValueError
        If no voxel centre falls inside the sphere (e.g. the field of view does not contain it).
    """
    xyz = voxel_world_coords(shape, affine)
    d2 = ((xyz - np.asarray(center_mm, dtype=float)) ** 2).sum(axis=-1)
    mask = d2 <= float(radius_mm) ** 2 + 1e-9
    if not mask.any():
        raise ValueError(
            f"sphere at {tuple(center_mm)} mm (radius {radius_mm} mm) contains no voxel centre of "
            f"the {tuple(shape[:3])} grid: the field of view does not cover this ROI"
        )
    return mask


def sphere_masks(shape, affine, spheres) -> dict[str, np.ndarray]:
    """Masks of several :class:`SphereROI` on one grid, keyed by ROI name."""
    return {s.name: sphere_mask(shape, affine, s.center_mm, s.radius_mm) for s in spheres}
