"""``alps paper`` on a lab's cohort where most scans fail (issue 22, item 4: 7 of 13 failed and
the series died in notebook 04 with no report).

Two groups (``config/design-two-groups.yaml``: PD and HC, a regression and correlations in PD);
13 scans, 7 of them fail (no b = 0 volume, or a truncated file). The 3 PD and 3 HC left are enough
for the group tests (3 per group) and too few for the regression (5 parameters + 3 = 8) and the
correlations (4): those are skipped with a note in their tables, figures and the report, the
series runs to its end (exit 0), and the console says how many scans failed and where to look,
each on a line of its own.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alps.build import series
from alps.cli import main
from test_nbrun import console_lines
from test_paper import _tiny, _write


#: (group, fails) per subject: PD 4 of 7 fail, HC 3 of 6 fail
SCANS = [("PD", False)] * 3 + [("PD", True)] * 4 + [("HC", False)] * 3 + [("HC", True)] * 3
PLANTED = {"PD": 1.40, "HC": 1.55}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from alps.simulation.phantom import make_template_fields

    root = tmp_path_factory.mktemp("failures")
    bids = root / "bids"
    fields = make_template_fields()
    rng = np.random.default_rng(22)
    parts = []
    for i, (group, fails) in enumerate(SCANS, start=1):
        pid = f"sub-{i:02d}"
        folder = bids / pid / "dwi"
        if fails and i % 2:  # a truncated image
            folder.mkdir(parents=True)
            (folder / f"{pid}_dwi.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
            for ext, text in (("bval", "0 1000\n"), ("bvec", "0 1\n0 0\n0 0\n")):
                (folder / f"{pid}_dwi.{ext}").write_text(text)
        elif fails:  # no b = 0 volume
            d, aff, bvals, bvecs = _tiny(1.5, 1.5, (0, 0, 0), i, fields)
            _write(folder, pid, (d[..., 1:], aff, bvals[1:], bvecs[1:]))
        else:
            lft, rgt = PLANTED[group] + rng.normal(0, 0.04, 2)
            _write(folder, pid, _tiny(lft, rgt, tuple(rng.uniform(-5, 5, 3)), i, fields))
        parts.append({"participant_id": pid, "group": group, "age": int(rng.integers(40, 80)), "sex": "FM"[i % 2],
                      "updrs": int(rng.integers(10, 50)) if group == "PD" else "n/a",
                      "duration_years": round(rng.uniform(1, 15), 1) if group == "PD" else "n/a"})
    pd.DataFrame(parts).to_csv(bids / "participants.tsv", sep="\t", index=False)
    return root


@pytest.mark.slow
@pytest.mark.paper
def test_most_scans_failed_the_paper_still_runs_to_its_report(cohort, monkeypatch, capsys):
    monkeypatch.chdir(cohort)
    rc = main(["paper", "--bids", "bids", "--out", "out", "--profile", "design-two-groups",
               "-p", "pipeline", "{n_jobs: 2}"])
    text = capsys.readouterr()
    assert rc == 0, text.out[-3000:] + text.err[-3000:]
    out = cohort / "out"
    tab = out / "tables"
    shown = console_lines(text.err)
    # the console: how many scans failed and where to look, on lines of their own
    assert f"alps paper: 7 of 13 scans failed, see {tab / 'exclusions.csv'} (errors in {tab / 'alps.tsv'})" in shown
    assert any(line.startswith("alps: 7 of 13 scans failed (errors in ") for line in shown), shown
    assert any(line.startswith("preprocess: 7 of 13 scans failed") for line in shown), shown
    assert any(line.startswith("  sub-04: ") and "no b=0 volume" in line for line in shown), shown
    assert ("alps paper: regression skipped: too few subjects: n = 3 (need ≥ 8 = 5 parameters + 3) "
            "(regression.csv)") in shown
    assert any(line.startswith("alps paper: correlations skipped: ") for line in shown), shown
    # the tables: what could run ran, what could not says why
    why = pd.read_csv(tab / "exclusions.csv").set_index("participant_id")["reason"]
    assert len(why) == 7 and why.str.startswith("scan failed: ").all()
    gt = pd.read_csv(tab / "group_tests.csv")
    assert list(gt["n_PD"]) == [3, 3, 3] and list(gt["n_HC"]) == [3, 3, 3]
    for name in ("regression.csv", "regression_model.csv"):
        assert list(pd.read_csv(tab / name)["note"]) == [
            "regression skipped: too few subjects: n = 3 (need ≥ 8 = 5 parameters + 3)"]
    assert pd.read_csv(tab / "correlations.csv")["note"].iloc[0].startswith("correlations skipped: ")
    # every figure, the skipped ones saying why, and the report
    for fig in ("fig1_method", "fig2_groups", "fig3_regression", "fig4_correlations", "figS1_qc_montage"):
        assert (out / "figures" / f"{fig}.png").is_file() and (out / "figures" / f"{fig}.pdf").is_file()
    page = (out / "report.html").read_text()
    assert "<h2>Analyses not run</h2>" in page
    assert "regression skipped: too few subjects: n = 3 (need ≥ 8 = 5 parameters + 3)" in page
    assert "8 in PD for the regression (5 parameters + 3)" in page
    assert "alps paper: done: open" in text.out


def test_a_failed_notebook_does_not_stop_the_report(tmp_path, monkeypatch):
    """A notebook that fails outright (not for want of subjects): the notebooks that do not need it
    run, those that do are not run, the products of both are removed (an earlier run's tables
    would pass for this run's), and the report is written with the failure at its top."""
    from papermill.exceptions import PapermillExecutionError

    bids, out = tmp_path / "bids", tmp_path / "out"
    bids.mkdir()
    (bids / "participants.tsv").write_text("participant_id\tgroup\tage\tsex\n")
    plan, _ = series.plan_series(bids, out)
    for name in ("regression_csv", "regression_model_csv", "correlations_csv"):  # an earlier run's
        path = plan["04_regression" if name.startswith("regression") else "05_correlation"][name]
        (out / "tables").mkdir(parents=True, exist_ok=True)
        (out / "tables" / name.replace("_csv", ".csv")).write_text("stale\n")
        assert path == str(out / "tables" / name.replace("_csv", ".csv"))
    (out / "figures").mkdir()
    (out / "figures" / "fig3_regression.png").write_bytes(b"stale")
    ran = []

    def fake_run(name, target, **kw):
        if name == "04_regression":
            raise PapermillExecutionError(3, 3, "stats.regression(...)", "ValueError", "a genuine bug", [])
        ran.append(name)
        import nbformat

        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(), target)
        if name == "05_correlation":
            (out / "tables" / "correlations.csv").write_text("group,r\nPD,0.5\n")
        return target

    monkeypatch.setattr(series, "run_notebook", fake_run)
    logged = []
    with pytest.raises(series.SeriesFailed) as exc:
        series.run_series(bids, out, profile="design-two-groups", log=logged.append)
    assert ran == ["01_preprocess", "02_alps", "03_group_tests", "05_correlation", "06_mediation"]
    assert set(exc.value.failed) == {"04_regression", "07_figures"}
    assert exc.value.failed["04_regression"].startswith("failed: ValueError: a genuine bug (see ")
    assert exc.value.failed["07_figures"] == "not run: it needs the products of 04_regression"
    assert not (out / "tables" / "regression.csv").exists() and not (out / "tables" / "regression_model.csv").exists()
    assert not (out / "figures" / "fig3_regression.png").exists()
    assert (out / "tables" / "correlations.csv").read_text().startswith("group,r")
    page = (out / "report.html").read_text()
    assert exc.value.report == out / "report.html"
    assert "Notebook 04_regression failed: ValueError: a genuine bug" in page
    assert "Notebook 07_figures not run: it needs the products of 04_regression" in page
    assert any(m.startswith("alps paper: 04_regression failed: ValueError: a genuine bug") for m in logged)
