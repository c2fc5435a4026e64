"""The one place where repository, data, results, config and template locations are resolved.

Nothing in :mod:`alps`, the notebooks or the Makefile depends on the current working directory:
every location is derived from this module's own file, or from an environment variable that
overrides it.

Environment overrides
---------------------
``ALPS_DATA_DIR``
    Root under which simulated/default cohorts live (default ``<repo>/data``).
``ALPS_RESULTS_DIR``
    Root for results of the default profile (default ``<repo>/results``).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CONFIG_DIR = REPO_ROOT / "config"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_root() -> Path:
    """Directory that holds generated cohorts (``data/`` in the repository)."""
    return _env_path("ALPS_DATA_DIR", REPO_ROOT / "data")


def results_root() -> Path:
    """Directory that holds the default profile's results (``results/``)."""
    return _env_path("ALPS_RESULTS_DIR", REPO_ROOT / "results")


def profile_dirs(profile: str = "default") -> dict[str, Path]:
    """Data and output directories of a configuration profile.

    The ``default`` profile writes the paper's products to ``results/`` from the cohort in
    ``data/default``; any other profile (e.g. ``smoke``, used by ``make test``) is kept apart
    under ``build/<profile>/`` so that a test run never overwrites the paper's results.

    Returns
    -------
    dict
        Keys ``data`` (BIDS root), ``out`` (results root), ``tables``, ``figures``,
        ``notebooks``, ``derivatives``.
    """
    if profile == "default":
        data = data_root() / "default"
        out = results_root()
    else:  # a profile file (my_study.yaml): build/my_study/
        name = Path(str(profile)).stem if profile_is_file(profile) else str(profile)
        data = REPO_ROOT / "build" / name / "data"
        out = REPO_ROOT / "build" / name / "results"
    return {
        "data": data,
        "out": out,
        "tables": out / "tables",
        "figures": out / "figures",
        "notebooks": out / "notebooks",
        "derivatives": out / "derivatives",
    }


#: endings of a profile given as a file (``--profile my_study.yaml``) instead of a name in config/.
PROFILE_SUFFIXES = (".yaml", ".yml")


def profile_is_file(profile) -> bool:
    """Is ``profile`` the path of a YAML file (it ends in ``.yaml``/``.yml`` or holds a folder
    separator) rather than the name of one in ``config/``?"""
    text = os.fspath(profile)
    return text.endswith(PROFILE_SUFFIXES) or "/" in text or os.sep in text


def config_file(profile="default") -> Path:
    """Path of a profile's YAML configuration file: ``config/<profile>.yaml`` for a name, the file
    itself for a path (:func:`profile_is_file`; relative paths from the current folder).

    Raises
    ------
    FileNotFoundError
        naming the path looked for (and the known names), when there is no such file.
    """
    if profile_is_file(profile):
        path = from_folder(profile)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: configuration profile file not found (a profile is a name in "
                                    f"{CONFIG_DIR} or the path of a YAML file)")
        return path
    path = CONFIG_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no such configuration profile (known: {known}; or give the path of "
                                "a YAML file, e.g. ./my_study.yaml)")
    return path


def profile_ref(profile="default") -> str:
    """``profile`` as it is handed on to other processes (the notebooks' kernel runs in the
    repository, not the current folder): a name as it is, a file as its absolute path. Raises
    :class:`FileNotFoundError` (:func:`config_file`) when it does not exist."""
    path = config_file(profile)
    return str(path) if profile_is_file(profile) else str(profile)


def notebook_source(name: str) -> Path:
    """Path of a notebook's jupytext source, e.g. ``notebook_source('03_group_tests')``."""
    path = NOTEBOOKS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such notebook source")
    return path


def products(profile: str = "default") -> dict[str, Path]:
    """Default location of every file the notebook series reads or writes for a profile, by the
    parameter that names it (:data:`alps.manifest.FILES`: ``data_dir``, ``participants``,
    ``alps_table`` ...).

    The Makefile's rules come from the same manifest, so a notebook opened in JupyterLab with
    empty path parameters reads and writes the same files as ``make paper``.
    """
    from .manifest import locations

    d = profile_dirs(profile)
    return locations(d["data"], d["out"])


def from_folder(path, base=None) -> Path:
    """``path`` (``~`` expanded) made absolute against ``base`` (default: the current folder),
    as a user means a relative path typed on the command line."""
    return ((Path(base) if base is not None else Path.cwd()) / Path(path).expanduser()).resolve()


def resolve(profile: str, **given) -> dict[str, Path | None]:
    """Return ``given`` paths (notebook parameters of :data:`alps.manifest.FILES`) made absolute,
    with every empty value (``""``) replaced by the file inside a folder given with it (e.g.
    ``alps_table`` inside ``tables_dir``), or else by :func:`products`' default; ``None`` stays
    ``None`` (an optional input or product that does not exist, e.g. no ground truth for real
    data, or the simulation-only rotation sweep skipped).

    Notebooks 01 and 02 call ``p = paths.resolve(profile, data_dir=data_dir, ...)`` right after
    their parameters cell; 03–07 through :func:`alps.build.series.analysis_setup`.
    """
    from .manifest import resolve as _resolve

    return _resolve(products(profile), given)
