"""Configuration profiles (``config/<profile>.yaml``): defaults for every command and notebook."""
from __future__ import annotations

from typing import Any

import yaml

from . import paths


def load_profile(profile: str = "default") -> dict[str, Any]:
    """Read a profile's YAML as a dict; raises with the file name if it is malformed."""
    path = paths.config_file(profile)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: top level must be a mapping, got {type(cfg).__name__}")
    return cfg


def section(profile: str, name: str) -> dict[str, Any]:
    """One top-level section (``simulate``, ``pipeline``) of a profile, ``{}`` when absent."""
    return dict(load_profile(profile).get(name) or {})


def notebook_parameters(profile: str, notebook: str) -> dict[str, Any]:
    """Parameters of one notebook: the ``pipeline`` section overlaid by ``notebooks.<name>``."""
    cfg = load_profile(profile)
    params = {}
    params.update(cfg.get("pipeline") or {})
    params.update((cfg.get("notebooks") or {}).get(notebook) or {})
    return params
