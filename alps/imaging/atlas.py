"""JHU ICBM-DTI-81 white-matter labels as an alternative ALPS ROI set (``roi='jhu'``).

Labels 25/26 (superior corona radiata) give the projection ROIs and 41/42 (superior
longitudinal fasciculus) the association ROIs, restricted to an axial slab at the level of the
lateral-ventricle bodies (default MNI z ∈ [22, 32] mm, around the z = 27 mm of the sphere set).

Hemispheres are decided from **world x** of each voxel (x < 0 → left), never from the label's
name: Debian's ``mricron-data`` copy has a header mirrored relative to its names (label 25,
"Superior_corona_radiata_R", lies at x < 0), FSL's copy does not; using world x gives the
right answer for both.

Search order for the atlas file (:func:`find_jhu`): an explicit path, ``$ALPS_JHU_ATLAS``,
``$FSLDIR/data/atlases/JHU/JHU-ICBM-labels-{1,2}mm.nii.gz``, and
``/usr/share/mricron/templates/JHU-WhiteMatter-labels-{1,2}mm.nii.gz``. Nothing is downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from .roi import voxel_world_coords

SCR_LABELS = (25, 26)
SLF_LABELS = (41, 42)
DEFAULT_SLAB_Z = (22.0, 32.0)


class AtlasNotFound(FileNotFoundError):
    """No JHU atlas file could be located."""


def candidate_paths(resolution: int = 1) -> list[Path]:
    out = []
    env = os.environ.get("ALPS_JHU_ATLAS")
    if env:
        out.append(Path(env))
    fsl = os.environ.get("FSLDIR")
    if fsl:
        out.append(Path(fsl) / "data" / "atlases" / "JHU" / f"JHU-ICBM-labels-{resolution}mm.nii.gz")
    out.append(Path(f"/usr/share/mricron/templates/JHU-WhiteMatter-labels-{resolution}mm.nii.gz"))
    return out


def find_jhu(path=None, *, resolution: int = 1) -> Path:
    """Locate the JHU ICBM-DTI-81 label image (see module docstring)."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise AtlasNotFound(f"{p}: JHU atlas file not found")
        return p
    for p in candidate_paths(resolution):
        if p.is_file():
            return p
    raise AtlasNotFound(
        "JHU ICBM-DTI-81 labels not found; looked in: "
        + ", ".join(str(p) for p in candidate_paths(resolution))
        + " (install FSL or Debian's mricron-data, or pass the file path)")


def alps_labels_from_atlas(img, *, slab_z=DEFAULT_SLAB_Z, scr=SCR_LABELS, slf=SLF_LABELS) -> nib.Nifti1Image:
    """1..4 label image (proj_L, proj_R, assoc_L, assoc_R) on the atlas grid.

    Hemisphere from world x of each voxel; only voxels with ``slab_z[0] ≤ z ≤ slab_z[1]``.
    """
    lab = np.rint(np.asarray(img.dataobj, float)).astype(int)
    xyz = voxel_world_coords(lab.shape, img.affine)
    x, z = xyz[..., 0], xyz[..., 2]
    slab = (z >= slab_z[0]) & (z <= slab_z[1])
    out = np.zeros(lab.shape, np.uint8)
    proj = np.isin(lab, scr) & slab
    assoc = np.isin(lab, slf) & slab
    out[proj & (x < 0)] = 1
    out[proj & (x > 0)] = 2
    out[assoc & (x < 0)] = 3
    out[assoc & (x > 0)] = 4
    for v, name in enumerate(("proj_L", "proj_R", "assoc_L", "assoc_R"), start=1):
        if not (out == v).any():
            raise ValueError(f"JHU atlas: no voxel for {name} in the slab z ∈ {slab_z} mm")
    return nib.Nifti1Image(out, img.affine)


def jhu_alps_labels(path=None, *, slab_z=DEFAULT_SLAB_Z) -> nib.Nifti1Image:
    """Find the atlas and build the ALPS label image in template space."""
    return alps_labels_from_atlas(nib.load(str(find_jhu(path))), slab_z=slab_z)
