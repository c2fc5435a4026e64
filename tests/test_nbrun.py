"""The headless notebook runner: parameters injected, failures leave nothing that looks finished."""
from __future__ import annotations

import json

import pytest

from alps.build.nbrun import run_notebook

GOOD = '''# %% tags=["parameters"]
profile = "default"
value = 1
out_json = ""

# %%
import json, matplotlib
open(out_json, "w").write(json.dumps({"value": value, "profile": profile,
                                      "backend": matplotlib.get_backend()}))
'''

BAD = '''# %% tags=["parameters"]
profile = "default"

# %%
raise RuntimeError("deliberate failure in a cell")
'''


def test_parameters_are_injected_and_backend_is_headless(tmp_path):
    src = tmp_path / "good.py"
    src.write_text(GOOD)
    out_json = tmp_path / "out.json"
    out = run_notebook("good", tmp_path / "nb" / "good.ipynb", profile="smoke", source=src,
                       parameters={"value": 42, "out_json": str(out_json)})
    assert out.is_file()
    got = json.loads(out_json.read_text())
    assert got["value"] == 42 and got["profile"] == "smoke"
    assert got["backend"].lower() == "agg"


def test_failed_notebook_leaves_only_a_failed_copy(tmp_path):
    src = tmp_path / "bad.py"
    src.write_text(BAD)
    target = tmp_path / "nb" / "bad.ipynb"
    with pytest.raises(Exception, match="deliberate failure"):
        run_notebook("bad", target, source=src)
    assert not target.exists()
    assert (tmp_path / "nb" / "bad.failed.ipynb").is_file()
    assert not list((tmp_path / "nb").glob(".*partial*"))


def test_unknown_override_is_refused(tmp_path):
    src = tmp_path / "good.py"
    src.write_text(GOOD)
    with pytest.raises(ValueError, match="no parameter"):
        run_notebook("good", tmp_path / "x.ipynb", source=src, parameters={"vaule": 3})


WARN = '''# %% tags=["parameters"]
profile = "default"
out_json = ""

# %%
import json, sys, warnings
warnings.warn("merge_cohort: 1 subject(s) excluded: sub-09 (scan failed)")
print("per-subject line", file=sys.stderr)
from alps.progress import progress_bar
for _ in progress_bar(range(3), desc="subjects"):
    pass
open(out_json, "w").write(json.dumps({"out_json": out_json}))
'''


def test_relative_paths_progress_and_warnings_on_the_console(tmp_path, monkeypatch, capfd):
    """A relative ``-p`` path is taken from the caller's folder (not the repository, where the
    kernel runs); progress, the cells' warnings and stderr reach the console; the kernel talks
    over IPC (no unencrypted-TCP warning) and leaves no socket files in the caller's folder."""
    src = tmp_path / "warn.py"
    src.write_text(WARN)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "sub").mkdir()
    run_notebook("warn", "nb/warn.ipynb", source=src, parameters={"out_json": "sub/out.json"})
    got = json.loads((work / "sub" / "out.json").read_text())
    assert got["out_json"] == str(work / "sub" / "out.json")
    assert (work / "nb" / "warn.ipynb").is_file()
    err = capfd.readouterr().err
    assert "sub-09 (scan failed)" in err and "per-subject line" in err and "warn: 100%" in err
    assert "without encryption" not in err
    assert "subjects: 100%" in err and "IProgress" not in err  # alps's bars: text, no ipywidgets warning
    assert sorted(p.name for p in work.iterdir()) == ["nb", "sub"]


def console_lines(text: str) -> list[str]:
    """What a terminal shows for ``text``: ``\\r`` returns to the line's start and overwrites it."""
    lines, line, col = [], [], 0
    for ch in text:
        if ch == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            line[col:col + 1] = [ch]
            col += 1
    return lines + ["".join(line).rstrip()]


STATUS = '''# %% tags=["parameters"]
profile = "default"

# %%
import sys, time
from alps.progress import progress_bar
time.sleep(0.2)

# %%
for _ in progress_bar(range(3), desc="subjects"):
    time.sleep(0.05)
print("preprocess: 7 of 13 scans failed (status and error per scan: preprocess.tsv)", file=sys.stderr)
print("  sub-01: no b=0 volume", file=sys.stderr)

# %%
import warnings
warnings.warn("merge_cohort: 7 subject(s) excluded")
'''


def test_kernel_messages_get_lines_of_their_own(tmp_path, capsys):
    """Issue 22: the cells' messages on the console (a failure summary, the exclusion warning) each
    start a line of their own, not glued to the per-cell progress bar or the kernel's own bar; the
    bars' final states stay readable."""
    src = tmp_path / "status.py"
    src.write_text(STATUS)
    run_notebook("status", tmp_path / "status.ipynb", source=src)
    shown = console_lines(capsys.readouterr().err)
    assert "preprocess: 7 of 13 scans failed (status and error per scan: preprocess.tsv)" in shown, shown
    assert "  sub-01: no b=0 volume" in shown, shown
    assert any(line.endswith("UserWarning: merge_cohort: 7 subject(s) excluded") and "%|" not in line
               for line in shown), shown
    assert any(line.startswith("subjects: 100%") for line in shown), shown
    assert any(line.startswith("status: 100%") for line in shown), shown


def test_given_and_default_paths_are_not_mixed(tmp_path):
    """Giving one path of a notebook and leaving its outputs empty would write them into the
    default build's results: refused, naming the missing ones, before anything runs."""
    with pytest.raises(ValueError, match=r"given but not \['correlations_csv', 'participants'\].*alps paper"):
        run_notebook("05_correlation", tmp_path / "05.ipynb", parameters={"alps_table": "mine/alps.tsv"})
    assert not (tmp_path / "05.ipynb").exists()


def test_alps_paper_passes_every_path_of_every_notebook(tmp_path, monkeypatch):
    """``alps paper``'s plan (alps.build.series) gives each notebook every input and product it
    declares, absolute and under --out (nothing left to the default build), and notes the
    simulation-only products it skips; relative paths are from the current folder."""
    import jupytext

    from alps import paths
    from alps.build.nbrun import check_paths_complete, declared_parameters, is_path_parameter
    from alps.build.series import NOTEBOOKS, plan_series

    (tmp_path / "bids").mkdir()
    (tmp_path / "bids" / "participants.tsv").write_text("participant_id\tgroup\n")
    monkeypatch.chdir(tmp_path)
    plan, notes = plan_series("bids", "out")
    assert list(plan) == list(NOTEBOOKS)
    assert any("No ground truth" in n for n in notes) and any("Rotation sweep skipped" in n for n in notes)
    for name, given in plan.items():
        declared = declared_parameters(jupytext.read(paths.notebook_source(name)))
        assert set(given) <= declared, name
        check_paths_complete(declared, given, name)
        for k, v in given.items():
            if is_path_parameter(k) and v is not None:
                assert v.startswith(str(tmp_path)), (name, k, v)
    assert plan["02_alps"]["rotation_angles"] == [] and plan["02_alps"]["rotation_sweep_csv"] is None
    with pytest.raises(FileNotFoundError, match="participants table not found"):
        plan_series("bids", "out", participants="nope.tsv")
