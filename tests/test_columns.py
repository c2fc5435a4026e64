"""The column registry (alps.pipeline.columns): every column the stages make is declared once, with
the function that computes it; it orders the cohort tables and describes them in BIDS data
dictionaries beside them (the end-to-end check of the written dictionaries is in test_pipeline)."""
from __future__ import annotations

import importlib
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from alps.imaging import measure, qc
from alps.imaging.registration import Registration
from alps.imaging.roi import ROI_NAMES
from alps.io.metadata import METADATA_COLUMNS
from alps.pipeline import columns as C
from alps.pipeline.tables import GRADCHECK_COLUMNS, cohort_tables, write_tables


def _function(source: str):
    path = source.split(" ")[0]
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_every_declared_column_names_an_existing_function_and_says_what_it_is():
    for c in C.COLUMNS.values():
        assert callable(_function(c.source)), c.name
        assert c.description.endswith((".", ")")) and len(c.description) > 15, c.name
        assert c.stage in ("discovery", "metadata", "preprocess", "measure", "uncertainty", "run", "tables"), c.name
    for table in C.TABLES:
        names = C.table_columns(table)
        assert len(names) == len(set(names)), table


def test_what_the_measure_stage_computes_is_declared():
    """The names measure() builds (some by string formatting, which grep cannot find) are all in
    the registry, and each per-ROI one resolves to its declaration."""
    shape = (6, 6, 6)
    tensor = np.zeros(shape + (3, 3))
    tensor[...] = np.diag([1.0e-3, 0.5e-3, 0.4e-3])
    weights = {n: np.zeros(shape, np.float32) for n in ROI_NAMES}
    for i, n in enumerate(ROI_NAMES):
        weights[n][i, 1:3, 1:3] = 1.0
    reg = Registration(kind="affine", template_to_subject=np.eye(4), forward_transforms=[], inverse_transforms=[])
    row = measure.measure(tensor, np.eye(4), reg, weights, fa=np.full(shape, 0.5), md=np.full(shape, 1e-3))
    row.update({"reg_corr": 0.9, "reg_dice": 0.9})
    row["qc_flags"] = ";".join(qc.flags(row))
    row["qc_pass"] = True
    made = set(row) | set(METADATA_COLUMNS) | set(GRADCHECK_COLUMNS)
    missing = sorted(k for k in made if C.lookup(k) is None)
    assert not missing, missing
    assert C.lookup("dxx_scanner_proj_L").name == "dxx_scanner_{roi}"
    assert C.lookup("dxx_scanner_proj_L").source == "alps.imaging.measure.measure"
    assert C.lookup("nope_proj_L") is None


def test_what_the_uncertainty_returns_is_declared(tmp_path):
    from alps.pipeline.uncertainty import scan_se

    out = scan_se(SimpleNamespace(signal_changed=()), {}, n_boot=0, seed=0, se_max=0.1)
    assert not [k for k in out if C.lookup(k) is None]


def test_alps_tsv_order_is_the_registry_s():
    cols = ["zz_new", "shells", "alps_se", "purity_proj_L", "qc_pass", "dxx_assoc_R", "dxx_proj_L", "alps",
            "status", "run", "session_id", "participant_id", "alps_L", "error", "reg_corr", "manufacturer",
            "time_load_s", "fa_proj_R"]
    assert C.order("alps.tsv", cols) == [
        "participant_id", "session_id", "run", "status", "error", "alps_L", "alps", "alps_se", "dxx_proj_L",
        "dxx_assoc_R", "fa_proj_R", "reg_corr", "qc_pass",
        # then alphabetically, with what the table does not declare
        "manufacturer", "purity_proj_L", "shells", "time_load_s", "zz_new"]


def test_an_undeclared_column_is_described_as_such_with_a_warning():
    with pytest.warns(C.UndescribedColumnWarning, match="'brand_new'"):
        d = C.data_dictionary(["alps", "brand_new"])
    assert d["brand_new"]["Description"].startswith("Not described")
    assert d["alps"]["LongName"] == "ALPS index (mean of hemispheres)"


def test_data_dictionaries_are_written_beside_each_table(tmp_path):
    rows = [{"participant_id": "sub-01", "status": "ok", "error": "", "alps": 1.5, "alps_L": 1.4, "alps_R": 1.6,
             "dxx_proj_L": 1e-3, "qc_flags": "", "qc_pass": True, "preprocess_reused": False, "time_load_s": 0.1,
             "prov_dwi_sha256": "a" * 64},
            {"participant_id": "sub-02", "status": "failed", "error": "preprocess: ValueError: x"}]
    _, tables = cohort_tables(rows)
    write_tables(tables, tmp_path)
    for name, df in tables.items():
        d = json.loads((tmp_path / name.replace(".tsv", ".json")).read_text())
        assert list(d) == list(pd.read_csv(tmp_path / name, sep="\t").columns) == list(df.columns), name
        assert all(e["Description"] and not e["Description"].startswith("Not described") for e in d.values())
    alps = json.loads((tmp_path / "alps.json").read_text())
    assert alps["dxx_proj_L"]["Units"] == "mm^2/s"
    assert "left projection-fibre ROI" in alps["dxx_proj_L"]["Description"]
    assert alps["status"]["Levels"] == {"ok": "processed", "failed": "not processed; 'error' says why"}


def test_label_and_lookup_from_the_command_line(capsys):
    assert C.label("alps_L") == "ALPS index, left" and C.label("unknown") == "unknown"
    C.main(["dxx_scanner_proj_L"])
    out = capsys.readouterr().out
    assert "alps.imaging.measure.measure" in out and "right" not in out.split("\n")[1]


def test_the_warning_is_an_error_in_the_test_suite():
    with pytest.raises(C.UndescribedColumnWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("error", C.UndescribedColumnWarning)
            C.data_dictionary(["brand_new"])


def test_the_report_shows_each_table_s_columns_in_words(tmp_path):
    from alps.build.report import dictionary_html

    _, tables = cohort_tables([{"participant_id": "sub-01", "status": "ok", "error": "", "alps": 1.5,
                                "dxx_proj_L": 1e-3}])
    write_tables({"alps.tsv": tables["alps.tsv"]}, tmp_path)
    text = dictionary_html(tmp_path / "alps.tsv")
    assert "<code>dxx_proj_L</code> (mm^2/s)" in text and "ALPS index, mean of alps_L and alps_R" in text
    assert dictionary_html(tmp_path / "other.csv") == ""


def test_alps_columns_names_the_function_of_a_column(capsys):
    """A newcomer's one lookup: ``alps columns NAME`` gives the stage and the function that computes it."""
    from alps.cli import main

    assert main(["columns", "dxx_scanner_proj_L", "alps_total_se"]) == 0
    out = capsys.readouterr().out
    assert "dxx_scanner_proj_L  [measure]  alps.imaging.measure.measure" in out
    assert "left projection-fibre ROI" in out and "(mm^2/s)" in out
    assert "alps_total_se  [uncertainty]  alps.pipeline.placement.columns" in out
    assert main(["columns", "no_such_column"]) == 1
    assert "no_such_column: not declared" in capsys.readouterr().out
