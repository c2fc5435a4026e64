"""The package's architecture and the defects its redesign removed: one source of truth for the
pipeline's parameters (validated before any scan is read, unknown keys refused everywhere), one
derivatives layout, imports pointing one way, small modules, Make's source groups covering every
module, and the notebook/figure leaks."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alps import atomic, paths
from alps.pipeline import params as PP

ROOT = paths.REPO_ROOT
PKG = ROOT / "alps"

# --------------------------------------------------------------------------- parameter objects


def test_parameter_defaults_live_in_one_place_and_are_what_provenance_records():
    p = PP.PipelineParams()
    flat = p.flat()
    assert flat["roi_radius"] == 2.5 and flat["registration"] == "affine" and flat["n_jobs"] == 1
    assert set(flat) == set(PP.PipelineParams.names())
    assert p.preprocess.as_dict() == {k: flat[k] for k in PP.PreprocessParams.names()}
    with pytest.raises(Exception):  # frozen
        p.preprocess.roi = "jhu"


@pytest.mark.parametrize("mapping, message", [
    ({"roi_raduis": 5}, r"unknown parameter 'roi_raduis' \(did you mean 'roi_radius'\?\); allowed: .*roi_radius"),
    ({"gradcheck": "sometimes"}, r"parameter 'gradcheck' must be one of \['off', 'report', 'correct'\], got 'sometimes'"),
    ({"registration": "nonlinear"}, r"parameter 'registration' must be one of"),
    ({"roi": "jhuu"}, r"parameter 'roi' must be one of \['spheres', 'jhu'\]"),
    ({"roi_radius": -1}, r"parameter 'roi_radius' must be positive"),
    ({"roi_radius": "big"}, r"parameter 'roi_radius' must be a number"),
    ({"denoise": "yes"}, r"parameter 'denoise' must be true or false"),
    ({"n_jobs": 0}, r"parameter 'n_jobs' must be at least 1"),
    ({"min_reg_corr": 2.0}, r"parameter 'min_reg_corr' must be between 0 and 1"),
])
def test_invalid_parameters_are_refused_with_the_name_and_what_is_allowed(mapping, message):
    with pytest.raises(PP.ParameterError, match=message):
        PP.PipelineParams.from_mapping(mapping, source="config/x.yaml [pipeline]")


def test_values_are_coerced_to_their_types():
    p = PP.PipelineParams.from_mapping({"roi_radius": 5, "seed": 3.0, "atlas_path": Path("/a/b.nii.gz")})
    assert p.measure.roi_radius == 5.0 and isinstance(p.measure.roi_radius, float)
    assert p.preprocess.seed == 3 and isinstance(p.preprocess.seed, int)
    assert p.measure.atlas_path == "/a/b.nii.gz"


def test_run_cohort_rejects_a_bad_value_before_looking_at_any_scan(tmp_path):
    """A typo'd value used to fail every scan after loading and fitting; now nothing is read:
    not even the (here non-existent) input is looked at."""
    from alps.pipeline import run_cohort

    with pytest.raises(PP.ParameterError, match="'gradcheck' must be one of"):
        run_cohort(tmp_path / "no-such-dataset", tmp_path / "out", gradcheck="sometimes", progress=False)
    with pytest.raises(PP.ParameterError, match="unknown parameter 'roi_raduis'"):
        run_cohort(tmp_path / "no-such-dataset", tmp_path / "out", roi_raduis=5.0, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    """A config folder of our own with a typo'd profile and one with a non-default radius."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    for name in ("default", "smoke"):
        (cfg / f"{name}.yaml").write_text((paths.CONFIG_DIR / f"{name}.yaml").read_text())
    base = (paths.CONFIG_DIR / "smoke.yaml").read_text()
    (cfg / "typo.yaml").write_text(base.replace("  roi_radius: 2.5", "  roi_raduis: 2.5"))
    (cfg / "wide.yaml").write_text(base.replace("  roi_radius: 2.5", "  roi_radius: 4.0"))
    (cfg / "nbtypo.yaml").write_text(base.replace("    n_boot: 500", "    n_bootstrap: 500"))
    monkeypatch.setattr(paths, "CONFIG_DIR", cfg)
    return cfg


def test_alps_run_refuses_a_typo_in_the_profile(profiles, tmp_path, capsys):
    from alps.cli import main

    rc = main(["run", str(tmp_path / "missing"), str(tmp_path / "out"), "--profile", "typo"])
    out = capsys.readouterr().out
    assert rc == 2 and "typo.yaml [pipeline]" in out and "unknown parameter 'roi_raduis'" in out
    assert not (tmp_path / "out").exists()


def test_profile_options_and_cli_give_one_parameter_object(profiles):
    from alps.cli import build_parser

    assert PP.from_profile("wide").measure.roi_radius == 4.0
    args = build_parser().parse_args(["run", "in", "out", "--profile", "wide", "--no-denoise",
                                      "--registration", "syn", "--n-jobs", "3"])
    from alps.cli.run import resolve_parameters

    p = resolve_parameters(args)
    assert (p.measure.roi_radius, p.preprocess.registration, p.preprocess.denoise, p.n_jobs) == (4.0, "syn", False, 3)


def test_every_run_option_has_help_and_shows_its_default():
    from alps.cli import build_parser

    parser = build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]
    for action in run._actions:
        if action.dest in ("help",):
            continue
        assert action.help, action.dest
        if action.dest in PP.PipelineParams.names():
            assert "(default:" in action.help, action.dest
    # every pipeline parameter is an option, generated from the parameter objects
    assert set(PP.PipelineParams.names()) <= {a.dest for a in run._actions}


def test_notebooks_get_the_pipeline_section_as_one_mapping(profiles):
    """A `pipeline:` key used to reach `alps run` but not `make paper` (nbrun dropped names the
    notebook did not declare); now notebooks 01/02 take the whole section as `pipeline`."""
    from alps import config

    params = config.notebook_parameters("wide", "02_alps")
    assert params["pipeline"]["roi_radius"] == 4.0
    for name in ("01_preprocess", "02_alps"):
        src = paths.notebook_source(name).read_text()
        assert re.search(r"^pipeline = \{\}", src, re.M), name
        assert "from_profile(profile, pipeline)" in src, name


NB = '''# %% tags=["parameters"]
profile = "default"
n_boot = 1
seed = 0
out_json = ""

# %%
open(out_json, "w").write(str(n_boot))
'''


def test_nbrun_refuses_a_typo_in_a_notebook_section(profiles, tmp_path):
    from alps.build.nbrun import run_notebook

    src = tmp_path / "06_mediation.py"
    src.write_text(NB)
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['n_bootstrap'\] \(from .*nbtypo.yaml \[notebooks.06_mediation\]\)"):
        run_notebook("06_mediation", tmp_path / "x.ipynb", profile="nbtypo", source=src,
                     parameters={"out_json": str(tmp_path / "o")})


# --------------------------------------------------------------------------- layout and writers


def test_derivative_names_come_from_the_layout():
    from alps.pipeline import tables
    from alps.pipeline.layout import ScanLayout

    lay = ScanLayout(Path("/o"), "sub-01", "ses-2")
    assert lay.dir == Path("/o/sub-01/ses-2/dwi")
    assert lay.qc_png.name == "sub-01_ses-2_desc-qc.png"
    assert lay.transform_names()["affine"] == "sub-01_ses-2_from-dwi_to-MNI152NLin2009aSym_mode-image_xfm.mat"
    qc = tables.qc_table(pd.DataFrame([{"participant_id": "sub-01", "session_id": "ses-2", "status": "ok"}]))
    assert qc["qc_png"].iloc[0] == "sub-01/ses-2/dwi/sub-01_ses-2_desc-qc.png"
    # no other module spells a derivative suffix or the template's name
    spelled = []
    for f in PKG.rglob("*.py"):
        if f.name in ("layout.py", "template.py"):
            continue
        text = f.read_text()
        for pat in ('"MNI152NLin2009aSym', "_desc-qc.png", "desc-FA_dwimap", "_desc-preprocess.json",
                    "_desc-alps.json", "desc-RAS4x4"):
            if pat in text.replace("``", ""):
                # docstrings may name the files; code may not build them
                code = "\n".join(line for line in text.splitlines() if pat in line and not line.strip().startswith(
                    ("#", "*", ":", "``", "OUT_DIR", "<key>", "sub-")) and ('f"' in line or "glob(" in line))
                if code:
                    spelled.append((f.relative_to(ROOT).as_posix(), pat))
    assert not spelled, spelled


def test_json_writer_writes_null_for_non_finite_values(tmp_path):
    p = atomic.write_json(tmp_path / "k.json", {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": 2}},
                          sort_keys=False, strict=True)
    assert json.loads(p.read_text()) == {"a": None, "b": [1.0, None], "c": {"d": 2}}
    assert "NaN" not in p.read_text() and "Infinity" not in p.read_text()


def test_the_writer_never_changes_the_process_umask(tmp_path, monkeypatch):
    """atomic._umask set the process umask to 0 and back around every write, which races with
    other threads creating files (they got mode 0o666). The kernel now applies the umask when the
    temporary file is created; files still get 0o666 & ~umask."""
    import os
    import stat

    mask = os.umask(0o027)
    try:
        def no_umask(*_):
            raise AssertionError("os.umask called")

        monkeypatch.setattr(os, "umask", no_umask)
        for p in (atomic.write_text(tmp_path / "a.txt", "x"),
                  atomic.write_with(tmp_path / "b.bin", lambda t: open(t, "wb").write(b"y"))):
            assert stat.S_IMODE(p.stat().st_mode) == 0o640, oct(p.stat().st_mode)
        monkeypatch.undo()
    finally:
        os.umask(mask)
    assert not list(tmp_path.glob(".*"))


def test_one_bvec_writer_without_negative_zeros(tmp_path):
    from alps.io.gradients import write_bvals_bvecs

    write_bvals_bvecs([0, 1000], [[-0.0, 0.0, -0.0], [1.0, 0.0, 0.0]], tmp_path / "a.bval", tmp_path / "a.bvec")
    assert "-0.000000" not in (tmp_path / "a.bvec").read_text()
    assert (tmp_path / "a.bval").read_text() == "0 1000\n"
    assert not list(tmp_path.glob(".*"))


# --------------------------------------------------------------------------- notebooks and figures


def test_regression_figure_rows_are_the_regressions_rows():
    """Notebook 07 recoded sex itself: a missing sex became F in the figure while the regression
    excluded that subject. Both now use stats.regression_data."""
    from alps import stats
    from alps.stats.design import from_profile

    reg = from_profile("default").regression_kwargs()
    rng = np.random.default_rng(0)
    n = 30
    df = pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)],
                       "group": ["MO", "VM"] * (n // 2), "age": rng.uniform(20, 60, n),
                       "sex": (["F", "M", "F"] * n)[:n], "duration_years": rng.uniform(1, 20, n),
                       "attacks_per_month": rng.uniform(1, 10, n), "alps": rng.normal(1.5, 0.1, n)})
    df.loc[3, "sex"] = np.nan
    with pytest.warns(UserWarning, match="sub-03"):
        data = stats.regression_data(df, nan_policy="omit", **reg).table
    with pytest.warns(UserWarning):
        model = stats.regression(df, nan_policy="omit", **reg).model
    assert "sub-03" not in set(data["participant_id"]) and len(data) == int(model["n"].iloc[0]) == n - 1
    assert set(data["sex"]) == {0.0, 1.0} and set(data["subtype"]) == {0.0, 1.0}
    src = paths.notebook_source("07_figures").read_text()
    assert "stats.regression_data(" in src and '== "M"' not in src


def _fake_scan(der, roi_radius):
    from alps.pipeline.layout import ScanLayout

    lay = ScanLayout(der, "sub-01")
    lay.dir.mkdir(parents=True)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-90, -126, -72]
    nib.save(nib.Nifti1Image(np.full((91, 109, 91), 0.4, np.float32), aff), lay.fa)
    np.savetxt(lay.xfm_ras, np.eye(4))
    atomic.write_json(lay.result_json, {"provenance": {"parameters": {"roi": "spheres", "roi_radius": roi_radius}}})
    return lay


@pytest.mark.parametrize("radius", [2.5, 5.0])
def test_figure1_draws_the_radius_the_scans_were_measured_with(tmp_path, radius):
    """Figure 1 drew 2.5 mm circles whatever radius was configured."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.patches import Circle

    from alps.figures import template_roi_panel

    _fake_scan(tmp_path / "der", radius)
    ax = template_roi_panel(tmp_path / "der", "sub-01")
    radii = [p.get_radius() for p in ax.patches if isinstance(p, Circle)]
    assert radii == [radius] * 4
    assert f"r = {radius:g} mm" in ax.get_title()


# --------------------------------------------------------------------------- package structure

#: layers, lowest first: a module may import only from its own layer or those below.
LAYERS = [
    {"alps", "alps.paths", "alps.config", "alps.atomic", "alps.compare"},
    {"alps.io"},
    {"alps.imaging"},
    {"alps.pipeline"},
    {"alps.simulation"},
    {"alps.validation", "alps.stats"},
    {"alps.figures"},
    {"alps.build", "alps.cli", "alps.__main__"},
]


def _layer(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        for unit in layer:
            if module == unit or (unit != "alps" and module.startswith(unit + ".")):
                return i
    if module.count(".") == 1:  # alps.<top-level module>
        return 0
    raise AssertionError(f"{module}: in no layer")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    mod = _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "alps" or target.startswith("alps."):
                names = [f"{target}.{a.name}" for a in node.names]
                yield from ([target] if node.module else names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("alps"))


def test_imports_point_one_way_through_the_layers():
    bad = []
    for f in sorted(PKG.rglob("*.py")):
        mod = _module_name(f)
        for target in _imports(f):
            if _layer(target) > _layer(mod):
                bad.append(f"{mod} -> {target}")
    assert not bad, bad


def test_no_import_cycles_between_subpackages():
    edges = {}
    for f in PKG.rglob("*.py"):
        src = ".".join(_module_name(f).split(".")[:2])
        for target in _imports(f):
            dst = ".".join(target.split(".")[:2])
            if dst != src and dst != "alps":
                edges.setdefault(src, set()).add(dst)

    def reach(a, seen):
        for b in edges.get(a, ()):
            if b not in seen:
                seen.add(b)
                reach(b, seen)
        return seen

    cyclic = [a for a in edges if a in reach(a, set())]
    assert not cyclic, {a: sorted(edges[a]) for a in cyclic}


def test_no_module_is_over_about_400_lines():
    sizes = {f.relative_to(ROOT).as_posix(): len(f.read_text().splitlines()) for f in PKG.rglob("*.py")}
    assert not {k: v for k, v in sizes.items() if v > 400}, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]


def test_makefile_source_groups_cover_every_module():
    """The hand-kept groups missed alps/atomic.py and alps/gradcheck.py (editing them reran nothing)."""
    text = (ROOT / "Makefile").read_text()
    patterns = []
    for line in text.splitlines():
        m = re.match(r"^[A-Z_]+_SRC\s*:=\s*(.*)$", line)
        if m:
            patterns += re.findall(r"alps/[\w/*.]+\.py", m.group(1))
    assert patterns
    covered = set()
    for pat in patterns:
        covered.update(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pat))
    missing = sorted(p.relative_to(ROOT).as_posix() for p in PKG.rglob("*.py")
                     if p.relative_to(ROOT).as_posix() not in covered)
    assert not missing, missing


def test_the_statistics_libraries_are_called_in_one_module():
    """stats/_libs.py said it was the one place the libraries are called while groups.py called
    pg.welch_anova, regression.py statsmodels, reliability.py pg.intraclass_corr, effects.py
    multipletests and harmonise.py neuroCombat."""
    libs = ("pingouin", "statsmodels", "scikit_posthocs", "neuroCombat")
    callers = sorted({f.relative_to(ROOT).as_posix() for f in PKG.rglob("*.py") for node in ast.walk(ast.parse(f.read_text()))
                      if isinstance(node, (ast.Import, ast.ImportFrom))
                      and any((getattr(node, "module", None) or "").split(".")[0] == lib
                              or any(a.name.split(".")[0] == lib for a in node.names) for lib in libs)})
    assert callers == ["alps/stats/_libs.py"], callers


def test_itk_threads_are_set_in_one_place_once(tmp_path, monkeypatch):
    """ITK's thread count was set in three places, two of them on every scan and cohort run
    (changing the environment while other threads run is a race). Now alps.imaging.ants.ants_module
    sets it, once, before antspyx is first imported."""
    from types import SimpleNamespace

    from alps.imaging.ants import ants_module
    from alps.pipeline import process_subject

    setters = sorted(f.relative_to(ROOT).as_posix() for f in PKG.rglob("*.py")
                     if re.search(r"environ\[[\"']ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", f.read_text()))
    assert setters == ["alps/imaging/ants.py"], setters
    ants_module()
    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "7")
    ants_module()
    item = SimpleNamespace(participant_id="sub-x", session_id=None, entities=(), error="no such scan", key="sub-x",
                           dwi=tmp_path / "x.nii.gz", bval=tmp_path / "x.bval", bvec=tmp_path / "x.bvec")
    assert process_subject(item, tmp_path / "out")["status"] == "failed"
    import os

    assert os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "7"  # left alone after the import
