"""Resampling helpers of the validation fixtures and benchmarks."""
from __future__ import annotations

import numpy as np


def downsample2(data, affine):
    """Halve the resolution of a 3D/4D image by averaging 2×2×2 voxel blocks (odd edges dropped).

    Returns ``(data, affine)``: the new voxel centre is the centre of its block, so the affine's
    linear part doubles and its origin moves half an old voxel along each axis.
    """
    d = np.asarray(data, np.float32)
    s = [x // 2 * 2 for x in d.shape[:3]]
    d = d[: s[0], : s[1], : s[2]].reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2, *d.shape[3:])
    d = d.mean(axis=(1, 3, 5))
    aff = np.array(affine, float, copy=True)
    aff[:3, :3] *= 2
    aff[:3, 3] += np.asarray(affine, float)[:3, :3] @ [0.5, 0.5, 0.5]
    return d, aff
