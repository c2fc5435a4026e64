"""The whole notebook series (01–07 and the report) on any BIDS dataset, into a folder the user
chooses — what ``alps paper`` runs.

Every input and product is passed to the notebooks explicitly, so nothing falls back to the
default profile's ``data/`` or ``results/``; relative paths are taken from the current folder.
``OUT`` gets the same layout as ``results/`` of ``make paper``::

    OUT/derivatives/alps/   per-scan derivatives and the pipeline's cohort tables
    OUT/tables/             alps.tsv, qc.tsv, provenance.tsv, the statistics tables
    OUT/figures/            every figure (PNG + PDF)
    OUT/notebooks/          the executed notebooks (and their HTML renderings)
    OUT/report.html         the report page

Simulation-only products are skipped with a note (in the notebooks, on the figures and in the
report) unless the dataset is a simulated cohort: the measured-vs-planted validation needs the
simulator's ground truth (``DIR/derivatives/simulation/ground_truth.tsv``, or ``truth_table``),
and the rotation sweep (a simulated subject rotated about each axis) runs only when asked
(``rotation_sweep=True``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .. import config, paths
from ..manifest import FILES, NOTEBOOKS, SERIES, locations, needs, notebook, products
from .nbrun import declared_parameters, notebook_parameters, run_notebook

__all__ = ["NOTEBOOKS", "PRODUCTS", "NEEDS", "SeriesFailed", "plan_series", "run_series", "summary",
           "check_profile", "analysis_setup", "Analysis"]

#: the files each notebook writes (parameters of its plan; the Makefile's targets): removed when it
#: fails or cannot run, so that no table of an earlier run passes for this run's (from the manifest)
PRODUCTS = {nb.name: products(nb.name) for nb in SERIES}
#: the notebooks whose products each notebook reads (a failed one stops those that need it)
NEEDS = {nb.name: needs(nb.name) for nb in SERIES if needs(nb.name)}


class SeriesFailed(RuntimeError):
    """One or more notebooks of the series failed; the report was written all the same
    (``report``: its path; ``failed``: ``{notebook: one-line reason}``)."""

    def __init__(self, report: Path, failed: dict):
        self.report, self.failed = report, dict(failed)
        super().__init__("; ".join(f"{k} {v}" for k, v in failed.items()))


def plan_series(bids, out, *, participants=None, truth_table=None, session: str | None = None,
                session_policy: str = "strict", rotation_sweep: bool = False) -> tuple[dict, list[str]]:
    """The parameters of every notebook for a run of the series on ``bids`` into ``out``: each
    notebook's files (:data:`alps.manifest.SERIES`) at their places under the two folders
    (:func:`alps.manifest.locations`), and the session choice of the analysis notebooks.

    Returns ``({notebook: {parameter: value}}, notes)``: every path absolute (relative ones from
    the current folder); ``notes`` say which products are skipped and why.

    Raises
    ------
    FileNotFoundError
        The dataset, the participants table or a given truth table does not exist.
    """
    bids, out = paths.from_folder(bids), paths.from_folder(out)
    if not bids.is_dir():
        raise FileNotFoundError(f"{bids}: BIDS dataset folder not found")
    files = locations(bids, out)
    part = paths.from_folder(participants) if participants else files["participants"]
    if not part.is_file():
        raise FileNotFoundError(f"{part}: participants table not found (give one with --participants; it needs "
                                "participant_id, group, age, sex and the clinical columns, see alps.io.tables)")
    files["participants"] = part
    notes = []
    if truth_table:
        files["truth_table"] = paths.from_folder(truth_table)
        if not files["truth_table"].is_file():
            raise FileNotFoundError(f"{files['truth_table']}: ground-truth table not found")
    elif not files["truth_table"].is_file():
        files["truth_table"] = None
        notes.append("No ground truth (not a simulated cohort): the measured-vs-planted validation "
                     "(alps_validation.csv has zero rows, figure S2) and the truth column of "
                     "reproduction.csv are skipped.")
    if not rotation_sweep:
        files["rotation_sweep_csv"] = None
        notes.append("Rotation sweep skipped (a simulation-only product: one simulated subject rotated "
                     "about each axis; --rotation-sweep runs it): no rotation_sweep.csv, figure S3 states it.")
    plan = {}
    for nb in SERIES:
        given = {k: None if files[k] is None else str(files[k]) for k in nb.files}
        if nb.analysis:
            given.update(session=session or "", session_policy=session_policy)
        if "rotation_sweep_csv" in nb.writes and not rotation_sweep:
            given["rotation_angles"] = []
        plan[nb.name] = given
    return plan, notes


@dataclass(frozen=True)
class Analysis:
    """What notebooks 03–07 start from (:func:`analysis_setup`): their resolved ``paths``, the
    study ``design``, the analysed ``cohort`` and the ``excluded`` subjects."""

    paths: dict
    design: object
    cohort: object
    excluded: object


def analysis_setup(name: str, parameters: dict) -> Analysis:
    """The shared first step of the analysis notebooks 03–07.

    ``parameters``: the notebook's parameters (its ``globals()``; only the names its manifest
    entry and the analysis parameters ``profile``, ``design``, ``session`` and ``session_policy``
    are read). Resolves its file parameters (:func:`alps.paths.resolve`: an empty path is the file
    inside a folder given with it, else the profile's), builds the
    :class:`~alps.stats.design.StudyDesign` from the ``design`` mapping, and loads the cohort
    (:func:`alps.io.tables.load_cohort`: the ALPS table merged with the participants, for the
    chosen session); sets pandas' display width for the tables shown."""
    import pandas as pd

    from ..io.tables import load_cohort
    from ..manifest import notebook
    from ..stats import StudyDesign

    nb = notebook(name)
    if not nb.analysis:
        raise ValueError(f"{name} is not an analysis notebook of the series (03-07)")
    profile = parameters.get("profile", "default")
    p = paths.resolve(profile, **{k: parameters.get(k, "") for k in nb.files})
    design = StudyDesign.from_mapping(parameters.get("design") or {}, source=f"{paths.config_file(profile)} [design]")
    cohort, excluded = load_cohort(p["alps_table"], p["participants"], session=parameters.get("session") or None,
                                   session_policy=parameters.get("session_policy", "strict"), groups=design.labels,
                                   numeric=design.numeric_columns)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    return Analysis(paths=p, design=design, cohort=cohort, excluded=excluded)


def check_profile(profile="default", parameters=None, *, design: bool = True) -> str:
    """Check a profile before anything runs: it exists (a name in ``config/`` or the path of a
    YAML file, :func:`alps.paths.config_file`), is valid YAML, and its ``pipeline`` section
    (overlaid by ``parameters['pipeline']``) and, with ``design``, its ``design`` section (or
    ``parameters['design']``) are valid. Returns it as the
    notebooks get it (:func:`alps.paths.profile_ref`: a file as its absolute path). Raises
    :class:`FileNotFoundError` or :class:`ValueError` naming the file and the problem."""
    from ..pipeline.params import from_profile as pipeline_parameters
    from ..stats.design import StudyDesign
    from ..stats.design import from_profile as study_design

    ref = paths.profile_ref(profile)
    config.load_profile(ref)
    parameters = parameters or {}
    pipeline_parameters(ref, parameters.get("pipeline") or {})
    if not design:  # no notebook of the run reads it
        pass
    elif "design" in parameters:  # given (-p design ...): replaces the profile's
        StudyDesign.from_mapping(parameters["design"] or {}, source="-p design")
    else:
        study_design(ref)
    return ref


def run_series(bids, out, *, profile: str = "default", participants=None, truth_table=None,
               session: str | None = None, session_policy: str = "strict", rotation_sweep: bool = False,
               parameters=None, notebooks=NOTEBOOKS, progress: bool = True, log=None) -> Path:
    """Run ``notebooks`` (default: 01–07) of the series on ``bids`` into ``out``, then the report.

    ``profile`` gives the pipeline's and the notebooks' parameters (a name in ``config/`` or the
    path of a YAML file; checked first, :func:`check_profile`), as for ``make``; ``parameters``
    (``{name: value}``) override them in every notebook that declares the name (e.g.
    ``{"n_boot": 1000}``); every notebook's parameters are checked before the first one runs.
    Failed scans and analyses the data cannot support (too few subjects, :mod:`alps.stats.sizes`)
    do not stop it: the notebooks note them, and the end of the run sums them up on the console
    (:func:`summary`). A failed notebook does not stop it either: its partial copy is kept as
    ``OUT/notebooks/<name>.failed.ipynb``, its products (and those of the notebooks that need
    them, :data:`NEEDS`, which are not run) are removed, the report is written with the failure at
    its top, and :class:`SeriesFailed` is raised. A notebook refused before it runs (an invalid
    parameter: ``ValueError``, a missing input: ``FileNotFoundError``) and Ctrl-C still stop the
    series at once. Returns the report's path.
    """
    from .report import build_report

    import jupytext

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    sources = {name: jupytext.read(paths.notebook_source(name)) for name in notebooks}
    declared = {name: declared_parameters(nb) for name, nb in sources.items()}
    profile = check_profile(profile, parameters, design=any("design" in d for d in declared.values()))
    plan, notes = plan_series(bids, out, participants=participants, truth_table=truth_table, session=session,
                              session_policy=session_policy, rotation_sweep=rotation_sweep)
    out = paths.from_folder(out)
    given = {}
    for name, nb in sources.items():  # every notebook's parameters checked before the first one runs
        given[name] = {**plan[name], **{k: v for k, v in (parameters or {}).items() if k in declared[name]}}
        notebook_parameters(nb, name, profile=profile, parameters=given[name])
    for note in notes:
        log(f"alps paper: note: {note}")
    failed = {}
    for name in notebooks:
        blocked = [n for n in NEEDS.get(name, ()) if n in failed]
        target = out / "notebooks" / f"{name}.ipynb"
        if blocked:
            failed[name] = f"not run: it needs the products of {', '.join(blocked)}"
        else:
            log(f"alps paper: {name} -> {target}")
            try:
                run_notebook(name, target, profile=profile, parameters=given[name], progress=progress)
                continue
            except (KeyboardInterrupt, SystemExit, ValueError, FileNotFoundError):
                raise  # interrupted, or refused before it ran (a parameter, a missing input): stop
            except Exception as exc:  # papermill's error names the cell's exception
                why = f"{exc.ename}: {exc.evalue}" if getattr(exc, "ename", None) else f"{type(exc).__name__}: {exc}"
                failed[name] = f"failed: {why} (see {target.with_name(name + '.failed.ipynb')})"
        log(f"alps paper: {name} {failed[name]}")
        _remove_products(name, plan[name], target, out)
    failure_notes = [f"Notebook {k} {v}; its tables and figures are not in this report." for k, v in failed.items()]
    report = build_report(out, profile=profile, data_dir=paths.from_folder(bids), output=out / "report.html",
                          notes=failure_notes + notes)
    for line in summary(out):
        log(f"alps paper: {line}")
    log(f"alps paper: report -> {report}")
    if failed:
        raise SeriesFailed(report, failed)
    return report


def _remove_products(name, plan, target, out) -> None:
    """Remove what notebook ``name`` would have written (an earlier run's), see :data:`PRODUCTS`."""
    files = [Path(plan[k]) for k in PRODUCTS.get(name, ()) if plan.get(k)] + [target, target.with_suffix(".html")]
    files += [Path(plan[k]).with_suffix(".json") for k in PRODUCTS.get(name, ()) if plan.get(k) and FILES[k].dictionary]
    files += [out / "figures" / f"{stem}.{ext}" for stem in notebook(name).figures for ext in ("png", "pdf")]
    for f in files:
        f.unlink(missing_ok=True)


def summary(out) -> list[str]:
    """What a run into ``out`` could not do, for the console: the failed scans and excluded
    subjects (:func:`alps.build.report.failed_scans`) and every analysis skipped with its reason
    (the notes of the tables, :func:`alps.stats.sizes.table_note`)."""
    import pandas as pd

    from ..stats.sizes import SKIPPED, table_note
    from .report import failed_scans

    out = Path(out)
    lines = failed_scans(out)
    for f in sorted((out / "tables").glob("*.csv")):
        note = table_note(pd.read_csv(f))
        if note and SKIPPED in note:
            lines.append(f"{note} ({f.name})")
    return lines
