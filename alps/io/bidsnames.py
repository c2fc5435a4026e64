"""BIDS file names, the inheritance principle and ``--bids-filter-file``.

* :func:`parse_name` splits ``sub-01_ses-1_acq-mb_dir-AP_run-2_dwi.nii.gz`` into its entities,
  suffix and extension.
* :func:`inherited` applies the BIDS inheritance principle (BIDS 1.9, "The Inheritance
  Principle"): a metadata file applies to a data file when it sits in the data file's folder or
  one of its parents up to the dataset root, has the same suffix and its entities are a subset of
  the data file's. For ``.bval``/``.bvec`` the nearest (deepest) applicable file wins; JSON
  sidecars are merged from the root down, nearer keys overriding. Several applicable files at one
  level are reported; when one of them is more specific than all others (its entities a superset
  of theirs) it is used, otherwise the level is ambiguous.
* :func:`load_filter_file` reads a filter file as fMRIPrep/QSIPrep take it
  (``{"dwi": {"session": "01", "acquisition": "mb", "run": 1, "direction": null}}``) and
  :func:`matches_filter` applies it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import InputError

__all__ = ["ENTITY_ORDER", "SCAN_ENTITIES", "FILTER_ENTITIES", "parse_name", "scan_entities", "inherited",
           "merged_sidecar", "load_filter_file", "matches_filter", "looks_like_dwi", "dwi_path_problems",
           "DWI_NAME_RULE"]

#: entities of a DWI file name in BIDS order (derivatives add ``space`` and ``desc``).
ENTITY_ORDER = ("sub", "ses", "acq", "rec", "dir", "run", "space", "desc")
#: entities beyond sub/ses that distinguish a scan's series (they are kept in output names).
SCAN_ENTITIES = ("acq", "rec", "dir", "run", "space")
#: filter-file (pybids) entity names -> file-name keys.
FILTER_ENTITIES = {"subject": "sub", "session": "ses", "acquisition": "acq", "reconstruction": "rec",
                   "direction": "dir", "run": "run", "space": "space", "desc": "desc"}
_KV = re.compile(r"^([a-zA-Z]+)-([a-zA-Z0-9]+)$")
_LABEL_OK = re.compile(r"^[A-Za-z0-9]+$")
_EXTENSIONS = (".nii.gz", ".nii", ".json", ".bval", ".bvec")


def parse_name(name: str) -> tuple[dict, str | None, str]:
    """``(entities, suffix, extension)`` of a BIDS file name; ``suffix`` is None when the name
    does not follow the ``key-value_..._suffix.ext`` pattern."""
    ext = next((e for e in _EXTENSIONS if name.endswith(e)), "")
    stem = name[: len(name) - len(ext)] if ext else name
    parts = stem.split("_")
    ents = {}
    for part in parts[:-1]:
        m = _KV.match(part)
        if not m:
            return {}, None, ext
        ents[m.group(1)] = m.group(2)
    last = parts[-1]
    if _KV.match(last):  # no suffix: the last part is an entity
        return ents, None, ext
    return ents, last, ext


#: suffix-like words of files that hold "dwi" in their name but are not diffusion series
#: (QSIPrep's reference image, parameter maps of derivatives).
NOT_DWI_WORDS = ("dwiref", "dwimap")

#: how a diffusion image is named (BIDS 1.9, "Diffusion imaging data"), for error messages.
DWI_NAME_RULE = ("sub-<label>/[ses-<label>/]dwi/sub-<label>[_ses-<label>][_acq-<label>][_rec-<label>]"
                 "[_dir-<label>][_run-<index>]_dwi.nii[.gz], every label letters and digits only")


def looks_like_dwi(path) -> bool:
    """Does a NIfTI file look like a diffusion image, whatever its name's validity: ``dwi`` in its
    name (any case; not ``dwiref``/``dwimap``), or a ``.bval``/``.bvec`` beside it with its stem."""
    path = Path(path)
    name = path.name
    ext = ".nii.gz" if name.endswith(".nii.gz") else ".nii" if name.endswith(".nii") else None
    if ext is None:
        return False
    stem = name[: -len(ext)]
    words = [w for w in re.split(r"[_\-.\s]+", stem.lower()) if w]
    if any(w.startswith("dwi") and w not in NOT_DWI_WORDS for w in words) or \
            ("dwi" in stem.lower() and not any(w in NOT_DWI_WORDS for w in words)):
        return True
    return any(path.with_name(stem + e).is_file() for e in (".bval", ".bvec"))


def _bad_label(text: str) -> str:
    return "".join(sorted(set(re.sub(r"[A-Za-z0-9]", "", text))))


def dwi_path_problems(rel) -> list[str]:
    """The BIDS naming rules that a diffusion image's path breaks, one message each (empty when it
    follows :data:`DWI_NAME_RULE`). ``rel`` is the path relative to the dataset root, starting with
    its ``sub-*`` folder."""
    *folders, name = Path(rel).parts
    out = []
    for folder in folders[:2]:
        key = folder.split("-", 1)[0]
        if key in ("sub", "ses") and "-" in folder and not _LABEL_OK.match(folder.split("-", 1)[1]):
            out.append(f"folder '{folder}': a BIDS {key}- label is letters and digits only, not "
                       f"{_bad_label(folder.split('-', 1)[1])!r}")
    layout = (len(folders) == 2 or (len(folders) == 3 and folders[1].startswith("ses-"))) and folders[-1] == "dwi"
    if not layout:
        out.append(f"it is in '{'/'.join(folders)}/', not in a sub-<label>/[ses-<label>/]dwi/ folder")
    ext = ".nii.gz" if name.endswith(".nii.gz") else ".nii"
    parts = name[: -len(ext)].split("_")
    for part in parts[:-1]:
        m = re.match(r"^([A-Za-z]+)-(.*)$", part)
        if not m:
            out.append(f"'{part}' in its name is not a key-label entity (key-label, e.g. run-1)")
        elif not _LABEL_OK.match(m.group(2)):
            out.append(f"'{part}' in its name: a BIDS label is letters and digits only, not "
                       f"{_bad_label(m.group(2))!r}")
    if parts[-1] != "dwi":
        out.append(f"its name ends in '_{parts[-1]}{ext}', not '_dwi{ext}'" if len(parts) > 1
                   else f"its name '{name}' has no entities and no '_dwi' suffix")
    if not parts[0].startswith("sub-"):
        out.append("its name does not begin with sub-<label>")
    return out


def scan_entities(entities: dict) -> tuple[tuple[str, str], ...]:
    """The series entities (:data:`SCAN_ENTITIES`) of a parsed name, in BIDS order."""
    return tuple((k, entities[k]) for k in SCAN_ENTITIES if k in entities)


def _levels(data_file: Path, root: Path) -> list[Path]:
    """Folders from ``root`` down to the data file's folder."""
    rel = data_file.parent.relative_to(root)
    out = [root]
    for part in rel.parts:
        out.append(out[-1] / part)
    return out


def inherited(data_file, root, ext: str, *, suffix: str = "dwi") -> tuple[list[Path], list[str]]:
    """Metadata files of extension ``ext`` applicable to ``data_file``, root first.

    Returns ``(files, problems)``: one file per level at most; ``problems`` are messages naming
    the data file and the competing files (several at one level)."""
    data_file, root = Path(data_file), Path(root)
    ents, _, _ = parse_name(data_file.name)
    chain, problems = [], []
    for level in _levels(data_file, root):
        cands = []
        for f in sorted(level.glob(f"*{suffix}{ext}")):
            if not f.is_file() and not f.is_symlink():
                continue
            fe, fs, fx = parse_name(f.name)
            if fx != ext or (fs != suffix and f.name != f"{suffix}{ext}"):
                continue
            if f.name == f"{suffix}{ext}":
                fe = {}
            if all(ents.get(k) == v for k, v in fe.items()):
                cands.append((f, fe))
        if not cands:
            continue
        if len(cands) > 1:
            cands.sort(key=lambda c: len(c[1]), reverse=True)
            best, best_e = cands[0]
            names = ", ".join(c[0].name for c in cands)
            if all(set(c[1].items()) < set(best_e.items()) for c in cands[1:]):
                problems.append(f"{data_file}: several {ext} files apply at {level} ({names}); "
                                f"using the most specific, {best.name}")
            else:
                problems.append(f"{data_file}: ambiguous {ext} inheritance at {level}: {names} all apply")
                continue
            chain.append(best)
        else:
            chain.append(cands[0][0])
    return chain, problems


def merged_sidecar(files) -> tuple[dict, list[str]]:
    """JSON sidecars merged root first (nearer keys override); unreadable files are skipped and
    reported (``(metadata, problems)``)."""
    meta, problems = {}, []
    for f in files:
        try:
            obj = json.loads(Path(f).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{f}: sidecar is not readable JSON ({type(exc).__name__}: {exc})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{f}: sidecar is not a JSON object")
            continue
        meta.update(obj)
    return meta, problems


def load_filter_file(path) -> dict:
    """The ``dwi`` query of a BIDS filter file (fMRIPrep/QSIPrep ``--bids-filter-file``) as
    ``{file-name key: value(s) or None}``.

    Values are a label, an integer run, a list of them (any of), or ``null`` (the entity must be
    absent). ``datatype``/``suffix``/``extension`` entries must be ``dwi``-compatible and are
    otherwise ignored. Queries other than ``dwi`` (``t1w``...) are ignored.

    Raises
    ------
    InputError
        Unreadable file, not an object, an unknown entity name.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: BIDS filter file is not readable JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise InputError(f"{path}: BIDS filter file must be a JSON object such as {{\"dwi\": {{...}}}}")
    query = obj.get("dwi", {})
    if not isinstance(query, dict):
        raise InputError(f"{path}: the 'dwi' query must be an object of entity: value")
    out = {}
    for name, value in query.items():
        if name in ("datatype", "suffix"):
            if value not in ("dwi", ["dwi"]):
                raise InputError(f"{path}: '{name}': {value!r} cannot select diffusion images")
            continue
        if name == "extension":
            continue
        key = FILTER_ENTITIES.get(name, name if name in ENTITY_ORDER else None)
        if key is None:
            raise InputError(f"{path}: unknown entity '{name}' in the 'dwi' query; allowed: "
                             f"{', '.join(list(FILTER_ENTITIES) + ['datatype', 'suffix', 'extension'])}")
        values = value if isinstance(value, list) else [value]
        if value is None:
            out[key] = None
            continue
        labels = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise InputError(f"{path}: entity '{name}' must be a label, a run number, a list or null, "
                                 f"got {v!r}")
            v = str(v)
            prefix = f"{key}-"
            labels.append(v[len(prefix):] if v.startswith(prefix) else v)
        out[key] = labels
    return out


def _same_label(key, a: str, b: str) -> bool:
    if key == "run" and a.isdigit() and b.isdigit():
        return int(a) == int(b)
    return a == b


def matches_filter(entities: dict, query: dict | None) -> bool:
    """Does a file with ``entities`` satisfy a :func:`load_filter_file` query?"""
    for key, labels in (query or {}).items():
        have = entities.get(key)
        if labels is None:
            if have is not None:
                return False
        elif have is None or not any(_same_label(key, have, lab) for lab in labels):
            return False
    return True
