"""The vectorised WLS tensor fit against dipy's, on simulated DWI with noise."""
from __future__ import annotations

import numpy as np
import pytest

from alps.imaging import dti, tensor
from alps.io import gradients


@pytest.fixture(scope="module")
def noisy_signal():
    rng = np.random.default_rng(3)
    bvals, bvecs = gradients.scheme(n_b0=4, n_dirs=30, bval=1000, seed=1)
    n = 3000
    evals = np.column_stack([rng.uniform(1.2e-3, 1.8e-3, n), rng.uniform(0.2e-3, 0.6e-3, n),
                             rng.uniform(0.2e-3, 0.6e-3, n)])
    evals[: n // 10] = 3e-3  # CSF-like
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    D = tensor.from_eig(evals, q)
    s0 = rng.uniform(300, 1000, n)
    sig = s0[:, None] * np.exp(-bvals * np.einsum("ni,vij,nj->vn", bvecs, D, bvecs))
    sigma = 400 / 20
    sig = np.sqrt((sig + rng.normal(0, sigma, sig.shape)) ** 2 + rng.normal(0, sigma, sig.shape) ** 2)
    sig[:50] = rng.rayleigh(sigma, (50, len(bvals)))  # background noise: negative eigenvalues
    return sig, bvals, bvecs, D


def test_wls_matches_dipy(noisy_signal):
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel

    sig, bvals, bvecs, _ = noisy_signal
    ref = TensorModel(gradient_table(bvals, bvecs=bvecs, b0_threshold=50), fit_method="WLS").fit(
        np.maximum(sig, 1e-3)).quadratic_form
    got = dti.wls_fit(sig, bvals, bvecs, chunk=700)  # several chunks
    assert np.abs(got - ref).max() < 1e-10


def test_wls_recovers_planted_tensors_without_noise(noisy_signal):
    _, bvals, bvecs, D = noisy_signal
    sig = 500 * np.exp(-bvals * np.einsum("ni,vij,nj->vn", bvecs, D, bvecs))
    assert np.abs(dti.wls_fit(sig, bvals, bvecs) - D).max() < 1e-10


def test_design_matrix_columns_follow_six_order():
    g = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    X = dti.design_matrix(np.full(3, 1000.0), g)
    assert X[0, 0] == -1000 and X[1, 3] == -1000 and X[2, 5] == -1000
    assert tensor.SIX_ORDER[3] == (1, 1) and tensor.SIX_ORDER[5] == (2, 2)


def test_fit_tensor_maps_use_the_fit_eigensystem(noisy_signal):
    """fit_tensor reuses the WLS fit's eigen-decomposition for FA/MD/eigenvectors: the maps equal
    those computed afresh from the fitted tensors (and dipy's FA)."""
    from dipy.reconst.dti import fractional_anisotropy

    sig, bvals, bvecs, _ = noisy_signal
    data = sig.reshape(30, 10, 10, len(bvals)).astype(np.float32)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    fsl = gradients.voxel_to_fsl(bvecs, aff)
    maps = dti.fit_tensor(data, bvals, fsl, aff)
    fa, md = tensor.fa_md(maps.tensor)
    assert np.abs(maps.fa - fa).max() < 1e-6 and np.abs(maps.md - md).max() < 1e-9  # float32 maps
    ev, vec = tensor.eig(maps.tensor)
    assert np.abs(maps.evals - ev).max() < 1e-15
    distinct = (ev[..., 0] - ev[..., 1]) > 1e-5  # the principal direction is defined
    dots = np.abs(np.einsum("...i,...i->...", maps.evecs[..., :, 0], vec[..., :, 0]))
    assert distinct.sum() > 2000 and np.abs(dots[distinct] - 1).max() < 1e-6
    assert np.abs(maps.fa - fractional_anisotropy(ev)).max() < 1e-6
