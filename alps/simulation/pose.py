"""Head pose and native grid of a simulated subject.

A subject's head is the template brain under the pose ``x_n = s R x_t + t`` (``R = Rz Ry Rx``,
angles about the MNI axes through the MNI origin, isotropic scale ``s``, translation ``t`` mm).
The native image is an axis-aligned 2 mm LAS (or RAS) grid cropped to the posed brain +
``margin_mm``; with ``oblique=True`` the affine's axes are instead rotated by ``R`` (the head
then lies straight in the grid).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .phantom import TemplateFields


def rotation_matrix(rx_deg, ry_deg, rz_deg) -> np.ndarray:
    """``R = Rz @ Ry @ Rx`` for right-handed rotations (degrees) about the x, y, z axes."""
    ax, ay, az = np.deg2rad([rx_deg, ry_deg, rz_deg])
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Pose:
    """Head pose ``x_native = scale · R · x_template + trans`` (mm, world RAS+)."""

    rot_deg: tuple = (0.0, 0.0, 0.0)
    trans_mm: tuple = (0.0, 0.0, 0.0)
    scale: float = 1.0

    @property
    def R(self) -> np.ndarray:
        return rotation_matrix(*self.rot_deg)

    def forward(self, xyz):
        """Template → native world points, ``(..., 3)``."""
        return self.scale * np.asarray(xyz, float) @ self.R.T + np.asarray(self.trans_mm, float)

    def inverse(self, xyz):
        """Native world → template points, ``(..., 3)``."""
        return ((np.asarray(xyz, float) - np.asarray(self.trans_mm, float)) @ self.R) / self.scale


def draw_pose(rng, max_rotation=10.0, max_translation=5.0, max_scale=0.05) -> Pose:
    """Uniform rotations (±max_rotation° per axis), translations (±max_translation mm per axis)
    and isotropic scale (1 ± max_scale)."""
    rot = rng.uniform(-max_rotation, max_rotation, 3)
    trans = rng.uniform(-max_translation, max_translation, 3)
    scale = rng.uniform(1 - max_scale, 1 + max_scale)
    return Pose(tuple(float(v) for v in rot), tuple(float(v) for v in trans), float(scale))


def native_grid(fields: TemplateFields, pose: Pose, *, orientation="LAS", oblique=False,
                voxel_mm=2.0, margin_mm=4.0):
    """Shape and affine of a subject's native grid covering the posed brain + margin.

    Axis-aligned grids are snapped to the template's 2 mm lattice, so that an identity pose
    samples the template exactly at its voxel centres.
    """
    if orientation not in ("LAS", "RAS"):
        raise ValueError(f"orientation must be 'LAS' or 'RAS', got {orientation!r}")
    sx = -voxel_mm if orientation == "LAS" else voxel_mm
    lin = np.diag([sx, voxel_mm, voxel_mm])
    ijk = np.argwhere(fields.mask).astype(float)
    pts = pose.forward(ijk @ fields.affine[:3, :3].T + fields.affine[:3, 3])
    if oblique:
        lin = pose.R @ lin
        u = pts @ np.linalg.inv(lin).T
        lo = np.floor(u.min(axis=0) - margin_mm / voxel_mm)
        hi = np.ceil(u.max(axis=0) + margin_mm / voxel_mm)
        shape = tuple(int(v) for v in hi - lo + 1)
        origin = lin @ lo
    else:
        t0 = fields.affine[:3, 3]
        lo = t0 + voxel_mm * np.floor((pts.min(axis=0) - margin_mm - t0) / voxel_mm)
        hi = t0 + voxel_mm * np.ceil((pts.max(axis=0) + margin_mm - t0) / voxel_mm)
        shape = tuple(int(round(v)) for v in (hi - lo) / voxel_mm + 1)
        origin = lo.copy()
        if orientation == "LAS":
            origin[0] = hi[0]
    affine = np.eye(4)
    affine[:3, :3] = lin
    affine[:3, 3] = origin
    return shape, affine
