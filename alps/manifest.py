"""The notebook series in one place: each notebook, the files it reads and writes (by the
parameter that names them), its other parameters, the code and configuration it depends on.

Derived from it:

* the Makefile's rules for the notebooks and the report (``python -m alps.manifest makefile``
  writes them; the Makefile includes the result, remade whenever this file changes);
* the default location of every file for a profile (:func:`alps.paths.products`) and how a
  notebook's empty path parameters resolve (:func:`resolve`);
* ``alps paper``'s parameters for each notebook (:func:`alps.build.series.plan_series`).

Every file has one name, the parameter that names it in every notebook that reads or writes it
(``alps_table`` is written by 02 and read by 03–07). A notebook's parameters cell declares exactly
:attr:`Notebook.parameters` (``tests/test_packaging.py`` checks it).

Adding a notebook or a product: one entry here (and the notebook's parameters cell).

Standard library only: Make runs this module with the bootstrap Python, before any environment
exists.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["File", "Notebook", "FILES", "SERIES", "NOTEBOOKS", "notebook", "products", "needs", "locations", "resolve",
           "makefile"]


@dataclass(frozen=True)
class File:
    """A file (or folder) of the series: under ``root`` — ``"data"`` (the BIDS dataset) or
    ``"out"`` (the results folder) — at ``path`` (``""``: the root itself)."""

    root: str
    path: str
    folder: bool = False
    #: a cohort table with a BIDS data dictionary beside it (``alps.json`` beside ``alps.tsv``)
    dictionary: bool = False


def _table(name: str, **kw) -> File:
    return File("out", f"tables/{name}", **kw)


#: every file the series reads or writes, by the parameter that names it.
FILES = {
    "data_dir": File("data", "", folder=True),
    "participants": File("data", "participants.tsv"),
    "truth_table": File("data", "derivatives/simulation/ground_truth.tsv"),
    "derivatives_dir": File("out", "derivatives/alps", folder=True),
    "preprocess_tsv": File("out", "derivatives/alps/preprocess.tsv", dictionary=True),
    "tables_dir": File("out", "tables", folder=True),
    "figures_dir": File("out", "figures", folder=True),
    "alps_table": _table("alps.tsv", dictionary=True),
    "qc_tsv": _table("qc.tsv", dictionary=True),
    "provenance_tsv": _table("provenance.tsv", dictionary=True),
    "validation_csv": _table("alps_validation.csv"),
    "rotation_sweep_csv": _table("rotation_sweep.csv"),
    "demographics_csv": _table("demographics.csv"),
    "group_tests_csv": _table("group_tests.csv"),
    "posthoc_csv": _table("posthoc.csv"),
    "ancova_csv": _table("ancova.csv"),
    "exclusions_csv": _table("exclusions.csv"),
    "harmonisation_csv": _table("harmonisation.csv"),
    "regression_csv": _table("regression.csv"),
    "regression_model_csv": _table("regression_model.csv"),
    "correlations_csv": _table("correlations.csv"),
    "mediation_csv": _table("mediation.csv"),
    "reproduction_csv": _table("reproduction.csv"),
    "key_numbers_json": _table("key_numbers.json"),
    "truth_check_csv": _table("truth_check.csv"),
}


@dataclass(frozen=True)
class Notebook:
    """One notebook of the series (``notebooks/<name>.py``).

    ``reads``/``writes``: parameters of :data:`FILES`; ``options``: its other parameters (besides
    ``profile``, and the ``pipeline`` mapping of a notebook whose ``config`` has it, or the study
    ``design``, ``session`` and ``session_policy`` of an analysis notebook); ``figures``: figure stems
    it writes under ``figures_dir`` (PNG + PDF); ``sources``: the Makefile's source groups whose code
    it runs; ``config``: profile sections it reads besides its own ``notebooks.<name>``;
    ``analysis``: one of the statistics notebooks (03–07), which start with
    :func:`alps.build.series.analysis_setup`."""

    name: str
    reads: tuple = ()
    writes: tuple = ()
    options: tuple = ()
    figures: tuple = ()
    sources: tuple = ()
    config: tuple = ()
    analysis: bool = False

    @property
    def parameters(self) -> tuple:
        """Every parameter of its parameters cell: ``profile``, the configured mappings, the
        analysis choices, its options and its files."""
        return (("profile",) + tuple(c for c in self.config if c in ("pipeline", "design"))
                + (("session", "session_policy") if self.analysis else ()) + self.options + self.files)

    @property
    def files(self) -> tuple:
        """Its file parameters, read then written (each once)."""
        return tuple(dict.fromkeys(self.reads + self.writes))


_STATS_IN = ("alps_table", "participants")
_STATS_SRC = ("STATS_SRC", "CORE_SRC")

#: the series, in the order it runs.
SERIES = (
    Notebook("01_preprocess", reads=("data_dir",), writes=("derivatives_dir", "preprocess_tsv"),
             sources=("IMAGING_SRC", "FIG_SRC", "CORE_SRC"), config=("pipeline",)),
    Notebook("02_alps", reads=("data_dir", "derivatives_dir", "truth_table"),
             writes=("alps_table", "qc_tsv", "provenance_tsv", "validation_csv", "rotation_sweep_csv"),
             options=("rotation_angles", "rotation_snr"), sources=("IMAGING_SRC", "SIM_SRC", "VALID_SRC", "CORE_SRC"), config=("pipeline",)),
    Notebook("03_group_tests", reads=_STATS_IN,
             writes=("demographics_csv", "group_tests_csv", "posthoc_csv", "ancova_csv", "exclusions_csv",
                     "harmonisation_csv"), sources=_STATS_SRC, config=("design",), analysis=True),
    Notebook("04_regression", reads=_STATS_IN, writes=("regression_csv", "regression_model_csv"),
             sources=_STATS_SRC, config=("design",), analysis=True),
    Notebook("05_correlation", reads=_STATS_IN, writes=("correlations_csv",), sources=_STATS_SRC,
             config=("design",), analysis=True),
    Notebook("06_mediation", reads=_STATS_IN + ("truth_table",),
             writes=("mediation_csv", "reproduction_csv", "key_numbers_json", "truth_check_csv"),
             options=("n_boot", "seed"), sources=_STATS_SRC, config=("design",), analysis=True),
    Notebook("07_figures", reads=("tables_dir", "derivatives_dir", "data_dir") + _STATS_IN
             + ("posthoc_csv", "regression_csv", "correlations_csv", "mediation_csv", "harmonisation_csv",
                "truth_table", "rotation_sweep_csv"),
             writes=("figures_dir",),
             figures=("fig1_method", "fig2_groups", "fig3_regression", "fig4_correlations", "fig5_mediation",
                      "figS1_qc_montage", "figS2_measured_vs_truth", "figS3_rotation", "figS4_harmonisation"),
             sources=("FIG_SRC", "CORE_SRC"), config=("design",), analysis=True),
)
NOTEBOOKS = tuple(nb.name for nb in SERIES)


def notebook(name: str) -> Notebook:
    """The series' entry of a notebook; ``KeyError`` naming the known ones otherwise."""
    for nb in SERIES:
        if nb.name == name:
            return nb
    raise KeyError(f"no notebook {name!r} in the series (alps.manifest): {list(NOTEBOOKS)}")


def products(name: str) -> tuple:
    """The file parameters notebook ``name`` writes (its folders left out: a folder is shared)."""
    return tuple(k for k in notebook(name).writes if not FILES[k].folder)


def _inside(key: str, folder: str) -> bool:
    f, d = FILES[key], FILES[folder]
    return f.root == d.root and (d.path == "" or f.path.startswith(d.path + "/"))


def needs(name: str) -> tuple:
    """The notebooks whose products notebook ``name`` reads (a file, or one inside a folder it
    reads): when one of them fails, ``name`` cannot run."""
    nb = notebook(name)
    out = []
    for other in SERIES:
        if other.name == name:
            break
        if any(k in nb.reads or any(FILES[r].folder and _inside(k, r) for r in nb.reads) for k in products(other.name)):
            out.append(other.name)
    return tuple(out)


def locations(data, out) -> dict:
    """Every file of :data:`FILES` under a dataset folder ``data`` and a results folder ``out``."""
    roots = {"data": Path(data), "out": Path(out)}
    return {k: roots[f.root] / f.path if f.path else roots[f.root] for k, f in FILES.items()}


def resolve(defaults: dict, given: dict) -> dict:
    """The paths of a notebook's ``given`` file parameters: a path as given (``~``
    expanded, made absolute); ``None`` stays ``None`` (an input that does not exist); an empty
    value is the file inside a folder the notebook was given (``tables_dir``, ``data_dir`` …,
    the innermost) or else its default in ``defaults`` (:func:`locations` of the profile)."""
    unknown = sorted(set(given) - set(FILES))
    if unknown:
        raise KeyError(f"no file parameter(s) {unknown} in the series (alps.manifest)")
    out = {}
    folders = []
    for key, value in given.items():
        if value not in ("", None):
            out[key] = Path(value).expanduser().resolve()
            if FILES[key].folder:
                folders.append(key)
    for key, value in given.items():
        if value is None:
            out[key] = None
        elif value == "":
            f = FILES[key]
            within = [d for d in folders if FILES[d].root == f.root
                      and (FILES[d].path == "" or f.path.startswith(FILES[d].path + "/"))]
            if within:
                d = max(within, key=lambda d: len(FILES[d].path))
                rest = f.path[len(FILES[d].path):].lstrip("/")
                out[key] = out[d] / rest if rest else out[d]
            else:
                out[key] = Path(defaults[key])
    return out


# ----------------------------------------------------------------------------- the Makefile
_ROOT = {"data": "$(DATA)", "out": "$(OUT)"}


def _make_path(key: str) -> str:
    f = FILES[key]
    return f"{_ROOT[f.root]}/{f.path}" if f.path else _ROOT[f.root]


def _targets(key: str) -> list:
    """What Make tracks for a file parameter: the file (and its data dictionary)."""
    f = FILES[key]
    if f.folder:
        return []
    path = _make_path(key)
    return [path] + ([path.rsplit(".", 1)[0] + ".json"] if f.dictionary else [])


def _prerequisites(nb: Notebook, written: dict) -> list:
    """Make prerequisites of a notebook's inputs: the dataset's stamp, the file, or for a folder
    the files earlier notebooks write into it."""
    out = []
    for key in nb.reads:
        f = FILES[key]
        if f.root == "data" and f.folder:
            out.append("$(DATA_STAMP)")
        elif f.folder:
            out += [t for k, ts in written.items() for t in ts
                    if FILES[k].root == f.root and FILES[k].path.startswith(f.path + "/")]
        else:
            out.append(_make_path(key))
    return list(dict.fromkeys(out))


def makefile() -> str:
    """The Makefile rules of the series (included by the Makefile; see its variables)."""
    lines = ["# generated by `python -m alps.manifest makefile` from alps/manifest.py: edit that file, not this one", ""]
    written = {}
    figures = [f"$(FIG)/{s}.{ext}" for nb in SERIES for s in nb.figures for ext in ("png", "pdf")]
    for nb in SERIES:
        for key in nb.writes:
            written[key] = _targets(key)
    data_files = sorted({_make_path(k) for nb in SERIES for k in nb.reads
                         if FILES[k].root == "data" and not FILES[k].folder})
    lines += [f"NOTEBOOKS := {' '.join(NOTEBOOKS)}", "EXECUTED  := $(foreach n,$(NOTEBOOKS),$(NB)/$(n).ipynb)",
              "TABLES := " + " ".join(t for k, ts in written.items() for t in ts if FILES[k].path.startswith("tables/")),
              "FIGURES := " + " ".join(figures), "", f"{' '.join(data_files)}: $(DATA_STAMP) ;", ""]
    for nb in SERIES:
        targets = [f"$(NB)/{nb.name}.ipynb"] + [t for k in nb.writes for t in written[k]]
        targets += [f"$(FIG)/{s}.{ext}" for s in nb.figures for ext in ("png", "pdf")]
        prereqs = ([f"notebooks/{nb.name}.py"] + _prerequisites(nb, written) + [f"$({s})" for s in nb.sources]
                   + [f"$(call cfg,{c})" for c in nb.config + (f"notebooks.{nb.name}",)])
        params = " ".join(f"-p {k} {_make_path(k)}" for k in nb.files)
        lines += [f"{' '.join(targets)} &: {' '.join(prereqs)}",
                  f"\t$(RUN) {nb.name} $(NB)/{nb.name}.ipynb {params}", ""]
    lines += ["$(OUT)/report.html: $(EXECUTED) $(FIGURES) $(TABLES) $(CORE_SRC)",
              "\t$(PY) -m alps.build.report --profile $(PROFILE) --out-dir $(OUT) --data-dir $(DATA) --output $@", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["makefile"]:
        print("usage: python -m alps.manifest makefile", file=sys.stderr)
        return 2
    sys.stdout.write(makefile())
    return 0


if __name__ == "__main__":
    sys.exit(main())
