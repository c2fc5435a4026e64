"""Diffusion-tensor utilities: storage order, rotation between frames, eigen-decomposition.

Conventions
-----------
In memory a tensor field is an array of shape ``(..., 3, 3)``. On disk it is a 4D NIfTI with
six volumes in the order ``Dxx, Dxy, Dxz, Dyy, Dyz, Dzz`` (the order of FSL ``dtifit
--save_tensor``), units mm²/s.

*Frames.* A tensor fitted from FSL-convention bvecs (after :func:`alps.io.gradients.fsl_to_voxel`)
is expressed in the image's **voxel axes** (i, j, k). :func:`voxel_to_world` turns it into the
**world (scanner RAS+) frame** and :func:`rotate` applies any further rotation, e.g. the
rotation part of the subject→template registration, to express it in **template (anatomical)
axes**. Rotating a tensor by ``R`` is ``D' = R D Rᵀ``.
"""
from __future__ import annotations

import numpy as np

#: (row, col) index pairs of the six stored components, FSL dtifit order.
SIX_ORDER = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def to_six(tensor):
    """Pack a ``(..., 3, 3)`` symmetric tensor field into ``(..., 6)`` (xx, xy, xz, yy, yz, zz)."""
    tensor = np.asarray(tensor)
    if tensor.shape[-2:] != (3, 3):
        raise ValueError(f"expected a (..., 3, 3) tensor array, got shape {tensor.shape}")
    return np.stack([tensor[..., i, j] for i, j in SIX_ORDER], axis=-1)


def from_six(six):
    """Unpack ``(..., 6)`` components (xx, xy, xz, yy, yz, zz) into a symmetric ``(..., 3, 3)``."""
    six = np.asarray(six)
    if six.shape[-1] != 6:
        raise ValueError(f"expected (..., 6) tensor components, got shape {six.shape}")
    out = np.empty(six.shape[:-1] + (3, 3), dtype=six.dtype)
    for n, (i, j) in enumerate(SIX_ORDER):
        out[..., i, j] = six[..., n]
        out[..., j, i] = six[..., n]
    return out


def rotate(tensor, rotation):
    """Express a tensor field in a rotated frame: ``D' = R D Rᵀ``.

    Parameters
    ----------
    tensor : ndarray, shape (..., 3, 3)
    rotation : ndarray, shape (3, 3)
        Proper or improper orthogonal matrix mapping old-frame vectors to new-frame vectors.

    Returns
    -------
    ndarray, shape (..., 3, 3)
    """
    rotation = np.asarray(rotation, dtype=float)
    if rotation.shape != (3, 3):
        raise ValueError(f"rotation must be 3x3, got {rotation.shape}")
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6):
        raise ValueError("rotation is not orthogonal (RRᵀ ≠ I); take polar_rotation() first")
    return np.einsum("ij,...jk,lk->...il", rotation, np.asarray(tensor), rotation)


def polar_rotation(matrix):
    """Orthogonal factor ``R`` of the polar decomposition ``A = R S`` of a 3x3 matrix.

    This is the rotation (possibly with reflection, if ``det A < 0``) closest to ``A`` in the
    Frobenius norm; it strips scaling and shear from an affine's linear part, which is the
    "finite strain" tensor reorientation of Alexander et al. (2001), IEEE TMI 20:1131.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (3, 3):
        raise ValueError(f"expected a 3x3 matrix, got {matrix.shape}")
    u, s, vt = np.linalg.svd(matrix)
    if s.min() <= 1e-12 * max(s.max(), 1e-300):
        raise ValueError(f"matrix is singular (singular values {s}); no rotation can be taken")
    return u @ vt


def voxel_to_world(tensor, affine):
    """Re-express a tensor from voxel axes in the world (RAS+) frame of ``affine``.

    The voxel axes point along the columns of ``affine[:3, :3]``; their orthonormal
    (polar) factor ``R`` maps voxel-axis unit vectors to world directions, so
    ``D_world = R D_vox Rᵀ``.
    """
    return rotate(tensor, polar_rotation(np.asarray(affine)[:3, :3]))


def vectors_voxel_to_world(vectors, affine):
    """Directions along the voxel axes ``(N, 3)`` → world (RAS+) unit directions, through the
    affine's polar factor (e.g. b-vectors after :func:`alps.io.gradients.fsl_to_voxel`)."""
    return np.asarray(vectors, float) @ polar_rotation(np.asarray(affine)[:3, :3]).T


def vectors_world_to_voxel(vectors, affine):
    """World (RAS+) directions → voxel-axis directions (inverse of :func:`vectors_voxel_to_world`)."""
    return np.asarray(vectors, float) @ polar_rotation(np.asarray(affine)[:3, :3])


def eig(tensor):
    """Eigenvalues (descending) and eigenvectors (columns) of a ``(..., 3, 3)`` tensor field."""
    evals, evecs = np.linalg.eigh(np.asarray(tensor, dtype=float))
    return evals[..., ::-1], evecs[..., :, ::-1]


def fa_md(tensor):
    """Fractional anisotropy and mean diffusivity of a ``(..., 3, 3)`` tensor field.

    .. math:: \\mathrm{MD} = \\tfrac13\\operatorname{tr} D, \\quad
              \\mathrm{FA} = \\sqrt{\\tfrac32}\\,\\frac{\\lVert \\lambda - \\mathrm{MD}\\rVert}
              {\\lVert \\lambda \\rVert}
    """
    evals, _ = eig(tensor)
    return fa_md_from_evals(evals)


def fa_md_from_evals(evals):
    """:func:`fa_md` from eigenvalues ``(..., 3)`` already computed."""
    evals = np.asarray(evals, dtype=float)
    md = evals.mean(axis=-1)
    num = np.sqrt(((evals - md[..., None]) ** 2).sum(axis=-1))
    den = np.sqrt((evals**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        fa = np.where(den > 0, np.sqrt(1.5) * num / den, 0.0)
    return np.clip(fa, 0, 1), md


def from_eig(evals, evecs):
    """Build tensors ``V diag(λ) Vᵀ`` from eigenvalues ``(..., 3)`` and eigenvectors ``(..., 3, 3)``."""
    evals = np.asarray(evals, dtype=float)
    evecs = np.asarray(evecs, dtype=float)
    return np.einsum("...ij,...j,...kj->...ik", evecs, evals, evecs)
