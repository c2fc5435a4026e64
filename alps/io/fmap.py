"""Field-map inputs of a diffusion series in BIDS, and the phase encoding of an EPI from its
sidecar (direction and total readout time).

Discovery (:func:`find_field_sources`, :func:`field_source`): for one DWI of a dataset, in order
of preference,

1. ``pepolar-dwi`` — another DWI of the same subject/session whose entities differ only in
   ``dir`` (``sub-01_dir-AP_dwi`` / ``sub-01_dir-PA_dwi``) and whose ``PhaseEncodingDirection``
   is the opposite polarity on the same axis: two full series, each corrected;
2. ``pepolar-epi`` — ``fmap/*_epi.nii[.gz]`` b = 0 images meant for this DWI (``IntendedFor``,
   or a ``B0FieldIdentifier`` listed in the DWI's ``B0FieldSource``) with the opposite polarity
   (and, when present, one with the DWI's own polarity: the pair then comes from ``fmap/``);
3. ``phasediff`` — ``fmap/*_phasediff`` + ``*_magnitude1`` (``EchoTime1``/``EchoTime2`` in the
   phase difference's sidecar);
4. ``fieldmap`` — ``fmap/*_fieldmap`` (``Units`` Hz, rad/s or T) + ``*_magnitude``.

An ``fmap/`` file is used only when its metadata names the DWI: ``IntendedFor`` (paths relative
to the subject folder, or ``bids::`` URIs relative to the dataset root) or the
``B0FieldIdentifier``/``B0FieldSource`` pair; when the DWI lists a ``B0FieldSource``, only the
field maps with that identifier qualify. Two ``dir-`` series with the same phase encoding, an
``fmap/`` file without the metadata its kind needs (phase encoding and readout time of an EPI,
echo times of a phase difference, units of a field map, a missing magnitude image) and a
``PhaseEncodingDirection``-less DWI with a field source are :class:`InputError` naming the file.

Phase encoding
--------------

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

import math
import re
from dataclasses import dataclass
from pathlib import Path

from .bidsnames import inherited, merged_sidecar, parse_name
from .errors import InputError
from .files import strip_nii

__all__ = ["PhaseEncoding", "parse_direction", "phase_encoding", "READOUT_TOLERANCE", "FieldSource",
           "find_field_sources", "field_source", "KINDS", "UNITS_TO_HZ"]

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


# ----------------------------------------------------------------------------- discovery

#: field-map kinds in order of preference.
KINDS = ("pepolar-dwi", "pepolar-epi", "phasediff", "fieldmap")
#: field-map units (sidecar ``Units``) → factor to Hz.
UNITS_TO_HZ = {"Hz": 1.0, "hz": 1.0, "rad/s": 1.0 / (2.0 * math.pi), "T": 42.577478e6, "Tesla": 42.577478e6}


@dataclass(frozen=True)
class FieldSource:
    """Where the field of one DWI comes from (see the module docstring for the kinds).

    ``images`` are the source images: the reverse DWI (``pepolar-dwi``); the EPI b = 0 images,
    the opposite polarity first (``pepolar-epi``); phase difference and magnitude(s)
    (``phasediff``); field map and magnitude (``fieldmap``). ``pe`` holds the phase encoding of
    each EPI image, ``via`` how the association was made.
    """

    kind: str
    dwi: Path
    dwi_pe: PhaseEncoding
    images: tuple
    pe: tuple = ()
    echo_times: tuple = ()
    hz_per_unit: float = 1.0
    via: str = ""

    def as_dict(self) -> dict:
        return {"kind": self.kind, "dwi": self.dwi.name, "pe_direction": self.dwi_pe.direction,
                "readout_s": self.dwi_pe.readout_s, "images": [p.name for p in self.images],
                "via": self.via}


def _sidecar(path: Path, root: Path, suffix: str):
    chain, problems = inherited(path, root, ".json", suffix=suffix)
    meta, unreadable = merged_sidecar(chain)
    problems = [p for p in problems if "ambiguous" in p] + unreadable
    if problems:
        raise InputError("; ".join(problems))
    return meta, " + ".join(str(c) for c in chain) or f"{path} (no sidecar)"


def _listed(value) -> list:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _intended(meta: dict, dwi: Path, root: Path, dwi_sources: list) -> str | None:
    """How an fmap file's metadata names the DWI ('IntendedFor', 'B0FieldIdentifier') or None."""
    ids = _listed(meta.get("B0FieldIdentifier"))
    if dwi_sources:
        return "B0FieldIdentifier" if set(ids) & set(dwi_sources) else None
    rel_root = dwi.relative_to(root).as_posix()
    rel_sub = "/".join(dwi.relative_to(root).parts[1:])
    for target in _listed(meta.get("IntendedFor")):
        t = target[len("bids::"):] if target.startswith("bids::") else target
        if t in (rel_sub, rel_root) or (target.startswith("bids::") and t == rel_root):
            return "IntendedFor"
    return None


def _nii(folder: Path, stem: str):
    return next((folder / (stem + e) for e in (".nii.gz", ".nii") if (folder / (stem + e)).is_file()), None)


def _reverse_dwi(dwi: Path, root: Path, dwi_pe, ents):
    out = []
    for other in sorted(dwi.parent.glob("*_dwi.nii*")):
        oe, suffix, _ = parse_name(other.name)
        if other == dwi or suffix != "dwi" or "dir" not in ents or "dir" not in oe:
            continue
        if {k: v for k, v in oe.items() if k != "dir"} != {k: v for k, v in ents.items() if k != "dir"}:
            continue
        meta, src = _sidecar(other, root, "dwi")
        ope = phase_encoding(meta, source=src)
        if ope.axis == dwi_pe.axis and ope.sign == dwi_pe.sign:
            raise InputError(f"{dwi.name} (dir-{ents['dir']}) and {other.name} (dir-{oe['dir']}) have the same "
                             f"PhaseEncodingDirection {dwi_pe.direction!r} ({dwi_pe.source}; {src}): "
                             "contradictory dir- labels or sidecars")
        if ope.opposes(dwi_pe):
            out.append(FieldSource("pepolar-dwi", dwi, dwi_pe, (other,), (ope,), via="dir- pair"))
    return out


def find_field_sources(dwi, root) -> list[FieldSource]:
    """Every field source of a DWI of the BIDS dataset at ``root``, in order of preference
    (:data:`KINDS`); empty when there is none. Raises :class:`InputError` (naming the file) for the
    contradictions and missing metadata listed in the module docstring."""
    dwi, root = Path(dwi), Path(root)
    ents, _, _ = parse_name(dwi.name)
    dmeta, dsrc = _sidecar(dwi, root, "dwi")
    dwi_sources = _listed(dmeta.get("B0FieldSource"))
    fmap_dir = dwi.parent.parent / "fmap"
    candidates = []
    if fmap_dir.is_dir():
        for f in sorted(fmap_dir.glob("*.nii*")):
            fe, suffix, _ = parse_name(f.name)
            if suffix in ("epi", "phasediff", "fieldmap", "phase1", "phase2"):
                meta, src = _sidecar(f, root, suffix)
                via = _intended(meta, dwi, root, dwi_sources)
                if via:
                    candidates.append((f, suffix, meta, src, via))
    has_dir_pair = "dir" in ents and any(
        parse_name(o.name)[1] == "dwi" and o != dwi and "dir" in parse_name(o.name)[0]
        for o in dwi.parent.glob("*_dwi.nii*"))
    if not candidates and not has_dir_pair:
        return []
    dwi_pe = phase_encoding(dmeta, source=dsrc)
    out = _reverse_dwi(dwi, root, dwi_pe, ents) if has_dir_pair else []
    epis = []
    for f, suffix, meta, src, via in candidates:
        if suffix == "epi":
            epis.append((f, phase_encoding(meta, source=src), via))
    opposite = [(f, pe, via) for f, pe, via in epis if pe.opposes(dwi_pe)]
    same = [(f, pe, via) for f, pe, via in epis if pe.axis == dwi_pe.axis and pe.sign == dwi_pe.sign]
    if opposite:
        pick = [opposite[0]] + same[:1]
        out.append(FieldSource("pepolar-epi", dwi, dwi_pe, tuple(p[0] for p in pick), tuple(p[1] for p in pick),
                               via=opposite[0][2]))
    for f, suffix, meta, src, via in candidates:
        stem = strip_nii(f)[: -len(suffix)]
        if suffix in ("phase1", "phase2"):
            raise InputError(f"{f}: two-phase field maps (phase1/phase2) are not supported; provide a "
                             "phasediff, a fieldmap or reverse phase-encoded b = 0 images")
        if suffix == "phasediff":
            te = (meta.get("EchoTime1"), meta.get("EchoTime2"))
            if not all(isinstance(t, (int, float)) and t > 0 for t in te) or te[1] <= te[0]:
                raise InputError(f"{src}: a phase difference needs EchoTime1 < EchoTime2 (s), got {te}")
            mags = [m for m in (_nii(fmap_dir, stem + "magnitude1"), _nii(fmap_dir, stem + "magnitude2")) if m]
            if not mags:
                raise InputError(f"{f}: no {stem}magnitude1.nii[.gz] beside the phase difference")
            out.append(FieldSource("phasediff", dwi, dwi_pe, (f, *mags), echo_times=tuple(float(t) for t in te),
                                   via=via))
        if suffix == "fieldmap":
            units = meta.get("Units")
            if units not in UNITS_TO_HZ:
                raise InputError(f"{src}: a field map needs Units of Hz, rad/s or T, got {units!r}")
            mag = _nii(fmap_dir, stem + "magnitude")
            out.append(FieldSource("fieldmap", dwi, dwi_pe, (f,) + ((mag,) if mag else ()),
                                   hz_per_unit=UNITS_TO_HZ[units], via=via))
    return sorted(out, key=lambda s: KINDS.index(s.kind))


def field_source(dwi, root) -> FieldSource | None:
    """The preferred field source of a DWI (:func:`find_field_sources`), or None."""
    found = find_field_sources(dwi, root)
    return found[0] if found else None
