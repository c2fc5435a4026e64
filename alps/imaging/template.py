"""MNI152 (ICBM 2009a nonlinear symmetric) template images shipped inside the nilearn wheel.

No download is ever needed: :func:`load` reads the T1, grey-matter, white-matter and brain-mask
images that nilearn packages with its code, at 1 or 2 mm.
"""
from __future__ import annotations

import functools

import nibabel as nib
import numpy as np

KINDS = ("t1", "gm", "wm", "mask")

#: the template's name as a BIDS ``space-``/``to-`` label (TemplateFlow).
SPACE = "MNI152NLin2009aSym"


@functools.lru_cache(maxsize=8)
def _load_cached(kind: str, resolution: int):
    from nilearn import datasets

    loaders = {
        "t1": datasets.load_mni152_template,
        "gm": datasets.load_mni152_gm_template,
        "wm": datasets.load_mni152_wm_template,
        "mask": datasets.load_mni152_brain_mask,
    }
    img = loaders[kind](resolution=resolution)
    data = np.asarray(img.get_fdata(), dtype=np.float32)
    return nib.Nifti1Image(data, img.affine)


def load(kind: str = "t1", *, resolution: int = 2) -> nib.Nifti1Image:
    """Load an MNI152 2009a template image.

    Parameters
    ----------
    kind : {'t1', 'gm', 'wm', 'mask'}
        T1-weighted image, grey- or white-matter probability map, or brain mask.
    resolution : {1, 2}
        Voxel size in mm.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image in MNI world coordinates (RAS+, mm).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown template kind {kind!r}; choose one of {KINDS}")
    if resolution not in (1, 2):
        raise ValueError(f"template resolution must be 1 or 2 mm, got {resolution!r}")
    img = _load_cached(kind, int(resolution))
    return nib.Nifti1Image(img.get_fdata(dtype=np.float32).copy(), img.affine.copy())
