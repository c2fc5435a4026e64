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

from alps.cli import main
from test_nbrun import console_lines
from test_paper import _tiny, _write

pytestmark = [pytest.mark.slow, pytest.mark.paper]

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
