"""The per-scan standard errors of alps.tsv (alps.pipeline.uncertainty) against independent noise
realisations of a phantom scan, measured the way the pipeline measures (WLS tensor fit, trilinear
ROI weights through an oblique registration, template axes)."""
from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from alps.imaging import dti, estimators, measure
from alps.imaging.registration import Registration
from alps.imaging.roi import DEFAULT_CENTERS_MM
from alps.io.gradients import voxel_to_fsl
from alps.pipeline.contract import PreparedDWI, Preprocessed, select
from alps.pipeline.params import PreprocessParams
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


def _pre(ph, item, **params) -> Preprocessed:
    """Stage 1's result for the phantom scan ``item`` (as a reused stage 1 describes it)."""
    p = PreprocessParams(**params)
    return Preprocessed(item=item, layout=None, params=p, dwi=PreparedDWI.from_files(item, p, shape=ph.shape),
                        registration=ph.reg, acquisition={}, gradcheck=None, motion=None, record={})


def test_scan_se_matches_independent_noise_realisations(phantom, tmp_path):
    """Mean per-scan SE (one noisy scan at a time) = SD of the index over 300 independent noise
    realisations, for the mean index and each hemisphere (within 15 %)."""
    rng = np.random.default_rng(2026)
    true_sd = np.std([_point(phantom, _noisy(phantom, rng)) for _ in range(300)], axis=0, ddof=1)
    ses = []
    for k in range(12):
        item = _write_scan(phantom, _noisy(phantom, rng), tmp_path / f"scan{k}")
        r = scan_se(_pre(phantom, item), phantom.weights, n_boot=100, seed=k, se_max=0.05)
        assert r["se_note"] == ""
        ses.append([r["alps_se"], r["alps_L_se"], r["alps_R_se"]])
    ratio = np.mean(ses, axis=0) / true_sd
    assert np.all((ratio > 0.85) & (ratio < 1.15)), (ratio, true_sd)
    # hemisphere indices average half the ROIs: noisier than the mean index
    assert true_sd[1] > 1.2 * true_sd[0] and true_sd[2] > 1.2 * true_sd[0]


def test_scan_se_is_seeded_and_flags(phantom, tmp_path):
    item = _write_scan(phantom, _noisy(phantom, np.random.default_rng(1)), tmp_path / "scan")
    pre = _pre(phantom, item)
    a = scan_se(pre, phantom.weights, n_boot=50, seed=3, se_max=0.05)
    b = scan_se(pre, phantom.weights, n_boot=50, seed=3, se_max=0.05)
    c = scan_se(pre, phantom.weights, n_boot=50, seed=4, se_max=0.05)
    cols = ["alps_se", "alps_L_se", "alps_R_se"]
    assert [a[k] for k in cols] == [b[k] for k in cols]
    assert a["alps_se"] != c["alps_se"]
    assert not a["se_high"]
    assert scan_se(pre, phantom.weights, n_boot=50, seed=3, se_max=a["alps_se"] / 2)["se_high"]


def test_scan_se_not_computed_on_a_changed_signal(phantom, tmp_path):
    item = _write_scan(phantom, phantom.clean, tmp_path / "scan")
    r = scan_se(_pre(phantom, item, denoise=True), phantom.weights, n_boot=50, seed=0, se_max=0.05)
    assert np.isnan(r["alps_se"]) and "denoise" in r["se_note"] and not r["se_high"]
    r0 = scan_se(_pre(phantom, item), phantom.weights, n_boot=0, seed=0, se_max=0.05)
    assert np.isnan(r0["alps_L_se"]) and r0["se_note"] == "se_replicates=0"
    with pytest.raises(RuntimeError, match="differs from the preprocessed"):
        PreparedDWI.from_files(item, PreprocessParams(), shape=(1, 2, 3))


# ---------------------------------------------------------------- multi-shell scans, other tensor models

def _multishell_scan(model, n_vox):
    """A multi-shell scan of the four ROIs, ``n_vox`` voxels each (a (4·n_vox, 1, 1) grid, 2 mm,
    identity registration, one-hot ROI weights) with the multi-shell phantom's planted tissue
    (alps.validation.multishell), and stage 1's parameters: DTI on b = 1000 (12 directions) /
    2000 (48), fitted on b = 0 and 1000 only; DKI on 1000/2000 with kurtosis 0.6; FW-DTI on
    500/1000 with free water 0.15."""
    from alps.imaging.roi import ROI_NAMES
    from alps.validation.multishell import _scheme, phantom_signal, roi_tensors

    if model == "dti":
        b1, g1 = _scheme((1000,), 12, 2, 1)
        b2, g2 = _scheme((2000,), 48, 0, 2)
        bvals, g, planted = np.r_[b1, b2], np.vstack([g1, g2]), {}
    else:
        bvals, g = _scheme((1000, 2000) if model == "dki" else (500, 1000), 20, 3, 3)
        planted = {"kurtosis": 0.6} if model == "dki" else {"free_water": 0.15}
    D = roi_tensors(1.5)
    clean = np.concatenate([np.tile(phantom_signal(D[n], bvals, g, **planted), (n_vox, 1)) for n in ROI_NAMES])
    weights = {n: np.zeros((4 * n_vox, 1, 1)) for n in ROI_NAMES}
    for i, n in enumerate(ROI_NAMES):
        weights[n][i * n_vox:(i + 1) * n_vox] = 1.0
    reg = Registration(kind="affine", template_to_subject=np.eye(4), forward_transforms=[], inverse_transforms=[])
    ph = SimpleNamespace(reg=reg, aff=np.diag([2.0, 2.0, 2.0, 1.0]), shape=(4 * n_vox, 1, 1),
                         clean=clean[:, None, None, :], bvals=bvals, g=g, weights=weights)
    return ph, ({} if model == "dti" else {"tensor_model": model})


def _index(ph, data, params):
    """The index as the pipeline computes it on this scan: the volumes its model uses
    (alps.pipeline.contract.select), the model's fit (the stage-1 fit functions), fixed ROI weights."""
    p = PreprocessParams(**params)
    idx, _ = select(ph.bvals, p)
    q = estimators.fit_tensors(data.reshape(-1, len(ph.bvals))[:, idx], ph.bvals[idx], ph.g[idx], model=p.tensor_model)
    return measure.measure(q.reshape(ph.shape + (3, 3)), ph.aff, ph.reg, ph.weights)["alps"]


@pytest.mark.slow
@pytest.mark.parametrize("model, n_vox, n_real, n_scans, n_boot", [("dti", 6, 400, 8, 100), ("dki", 6, 150, 4, 50),
                                                                   ("fwdti", 4, 100, 4, 40)])
def test_scan_se_of_multishell_and_other_models_is_the_spread_of_their_estimator(tmp_path, model, n_vox, n_real,
                                                                                   n_scans, n_boot):
    """alps_se is the SD of the index the scan reports, over independent noise realisations: on a
    multi-shell scan the DTI fit uses b <= max_bval only, FW-DTI and DKI fit their own model. The
    SEs used to bootstrap a WLS DTI fit of every volume: another estimator, 0.42-0.58 of the true
    spread of these (checked on the commit before)."""
    ph, params = _multishell_scan(model, n_vox)
    rng = np.random.default_rng(23)
    true_sd = np.std([_index(ph, _noisy(ph, rng), params) for _ in range(n_real)], ddof=1)
    ses = []
    for k in range(n_scans):
        item = _write_scan(ph, _noisy(ph, rng), tmp_path / f"scan{k}")
        r = scan_se(_pre(ph, item, **params), ph.weights, n_boot=n_boot, seed=k, se_max=1.0)
        assert r["se_note"] == ""
        ses.append(r["alps_se"])
    ratio = np.mean(ses) / true_sd
    assert 0.8 < ratio < 1.25, (ratio, true_sd)


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
