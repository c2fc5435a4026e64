"""``--profile`` takes a name in ``config/`` or the path of a YAML file, everywhere a profile is
accepted (``alps paper``, ``alps run``, ``nbrun``, :mod:`alps.config`), and is checked before
anything runs. Before: ``--profile /path/my_study.yaml`` looked for ``config//path/my_study.yaml.yaml``
and failed once notebook 01 had started."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from alps import config, paths
from alps.cli import main

DESIGN = yaml.safe_load((paths.CONFIG_DIR / "design-two-groups.yaml").read_text())


def _profile(folder, name="my_study.yaml", **changes) -> Path:
    """A lab's own profile file outside the repository: the two-group design, a pipeline section."""
    cfg = {**DESIGN, "pipeline": {"roi_radius": 4.5}, **changes}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder / name


def test_config_file_takes_a_name_or_a_path(tmp_path, monkeypatch):
    f = _profile(tmp_path / "studies")
    yml = _profile(tmp_path / "studies", "other.yml")
    assert paths.config_file(f) == f and paths.config_file(str(f)) == f
    assert paths.config_file(str(yml)) == yml
    assert paths.config_file("smoke") == paths.CONFIG_DIR / "smoke.yaml"
    monkeypatch.chdir(tmp_path)
    assert paths.config_file("studies/my_study.yaml") == f  # relative: from the current folder
    assert paths.profile_ref("studies/my_study.yaml") == str(f)  # handed on as an absolute path
    assert paths.profile_ref("smoke") == "smoke"
    assert config.section("studies/my_study.yaml", "pipeline") == {"roi_radius": 4.5}
    with pytest.raises(FileNotFoundError, match=r"studies/nope\.yaml: configuration profile file not found") as e:
        paths.config_file("studies/nope.yaml")
    assert ".yaml.yaml" not in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"config/my_studyy\.yaml: no such configuration profile.*path"):
        paths.config_file("my_studyy")


def test_alps_run_reads_a_profile_file(tmp_path, capsys):
    from alps.cli import build_parser
    from alps.cli.run import resolve_parameters

    f = _profile(tmp_path)
    args = build_parser().parse_args(["run", "in", "out", "--profile", str(f)])
    assert resolve_parameters(args).measure.roi_radius == 4.5
    bad = _profile(tmp_path, "bad.yaml", pipeline={"roi_radus": 4.5})
    assert main(["run", str(tmp_path), str(tmp_path / "out"), "--profile", str(bad)]) == 2
    out = capsys.readouterr().out
    assert str(bad) in out and "roi_radus" in out and "roi_radius" in out
    assert main(["run", str(tmp_path), str(tmp_path / "out"), "--profile", str(tmp_path / "missing.yaml")]) == 2
    assert f"{tmp_path / 'missing.yaml'}: configuration profile file not found" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    assert main(["simulate", str(tmp_path / "sim"), "--profile", str(tmp_path / "missing.yaml")]) == 2
    assert f"{tmp_path / 'missing.yaml'}: configuration profile file not found" in capsys.readouterr().out


@pytest.fixture
def series_calls(tmp_path, monkeypatch):
    """``alps paper`` with the notebooks and the report replaced by recorders (what each gets)."""
    from alps.build import series

    calls = []
    monkeypatch.setattr(series, "run_notebook", lambda name, target, **kw: calls.append((name, kw)))
    monkeypatch.setattr("alps.build.report.build_report", lambda out, **kw: Path(out) / "report.html")
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "participants.tsv").write_text("participant_id\tgroup\n")
    monkeypatch.chdir(tmp_path)
    return calls


def test_alps_paper_passes_a_profile_file_to_every_notebook(tmp_path, series_calls, capsys):
    _profile(tmp_path / "studies")
    assert main(["paper", "--bids", "bids", "--out", "o", "--profile", "studies/my_study.yaml"]) == 0
    assert [c[0] for c in series_calls][:2] == ["01_preprocess", "02_alps"] and len(series_calls) == 7
    assert {c[1]["profile"] for c in series_calls} == {str(tmp_path / "studies" / "my_study.yaml")}


@pytest.mark.parametrize("changes, expected", [
    ({}, "configuration profile file not found"),
    ({"pipeline": {"roi_radus": 4}}, "unknown parameter 'roi_radus'"),
    ({"design": {"groups": [{"label": "PD"}], "refrence": "PD"}}, "unknown parameter 'refrence'"),
    ({"notebooks": {"06_mediation": {"n_bot": 5}}}, r"no parameter\(s\) \['n_bot'\]"),
])
def test_alps_paper_checks_the_profile_before_anything_runs(tmp_path, series_calls, capsys, changes, expected):
    f = tmp_path / "studies" / "my_study.yaml"
    if changes:
        _profile(f.parent, **changes)
    assert main(["paper", "--bids", "bids", "--out", "o", "--profile", str(f)]) == 2
    out = capsys.readouterr().out
    assert re.search(expected, out) and str(f) in out, out
    assert ".yaml.yaml" not in out
    assert series_calls == [] and not (tmp_path / "o").exists()


NOTEBOOK = '''# %% tags=["parameters"]
profile = "default"
value = 1
out_json = ""

# %%
import json
from alps import paths
from alps.pipeline.params import from_profile
open(out_json, "w").write(json.dumps({"value": value, "profile": profile, "file": str(paths.config_file(profile)),
                                      "roi_radius": from_profile(profile).measure.roi_radius}))
'''


def test_nbrun_runs_a_notebook_with_a_profile_file(tmp_path, monkeypatch):
    """The kernel runs in the repository, not the current folder: a relative profile file still
    reaches it (as an absolute path) with its notebook section and pipeline section."""
    from alps.build.nbrun import run_notebook

    src = tmp_path / "nbk.py"
    src.write_text(NOTEBOOK)
    f = _profile(tmp_path / "studies", notebooks={"nbk": {"value": 7}})
    monkeypatch.chdir(tmp_path)
    run_notebook("nbk", tmp_path / "nbk.ipynb", profile="studies/my_study.yaml", source=src,
                 parameters={"out_json": "got.json"}, progress=False)
    got = json.loads((tmp_path / "got.json").read_text())
    assert got == {"value": 7, "profile": str(f), "file": str(f), "roi_radius": 4.5}
