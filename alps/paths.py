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
    """Default input and output paths of the notebook series for a profile.

    These mirror the Makefile, so a notebook opened in JupyterLab with empty path parameters
    reads and writes the same files as ``make paper`` (``make`` passes them explicitly).
    """
    d = profile_dirs(profile)
    tab = d["tables"]
    return {
        "data_dir": d["data"],
        "participants": d["data"] / "participants.tsv",
        "truth_table": d["data"] / "derivatives" / "simulation" / "ground_truth.tsv",
        "derivatives_dir": d["derivatives"] / "alps",
        "preprocess_tsv": d["derivatives"] / "alps" / "preprocess.tsv",
        "tables_dir": tab,
        "figures_dir": d["figures"],
        "alps_tsv": tab / "alps.tsv",
        "alps_table": tab / "alps.tsv",
        "qc_tsv": tab / "qc.tsv",
        "provenance_tsv": tab / "provenance.tsv",
        "validation_csv": tab / "alps_validation.csv",
        "rotation_sweep_csv": tab / "rotation_sweep.csv",
        "demographics_csv": tab / "demographics.csv",
        "group_tests_csv": tab / "group_tests.csv",
        "posthoc_csv": tab / "posthoc.csv",
        "ancova_csv": tab / "ancova.csv",
        "exclusions_csv": tab / "exclusions.csv",
        "harmonisation_csv": tab / "harmonisation.csv",
        "regression_csv": tab / "regression.csv",
        "regression_model_csv": tab / "regression_model.csv",
        "correlations_csv": tab / "correlations.csv",
        "mediation_csv": tab / "mediation.csv",
        "reproduction_csv": tab / "reproduction.csv",
        "key_numbers_json": tab / "key_numbers.json",
        "truth_check_csv": tab / "truth_check.csv",
    }


def from_folder(path, base=None) -> Path:
    """``path`` (``~`` expanded) made absolute against ``base`` (default: the current folder),
    as a user means a relative path typed on the command line."""
    return ((Path(base) if base is not None else Path.cwd()) / Path(path).expanduser()).resolve()


def resolve(profile: str, **given) -> dict[str, Path | None]:
    """Return ``given`` paths with every empty value (``""``) replaced by :func:`products`'
    default; ``None`` stays ``None`` (an optional input or product that does not exist, e.g. no
    ground truth for real data, or the simulation-only rotation sweep skipped).

    Notebooks call ``p = paths.resolve(profile, alps_table=alps_table, ...)`` right after their
    parameters cell.
    """
    defaults = products(profile)
    out = {}
    for key, value in given.items():
        if value is None:
            out[key] = None
        elif value == "":
            if key not in defaults:
                raise KeyError(f"no default path for parameter {key!r}")
            out[key] = defaults[key]
        else:
            out[key] = Path(value).expanduser().resolve()
    return out


def resolve_in(folder, **given) -> dict[str, Path | None]:
    """Like :func:`resolve`, but an empty value is the product's file name (as in
    :func:`products`) inside ``folder``: e.g. notebook 07 reads ``posthoc_csv`` from
    ``tables_dir`` unless it is given."""
    names = {k: v.name for k, v in products().items()}
    out = {}
    for key, value in given.items():
        if value == "":
            if key not in names:
                raise KeyError(f"no default file name for parameter {key!r}")
            out[key] = Path(folder) / names[key]
        else:
            out[key] = None if value is None else Path(value).expanduser().resolve()
    return out
