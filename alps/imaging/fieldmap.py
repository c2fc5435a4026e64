"""A measured B0 field map (GRE phase difference, or a field map in Hz) on the grid of a DWI.

* **Phase difference → Hz.** A dual-echo gradient-echo field map stores the phase difference
  ``Δφ = φ(TE₂) − φ(TE₁)`` (BIDS ``*_phasediff``, ``EchoTime1``/``EchoTime2`` in its sidecar).
  Scanners store it as integers: Siemens maps −π…π to −4096…4096 (XA/VE, signed) or to 0…4095
  (older VB, unsigned); values already within ±π are taken as radians
  (:func:`phase_to_radians`). The phase is unwrapped (:func:`unwrap_phase`) and
  ``f = Δφ / (2π (TE₂ − TE₁))`` Hz.
* **Unwrapping** (Schofield & Zhu 2003, Opt. Lett. 28:1194–1196): the Laplacian of the true phase,
  ``∇²φ = cos φ ∇² sin φ − sin φ ∇² cos φ``, needs no unwrapping; a Poisson solve (discrete cosine
  transform) gives a smooth phase ``φ_L``, and the measured phase is moved by the multiple of 2π
  that brings it closest, ``φ_u = φ + 2π round((φ_L − φ)/2π)`` (congruent: the measured values
  modulo 2π are kept). The global multiple of 2π is the one that puts the median within the mask
  in (−π, π] (the scanner's frequency is adjusted on the head).
* **Smooth and extrapolate** (:func:`smooth_field`): a cubic B-spline (knots every 10 mm,
  bending-energy regularised, weighted by the squared magnitude inside the head mask of the first
  magnitude image) fills the outside, where the phase is noise.
* **Onto the DWI** (:func:`resample_field`): the field is sampled at the world position of every
  DWI voxel (scanner coordinates of one session, optionally through a rigid transform that
  :func:`register_rigid` estimates between the field map's magnitude and the DWI's corrected b0,
  ANTs, mutual information).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.fft import dctn, idctn

from .bspline import SplineBasis, single_blas_thread

__all__ = ["phase_to_radians", "unwrap_phase", "phasediff_to_hz", "smooth_field", "magnitude_mask",
           "resample_field", "register_rigid"]


def phase_to_radians(phase, *, name: str = "phase image") -> np.ndarray:
    """Phase in radians from a stored phase image (see module docstring for the conventions);
    raises ``ValueError`` naming ``name`` for any other range."""
    ph = np.asarray(phase, float)
    lo, hi = float(np.nanmin(ph)), float(np.nanmax(ph))
    if lo >= -np.pi * 1.001 and hi <= np.pi * 1.001:
        return ph
    if lo >= -4096.5 and hi <= 4096.5 and lo < -np.pi:
        return ph * (np.pi / 4096.0)
    if lo >= -0.5 and hi <= 4095.5:
        return (ph - 2048.0) * (np.pi / 2048.0)
    raise ValueError(f"{name}: values {lo:g}…{hi:g} are neither radians (±π) nor Siemens integers "
                     "(−4096…4096 or 0…4095); cannot convert the phase difference")


def _laplacian(x):
    """7-point discrete Laplacian with mirrored (Neumann) edges."""
    out = -6.0 * x
    for ax in range(3):
        out += np.roll(x, 1, ax) + np.roll(x, -1, ax)
        first = [slice(None)] * 3
        last = [slice(None)] * 3
        first[ax], last[ax] = 0, -1
        nb0 = [slice(None)] * 3
        nbl = [slice(None)] * 3
        nb0[ax], nbl[ax] = 1, -2
        # mirror: the neighbour beyond an edge is the edge voxel itself (undo the wrap-around)
        out[tuple(first)] += x[tuple(first)] - x[tuple(last)]
        out[tuple(last)] += x[tuple(last)] - x[tuple(first)]
    return out


def _poisson(rhs):
    """Solution (mean zero) of the discrete Neumann Poisson problem ``∇² u = rhs`` (DCT-II)."""
    shape = rhs.shape
    eig = np.zeros(shape)
    for ax, n in enumerate(shape):
        k = np.arange(n)
        lam = 2.0 * np.cos(np.pi * k / n) - 2.0
        eig = eig + lam.reshape([-1 if a == ax else 1 for a in range(3)])
    r = dctn(rhs, type=2, norm="ortho")
    eig[0, 0, 0] = 1.0
    u = r / eig
    u[0, 0, 0] = 0.0
    return idctn(u, type=2, norm="ortho")


def unwrap_phase(phase_rad, mask) -> np.ndarray:
    """Unwrapped phase (radians) within ``mask`` (0 outside), Laplacian method + congruence."""
    mask = np.asarray(mask, bool)
    if mask.sum() < 10:
        raise ValueError("phase unwrapping needs a mask of at least 10 voxels")
    ph = np.where(mask, np.asarray(phase_rad, float), 0.0)
    s, c = np.sin(ph), np.cos(ph)
    lap = c * _laplacian(s) - s * _laplacian(c)
    smooth = _poisson(lap)
    # align the smooth estimate's free constant with the measured phase (circular mean offset)
    offset = np.angle(np.mean(np.exp(1j * (ph[mask] - smooth[mask]))))
    smooth = smooth + offset
    out = ph + 2.0 * np.pi * np.round((smooth - ph) / (2.0 * np.pi))
    out -= 2.0 * np.pi * np.round(np.median(out[mask]) / (2.0 * np.pi))
    return np.where(mask, out, 0.0)


def magnitude_mask(magnitude, *, erode: int = 1) -> np.ndarray:
    """Head mask of a GRE magnitude image: Otsu threshold of the lightly smoothed magnitude
    (σ = 1 voxel), holes filled slice by slice and in 3-D, the largest connected component,
    ``erode`` voxels of erosion (the phase at the edge is noisy)."""
    from dipy.segment.threshold import otsu

    mag = ndimage.gaussian_filter(np.asarray(magnitude, float), 1.0)
    mask = mag > otsu(mag)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    lab, n = ndimage.label(mask)
    if n == 0:
        raise ValueError("the field map's magnitude image gives an empty mask")
    sizes = ndimage.sum(np.ones_like(lab), lab, index=np.arange(1, n + 1))
    mask = ndimage.binary_fill_holes(lab == (1 + int(np.argmax(sizes))))
    if erode:
        mask = ndimage.binary_erosion(mask, iterations=int(erode))
    return mask


def smooth_field(field_hz, weights, voxel_mm, *, knot_mm: float = 10.0, lam: float = 10.0) -> np.ndarray:
    """The field on the whole grid from its values where ``weights > 0``: a cubic B-spline (knots
    every ``knot_mm``) minimising ``Σ w (f − field)² / Σ w + lam · bending energy`` (derivatives
    per mm, so ``lam`` is in mm⁴: a curvature of 1 Hz/mm² costs as much as 1 Hz RMS error at
    ``lam = 1``)."""
    basis = SplineBasis.build(np.shape(field_hz), tuple(knot_mm / float(z) for z in voxel_mm))
    w = np.asarray(weights, float)
    with single_blas_thread():
        coef = basis.fit(np.where(w > 0, field_hz, 0.0), w, lam=lam, scale=tuple(float(z) for z in voxel_mm))
        return basis.field(coef)


def phasediff_to_hz(phasediff, magnitude, echo_times, voxel_mm, *, name: str = "phasediff",
                    knot_mm: float = 10.0, lam: float = 10.0):
    """Field (Hz) of a GRE phase-difference image.

    Parameters
    ----------
    phasediff, magnitude : ndarray (X, Y, Z)
        Stored phase difference (see :func:`phase_to_radians`) and the first echo's magnitude.
    echo_times : (float, float)
        ``EchoTime1``, ``EchoTime2`` (s).
    voxel_mm : sequence of 3 floats
    name : str
        File name for error messages.

    Returns
    -------
    field_hz : ndarray
        Smoothed, extrapolated field ``Δφ/(2π ΔTE)`` (:func:`smooth_field`, weights ``mask · m²``
        with ``m`` the magnitude over its 95th percentile in the mask: the phase noise of a voxel
        is ∝ 1/m, so this is the inverse-variance weight).
    raw_hz : ndarray
        Unwrapped, unsmoothed field inside the mask (0 outside).
    mask : ndarray of bool
    """
    te1, te2 = (float(t) for t in echo_times)
    if not (te2 > te1 > 0):
        raise ValueError(f"{name}: EchoTime2 ({te2}) must exceed EchoTime1 ({te1}) > 0")
    mask = magnitude_mask(magnitude)
    ph = unwrap_phase(phase_to_radians(phasediff, name=name), mask)
    raw = ph / (2.0 * np.pi * (te2 - te1))
    mag = np.asarray(magnitude, float)
    weights = mask * (mag / max(float(np.percentile(mag[mask], 95)), 1e-12)) ** 2
    return smooth_field(raw, weights, voxel_mm, knot_mm=knot_mm, lam=lam), raw, mask


def resample_field(field_hz, field_affine, target_shape, target_affine, *, world_to_world=None) -> np.ndarray:
    """Field sampled (cubic spline, nearest value beyond the edges) at the world position of every
    voxel of the target grid; ``world_to_world`` (4×4, RAS mm) maps target-world points to
    field-world points (rigid motion between the acquisitions), identity when None."""
    m = np.linalg.inv(np.asarray(field_affine, float))
    if world_to_world is not None:
        m = m @ np.asarray(world_to_world, float)
    m = m @ np.asarray(target_affine, float)
    return ndimage.affine_transform(np.asarray(field_hz, float), m[:3, :3], offset=m[:3, 3],
                                    output_shape=tuple(int(n) for n in target_shape[:3]),
                                    order=3, mode="nearest")


#: rigid stages of :func:`register_rigid`: (iterations, shrink factor, smoothing σ in voxels).
RIGID_LEVELS = ((200, 4, 2.0), (100, 2, 1.0), (50, 1, 0.0))


def register_rigid(fixed, fixed_affine, moving, moving_affine, *, fixed_mask=None, seed: int = 0,
                   sampling: float = 1.0) -> np.ndarray:
    """Rigid transform (4×4, RAS mm) mapping **fixed**-world points to **moving**-world points:
    ``antsRegistration`` (:func:`alps.imaging.ants.run_linear`), mutual information (32 bins) on
    every voxel (``sampling`` 1.0, dense: deterministic), or on a seeded regular grid of that
    fraction of them (also deterministic; 0.25 is ~3.5x faster and recovered 1.5 mm / 1.5° on a
    simulated 3 mm b0 to 0.01 mm / 0.01°, but missed 1 mm by 0.31 mm on the 4 mm phantom of
    ``tests/test_susceptibility.py``, where dense is within 0.25), three levels (:data:`RIGID_LEVELS`), started
    from the images' centres of mass; e.g. fixed = a DWI's corrected b0, moving = the field map's
    magnitude (or the other b0 of a pair)."""
    import shutil
    import tempfile

    import nibabel as nib

    from .ants import LPS, SCRATCH_PREFIX, nib_to_ants, read_ants_affine, run_linear

    f = nib_to_ants(nib.Nifti1Image(np.asarray(fixed, np.float32), fixed_affine))
    m = nib_to_ants(nib.Nifti1Image(np.asarray(moving, np.float32), moving_affine))
    k = None
    if fixed_mask is not None:
        k = nib_to_ants(nib.Nifti1Image(np.asarray(fixed_mask, np.float32), fixed_affine))
    tmp = tempfile.mkdtemp(prefix=SCRATCH_PREFIX + "rigid-")
    try:
        path = run_linear(f, m, f"{tmp}/r_", stages=[("Rigid", RIGID_LEVELS)], metric="MI", sampling=sampling,
                          seed=seed, fixed_mask=k)
        lps = read_ants_affine(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return LPS @ lps @ LPS
