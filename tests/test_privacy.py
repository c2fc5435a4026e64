"""Privacy: identifying fields of the input sidecars (PatientName, PatientID, InstitutionName,
AcquisitionDateTime...) and of the input NIfTI header never reach any output file.

Uses the bad-input cohort of test_bad_inputs (built once per session): its good scan, a scan
failing validation and the noise scan (registration rejected) all carry a sidecar with
identifying fields, and the good scan's NIfTI header carries identifying text in ``descrip``,
``aux_file`` and a header extension. Every output file — text, JSON, TSV, transforms, PNG, and
NIfTI (decompressed) — is searched for every value.
"""
from __future__ import annotations

import gzip
import json

import pytest

from test_bad_inputs import HEADER_TEXT, IDENTIFYING, bad_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return bad_cohort(tmp_path_factory)


def _needles():
    vals = {str(v) for k, v in IDENTIFYING.items() if k not in ("PatientSex", "PatientWeight")}
    vals |= {"Doe^Janet", "Janet", "Quincy", "88421977", "Elsewhere", "Springfield", "Hibbert", "Riviera",
             "1956-04-12", "2024-03-17", "09:41:27", "7731904", "55120938"}
    vals |= {HEADER_TEXT[:20]}
    return sorted(vals)


def _contents(path):
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw += gzip.decompress(raw)
    return raw


def test_inputs_really_carry_identifying_data(cohort):
    side = json.loads((cohort["root"] / "sub-good" / "dwi" / "sub-good_dwi.json").read_text())
    assert side["PatientName"] == IDENTIFYING["PatientName"]
    assert HEADER_TEXT.encode() in _contents(cohort["root"] / "sub-good" / "dwi" / "sub-good_dwi.nii.gz")


def test_no_identifying_value_in_any_output(cohort):
    out = cohort["out"]
    files = [p for p in out.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".json", ".tsv", ".gz", ".png", ".mat", ".txt"} <= kinds, kinds  # the search saw every kind
    assert (out / "sub-good" / "dwi" / "sub-good_desc-alps.json").is_file()
    leaks = []
    for p in files:
        data = _contents(p)
        for needle in _needles():
            for form in {needle, needle.lower(), needle.upper()}:
                if form.encode() in data:
                    leaks.append((str(p.relative_to(out)), needle))
    assert not leaks, leaks


def test_sidecar_keys_not_in_outputs(cohort):
    """No output even names an identifying field (the pipeline reads no sidecar)."""
    out = cohort["out"]
    for p in list(out.rglob("*.json")) + list(out.rglob("*.tsv")):
        text = p.read_text()
        for key in IDENTIFYING:
            assert key not in text, (p, key)
