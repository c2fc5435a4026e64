"""Scanner and acquisition metadata of a scan, for ``alps.tsv`` (harmonisation, reviewers).

From the scan's BIDS sidecars, merged by the inheritance principle
(:func:`alps.io.bidsnames.merged_sidecar`), and from the image header. Only the fields listed in
:data:`SIDECAR_COLUMNS` are read — nothing identifying (names, IDs, dates, institution, serial
numbers) is ever copied. A missing or unreadable sidecar gives missing cells, never a failure.
The b-values used and the number of directions come from the fit (:mod:`alps.imaging.shells`).
"""
from __future__ import annotations

import nibabel as nib
import numpy as np

from .bidsnames import merged_sidecar

__all__ = ["SIDECAR_COLUMNS", "METADATA_COLUMNS", "scan_metadata"]

#: alps.tsv column -> BIDS sidecar field (units as BIDS: tesla, seconds).
SIDECAR_COLUMNS = {
    "manufacturer": "Manufacturer",
    "manufacturer_model": "ManufacturersModelName",
    "magnetic_field_strength": "MagneticFieldStrength",
    "software_versions": "SoftwareVersions",
    "echo_time": "EchoTime",
    "repetition_time": "RepetitionTime",
    "phase_encoding_direction": "PhaseEncodingDirection",
}
#: every metadata column a scan's row gets (then ``bvals_used``, ``shells``, ``n_directions``,
#: ``n_volumes_used`` from the fit).
METADATA_COLUMNS = tuple(SIDECAR_COLUMNS) + ("phase_encoding_axis", "voxel_size_mm")


def _cell(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) or None
    text = str(value).replace("\t", " ").replace("\n", " ").strip()
    return text or None


def scan_metadata(item) -> dict:
    """The metadata columns (:data:`METADATA_COLUMNS`) of one scan; ``None`` where unknown."""
    meta, _ = merged_sidecar(getattr(item, "sidecars", ()) or ((item.sidecar,) if item.sidecar else ()))
    out = {col: _cell(meta.get(field)) for col, field in SIDECAR_COLUMNS.items()}
    axis = meta.get("PhaseEncodingAxis")
    if axis is None and isinstance(out["phase_encoding_direction"], str):
        axis = out["phase_encoding_direction"].rstrip("-")
    out["phase_encoding_axis"] = _cell(axis)
    try:
        zooms = nib.load(str(item.dwi)).header.get_zooms()[:3]
        out["voxel_size_mm"] = "x".join(f"{float(z):.4g}" for z in zooms)
    except Exception:  # unreadable image: the loader reports it
        out["voxel_size_mm"] = None
    return out
