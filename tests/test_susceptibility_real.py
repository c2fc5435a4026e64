"""The Siemens XA30 pair of ../shared (skipped when absent): the field estimated from the P→A/A→P
b0 pair against the independently measured GRE field map, and the agreement of the two corrected
series. The full figures (timings, ALPS of each series) come from
``benchmarks/bench_distortion.py real``."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_dwi" / "siemens_prisma_xa30_pepolar"

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
if not REAL.is_dir():
    pytest.skip(f"real DWI data not found at {REAL} (only in the development checkout)", allow_module_level=True)

from alps.imaging.dti import fit_tensor  # noqa: E402
from alps.imaging.fieldmap import phasediff_to_hz  # noqa: E402
from alps.imaging.susceptibility import correct_fieldmap, correct_pepolar  # noqa: E402
from alps.imaging.volume_pairs import correct_volume_pairs, matched_volumes  # noqa: E402
from alps.io.fmap import phase_encoding  # noqa: E402
from alps.io.gradients import read_bvals_bvecs  # noqa: E402


def _series(stem):
    img = nib.load(str(REAL / f"{stem}.nii.gz"))
    bvals, bvecs = read_bvals_bvecs(REAL / f"{stem}.bval", REAL / f"{stem}.bvec")
    pe = phase_encoding(json.loads((REAL / f"{stem}.json").read_text()), source=stem)
    return np.asarray(img.dataobj, np.float32), img.affine, bvals, bvecs, pe


@pytest.fixture(scope="module")
def xa30():
    from dipy.segment.mask import median_otsu

    pa, aff, bvals, bvecs, pe_pa = _series("10_DWI_dir80_PA")
    ap, _, _, _, pe_ap = _series("17_DWI_dir80_AP")
    c_pa, c_ap, est = correct_pepolar(pa, bvals, pe_pa, ap, bvals, pe_ap, aff, inputs=("PA", "AP"))
    _, mask = median_otsu(0.5 * (c_pa.data[..., 0] + c_ap.data[..., 0]), median_radius=2, numpass=1)
    ph = nib.load(str(REAL / "9_gre_field_mapping_e2_ph.nii.gz"))
    mag = nib.load(str(REAL / "8_gre_field_mapping_e1.nii.gz"))
    meta = json.loads((REAL / "9_gre_field_mapping_e2_ph.json").read_text())
    gre, _, _ = phasediff_to_hz(np.asarray(ph.dataobj, float), np.asarray(mag.dataobj, float),
                                (meta["EchoTime1"], meta["EchoTime2"]), ph.header.get_zooms()[:3])
    g_pa = correct_fieldmap(pa, bvals, pe_pa, aff, gre, ph.affine, source="phasediff")
    g_ap = correct_fieldmap(ap, bvals, pe_ap, aff, gre, ph.affine, source="phasediff")
    return dict(pa=pa, ap=ap, aff=aff, bvals=bvals, bvecs=bvecs, pe=(pe_pa, pe_ap), c=(c_pa, c_ap), est=est,
                g=(g_pa, g_ap), mask=mask)


def _corr(x, y, m):
    return float(np.corrcoef(x[m], y[m])[0, 1])


def test_pepolar_field_agrees_with_the_gre_field_map(xa30):
    m = xa30["mask"]
    f, g = xa30["est"].field_hz, xa30["g"][0].field_hz
    assert _corr(f, g, m) > 0.85  # measured 0.91
    assert np.sqrt(np.mean((f - g)[m] ** 2)) < 10.0  # measured 7.7 Hz; each field ~20 Hz RMS
    # same sign convention: the GRE field (Siemens phase difference) corrects the pair; negated, it does not
    pa, ap = xa30["pa"], xa30["ap"]
    raw = _corr(pa[..., 0], ap[..., 0], m)
    g_pa, g_ap = xa30["g"]
    assert _corr(g_pa.data[..., 0], g_ap.data[..., 0], m) > raw + 0.1


def test_corrected_series_agree_better(xa30):
    m, bvals, bvecs, aff = xa30["mask"], xa30["bvals"], xa30["bvecs"], xa30["aff"]
    c_pa, c_ap = xa30["c"]
    assert c_ap.record.rigid_mm_deg and max(map(abs, c_ap.record.rigid_mm_deg)) < 0.3  # no motion between the b0s
    assert c_pa.record.min_jacobian > 0 and 3.0 < c_pa.record.displacement_max_mm < 20.0

    def fa(d):
        return fit_tensor(d, bvals, bvecs, aff, m).fa

    before = _corr(fa(xa30["pa"]), fa(xa30["ap"]), m)
    after = _corr(fa(c_pa.data), fa(c_ap.data), m)
    assert after > before + 0.15  # measured 0.52 -> 0.78
    v_pa, v_ap, rows = correct_volume_pairs(c_pa, c_ap, matched_volumes(bvals, bvecs, bvals, bvecs), *xa30["pe"],
                                            (3.0, 3.0, 3.0), mask=m)
    assert len(rows) == 20
    assert _corr(fa(v_pa.data), fa(v_ap.data), m) > after + 0.08  # measured 0.91
