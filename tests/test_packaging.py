"""The project's own files: packaging, environment, config and Makefile stay consistent."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from alps import paths

ROOT = paths.REPO_ROOT


def test_environment_yml_installs_the_package_with_dev_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_entries = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_entries, "environment.yml must install through pip"
    assert "-e .[dev]" in pip_entries[0]["pip"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dev" in pyproject["project"]["optional-dependencies"]
    # the conda python must satisfy the package's requires-python
    py = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")][0]
    major_minor = tuple(int(x) for x in py.split("=")[1].split(".")[:2])
    floor = tuple(int(x) for x in pyproject["project"]["requires-python"].lstrip(">=").split("."))
    assert major_minor >= floor


def test_requires_python_is_a_version_the_suite_runs_on():
    """requires-python said 3.10 while the suite imports tomllib (3.11+): on 3.10 it could not even
    be collected. 3.10 is not supported: the floor is the oldest Python the tests run on (CI and
    environment.yml use 3.11)."""
    import ast

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    floor = tuple(int(x) for x in pyproject["project"]["requires-python"].lstrip(">=").split("."))
    uses_tomllib = [f.name for f in sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "alps").rglob("*.py"))
                    if any(isinstance(n, ast.Import) and any(a.name == "tomllib" for a in n.names)
                           for n in ast.walk(ast.parse(f.read_text())))]
    if uses_tomllib:
        assert floor >= (3, 11), f"{uses_tomllib} import tomllib (Python 3.11+), requires-python is {floor}"
    assert sys.version_info[:2] >= floor


def test_pingouin_and_statsmodels_are_pinned_to_a_series():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in ("pingouin", "statsmodels"):
        spec = next(d for d in deps if d.startswith(name))
        assert ">=" in spec and "<" in spec.replace(">=", ""), f"{name} needs a bounded range: {spec}"


def test_profiles_share_keys():
    from alps.config import load_profile

    default, smoke = load_profile("default"), load_profile("smoke")
    assert set(default) == set(smoke)
    for section in default:
        if isinstance(default[section], dict):
            assert set(default[section]) == set(smoke[section]), section


def test_unknown_profile_names_the_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        paths.config_file("nope")


def test_paths_do_not_depend_on_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.profile_dirs("default")["data"] == ROOT / "data" / "default"
    assert paths.profile_dirs("smoke")["out"] == ROOT / "build" / "smoke" / "results"


def test_every_notebook_has_one_literal_parameters_cell_first():
    import ast

    import jupytext

    names = sorted(p.stem for p in paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))
    assert names[:7] == ["01_preprocess", "02_alps", "03_group_tests", "04_regression",
                         "05_correlation", "06_mediation", "07_figures"]
    for name in names:
        nb = jupytext.read(paths.notebook_source(name))
        code = [c for c in nb.cells if c.cell_type == "code"]
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and code[0] is tagged[0], f"{name}: first code cell must be the parameters cell"
        for node in ast.parse(tagged[0].source).body:
            assert isinstance(node, ast.Assign), f"{name}: parameters cell holds assignments only"
            ast.literal_eval(node.value)  # raises if not a literal


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "alps.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("alps ")
    out = subprocess.run([sys.executable, "-m", "alps.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "ALPS" in out.stdout


def test_makefile_has_help_and_delete_on_error():
    text = (ROOT / "Makefile").read_text()
    assert ".DELETE_ON_ERROR:" in text
    out = subprocess.run(["make", "-s", "-C", str(ROOT), "help"], capture_output=True, text=True)
    assert out.returncode == 0
    for target in ("paper", "test", "lab", "data", "clean", "help"):
        assert f"make {target}" in out.stdout


def test_notebook_code_cells_compile_after_jupytext_conversion():
    """jupytext may turn some comments into magics (e.g. a comment starting with 'copy'):
    every code cell must still be valid Python once converted."""
    import jupytext

    for src in sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py")):
        for cell in jupytext.read(src).cells:
            if cell.cell_type == "code":
                compile(cell.source, str(src), "exec")


def test_jupyterlab_opens_sources_as_notebooks_without_data_or_checkpoints_in_the_checkout():
    """``make env`` installs the project's JupyterLab settings (jupytext's notebook viewer as the
    default for the py:percent sources) into the environment; ``make lab`` generates no data and
    keeps checkpoints in build/; every notebook source asks for the ``alps`` kernel."""
    import json

    import jupytext

    settings = json.loads((ROOT / "jupyter" / "overrides.json").read_text())
    assert settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"
    for target in ("env", "lab"):
        # -W: as if the settings file had just changed, so that the copy shows however set up this checkout is
        out = subprocess.run(["make", "-n", "-W", "jupyter/overrides.json", "--no-print-directory", "-C", str(ROOT),
                              target], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "cp jupyter/overrides.json .venv/share/jupyter/lab/settings/overrides.json" in out.stdout
        assert "alps simulate" not in out.stdout  # no data generated
    lab = out.stdout.splitlines()[-1]
    assert lab.startswith(".venv/bin/jupyter lab --notebook-dir=notebooks")
    assert f'--FileCheckpoints.checkpoint_dir="{ROOT / "build" / "lab-checkpoints"}"' in lab
    for src in sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py")):
        assert jupytext.read(src).metadata["kernelspec"]["name"] == "alps", src.name


def test_one_manifest_gives_every_notebook_its_files_and_each_file_one_name():
    """The notebook-to-file map was written four times (Makefile, paths.products naming alps.tsv
    twice, alps paper's plan, the parameters cells); now alps.manifest is the one map: each
    notebook's parameters cell declares exactly its manifest files, and every file has one name."""
    import jupytext

    from alps import manifest
    from alps.build.nbrun import declared_parameters, is_path_parameter

    names = sorted(p.stem for p in paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))
    assert names == list(manifest.NOTEBOOKS)
    products = paths.products("smoke")
    assert len(set(products.values())) == len(products), "a file named twice"
    for nb in manifest.SERIES:
        src = paths.notebook_source(nb.name).read_text()
        declared = declared_parameters(jupytext.read(paths.notebook_source(nb.name)))
        assert {k for k in declared if is_path_parameter(k) or k in manifest.FILES} == set(nb.files), nb.name
        assert declared == set(nb.parameters), (nb.name, declared ^ set(nb.parameters))
        if nb.analysis:  # 03-07: one shared setup, no copy of it
            assert src.count(f'analysis_setup("{nb.name}", globals())') == 1, nb.name
            assert "load_cohort(" not in src and "paths.resolve" not in src and "StudyDesign.from_mapping" not in src


def test_makefile_rules_of_the_series_are_generated_from_the_manifest(tmp_path):
    from alps import manifest

    text = (ROOT / "Makefile").read_text()
    assert "include $(SERIES_MK)" in text and "alps.manifest makefile" in text
    assert "$(RUN) 0" not in text and "-p alps_table" not in text  # no notebook rule written by hand
    out = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), "PROFILE=smoke",
                          f"BUILD_ROOT={tmp_path}", "notebooks"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (ROOT / "build" / "series.mk").read_text() == manifest.makefile()
    runs = [line for line in out.stdout.splitlines() if "alps.build.nbrun" in line]
    assert [line.split()[5] for line in runs] == list(manifest.NOTEBOOKS)
    for nb, line in zip(manifest.SERIES, runs):
        given = dict(zip(line.split()[8::3], line.split()[9::3]))
        assert set(given) == set(nb.files), nb.name
        expected = manifest.locations(tmp_path / "smoke" / "data", tmp_path / "smoke" / "results")
        assert {k: Path(v) for k, v in given.items()} == {k: expected[k] for k in given}, nb.name


def test_readme_is_for_users_and_links_the_evidence():
    """The README grew to 488 lines, users scrolling past benchmark tables; the evidence lives in
    docs/validation.md, every relative link of both resolves."""
    import re as _re

    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for doc in ("README.md", "docs/validation.md", "docs/architecture.md"):
        text = (ROOT / doc).read_text()
        for target in _re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert ((ROOT / doc).parent / target).exists(), (doc, target)
    assert "docs/validation.md" in readme and "## How we know it is right" in readme
