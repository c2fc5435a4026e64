"""Multi-shell data: shell detection, the volumes each tensor model is fitted on, and each model's
ALPS index on a tiny phantom with planted non-Gaussian signal (kurtosis, free water) against the
analytic planted truths (alps.validation.multishell)."""
from __future__ import annotations

import numpy as np
import pytest

from alps.imaging.shells import detect_shells, select_volumes
from alps.io import InputError
from alps.pipeline.params import ParameterError, PipelineParams, PreprocessParams
from alps.validation.multishell import multishell_bias, phantom_signal, roi_tensors


def test_shells_cluster_with_tolerance_and_near_zero_b0():
    b = [0, 5, 0.001, 995, 1000, 1005, 2000, 1990, 2010, 3000, 50, 51]
    labels, values = detect_shells(b)
    assert values == [51, 1000, 2000, 3000]  # 51 > b0_threshold 50: a (tiny) shell of its own
    assert labels.tolist() == [0, 0, 0, 2, 2, 2, 3, 3, 3, 4, 0, 1]
    labels, values = detect_shells(b, b0_threshold=60)
    assert values == [1000, 2000, 3000] and labels[-1] == 0
    _, values = detect_shells([0, 1000, 1150], tolerance=100)
    assert values == [1000, 1150]
    _, values = detect_shells([0, 1000, 1150], tolerance=200)
    assert values == [1075]


def test_select_volumes_default_and_errors():
    b = np.array([0, 1000, 2000, 1000, 3000, 5, 2000])
    idx, info = select_volumes(b)
    assert idx.tolist() == [0, 1, 3, 5]
    assert info == {"shells": "1000,2000,3000", "bvals_used": "0,1000", "n_volumes_used": 4, "n_directions": 5}
    idx, info = select_volumes(b, max_bval=2500)
    assert info["bvals_used"] == "0,1000,2000" and idx.tolist() == [0, 1, 2, 3, 5, 6]
    idx, info = select_volumes(b, model="dki")
    assert idx.size == 7 and info["bvals_used"] == "0,1000,2000,3000"
    with pytest.raises(InputError, match=r"sub-x_dwi.bval: no shell at or below the maximum b-value 1500.*2000, 3000"):
        select_volumes(np.array([0, 2000, 3000]), path="sub-x_dwi.bval")
    with pytest.raises(InputError, match=r"sub-x_dwi.bval: --tensor-model fwdti needs at least two non-zero shells"):
        select_volumes(np.array([0, 1000, 1000]), model="fwdti", path="sub-x_dwi.bval")


def test_parameters():
    p = PipelineParams.from_mapping({"tensor_model": "dki", "max_bval": 2500, "b0_threshold": 10})
    assert p.preprocess.tensor_model == "dki" and p.preprocess.max_bval == 2500.0
    assert PreprocessParams().max_bval == 1500.0 and PreprocessParams().b0_threshold == 50.0
    with pytest.raises(ParameterError, match="tensor_model"):
        PreprocessParams(tensor_model="csd")
    with pytest.raises(ParameterError, match="max_bval"):
        PreprocessParams(max_bval=0)


def test_phantom_signal_is_the_simulators_model():
    """phantom_signal (float64, here) against simulate_subject's inline float32 signal."""
    from alps.simulation import Pose, make_template_fields, simulate_subject
    from alps.io.gradients import scheme

    fields = make_template_fields()
    b1, g1 = scheme(n_b0=1, n_dirs=6, bval=1000, seed=0)
    b = np.r_[b1, [2000.0] * 6]
    g = np.r_[g1, g1[1:]]
    img, _, _, ex = simulate_subject(fields, Pose((0.0, 0.0, 0.0)), {"alps_L": 1.5, "alps_R": 1.5}, snr=None,
                                     scheme=(b, g), kurtosis=0.6, free_water=0.15, dtype="float32",
                                     return_tensor=True)
    data = np.asarray(img.dataobj)
    t6 = ex["tensor_world6"]
    i, j, k = (np.array(data.shape[:3]) // 2)
    d6 = t6[i, j, k]
    D = np.array([[d6[0], d6[1], d6[2]], [d6[1], d6[3], d6[4]], [d6[2], d6[4], d6[5]]])
    # the image is LAS: world directions are what simulate_subject was given
    s0 = data[i, j, k, 0]
    expect = phantom_signal(D, b, g, kurtosis=0.6, free_water=0.15, s0=s0)
    np.testing.assert_allclose(data[i, j, k], expect, rtol=2e-5)


def test_planted_truth_kurtosis():
    df = multishell_bias(scenario="kurtosis", n_voxels=2, methods=("dti_default", "dti_all_shells", "dki")
                         ).set_index("method")
    # the default (b0 + b = 1000) recovers the index of the b = 1000 protocol exactly
    assert df.loc["dti_default", "bvals_used"] == "0,1000"
    assert abs(df.loc["dti_default", "bias_b1000"]) < 1e-6
    # an all-shell DTI fit is biased by far more; DKI's tensor recovers the Gaussian tensor's index
    assert df.loc["dti_all_shells", "rel_bias_b1000"] > 0.2
    assert abs(df.loc["dki", "bias"]) < 1e-6
    # the planted truths are analytic (roi_tensors: index 1.5; shift 1000 MD² K / 6)
    assert df.loc["dki", "alps_planted"] == pytest.approx(1.5)
    D = roi_tensors(1.5)["proj_L"]
    c = 1000 * (np.trace(D) / 3) ** 2 * 0.6 / 6
    expect = (D[0, 0] - c) / (D[1, 1] - c)
    assert df.loc["dki", "alps_planted_b1000"] == pytest.approx(expect, rel=1e-12)


def test_planted_truth_free_water():
    df = multishell_bias(scenario="free_water", shell_values=(1000, 2000), n_voxels=2,
                         methods=("dti_default", "fwdti")).set_index("method")
    assert abs(df.loc["fwdti", "bias"]) < 1e-4
    assert df.loc["dti_default", "rel_bias"] < -0.05  # free water lowers the DTI index


def test_noisy_default_is_unbiased_for_gaussian_signal():
    df = multishell_bias(scenario="gaussian", snr=40, n_voxels=100, seed=3, methods=("dti_default",))
    assert abs(df["rel_bias"].iloc[0]) < 0.03
