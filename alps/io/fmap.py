"""Phase encoding of an EPI from its BIDS sidecar (direction and total readout time).

BIDS ``PhaseEncodingDirection`` is ``i``, ``j`` or ``k`` (the first, second or third voxel axis of
the NIfTI image as stored) with ``-`` for the opposite polarity (from the highest index towards
index 0); ``TotalReadoutTime`` (s) is the time from the centre of the first to the centre of the
last echo of the EPI readout, ``EffectiveEchoSpacing × (ReconMatrixPE − 1)``, and sets the
displacement of a field ``f`` (Hz): ``s · TotalReadoutTime · f`` voxels along the axis
(``s = ±1`` the polarity), the convention of FSL topup and SDCFlows.

Nothing is guessed: a missing direction, a direction without polarity (``PhaseEncodingAxis``
only, as Philips exports), a missing readout time, or a ``TotalReadoutTime`` that contradicts
``EffectiveEchoSpacing × (ReconMatrixPE − 1)`` is an :class:`~alps.io.errors.InputError` naming
the file. ``TotalReadoutTime`` may be derived from ``EffectiveEchoSpacing`` and ``ReconMatrixPE``
(the BIDS identity above), and the record says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError

__all__ = ["PhaseEncoding", "parse_direction", "phase_encoding", "READOUT_TOLERANCE"]

_DIRECTION = re.compile(r"^([ijk])(-?)$")

#: relative disagreement allowed between TotalReadoutTime and EffectiveEchoSpacing × (N − 1).
READOUT_TOLERANCE = 0.02


@dataclass(frozen=True)
class PhaseEncoding:
    """Phase encoding of one EPI series: voxel ``axis`` (0, 1, 2), polarity ``sign`` (±1) and total
    readout time (s); ``source`` names the sidecar(s) the values came from and ``readout_from``
    how the readout time was obtained."""

    direction: str
    axis: int
    sign: int
    readout_s: float
    source: str = ""
    readout_from: str = "TotalReadoutTime"

    def displacement_per_hz(self) -> float:
        """Voxels of displacement along :attr:`axis` per Hz of field: ``sign · readout_s``."""
        return self.sign * self.readout_s

    def opposes(self, other: "PhaseEncoding") -> bool:
        """Same axis, opposite polarity."""
        return self.axis == other.axis and self.sign == -other.sign


def parse_direction(value, *, source: str = "sidecar") -> tuple[int, int]:
    """``(axis, sign)`` of a BIDS ``PhaseEncodingDirection`` (``'j-'`` → ``(1, -1)``)."""
    m = _DIRECTION.match(str(value).strip()) if isinstance(value, str) else None
    if m is None:
        raise InputError(f"{source}: PhaseEncodingDirection {value!r} is not one of i, j, k, i-, j-, k-")
    return "ijk".index(m.group(1)), -1 if m.group(2) else 1


def _positive(meta, key, source):
    value = meta.get(key)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {key} {value!r} is not a number") from None
    if not value > 0:
        raise InputError(f"{source}: {key} must be positive, got {value}")
    return value


def phase_encoding(meta: dict, *, source: str = "sidecar", need_readout: bool = True) -> PhaseEncoding:
    """The :class:`PhaseEncoding` of an EPI from its (merged) sidecar metadata.

    Parameters
    ----------
    meta : dict
        BIDS metadata (after inheritance).
    source : str
        The sidecar file(s), for error messages.
    need_readout : bool
        When False a missing readout time gives ``readout_s = nan`` instead of an error (a series
        that is only a target of a field given in Hz still needs it; a field map does not).
    """
    direction = meta.get("PhaseEncodingDirection")
    if direction is None:
        if meta.get("PhaseEncodingAxis") is not None:
            raise InputError(f"{source}: only PhaseEncodingAxis ({meta['PhaseEncodingAxis']!r}) is given; "
                             "the polarity (PhaseEncodingDirection, e.g. 'j' or 'j-') is needed to "
                             "correct distortion and is not guessed")
        raise InputError(f"{source}: no PhaseEncodingDirection; it is needed to correct distortion")
    axis, sign = parse_direction(direction, source=source)
    axis_only = meta.get("PhaseEncodingAxis")
    if axis_only is not None and str(axis_only).strip() != "ijk"[axis]:
        raise InputError(f"{source}: PhaseEncodingAxis {axis_only!r} contradicts "
                         f"PhaseEncodingDirection {direction!r}")
    trt = _positive(meta, "TotalReadoutTime", source)
    ees = _positive(meta, "EffectiveEchoSpacing", source)
    n_pe = _positive(meta, "ReconMatrixPE", source)
    derived = ees * (n_pe - 1) if ees is not None and n_pe is not None and n_pe > 1 else None
    readout_from = "TotalReadoutTime"
    if trt is not None and derived is not None and abs(trt - derived) > READOUT_TOLERANCE * trt:
        raise InputError(f"{source}: TotalReadoutTime {trt:g} s contradicts EffectiveEchoSpacing × "
                         f"(ReconMatrixPE − 1) = {ees:g} × {n_pe - 1:g} = {derived:g} s")
    if trt is None and derived is not None:
        trt, readout_from = derived, "EffectiveEchoSpacing×(ReconMatrixPE−1)"
    if trt is None:
        if need_readout:
            raise InputError(f"{source}: no TotalReadoutTime (nor EffectiveEchoSpacing and ReconMatrixPE); "
                             "it is needed to convert the field (Hz) to a displacement")
        trt, readout_from = float("nan"), "missing"
    return PhaseEncoding(str(direction).strip(), axis, sign, float(trt), source, readout_from)
