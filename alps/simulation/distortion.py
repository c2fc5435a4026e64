"""Planted susceptibility distortion: a known off-resonance field on a simulated subject, and the
pair of DWI series that opposite phase encodings of it would give.

Field (Hz, defined in template space and carried to the native grid through the head pose): the
sum of Gaussian bumps ``A exp(−|x − c|² / 2σ²)`` (template mm) above the air spaces of a 3 T head —
the frontal sinus and orbits under the orbitofrontal cortex (one bump, ``c = (0, 38, −12)``,
σ = 14 mm) and the mastoid air cells and ear canals under each temporal lobe
(``c = (±42, −8, −24)``, σ = 12 mm) — and a weak linear gradient along z (0.2 Hz/mm). With the
default amplitudes (60 Hz frontal, 45 Hz temporal) and a total readout time of 50 ms a voxel at
a bump's centre moves by 3 and 2.3 voxels; the frontal and temporal white matter at 15–25 mm from
the centres by 1–2 voxels (2–6 mm at 3 mm voxels), the periventricular ALPS regions by less than
half a voxel.

Distortion (the model of :mod:`alps.imaging.susceptibility`, evaluated the other way round): a
series acquired with phase encoding ``(axis, s, T)`` sees, at position ``y`` along the axis,
``I(y) = U(x) / J(x)`` where ``x`` solves ``x + s T f(x) = y`` and ``J = 1 + s T ∂f/∂x`` (signal
conserved). ``x(y)`` is found per line by inverting the monotonic map (``numpy.interp``; the
planted field keeps ``J > 0``) and ``U``, ``J`` are sampled there with ``scipy.ndimage``
(independent of the correction's own spline sampler). Noise (Rician) is added after distortion,
as in a scanner.
"""
from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..io.fmap import PhaseEncoding
from .phantom import TemplateFields
from .pose import Pose
from .signal import noise_sigma, simulate_subject

__all__ = ["BUMPS", "planted_field", "distort", "add_rician", "PepolarPair", "simulate_pepolar_pair"]

#: (centre in template mm, σ mm, which amplitude) of the planted field's bumps.
BUMPS = (((0.0, 38.0, -12.0), 14.0, "frontal"),
         ((-42.0, -8.0, -24.0), 12.0, "temporal"),
         ((42.0, -8.0, -24.0), 12.0, "temporal"))


def planted_field(shape, affine, pose: Pose, *, frontal_hz: float = 60.0, temporal_hz: float = 45.0,
                  gradient_hz_per_mm: float = 0.2) -> np.ndarray:
    """The planted field (Hz) at every voxel of a native grid (module docstring)."""
    ijk = np.indices(tuple(shape[:3]), dtype=float).reshape(3, -1).T
    world = ijk @ np.asarray(affine, float)[:3, :3].T + np.asarray(affine, float)[:3, 3]
    xyz = pose.inverse(world)  # template mm
    amp = {"frontal": float(frontal_hz), "temporal": float(temporal_hz)}
    f = gradient_hz_per_mm * xyz[:, 2]
    for centre, sigma, kind in BUMPS:
        r2 = ((xyz - np.asarray(centre)) ** 2).sum(axis=1)
        f = f + amp[kind] * np.exp(-r2 / (2.0 * sigma ** 2))
    return f.reshape(tuple(shape[:3])).astype(np.float32)


def distort(data, field_hz, pe: PhaseEncoding) -> np.ndarray:
    """The series ``data`` ((X, Y, Z) or (X, Y, Z, N), undistorted) as acquired with phase
    encoding ``pe`` in the field (module docstring). Raises ``ValueError`` if the field folds."""
    arr = np.asarray(data, np.float32)
    vol4 = arr if arr.ndim == 4 else arr[..., None]
    d = np.moveaxis(np.asarray(field_hz, float) * pe.sign * pe.readout_s, pe.axis, -1)
    jac = 1.0 + np.gradient(d, axis=-1)
    if jac.min() <= 0.05:
        raise ValueError(f"the planted field folds the image (min Jacobian {jac.min():.3f}); lower its amplitude")
    n = d.shape[-1]
    x = np.arange(n, dtype=float)
    src = np.empty(d.shape)
    for idx in np.ndindex(d.shape[:-1]):
        src[idx] = np.interp(x, x + d[idx], x)  # x(y): where the signal seen at y comes from
    lines = np.indices(d.shape[:-1], dtype=float)
    coords = [np.broadcast_to(c[..., None], d.shape) for c in lines] + [src]
    j_src = ndimage.map_coordinates(jac, coords, order=1, mode="nearest")
    out = np.empty(vol4.shape, np.float32)
    for v in range(vol4.shape[3]):
        vol = np.moveaxis(vol4[..., v], pe.axis, -1)
        val = ndimage.map_coordinates(vol, coords, order=3, mode="nearest") / j_src
        out[..., v] = np.moveaxis(np.maximum(val, 0.0), -1, pe.axis)
    return out if arr.ndim == 4 else out[..., 0]


def add_rician(data, sigma: float, seed) -> np.ndarray:
    """Rician magnitude ``|S + σ(n₁ + i n₂)|`` of noise-free data (float32)."""
    rng = np.random.default_rng(seed)
    s = np.asarray(data, np.float32)
    if sigma <= 0:
        return s.copy()
    n1 = rng.standard_normal(s.shape, dtype=np.float32) * np.float32(sigma)
    n2 = rng.standard_normal(s.shape, dtype=np.float32) * np.float32(sigma)
    return np.sqrt((s + n1) ** 2 + n2 ** 2).astype(np.float32)


def _eddy_parameters(bvals, eddy_hz: float, seed) -> np.ndarray:
    """``(N, 4)`` eddy-field parameters ``(c Hz, gx, gy, gz Hz/mm)``; zero rows for b = 0."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(bvals), 4))
    if eddy_hz:
        dw = np.asarray(bvals) > 50
        out[dw, 0] = rng.uniform(-eddy_hz, eddy_hz, int(dw.sum()))
        out[dw, 1:] = rng.uniform(-eddy_hz / 60.0, eddy_hz / 60.0, (int(dw.sum()), 3))
    return out


def _linear_field(params, shape, affine) -> np.ndarray:
    """``c + g · (x − centre)`` (Hz) on the grid, ``x`` in world mm, centre = the grid's centre."""
    ijk = np.indices(tuple(shape[:3]), dtype=float)
    xyz = np.einsum("ij,j...->i...", np.asarray(affine, float)[:3, :3], ijk)
    xyz = xyz - xyz.reshape(3, -1).mean(axis=1)[:, None, None, None]
    return (params[0] + np.einsum("i,i...->...", np.asarray(params[1:]), xyz)).astype(np.float32)


@dataclass(frozen=True)
class PepolarPair:
    """A simulated subject acquired twice with opposite phase encoding."""

    images: dict            # PE direction ('j', 'j-') -> distorted noisy nibabel image
    truth: np.ndarray       # undistorted noise-free series (X, Y, Z, N)
    undistorted: nib.Nifti1Image  # undistorted series with the same noise level (reference)
    field_hz: np.ndarray    # planted field on the native grid
    mask: np.ndarray        # brain (planted anatomy) on the native grid
    bvals: np.ndarray
    bvecs: np.ndarray       # FSL convention
    pe: dict                # PE direction -> PhaseEncoding
    extras: dict            # simulate_subject's extras (oracle ALPS, pose...)


def _moved(vol, affine, motion: Pose):
    """``vol`` after the head moved by ``motion`` (world mm, about the world origin): the value at
    world ``y`` is the one at ``motion⁻¹(y)`` (cubic spline; 4-D arrays volume by volume)."""
    aff = np.asarray(affine, float)
    inv = np.eye(4)
    inv[:3, :3] = motion.R.T / motion.scale
    inv[:3, 3] = -motion.R.T @ np.asarray(motion.trans_mm, float) / motion.scale
    m = np.linalg.inv(aff) @ inv @ aff
    arr = np.asarray(vol, np.float32)
    vols = arr if arr.ndim == 4 else arr[..., None]
    out = np.stack([ndimage.affine_transform(vols[..., v], m[:3, :3], offset=m[:3, 3], order=3,
                                             mode="constant", cval=0.0) for v in range(vols.shape[3])], -1)
    out = np.maximum(out, 0.0).astype(np.float32)
    return out if arr.ndim == 4 else out[..., 0]


def simulate_pepolar_pair(fields: TemplateFields, pose: Pose, planted: dict, *, snr=25.0, seed=0,
                          scheme=None, voxel_mm: float = 3.0, readout_s: float = 0.05, axis: int = 1,
                          frontal_hz: float = 60.0, temporal_hz: float = 45.0,
                          motion: Pose | None = None, eddy_hz: float = 0.0) -> PepolarPair:
    """One subject (:func:`alps.simulation.signal.simulate_subject`, LAS grid of ``voxel_mm``)
    acquired with phase encoding ``+axis`` and ``−axis`` (``'j'`` = P→A and ``'j-'`` = A→P on the
    default grid) in the planted field; independent Rician noise per series (``seed``). With
    ``motion`` the head (and its field) moved rigidly between the two series: the ``−axis``
    series sees the subject moved by ``motion`` (world mm/degrees about the world origin);
    ``truth``, ``field_hz`` and ``mask`` are those of the ``+axis`` series, and
    ``extras['field_hz_b']`` the field of the moved head. With ``eddy_hz`` every
    diffusion-weighted volume also has its own eddy-current field, the same in both series: a
    constant ``U(−eddy_hz, eddy_hz)`` plus a gradient of ``U(−eddy_hz/60, eddy_hz/60)`` Hz/mm along
    each world axis (through the brain's centre), in ``extras['eddy_hz']`` as ``(N, 4)`` rows
    ``(c, gx, gy, gz)``."""
    img, bvals, bvecs, extras = simulate_subject(fields, pose, planted, snr=None, dtype="float32",
                                                 scheme=scheme, voxel_mm=voxel_mm)
    truth = np.asarray(img.dataobj, np.float32)
    affine = img.affine
    field = planted_field(truth.shape, affine, pose, frontal_hz=frontal_hz, temporal_hz=temporal_hz)
    sigma = noise_sigma(fields, snr)
    seeds = np.random.SeedSequence(seed).spawn(4)
    letter = "ijk"[axis]
    pes = {d: PhaseEncoding(d, axis, s, float(readout_s), "simulated") for d, s in ((letter, 1), (letter + "-", -1))}
    images = {}
    truth_b, field_b = truth, field
    if motion is not None:
        truth_b, field_b = _moved(truth, affine, motion), _moved(field, affine, motion)
    eddy = _eddy_parameters(bvals, eddy_hz, seeds[3])
    for (d, pe), ss, (tr, fi) in zip(pes.items(), seeds[:2], ((truth, field), (truth_b, field_b))):
        if eddy_hz:
            seen = np.stack([distort(tr[..., v], fi + _linear_field(eddy[v], truth.shape, affine), pe)
                             for v in range(tr.shape[3])], axis=-1)
        else:
            seen = distort(tr, fi, pe)
        images[d] = nib.Nifti1Image(add_rician(seen, sigma, ss), affine)
    und = nib.Nifti1Image(add_rician(truth, sigma, seeds[2]), affine)
    mask = truth[..., np.asarray(bvals) <= 50].mean(axis=-1) > 0
    extras = dict(extras, sigma=sigma, field_hz_b=field_b, motion=motion, eddy_hz=eddy)
    return PepolarPair(images, truth, und, field, mask, np.asarray(bvals), np.asarray(bvecs), pes, extras)
