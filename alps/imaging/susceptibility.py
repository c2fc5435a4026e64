"""Susceptibility-distortion correction of a diffusion series: the entry points a pipeline stage
calls, from a reverse-phase-encoded pair (:func:`correct_pepolar`) or from a measured field map
(:func:`correct_fieldmap`), and the operation both share (:func:`unwarp`).

A field ``f`` (Hz, on the DWI grid, in the undistorted space) displaces the signal of a series of
:class:`~alps.io.fmap.PhaseEncoding` ``(axis, s, T)`` by ``d(x) = s T f(x)`` voxels along the
axis; every volume is corrected by

    U(x) = I(x + d(x) e_axis) · J(x),   J = 1 + ∂d/∂x_axis

(cubic-spline interpolation along the axis, :mod:`alps.imaging.bspline`; the Jacobian ``J``
restores the intensity that the distortion piled up or spread out; corrected values below 0 —
spline overshoot — are set to 0). Gradient directions are unchanged: the displacement is a
translation along one axis per voxel, and the small rotation of the local frame that a varying
displacement implies is neglected, as by FSL topup/applytopup and SDCFlows.

Every entry point returns :class:`Correction` objects (corrected data, field, displacement,
Jacobian) with a frozen :class:`SusceptibilityRecord` of what was done, for provenance.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..io.fmap import PhaseEncoding
from ..io.gradients import B0_THRESHOLD
from .bspline import LineSplines
from .pepolar import DEFAULT_LEVELS, estimate_field

__all__ = ["SusceptibilityRecord", "Correction", "displacement", "jacobian", "unwarp",
           "correct_pepolar", "correct_fieldmap", "field_summary", "fieldmap_sidecar"]


@dataclass(frozen=True)
class SusceptibilityRecord:
    """What the susceptibility correction of one series did (one row of provenance)."""

    source: str                 # "pepolar" | "phasediff" | "fieldmap"
    pe_direction: str           # of the corrected series (BIDS)
    readout_s: float            # its total readout time
    readout_from: str           # "TotalReadoutTime" or how it was derived
    inputs: tuple               # names of the files/series the field came from
    displacement_p95_mm: float  # 95th percentile of |d| within the brain (mm)
    displacement_max_mm: float  # max |d| within the brain
    min_jacobian: float         # within the brain
    mismatch_before: float = float("nan")  # PEPOLAR: normalised mean squared difference of the pair
    mismatch_after: float = float("nan")
    rigid_mm_deg: tuple = ()    # rigid motion between field source and series (tx, ty, tz mm; rx, ry, rz deg)
    seconds: float = float("nan")
    n_volume_pairs: int = 0     # paired diffusion-weighted volumes corrected with their own field
    volume_field_rms_hz: float = float("nan")  # (alps.imaging.volume_pairs)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["inputs"] = list(self.inputs)
        out["rigid_mm_deg"] = list(self.rigid_mm_deg)
        return out


@dataclass(frozen=True)
class Correction:
    """A corrected series and the maps of its correction (all on the series' grid)."""

    data: np.ndarray            # (X, Y, Z, N) float32
    field_hz: np.ndarray        # (X, Y, Z) float32
    displacement_vox: np.ndarray  # along the PE axis
    jacobian: np.ndarray
    record: SusceptibilityRecord


def displacement(field_hz, pe: PhaseEncoding) -> np.ndarray:
    """Voxels of displacement along ``pe.axis``: ``s · T · f``."""
    if not np.isfinite(pe.readout_s):
        raise ValueError(f"{pe.source or 'series'}: no total readout time; cannot convert the field to a displacement")
    return np.asarray(field_hz, float) * pe.displacement_per_hz()


def jacobian(disp_vox, axis: int) -> np.ndarray:
    """``1 + ∂d/∂x_axis``, the derivative of ``d``'s interpolating cubic spline at the voxel
    centres."""
    d = np.moveaxis(np.asarray(disp_vox, float), axis, -1)
    grid = np.broadcast_to(np.arange(d.shape[-1], dtype=float), d.shape)
    _, der = LineSplines(d)(np.ascontiguousarray(grid), derivative=True)
    return np.moveaxis(1.0 + der, -1, axis)


def unwarp(data, field_hz, pe: PhaseEncoding):
    """Correct every volume of ``data`` ((X, Y, Z) or (X, Y, Z, N)) for the field (module doc).

    Returns ``(corrected float32, displacement_vox, jacobian)``.
    """
    arr = np.asarray(data, np.float32)
    vol4 = arr if arr.ndim == 4 else arr[..., None]
    disp = displacement(field_hz, pe)
    if disp.shape != vol4.shape[:3]:
        raise ValueError(f"field shape {disp.shape} differs from the series' {vol4.shape[:3]}")
    jac = jacobian(disp, pe.axis)
    d_last = np.ascontiguousarray(np.moveaxis(disp, pe.axis, -1))
    pos = np.arange(d_last.shape[-1], dtype=float) + d_last
    j_last = np.moveaxis(jac, pe.axis, -1)
    out = np.empty(vol4.shape, np.float32)
    for v in range(vol4.shape[3]):
        vol = np.moveaxis(vol4[..., v], pe.axis, -1)
        u = LineSplines(vol)(pos) * j_last
        out[..., v] = np.moveaxis(np.maximum(u, 0.0), -1, pe.axis)
    return (out if arr.ndim == 4 else out[..., 0]), disp.astype(np.float32), jac.astype(np.float32)


def field_summary(disp_vox, jac, voxel_mm_pe: float, mask=None) -> dict:
    """95th percentile and maximum of ``|d|`` (mm) and the smallest Jacobian within ``mask``."""
    m = np.ones(np.shape(disp_vox), bool) if mask is None else np.asarray(mask, bool)
    d = np.abs(np.asarray(disp_vox)[m]) * float(voxel_mm_pe)
    return {"displacement_p95_mm": float(np.percentile(d, 95)), "displacement_max_mm": float(d.max()),
            "min_jacobian": float(np.asarray(jac)[m].min())}


def _mean_b0(data, bvals):
    """Mean of the b = 0 volumes; a 3-D image (a b = 0 EPI of ``fmap/``) is its own."""
    if np.ndim(data) == 3:
        return np.asarray(data, float)
    b0 = np.asarray(bvals) <= B0_THRESHOLD
    if not b0.any():
        raise ValueError("no b = 0 volume to estimate the field from")
    return np.asarray(data, float)[..., b0].mean(axis=-1)


def _voxel_mm(affine):
    return tuple(float(z) for z in np.sqrt((np.asarray(affine, float)[:3, :3] ** 2).sum(axis=0)))


#: rigid motion between the two b = 0 images above which the pair is realigned and the field
#: re-estimated (largest translation in mm, largest rotation in degrees).
ALIGN_THRESHOLD = (0.3, 0.3)
#: at most this many realignments (each: register the corrected pair, resample, re-estimate).
ALIGN_ROUNDS = 3


def _moved(params, threshold=ALIGN_THRESHOLD) -> bool:
    return max(abs(v) for v in params[:3]) > threshold[0] or max(abs(v) for v in params[3:]) > threshold[1]


def correct_pepolar(data_a, bvals_a, pe_a: PhaseEncoding, data_b, bvals_b, pe_b: PhaseEncoding, affine, *,
                    mask=None, inputs=("a", "b"), levels=DEFAULT_LEVELS, correct_b: bool = True,
                    align: bool = True, seed: int = 0):
    """Estimate the field from the mean b = 0 images of two series (or b = 0 EPIs) acquired with
    opposite phase encoding, and correct series a (and b) with it.

    Parameters
    ----------
    data_a, data_b : ndarray (X, Y, Z, N) or (X, Y, Z)
        The series on one grid (``data_b`` may be a reverse-PE b = 0 EPI: 3-D, or 4-D with its
        b-values).
    bvals_a, bvals_b : array (N,) (ignored for a 3-D image)
    pe_a, pe_b : PhaseEncoding
        Must be on one axis with opposite polarity.
    affine : 4x4
    mask : ndarray of bool, optional
        Brain mask in the undistorted space for the summaries (default: whole grid).
    inputs : (str, str)
        Names of the two sources for the record.
    levels : sequence of :class:`alps.imaging.pepolar.Level`
    correct_b : bool
        Also correct series b (both full DWI series).
    align : bool
        Check that the head did not move between the two b = 0 images: the corrected images are
        registered rigidly (ANTs, :func:`alps.imaging.fieldmap.register_rigid`); beyond
        :data:`ALIGN_THRESHOLD` the b image is resampled into a's position and the field
        re-estimated, up to :data:`ALIGN_ROUNDS` times (the first field absorbs part of the
        motion), and series b is corrected with the field carried back to its own position.
        The motion is recorded (``rigid_mm_deg`` of b's record).

    Returns
    -------
    (Correction of a, Correction of b or None, FieldEstimate)
        Both corrections stay in their own series' position; the field of b is a's field moved
        by the measured motion.
    """
    from .fieldmap import register_rigid, resample_field

    t0 = time.perf_counter()
    if not pe_a.opposes(pe_b):
        raise ValueError(f"{inputs[0]} ({pe_a.direction}) and {inputs[1]} ({pe_b.direction}) are not "
                         "opposite phase encodings of one axis")
    b0_a, b0_b = _mean_b0(data_a, bvals_a), _mean_b0(data_b, bvals_b)
    if b0_a.shape != b0_b.shape:
        raise ValueError(f"{inputs[0]} and {inputs[1]} are on different grids ({b0_a.shape} vs {b0_b.shape})")
    kw = dict(axis=pe_a.axis, signs=(pe_a.sign, pe_b.sign), readout_s=(pe_a.readout_s, pe_b.readout_s),
              voxel_mm=_voxel_mm(affine), levels=levels)
    est = estimate_field(b0_a, b0_b, **kw)
    field_b, rigid = est.field_hz, ()
    if align:
        a_to_b, b_in_a = np.eye(4), b0_b
        for _ in range(ALIGN_ROUNDS):
            u_a, _, _ = unwarp(b0_a, est.field_hz, pe_a)
            u_b, _, _ = unwarp(b_in_a, est.field_hz, pe_b)
            step = register_rigid(u_a, affine, u_b, affine, seed=seed)
            if not _moved(rigid_parameters(step)):
                residual = step
                break
            a_to_b = a_to_b @ step
            b_in_a = resample_field(b0_b, affine, b0_b.shape, affine, world_to_world=a_to_b)
            est = estimate_field(b0_a, b_in_a, **kw)
        else:
            residual = np.eye(4)
        rigid = rigid_parameters(a_to_b @ residual)  # the motion measured, below threshold or not
        if _moved(rigid_parameters(a_to_b)):
            field_b = resample_field(est.field_hz, affine, b0_b.shape, affine,
                                     world_to_world=np.linalg.inv(a_to_b)).astype(np.float32)
    seconds = time.perf_counter() - t0
    out = []
    for data, pe, field, moved, do in ((data_a, pe_a, est.field_hz, (), True),
                                       (data_b, pe_b, field_b, rigid, correct_b)):
        if not do:
            out.append(None)
            continue
        t1 = time.perf_counter()
        corrected, disp, jac = unwarp(data, field, pe)
        rec = SusceptibilityRecord(
            source="pepolar", pe_direction=pe.direction, readout_s=pe.readout_s,
            readout_from=pe.readout_from, inputs=tuple(inputs),
            **field_summary(disp, jac, _voxel_mm(affine)[pe.axis], mask),
            mismatch_before=est.cost_before, mismatch_after=est.cost_after, rigid_mm_deg=moved,
            seconds=seconds + time.perf_counter() - t1)
        out.append(Correction(corrected, np.asarray(field, np.float32), disp, jac, rec))
    return out[0], out[1], est


def correct_fieldmap(data, bvals, pe: PhaseEncoding, affine, field_hz, field_affine, *, magnitude=None,
                     source: str = "fieldmap", inputs=(), mask=None, world_to_world=None, seed: int = 0):
    """Correct a series with a measured field map (Hz) given on its own grid.

    The field is sampled at the world position of every voxel of the series. ``world_to_world``
    (4×4, RAS mm) maps the series' world points to the field map's (rigid motion between the
    acquisitions). When it is None and a ``magnitude`` image of the field map (on the field map's
    grid) is given, it is estimated: the mean b = 0 image corrected with the field in scanner
    coordinates is the fixed image of a rigid ANTs registration of the magnitude
    (:func:`alps.imaging.fieldmap.register_rigid`), and the field is resampled through it. Without
    either, scanner coordinates are used (one session, no motion assumed).
    """
    from .fieldmap import register_rigid, resample_field

    t0 = time.perf_counter()
    shape = np.shape(data)[:3]
    if world_to_world is None and magnitude is not None:
        f0 = resample_field(field_hz, field_affine, shape, affine)
        b0, _, _ = unwarp(_mean_b0(data, bvals), f0, pe)
        world_to_world = register_rigid(b0, affine, magnitude, field_affine, seed=seed)
    f = resample_field(field_hz, field_affine, shape, affine, world_to_world=world_to_world)
    corrected, disp, jac = unwarp(data, f, pe)
    rigid = () if world_to_world is None else rigid_parameters(world_to_world)
    rec = SusceptibilityRecord(source=source, pe_direction=pe.direction, readout_s=pe.readout_s,
                               readout_from=pe.readout_from, inputs=tuple(inputs),
                               **field_summary(disp, jac, _voxel_mm(affine)[pe.axis], mask),
                               rigid_mm_deg=rigid, seconds=time.perf_counter() - t0)
    return Correction(corrected, f.astype(np.float32), disp, jac, rec)


def rigid_parameters(matrix) -> tuple:
    """``(tx, ty, tz, rx, ry, rz)`` (mm, degrees; ``R = Rz Ry Rx``) of a 4×4 rigid matrix."""
    m = np.asarray(matrix, float)
    r = m[:3, :3]
    ry = np.degrees(np.arcsin(-np.clip(r[2, 0], -1, 1)))
    rx = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    rz = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return tuple(round(float(v), 4) for v in (*m[:3, 3], rx, ry, rz))


#: what each field source means, for the field map's sidecar.
_DESCRIPTIONS = {
    "pepolar": "off-resonance field estimated from b = 0 images with opposite phase encoding "
               "(alps.imaging.pepolar: cubic B-spline, Jacobian-modulated, bending-energy regularised)",
    "phasediff": "off-resonance field of a GRE phase difference (unwrapped, /(2π ΔTE), B-spline smoothed), "
                 "resampled to this series",
    "fieldmap": "measured field map resampled to this series",
}


def fieldmap_sidecar(record: SusceptibilityRecord, *, intended_for=(), b0_field_identifier=None) -> dict:
    """JSON sidecar of the field written as a derivative (BIDS ``*_fieldmap`` with ``Units: Hz``,
    as SDCFlows writes its ``desc-preproc_fieldmap``): units, sources, the series' phase encoding
    and readout time (so that the displacement ``s · T · f`` can be recomputed) and the summary."""
    out = {"Units": "Hz", "Description": _DESCRIPTIONS.get(record.source, record.source),
           "RawSources": list(record.inputs), "PhaseEncodingDirection": record.pe_direction,
           "TotalReadoutTime": record.readout_s, "DisplacementP95mm": record.displacement_p95_mm,
           "DisplacementMaxmm": record.displacement_max_mm, "MinJacobian": record.min_jacobian}
    if intended_for:
        out["IntendedFor"] = list(intended_for)
    if b0_field_identifier:
        out["B0FieldIdentifier"] = str(b0_field_identifier)
    return out
