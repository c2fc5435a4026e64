"""Field-map inputs as BIDS holds them: two DWI series with opposite ``dir-``, ``fmap/*_epi`` with
``IntendedFor`` (paths and ``bids::`` URIs) or ``B0FieldIdentifier``/``B0FieldSource``, a phase
difference with magnitudes, a field map in Hz; phase encoding and readout time from inherited
sidecars; and a clear error naming the file when something is missing or contradictory. Expected
values are written out by hand from the BIDS 1.9 text per case."""
from __future__ import annotations

import json
import math

import pytest

from alps.io.errors import InputError
from alps.io.fmap import PhaseEncoding, field_source, find_field_sources, parse_direction, phase_encoding

PA = {"PhaseEncodingDirection": "j", "TotalReadoutTime": 0.0475}
AP = {"PhaseEncodingDirection": "j-", "TotalReadoutTime": 0.0475}


def _touch(path, meta=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    if meta is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(meta))
    return path


# ----------------------------------------------------------------------------- phase encoding

@pytest.mark.parametrize("value, expected", [("i", (0, 1)), ("i-", (0, -1)), ("j", (1, 1)), ("j-", (1, -1)),
                                             ("k", (2, 1)), ("k-", (2, -1))])
def test_every_bids_direction(value, expected):
    assert parse_direction(value) == expected


@pytest.mark.parametrize("meta, message", [
    ({}, r"x.json: no PhaseEncodingDirection"),
    ({"PhaseEncodingAxis": "j", "TotalReadoutTime": 0.05}, r"x.json: only PhaseEncodingAxis .* not guessed"),
    ({"PhaseEncodingDirection": "y-", "TotalReadoutTime": 0.05}, r"x.json: PhaseEncodingDirection 'y-' is not one of"),
    ({"PhaseEncodingDirection": "j"}, r"x.json: no TotalReadoutTime"),
    ({"PhaseEncodingDirection": "j", "TotalReadoutTime": -0.05}, r"x.json: TotalReadoutTime must be positive"),
    ({"PhaseEncodingDirection": "j", "TotalReadoutTime": 0.05, "EffectiveEchoSpacing": 0.0005,
      "ReconMatrixPE": 128}, r"x.json: TotalReadoutTime 0.05 s contradicts .* 0.0635 s"),
    ({"PhaseEncodingDirection": "j", "PhaseEncodingAxis": "i", "TotalReadoutTime": 0.05}, r"contradicts"),
])
def test_missing_or_contradictory_phase_encoding_is_an_error_naming_the_sidecar(meta, message):
    with pytest.raises(InputError, match=message):
        phase_encoding(meta, source="x.json")


def test_readout_time_derived_from_echo_spacing_says_so():
    pe = phase_encoding({"PhaseEncodingDirection": "j-", "EffectiveEchoSpacing": 0.00066999, "ReconMatrixPE": 72},
                        source="s.json")
    assert pe.readout_s == pytest.approx(0.00066999 * 71) and pe.readout_from.startswith("EffectiveEchoSpacing")
    assert pe.displacement_per_hz() == pytest.approx(-0.00066999 * 71)
    # the real XA30 sidecars agree with themselves (TotalReadoutTime = EES × (N − 1))
    pe = phase_encoding({"PhaseEncodingDirection": "j", "TotalReadoutTime": 0.0475693,
                         "EffectiveEchoSpacing": 0.00066999, "ReconMatrixPE": 72})
    assert pe == PhaseEncoding("j", 1, 1, 0.0475693, "sidecar", "TotalReadoutTime")


# ----------------------------------------------------------------------------- discovery

def test_two_dwi_series_with_opposite_dir_pair_up_with_inherited_readout(tmp_path):
    root = tmp_path
    (root / "dwi.json").write_text(json.dumps({"TotalReadoutTime": 0.05}))  # inherited by both
    ap = _touch(root / "sub-01/ses-1/dwi/sub-01_ses-1_dir-AP_dwi.nii.gz", {"PhaseEncodingDirection": "j-"})
    pa = _touch(root / "sub-01/ses-1/dwi/sub-01_ses-1_dir-PA_dwi.nii.gz", {"PhaseEncodingDirection": "j"})
    src = field_source(ap, root)
    assert src.kind == "pepolar-dwi" and src.images == (pa,) and src.via == "dir- pair"
    assert src.dwi_pe.direction == "j-" and src.dwi_pe.readout_s == 0.05 and src.pe[0].direction == "j"
    assert field_source(pa, root).images == (ap,)


def test_same_phase_encoding_under_opposite_dir_labels_is_a_contradiction(tmp_path):
    ap = _touch(tmp_path / "sub-01/dwi/sub-01_dir-AP_dwi.nii.gz", AP)
    _touch(tmp_path / "sub-01/dwi/sub-01_dir-PA_dwi.nii.gz", AP)
    with pytest.raises(InputError, match=r"sub-01_dir-AP_dwi.nii.gz \(dir-AP\) and sub-01_dir-PA_dwi.nii.gz "
                                         r"\(dir-PA\) have the same PhaseEncodingDirection 'j-'"):
        find_field_sources(ap, tmp_path)


def test_a_dwi_pair_without_the_polarity_is_an_error_naming_the_sidecar(tmp_path):
    ap = _touch(tmp_path / "sub-01/dwi/sub-01_dir-AP_dwi.nii.gz", {"PhaseEncodingAxis": "j", "TotalReadoutTime": 0.05})
    _touch(tmp_path / "sub-01/dwi/sub-01_dir-PA_dwi.nii.gz", PA)
    with pytest.raises(InputError, match=r"sub-01_dir-AP_dwi.json: only PhaseEncodingAxis"):
        find_field_sources(ap, tmp_path)


def test_no_field_source_is_not_an_error_even_without_phase_encoding(tmp_path):
    dwi = _touch(tmp_path / "sub-01/dwi/sub-01_dwi.nii.gz", {})
    assert find_field_sources(dwi, tmp_path) == [] and field_source(dwi, tmp_path) is None


@pytest.mark.parametrize("intended", ["ses-1/dwi/sub-01_ses-1_dwi.nii.gz", "bids::sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz",
                                      ["other.nii.gz", "ses-1/dwi/sub-01_ses-1_dwi.nii.gz"]])
def test_fmap_epi_intended_for_the_dwi(tmp_path, intended):
    dwi = _touch(tmp_path / "sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz", AP)
    epi_pa = _touch(tmp_path / "sub-01/ses-1/fmap/sub-01_ses-1_dir-PA_epi.nii.gz", dict(PA, IntendedFor=intended))
    epi_ap = _touch(tmp_path / "sub-01/ses-1/fmap/sub-01_ses-1_dir-AP_epi.nii.gz", dict(AP, IntendedFor=intended))
    src = field_source(dwi, tmp_path)
    assert src.kind == "pepolar-epi" and src.images == (epi_pa, epi_ap) and src.via == "IntendedFor"
    assert [p.direction for p in src.pe] == ["j", "j-"]


def test_fmap_not_intended_for_the_dwi_is_ignored(tmp_path):
    dwi = _touch(tmp_path / "sub-01/dwi/sub-01_dwi.nii.gz", AP)
    _touch(tmp_path / "sub-01/fmap/sub-01_dir-PA_epi.nii.gz", dict(PA, IntendedFor="func/sub-01_bold.nii.gz"))
    _touch(tmp_path / "sub-01/fmap/sub-01_dir-LR_epi.nii.gz", PA)  # no association at all
    assert find_field_sources(dwi, tmp_path) == []


def test_b0_field_identifier_and_source(tmp_path):
    dwi = _touch(tmp_path / "sub-01/dwi/sub-01_dwi.nii.gz", dict(AP, B0FieldSource=["pepolar0"]))
    want = _touch(tmp_path / "sub-01/fmap/sub-01_acq-b0_dir-PA_epi.nii.gz", dict(PA, B0FieldIdentifier="pepolar0"))
    # IntendedFor alone does not qualify once the DWI names its B0FieldSource
    _touch(tmp_path / "sub-01/fmap/sub-01_acq-other_dir-PA_epi.nii.gz",
           dict(PA, IntendedFor="dwi/sub-01_dwi.nii.gz", B0FieldIdentifier="other"))
    srcs = find_field_sources(dwi, tmp_path)
    assert [(s.kind, s.images, s.via) for s in srcs] == [("pepolar-epi", (want,), "B0FieldIdentifier")]


def test_epi_without_readout_time_is_an_error_naming_it(tmp_path):
    dwi = _touch(tmp_path / "sub-01/dwi/sub-01_dwi.nii.gz", AP)
    _touch(tmp_path / "sub-01/fmap/sub-01_dir-PA_epi.nii.gz", {"PhaseEncodingDirection": "j",
                                                              "IntendedFor": "dwi/sub-01_dwi.nii.gz"})
    with pytest.raises(InputError, match=r"sub-01_dir-PA_epi.json: no TotalReadoutTime"):
        find_field_sources(dwi, tmp_path)


def test_phasediff_with_magnitudes(tmp_path):
    dwi = _touch(tmp_path / "sub-01/dwi/sub-01_dwi.nii.gz", AP)
    meta = {"EchoTime1": 0.00492, "EchoTime2": 0.00738, "IntendedFor": ["dwi/sub-01_dwi.nii.gz"]}
    ph = _touch(tmp_path / "sub-01/fmap/sub-01_phasediff.nii.gz", meta)
    m1 = _touch(tmp_path / "sub-01/fmap/sub-01_magnitude1.nii.gz")
    m2 = _touch(tmp_path / "sub-01/fmap/sub-01_magnitude2.nii.gz")
    src = field_source(dwi, tmp_path)
    assert src.kind == "phasediff" and src.images == (ph, m1, m2) and src.echo_times == (0.00492, 0.00738)
    m1.unlink()
    m2.unlink()
    with pytest.raises(InputError, match=r"sub-01_phasediff.nii.gz: no sub-01_magnitude1"):
        field_source(dwi, tmp_path)


def test_phasediff_without_echo_times_is_an_error_naming_its_sidecar(tmp_path):
    dwi = _touch(tmp_path / "sub-01/dwi/sub-01_dwi.nii.gz", AP)
    _touch(tmp_path / "sub-01/fmap/sub-01_phasediff.nii.gz", {"EchoTime2": 0.007, "IntendedFor": "dwi/sub-01_dwi.nii.gz"})
    _touch(tmp_path / "sub-01/fmap/sub-01_magnitude1.nii.gz")
    with pytest.raises(InputError, match=r"sub-01_phasediff.json: a phase difference needs EchoTime1 < EchoTime2"):
        field_source(dwi, tmp_path)


def test_fieldmap_units(tmp_path):
    dwi = _touch(tmp_path / "sub-01/dwi/sub-01_dwi.nii.gz", AP)
    fm = _touch(tmp_path / "sub-01/fmap/sub-01_fieldmap.nii.gz", {"Units": "rad/s", "IntendedFor": "dwi/sub-01_dwi.nii.gz"})
    mag = _touch(tmp_path / "sub-01/fmap/sub-01_magnitude.nii.gz")
    src = field_source(dwi, tmp_path)
    assert src.kind == "fieldmap" and src.images == (fm, mag) and src.hz_per_unit == pytest.approx(1 / (2 * math.pi))
    fm.with_name("sub-01_fieldmap.json").write_text(json.dumps({"IntendedFor": "dwi/sub-01_dwi.nii.gz"}))
    with pytest.raises(InputError, match=r"sub-01_fieldmap.json: a field map needs Units"):
        field_source(dwi, tmp_path)


def test_preference_order_and_dwi_without_phase_encoding(tmp_path):
    ap = _touch(tmp_path / "sub-01/dwi/sub-01_dir-AP_dwi.nii.gz", AP)
    _touch(tmp_path / "sub-01/dwi/sub-01_dir-PA_dwi.nii.gz", PA)
    _touch(tmp_path / "sub-01/fmap/sub-01_phasediff.nii.gz",
           {"EchoTime1": 0.01, "EchoTime2": 0.01246, "IntendedFor": "dwi/sub-01_dir-AP_dwi.nii.gz"})
    _touch(tmp_path / "sub-01/fmap/sub-01_magnitude1.nii.gz")
    assert [s.kind for s in find_field_sources(ap, tmp_path)] == ["pepolar-dwi", "phasediff"]
    ap.with_name("sub-01_dir-AP_dwi.json").write_text(json.dumps({"TotalReadoutTime": 0.05}))
    with pytest.raises(InputError, match=r"sub-01_dir-AP_dwi.json: no PhaseEncodingDirection"):
        find_field_sources(ap, tmp_path)


def test_the_shared_xa30_sidecars():
    from pathlib import Path

    real = Path(__file__).resolve().parents[2] / "shared/data/real_dwi/siemens_prisma_xa30_pepolar"
    if not real.is_dir():
        pytest.skip(f"real data not found at {real}")
    pes = {}
    for name in ("10_DWI_dir80_PA", "17_DWI_dir80_AP"):
        pes[name] = phase_encoding(json.loads((real / f"{name}.json").read_text()), source=name)
    assert pes["10_DWI_dir80_PA"].opposes(pes["17_DWI_dir80_AP"])
    assert pes["10_DWI_dir80_PA"].readout_s == pytest.approx(0.0475693)
