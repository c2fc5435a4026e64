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
from pathlib import Path

from .. import config, paths
from .nbrun import declared_parameters, notebook_parameters, run_notebook

__all__ = ["NOTEBOOKS", "PRODUCTS", "NEEDS", "SeriesFailed", "plan_series", "run_series", "summary",
           "check_profile"]

NOTEBOOKS = ("01_preprocess", "02_alps", "03_group_tests", "04_regression", "05_correlation", "06_mediation",
             "07_figures")
#: the files each notebook writes (parameters of its plan; the Makefile's targets): removed when it
#: fails or cannot run, so that no table of an earlier run passes for this run's
PRODUCTS = {"01_preprocess": ("preprocess_tsv",),
            "02_alps": ("alps_tsv", "qc_tsv", "provenance_tsv", "validation_csv", "rotation_sweep_csv"),
            "03_group_tests": ("demographics_csv", "group_tests_csv", "posthoc_csv", "ancova_csv", "exclusions_csv",
                               "harmonisation_csv"),
            "04_regression": ("regression_csv", "regression_model_csv"),
            "05_correlation": ("correlations_csv",),
            "06_mediation": ("mediation_csv", "reproduction_csv", "key_numbers_json", "truth_check_csv"),
            "07_figures": ()}
#: the notebooks whose products each notebook reads (a failed one stops those that need it)
NEEDS = {"02_alps": ("01_preprocess",), "03_group_tests": ("02_alps",), "04_regression": ("02_alps",),
         "05_correlation": ("02_alps",), "06_mediation": ("02_alps",),
         "07_figures": ("02_alps", "03_group_tests", "04_regression", "05_correlation", "06_mediation")}


class SeriesFailed(RuntimeError):
    """One or more notebooks of the series failed; the report was written all the same
    (``report``: its path; ``failed``: ``{notebook: one-line reason}``)."""

    def __init__(self, report: Path, failed: dict):
        self.report, self.failed = report, dict(failed)
        super().__init__("; ".join(f"{k} {v}" for k, v in failed.items()))


def plan_series(bids, out, *, participants=None, truth_table=None, session: str | None = None,
                session_policy: str = "strict", rotation_sweep: bool = False) -> tuple[dict, list[str]]:
    """The parameters of every notebook for a run of the series on ``bids`` into ``out``.

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
    part = paths.from_folder(participants) if participants else bids / "participants.tsv"
    if not part.is_file():
        raise FileNotFoundError(f"{part}: participants table not found (give one with --participants; it needs "
                                "participant_id, group, age, sex and the clinical columns, see alps.io.tables)")
    notes = []
    sim_truth = bids / "derivatives" / "simulation" / "ground_truth.tsv"
    if truth_table:
        truth = paths.from_folder(truth_table)
        if not truth.is_file():
            raise FileNotFoundError(f"{truth}: ground-truth table not found")
    elif sim_truth.is_file():
        truth = sim_truth
    else:
        truth = None
        notes.append("No ground truth (not a simulated cohort): the measured-vs-planted validation "
                     "(alps_validation.csv has zero rows, figure S2) and the truth column of "
                     "reproduction.csv are skipped.")
    if not rotation_sweep:
        notes.append("Rotation sweep skipped (a simulation-only product: one simulated subject rotated "
                     "about each axis; --rotation-sweep runs it): no rotation_sweep.csv, figure S3 states it.")
    der, tab, fig = out / "derivatives" / "alps", out / "tables", out / "figures"
    t = {k: str(tab / v.name) for k, v in paths.products().items()
         if v.parent == paths.products()["tables_dir"]}
    stats_in = {"alps_table": t["alps_table"], "participants": str(part), "session": session or "",
                "session_policy": session_policy}
    truth_s = str(truth) if truth else None
    plan = {
        "01_preprocess": {"data_dir": str(bids), "derivatives_dir": str(der),
                          "preprocess_tsv": str(der / "preprocess.tsv")},
        "02_alps": {"data_dir": str(bids), "derivatives_dir": str(der), "truth_table": truth_s,
                    **{k: t[k] for k in ("alps_tsv", "qc_tsv", "provenance_tsv", "validation_csv")},
                    "rotation_sweep_csv": t["rotation_sweep_csv"] if rotation_sweep else None,
                    **({} if rotation_sweep else {"rotation_angles": []})},
        "03_group_tests": {**stats_in, **{k: t[k] for k in ("demographics_csv", "group_tests_csv", "posthoc_csv",
                                                            "ancova_csv", "exclusions_csv",
                                                            "harmonisation_csv")}},
        "04_regression": {**stats_in, "regression_csv": t["regression_csv"],
                          "regression_model_csv": t["regression_model_csv"]},
        "05_correlation": {**stats_in, "correlations_csv": t["correlations_csv"]},
        "06_mediation": {**stats_in, "truth_table": truth_s, **{k: t[k] for k in ("mediation_csv", "reproduction_csv",
                                                                                  "key_numbers_json", "truth_check_csv")}},
        "07_figures": {**stats_in, "tables_dir": str(tab), "figures_dir": str(fig), "derivatives_dir": str(der),
                       "data_dir": str(bids), "truth_table": truth_s,
                       "rotation_sweep_csv": t["rotation_sweep_csv"] if rotation_sweep else None,
                       **{k: t[k] for k in ("posthoc_csv", "regression_csv", "correlations_csv", "mediation_csv",
                                            "harmonisation_csv")}},
    }
    return plan, notes


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
    if name == "07_figures":
        files += sorted((out / "figures").glob("fig*.png")) + sorted((out / "figures").glob("fig*.pdf"))
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
