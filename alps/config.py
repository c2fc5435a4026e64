"""Configuration profiles: defaults for every command and notebook. A profile is a name in
``config/`` (``config/<name>.yaml``) or the path of a YAML file (``my_study.yaml``, relative to the
current folder), :func:`alps.paths.config_file`."""
from __future__ import annotations

import difflib
from typing import Any, Mapping

import yaml

from . import paths


class ParameterError(ValueError):
    """An invalid or unknown parameter (the message names it and what is allowed)."""


def reject_unknown(mapping: Mapping, allowed, where: str) -> None:
    """Refuse the keys of ``mapping`` not in ``allowed``: the message names each unknown key (with the
    closest allowed name when there is one), where it came from (``where``) and every allowed name.
    Shared by the pipeline's parameters (:mod:`alps.pipeline.params`) and the study design
    (:mod:`alps.stats.design`)."""
    allowed = list(allowed)
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        hints = {k: difflib.get_close_matches(str(k), allowed, n=1) for k in unknown}
        said = ", ".join(f"'{k}'" + (f" (did you mean '{hints[k][0]}'?)" if hints[k] else "") for k in unknown)
        raise ParameterError(f"{where}: unknown parameter{'s' if len(unknown) > 1 else ''} {said}; "
                             f"allowed: {', '.join(allowed)}")


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
    """Parameters of one notebook: its ``notebooks.<name>`` section, the ``pipeline`` section as one
    ``pipeline`` mapping (for the notebooks that run the pipeline, 01 and 02) and the ``design``
    section as one ``design`` mapping (for the statistics and figures notebooks, 03-07)."""
    cfg = load_profile(profile)
    params = dict((cfg.get("notebooks") or {}).get(notebook) or {})
    for name in ("pipeline", "design"):
        if name in params:
            raise ValueError(f"{paths.config_file(profile)} [notebooks.{notebook}]: '{name}' is set in the "
                             f"top-level '{name}' section, not per notebook")
    params["pipeline"] = dict(cfg.get("pipeline") or {})
    params["design"] = dict(cfg.get("design") or {})
    return params


def _section_value(profile: str, dotted: str):
    cfg = load_profile(profile)
    value = cfg
    for key in dotted.split("."):
        value = (value or {}).get(key) if isinstance(value, dict) else None
    return value


def write_stamp(profile: str, dotted: str, path) -> bool:
    """Write one (dotted) config section as canonical JSON to ``path`` only if it changed.

    Make uses these files as prerequisites so that editing one section of a profile (say the
    mediation bootstrap) reruns only what depends on it; an unchanged section keeps the stamp's
    old modification time. Returns True when the file was (re)written.
    """
    import json
    from pathlib import Path

    from . import atomic

    path = Path(path)
    text = json.dumps(_section_value(profile, dotted), sort_keys=True, indent=1) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    atomic.write_text(path, text)
    return True


def main(argv=None) -> int:
    """``python -m alps.config stamp PROFILE SECTION OUT``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m alps.config")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stamp", help="write a config section to a file if it changed")
    st.add_argument("profile")
    st.add_argument("section", help="e.g. simulate, pipeline, notebooks.06_mediation")
    st.add_argument("out")
    args = ap.parse_args(argv)
    write_stamp(args.profile, args.section, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
