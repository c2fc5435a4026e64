"""Report and figures for a lab's cohort (issue 22, item 8): the headline table without columns
that cannot apply, every table's numbers to 3 significant digits in a box that scrolls sideways,
the cautions and skipped analyses listed, Figure 2 showing every point on its shared axis, and
``se_high`` among the QC flags and the QC montage's labels."""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from alps import figures  # noqa: E402
from alps.build import report  # noqa: E402

from test_bad_inputs import write_good  # noqa: E402


# ------------------------------------------------------------------ Figure 2

def test_figure2_shows_every_point_on_its_shared_axis():
    """Three panels sharing y, the lowest point in the middle one (a left-hemisphere 1.094 in
    issue 22): every point and every post hoc bracket lies inside the axis."""
    rng = np.random.default_rng(1)
    rows = []
    for g, m in (("MO", 1.6), ("HC", 1.5), ("VM", 1.4)):
        for i in range(8):
            a = m + rng.normal(0, 0.05)
            rows.append({"participant_id": f"{g}{i}", "group": g, "alps": a, "alps_L": a + 0.01, "alps_R": a - 0.01})
    df = pd.DataFrame(rows)
    df.loc[3, "alps_L"] = 1.094
    ph = pd.DataFrame([{"dv": dv, "group_a": a, "group_b": b, "p_adj": 0.01} for dv in ("alps", "alps_L", "alps_R")
                       for a, b in (("MO", "HC"), ("MO", "VM"), ("HC", "VM"))])
    fig, axes = plt.subplots(1, 3, sharey=True)
    for ax, dv in zip(axes, ("alps", "alps_L", "alps_R")):
        figures.group_plot(df, dv=dv, posthoc=ph, groups=["MO", "HC", "VM"], ax=ax)
    lo, hi = axes[0].get_ylim()
    for ax in axes:
        assert ax.get_ylim() == (lo, hi)
        ys = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
        assert len(ys) == 24 and lo < ys.min() and ys.max() < hi, (ax.get_ylim(), ys.min(), ys.max())
        for line in ax.lines:
            assert np.all((lo <= line.get_ydata()) & (line.get_ydata() <= hi))
        for t in ax.texts:
            assert lo < t.get_position()[1] < hi
    assert lo < 1.094
    plt.close(fig)


# ------------------------------------------------------------------ se_high

def test_se_high_is_a_qc_flag_and_on_the_montage(tmp_path):
    """A scan whose standard error exceeds se_max is flagged in qc_flags (qc_pass False), and the
    QC montage's label shows it."""
    from alps import pipeline as P

    bids, out = tmp_path / "bids", tmp_path / "out"
    write_good(bids, "a")
    df = P.run_cohort(bids, out, progress=False, se_max=1e-6, n_jobs=1)
    row = df.iloc[0]
    assert row["status"] == "ok" and bool(row["se_high"]), row.get("error")
    assert "se_high" in row["qc_flags"].split(";") and not row["qc_pass"]
    qc = pd.read_csv(out / "qc.tsv", sep="\t")
    assert "se_high" in qc["qc_flags"].iloc[0]
    fig = figures.qc_montage(out, pd.read_csv(out / "alps.tsv", sep="\t"))
    assert any("se_high" in ax.get_title() for ax in fig.axes)
    plt.close(fig)
    # a scan within its se_max is not flagged
    df = P.run_cohort(bids, out, progress=False, se_max=10.0, n_jobs=1)
    assert "se_high" not in str(df.iloc[0]["qc_flags"])


# ------------------------------------------------------------------ the report

def _lab_tables(out, *, truth: bool):
    """The tables a run writes, for a two-group lab cohort (no published values) or with a truth."""
    tab = out / "tables"
    tab.mkdir(parents=True)
    (out / "notebooks").mkdir()
    wide = {"participant_id": ["sub-01", "sub-02"], "status": ["ok", "ok"], "alps": [1.512345678, 1.61]}
    wide.update({f"column_with_a_long_name_{i}": [0.000712345, 0.0007] for i in range(40)})
    pd.DataFrame(wide).to_csv(tab / "alps.tsv", sep="\t", index=False)
    pd.DataFrame({"quantity": ["n_PD", "mean_alps_PD", "omnibus_p", "alps_order"],
                  "paper": [np.nan] * 4,
                  "truth": [8, 1.4123456789, 0.0123456, "PD > HC"] if truth else [np.nan] * 4,
                  "measured": [8, -0.5000000000000001, 0.20703124999999997, "PD > HC"]},
                 dtype=object).to_csv(tab / "reproduction.csv", index=False)
    if truth:
        pd.DataFrame({"quantity": ["mean_alps_PD"], "truth": [1.41], "truth_ci_low": [1.3], "truth_ci_high": [1.5],
                      "measured": [1.45], "inside": [True]}).to_csv(tab / "truth_check.csv", index=False)
    else:
        pd.DataFrame({"note": ["no planted truth: the input is not a simulated cohort"]}).to_csv(
            tab / "truth_check.csv", index=False)
    pd.DataFrame({"note": ["regression skipped: too few subjects: n = 3 (need ≥ 8 = 5 parameters + 3)"]}).to_csv(
        tab / "regression.csv", index=False)
    pd.DataFrame({"group": ["PD", "PD"], "kind": ["bivariate", "partial"], "x": ["alps", "alps"],
                  "y": ["updrs", "updrs"], "n": [7, 7], "r": [0.5, np.nan],
                  "caution": ["residual df 5 < 10", "not computed: too few subjects: n = 7 (need ≥ 8)"]}).to_csv(
        tab / "correlations.csv", index=False)


def test_report_for_a_labs_cohort(tmp_path):
    out = tmp_path / "lab"
    _lab_tables(out, truth=False)
    page = report.build_report(out, profile="design-two-groups").read_text()
    head = page[page.index("<h2>Headline results</h2>"):page.index("<h2>", page.index("<h2>Headline results") + 5)]
    for absent in ("paper", "planted truth", "truth 95 % CI", "inside truth CI", "—"):
        assert absent not in head, absent  # no column of dashes
    assert "<th>measured</th>" in head and "<th>quantity</th>" in head
    # every table in its own box that scrolls sideways (alps.tsv is wider than the page)
    alps = page[page.index("alps.tsv</a></h3>"):]
    assert alps.index("<div class=scroll>") < alps.index("<table")
    assert ".scroll{max-width:100%;overflow-x:auto" in page
    # reproduction.csv's numbers (a column of numbers and text) to 3 significant digits like the others
    repro = page[page.index("reproduction.csv</a></h3>"):]
    repro = repro[:repro.index("</table>")]
    assert "-0.5000000000000001" not in repro and "0.20703124999999997" not in repro
    assert "<td>-0.5</td>" in repro and "<td>0.207</td>" in repro and "<td>PD &gt; HC</td>" in repro
    assert "<td>0.000712</td>" in alps[:alps.index("</table>")]
    # the analyses skipped for want of subjects and the cautions of those that ran
    assert "regression skipped: too few subjects: n = 3 (need ≥ 8 = 5 parameters + 3)" in page
    assert "Minimum sizes of this design" in page and "8 in PD for the regression (5 parameters + 3)" in page
    caution = page[page.index("Cautions: small samples"):]
    assert "correlations.csv (group PD; kind bivariate; x alps; y updrs; n 7): residual df 5 &lt; 10" in caution


def test_report_keeps_the_columns_that_apply(tmp_path):
    """With a planted truth and published values (the default build) every column is there."""
    out = tmp_path / "sim"
    _lab_tables(out, truth=True)
    repro = pd.read_csv(out / "tables" / "reproduction.csv", dtype=str, keep_default_na=False)
    repro.loc[0, "paper"] = "40"
    repro.to_csv(out / "tables" / "reproduction.csv", index=False)
    page = report.build_report(out, profile="design-two-groups").read_text()
    head = page[page.index("<h2>Headline results</h2>"):]
    head = head[:head.index("</table>")]
    for col in ("paper", "planted truth", "truth 95 % CI", "measured", "inside truth CI"):
        assert f"<th>{col}</th>" in head, col
    assert re.search(r"<td>1\.3 to 1\.5</td>", head)
