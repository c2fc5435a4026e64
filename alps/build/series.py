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

__all__ = ["NOTEBOOKS", "plan_series", "run_series", "check_profile"]

NOTEBOOKS = ("01_preprocess", "02_alps", "03_group_tests", "04_regression", "05_correlation", "06_mediation",
             "07_figures")


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
    ``{"n_boot": 1000}``); every notebook's parameters are checked before the first one runs. A failed notebook stops the series (its partial copy is
    kept as ``OUT/notebooks/<name>.failed.ipynb``) and raises. Returns the report's path.
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
    for name in notebooks:
        target = out / "notebooks" / f"{name}.ipynb"
        log(f"alps paper: {name} -> {target}")
        run_notebook(name, target, profile=profile, parameters=given[name], progress=progress)
    report = build_report(out, profile=profile, data_dir=paths.from_folder(bids), output=out / "report.html", notes=notes)
    log(f"alps paper: report -> {report}")
    return report
