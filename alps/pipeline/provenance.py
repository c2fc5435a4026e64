"""Provenance of a scan's derivatives: package versions, parameter cells and the reuse key.

A stage's record holds ``{"inputs", "sha256", "parameters", "versions"}``; a rerun reuses the
stage's outputs only when everything but the (movable) input paths is identical
(:func:`reuse_key`).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

from .. import __version__, atomic
from ..imaging.template import SPACE
from .layout import read_json

#: ``GeneratedBy`` name of the derivatives dataset.
PIPELINE_NAME = "alps"


def package_versions() -> dict:
    """Versions of the packages a scan's numbers depend on (recorded with every stage)."""
    import dipy
    import nibabel as nib
    import nilearn
    import numpy as np
    import scipy

    try:
        from importlib.metadata import version

        ants_v = version("antspyx")
    except Exception:  # pragma: no cover
        ants_v = "unknown"
    return {"alps": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "nibabel": nib.__version__, "dipy": dipy.__version__,
            "nilearn": nilearn.__version__, "antspyx": ants_v}


def kv(d) -> str:
    """``"a=1; b=x"`` (sorted keys): a flat dict as one TSV-safe cell (no tabs, quotes or JSON)."""
    return "; ".join(f"{k}={d[k]}" for k in sorted(d or {}))


def split_kv(text) -> dict:
    """Inverse of :func:`kv` (values as strings)."""
    if not isinstance(text, str) or not text:
        return {}
    return dict(item.split("=", 1) for item in text.split("; ") if "=" in item)


def canon(obj) -> str:
    """Canonical JSON text (sorted keys) of a record, for comparisons."""
    return json.dumps(obj, sort_keys=True, default=str)


def reuse_key(provenance) -> str:
    """What decides reuse: provenance without the (movable) input paths."""
    return canon({k: v for k, v in provenance.items() if k != "inputs"})


def write_dataset_description(out_dir, input_path) -> None:
    """``OUT_DIR/dataset_description.json`` (BIDS derivatives), written once: concurrent
    participant-level runs do not rewrite it."""
    desc = {
        "Name": "DTI-ALPS derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": PIPELINE_NAME, "Version": __version__,
                         "Description": f"DTI-ALPS in template ({SPACE}) and scanner axes"}],
        "SourceDatasets": [{"URL": Path(input_path).resolve().as_uri()}],
    }
    path = Path(out_dir) / "dataset_description.json"
    if read_json(path) != desc:
        atomic.write_json(path, desc)
