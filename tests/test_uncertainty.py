"""The per-scan standard errors of alps.tsv (alps.pipeline.uncertainty) against independent noise
realisations of a phantom scan, measured the way the pipeline measures (WLS tensor fit, trilinear
ROI weights through an oblique registration, template axes)."""
from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from alps.imaging import dti, measure
from alps.imaging.registration import Registration
from alps.imaging.roi import DEFAULT_CENTERS_MM
from alps.io.gradients import voxel_to_fsl
from alps.pipeline.uncertainty import scan_se

PROJ = np.diag([0.55e-3, 0.40e-3, 1.10e-3])   # template axes: fibre along z
ASSOC = np.diag([0.55e-3, 1.05e-3, 0.42e-3])  # fibre along y
S0, SNR = 1000.0, 20.0


def _scheme():
    """One b0 + 12 directions at b = 1500 (the real tilt scans' scheme), voxel axes."""
    dirs = []
    for a, b in ((2, 1), (-2, 1), (1, 2), (-1, 2)):
        v = np.array([0.0, a, b]) / np.sqrt(5)
        dirs += [v, np.roll(v, 1), np.roll(v, 2)]
    return np.r_[0.0, np.full(12, 1500.0)], np.vstack([[0, 0, 0], dirs])


@pytest.fixture(scope="module")
def phantom():
    """A 3 mm grid around the four ALPS ROIs of a head rotated 12/-8/10 degrees against the template."""
    t2s = np.eye(4)
    t2s[:3, :3] = Rotation.from_euler("xyz", [12.0, -8.0, 10.0], degrees=True).as_matrix()
    t2s[:3, 3] = [2.0, -4.0, 5.0]
    reg = Registration(kind="affine", template_to_subject=t2s, forward_transforms=[], inverse_transforms=[])
    centres = reg.points_to_subject(np.array(list(DEFAULT_CENTERS_MM.values())))
    lo, hi = centres.min(0) - 9.0, centres.max(0) + 9.0
    shape = tuple(int(v) for v in np.ceil((hi - lo) / 3.0) + 1)
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    aff[:3, 3] = lo
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    x_tpl = reg.points_to_template(ijk * 3.0 + lo)[:, 0]
    rot = t2s[:3, :3]  # template axes -> subject world (= voxel) axes
    d_tpl = np.where((np.abs(x_tpl) < 32.0)[:, None, None], PROJ, ASSOC)
    tensor = np.einsum("ij,mjk,lk->mil", rot, d_tpl, rot).reshape(shape + (3, 3))
    bvals, g = _scheme()
    clean = S0 * np.exp(-bvals * np.einsum("ni,...ij,nj->...n", g, tensor, g))
    weights = measure.roi_weights("spheres", shape, aff, reg)
    return SimpleNamespace(reg=reg, aff=aff, shape=shape, clean=clean, bvals=bvals, g=g, weights=weights)


def _noisy(ph, rng):
    sigma = S0 / SNR
    return np.abs(ph.clean + rng.normal(0, sigma, ph.clean.shape) + 1j * rng.normal(0, sigma, ph.clean.shape))


def _point(ph, data):
    """ALPS of one realisation, as the pipeline's measure stage computes it (WLS fit, here of
    the ROI voxels only)."""
    sel = np.any([w > 0 for w in ph.weights.values()], axis=0)
    tensor = np.zeros(ph.shape + (3, 3))
    tensor[sel] = dti.wls_fit(data[sel], ph.bvals, ph.g)
    v = measure.measure(tensor, ph.aff, ph.reg, ph.weights)
    return [v["alps"], v["alps_L"], v["alps_R"]]


def _write_scan(ph, data, folder):
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), ph.aff), folder / "dwi.nii.gz")
    np.savetxt(folder / "dwi.bval", ph.bvals[None], fmt="%g")
    np.savetxt(folder / "dwi.bvec", voxel_to_fsl(ph.g, ph.aff).T, fmt="%.8f")
    return SimpleNamespace(dwi=folder / "dwi.nii.gz", bval=folder / "dwi.bval", bvec=folder / "dwi.bvec")


def _record(ph, **params):
    return {"provenance": {"parameters": {"denoise": False, "gibbs": False, "motion_correction": False, **params}},
            "shape": list(ph.shape), "gradcheck": None}


def test_scan_se_matches_independent_noise_realisations(phantom, tmp_path):
    """Mean per-scan SE (one noisy scan at a time) = SD of the index over 300 independent noise
    realisations, for the mean index and each hemisphere (within 15 %)."""
    rng = np.random.default_rng(2026)
    true_sd = np.std([_point(phantom, _noisy(phantom, rng)) for _ in range(300)], axis=0, ddof=1)
    ses = []
    for k in range(12):
        item = _write_scan(phantom, _noisy(phantom, rng), tmp_path / f"scan{k}")
        r = scan_se(item, _record(phantom), phantom.reg, phantom.weights, n_boot=100, seed=k, se_max=0.05)
        assert r["se_note"] == ""
        ses.append([r["alps_se"], r["alps_L_se"], r["alps_R_se"]])
    ratio = np.mean(ses, axis=0) / true_sd
    assert np.all((ratio > 0.85) & (ratio < 1.15)), (ratio, true_sd)
    # hemisphere indices average half the ROIs: noisier than the mean index
    assert true_sd[1] > 1.2 * true_sd[0] and true_sd[2] > 1.2 * true_sd[0]


def test_scan_se_is_seeded_and_flags(phantom, tmp_path):
    item = _write_scan(phantom, _noisy(phantom, np.random.default_rng(1)), tmp_path / "scan")
    rec = _record(phantom)
    a = scan_se(item, rec, phantom.reg, phantom.weights, n_boot=50, seed=3, se_max=0.05)
    b = scan_se(item, rec, phantom.reg, phantom.weights, n_boot=50, seed=3, se_max=0.05)
    c = scan_se(item, rec, phantom.reg, phantom.weights, n_boot=50, seed=4, se_max=0.05)
    cols = ["alps_se", "alps_L_se", "alps_R_se"]
    assert [a[k] for k in cols] == [b[k] for k in cols]
    assert a["alps_se"] != c["alps_se"]
    assert not a["se_high"]
    assert scan_se(item, rec, phantom.reg, phantom.weights, n_boot=50, seed=3, se_max=a["alps_se"] / 2)["se_high"]


def test_scan_se_not_computed_on_a_changed_signal(phantom, tmp_path):
    item = _write_scan(phantom, phantom.clean, tmp_path / "scan")
    r = scan_se(item, _record(phantom, denoise=True), phantom.reg, phantom.weights, n_boot=50, seed=0, se_max=0.05)
    assert np.isnan(r["alps_se"]) and "denoise" in r["se_note"] and not r["se_high"]
    r0 = scan_se(item, _record(phantom), phantom.reg, phantom.weights, n_boot=0, seed=0, se_max=0.05)
    assert np.isnan(r0["alps_L_se"]) and r0["se_note"] == "se_replicates=0"
    with pytest.raises(RuntimeError, match="differs from the preprocessed"):
        bad = dict(_record(phantom), shape=[1, 2, 3])
        scan_se(item, bad, phantom.reg, phantom.weights, n_boot=50, seed=0, se_max=0.05)


def test_measured_vs_truth_shows_se_bars_and_their_coverage():
    """Figure S2 with ``se=``: ±1.96 SE bars and the share of scans whose interval holds the
    planted value — about 95 % when the SEs are the noise's SD, about 68 % when they are half."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from alps.figures import measured_vs_truth

    rng = np.random.default_rng(3)
    truth = rng.uniform(1.2, 1.7, 4000)
    sd = rng.uniform(0.02, 0.05, truth.size)
    df = pd.DataFrame({"alps_truth": truth, "alps": truth + rng.normal(0, sd), "alps_se": sd})

    def coverage(frame):
        ax = measured_vs_truth(frame, se="alps_se")
        text = ax.texts[0].get_text()
        ax.figure.canvas.draw()
        assert ax.get_xlim()[0] > 0.5 and ax.get_ylim()[0] > 0.5  # the axes frame the points (not 0: the SEs)
        plt.close(ax.figure)
        return float(text.split("within ±1.96 SE: ")[1].split(" %")[0])

    assert 93 <= coverage(df) <= 97
    assert 63 <= coverage(df.assign(alps_se=df["alps_se"] / 2)) <= 73
    ax = measured_vs_truth(df)  # without se: no bars, no coverage line
    assert "SE" not in ax.texts[0].get_text() and not ax.containers
    plt.close(ax.figure)
