"""Are the per-scan total standard errors (``alps_total_se`` = √(``alps_se``² + ``alps_reg_se``²),
alps.tsv) calibrated? Coverage of the 95 % intervals ``alps ± 1.96 alps_total_se`` on simulated
subjects drawn as the default cohort draws them (pose up to 10°, translation, scale, tissue
diffusivities, SNR 25, the cohort's 5 b0 + 32 directions at b = 1000).

What an interval can cover is what the estimator recovers without noise: the same scan
noise-free (its "twin": same pose, tissue and planted values), measured through the scan's own
registration and ROIs. On the simulated phantom that value sits below the planted one by the
discretisation of the phantom on the native grid (−0.003 to −0.007; docs/validation.md), not by
the registration: the registration SE is ~0.0005 there. So the test checks the coverage
against the noise-free twin (95 % within its binomial uncertainty, the z-scores' SD near 1, and
neither halved nor doubled SEs would pass), that the pipeline's own ``alps_se`` of each scan is
this estimator's SE, reports the coverage against the planted value, and checks that the
registration part does not inflate the total. The 100-subject default cohort's
figures (coverage of the planted value 92 %, Wilson 85–96 %) are in docs/validation.md
(``benchmarks/reg_se_coverage.py``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alps import pipeline as P
from alps.imaging import dti, measure, noise
from alps.imaging import tensor as T
from alps.imaging.roi import ROI_NAMES, default_spheres
from alps.io.gradients import fsl_to_voxel
from alps.simulation import (DEFAULT_SEED, Pose, default_scheme, make_template_fields, noise_sigma,
                             simulate_cohort, simulate_subject)

pytestmark = pytest.mark.slow

SNR = 25.0             # the default cohort's
N_REALISATIONS = 100   # noise realisations of each subject (ROI box only)
N_BOOT = 50            # wild-bootstrap replicates of each realisation's noise SE (the pipeline: 200)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n."""
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def _subject_intervals(gt, row, out, fields, scheme, rng) -> pd.DataFrame:
    """Noise realisations of one subject in the box of its ROI voxels: the index as the
    pipeline fits it (WLS) through the scan's registration and ROIs, the noise SE as
    alps.pipeline.uncertainty computes it (wild bootstrap of the ROI voxels), the scan's
    registration SE from alps.tsv; and the noise-free twin's index."""
    pose = Pose((gt.rot_x_deg, gt.rot_y_deg, gt.rot_z_deg), (gt.trans_x_mm, gt.trans_y_mm, gt.trans_z_mm), gt.scale)
    planted = {"alps_L": gt.planted_alps_L, "alps_R": gt.planted_alps_R, "lam_par": gt.lambda_par,
               "lam_perp": gt.lambda_perp}
    img, bvals, bvecs, ex = simulate_subject(fields, pose, planted, snr=None, scheme=scheme,
                                             orientation=gt.orientation, dtype="float32")
    aff = ex["affine"]
    lay = P.find_scan(out, gt.participant_id)
    reg = P.load_registration(lay.read_preprocess(), lay.dir)
    weights = measure.sphere_weights(img.shape[:3], aff, reg, default_spheres())
    idx = np.argwhere(np.any([w > 0 for w in weights.values()], axis=0))
    box = tuple(slice(a, b) for a, b in zip(idx.min(0), idx.max(0) + 1))
    wb = {k: w[box] for k, w in weights.items()}
    sel = np.any([w > 0 for w in wb.values()], axis=0)
    bv = fsl_to_voxel(bvecs, aff)
    rotation = reg.rotation @ T.polar_rotation(aff[:3, :3])
    clean = np.asarray(img.dataobj[box + (slice(None),)], np.float64)

    def index(signal):
        tensor = np.zeros(signal.shape[:3] + (3, 3))
        tensor[sel] = dti.wls_fit(signal[sel], bvals, bv)
        v = measure.measure(tensor, aff, reg, wb)
        return {k: v[k] for k in ("alps", "alps_L", "alps_R")}

    twin = index(clean)
    sigma = noise_sigma(fields, SNR)
    rows = []
    for m in range(N_REALISATIONS):
        noisy = np.abs(clean + rng.normal(0, sigma, clean.shape) + 1j * rng.normal(0, sigma, clean.shape))
        boot = noise.bootstrap_roi_alps(noisy, bvals, bv, wb, rotation, n_boot=N_BOOT, seed=m)
        v = index(noisy)
        for k in ("alps", "alps_L", "alps_R"):
            rows.append({"participant_id": gt.participant_id, "index": k, "value": v[k], "twin": twin[k],
                         "planted": getattr(gt, k), "se": float(boot[k].std(ddof=1)),
                         "reg_se": float(row[f"{k}_reg_se"])})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def intervals(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration")
    truth = simulate_cohort(root / "bids", n_mo=1, n_vm=1, n_hc=1, snr=SNR, progress=False)
    df = P.run_cohort(root / "bids", root / "out", n_jobs=2, progress=False, qc_png=False).set_index("participant_id")
    assert (df["status"] == "ok").all(), df["error"]
    fields = make_template_fields()
    scheme = default_scheme(seed=DEFAULT_SEED)
    rng = np.random.default_rng(20260505)
    frames = [_subject_intervals(g, df.loc[g.participant_id], root / "out", fields, scheme, rng)
              for g in truth.itertuples(index=False)]
    return {"runs": df, "intervals": pd.concat(frames, ignore_index=True)}


def coverage(frame: pd.DataFrame, reference: str, *, scale: float = 1.0) -> dict:
    """Share of the intervals ``value ± 1.96 scale·total_se`` holding ``reference``, its Wilson
    interval and the SD of the z-scores."""
    total = scale * np.hypot(frame["se"], frame["reg_se"])
    z = (frame["value"] - frame[reference]) / total
    k = int((z.abs() <= 1.96).sum())
    lo, hi = wilson(k, len(z))
    return {"coverage": k / len(z), "lo": lo, "hi": hi, "z_sd": float(z.std(ddof=1)), "z_mean": float(z.mean())}


def calibrated(c: dict) -> bool:
    """The coverage is consistent with 95 % and the z-scores' SD with 1 (SE of the SD of n
    z-scores ≈ 1/√(2n): ±0.15 is more than 3 SE for the 180 intervals here)."""
    return c["lo"] <= 0.95 <= c["hi"] and 0.85 <= c["z_sd"] <= 1.15


@pytest.mark.parametrize("index", ["alps", "alps_L", "alps_R"])
def test_total_se_intervals_cover_what_the_estimator_recovers(intervals, index):
    """95 % intervals from the total SE hold the noise-free twin's index in ~95 % of the noise
    realisations (the mean index and each hemisphere); the same test refuses SEs halved or
    doubled, so it can fail."""
    d = intervals["intervals"]
    d = d[d["index"] == index]
    c = coverage(d, "twin")
    assert calibrated(c), c
    assert 0.90 <= c["coverage"] <= 0.99, c
    assert not calibrated(coverage(d, "twin", scale=0.5))
    assert not calibrated(coverage(d, "twin", scale=2.0))


def test_the_pipeline_reports_the_calibrated_se(intervals):
    """The SEs checked above are the estimator's; the pipeline's own ``alps_se`` of each scan
    (200 replicates, the int16 scan) is that estimator's SE of the subject: within 0.7–1.4 of the
    mean over the noise realisations (one scan's SE varies by about 10 % between realisations),
    so a pipeline reporting half or twice its SE fails here."""
    d, runs = intervals["intervals"], intervals["runs"]
    mean_se = d.groupby(["participant_id", "index"])["se"].mean()
    for k in ("alps", "alps_L", "alps_R"):
        ratio = runs[f"{k}_se"] / mean_se.xs(k, level="index").reindex(runs.index)
        assert np.all((ratio > 0.7) & (ratio < 1.4)), (k, ratio)


def test_planted_value_coverage_and_the_registration_share(intervals):
    """Against the planted value the intervals lose a little coverage to the phantom's
    discretisation on the native grid (the twin's index − planted: within the cohort's |bias| ≤
    0.01); the registration SE is real (> 0) but small beside the noise SE on these accurately
    registered heads, so the total does not inflate the intervals (total/noise SE ≤ 1.01)."""
    d = intervals["intervals"]
    a = d[d["index"] == "alps"]
    bias = (a.groupby("participant_id")["twin"].first() - a.groupby("participant_id")["planted"].first())
    assert (bias.abs() <= 0.01).all(), bias
    c = coverage(a, "planted")
    assert c["coverage"] >= 0.85, c  # reported in docs/validation.md; 93-97 % is the target
    runs = intervals["runs"]
    for k in ("alps", "alps_L", "alps_R"):
        assert np.all((runs[f"{k}_reg_se"] > 0) & (runs[f"{k}_reg_se"] < 0.1 * runs[f"{k}_se"])), runs[f"{k}_reg_se"]
        np.testing.assert_allclose(runs[f"{k}_total_se"], np.hypot(runs[f"{k}_se"], runs[f"{k}_reg_se"]))
        assert np.all(runs[f"{k}_total_se"] <= 1.01 * runs[f"{k}_se"])
    assert (runs[[f"roi_shift_{n}" for n in ROI_NAMES]] == 0).all().all()  # the placement left the spheres
