"""The tensor fit of each model as an estimator the wild bootstrap resamples
(:func:`alps.imaging.noise.bootstrap_roi_alps`): its tensors, its fitted signal, the residuals in
the domain the fit minimises, and their leverages.

A standard error is the spread of *the estimator that made the number* — the volumes it was
fitted on and its model. Each model here refits the replicates with the very fit of stage 1:

==================  ==========================================  ===========  ============================
model               fit (stage 1 and replicates)                residuals    leverages ``h``
==================  ==========================================  ===========  ============================
``dti``, WLS        :func:`alps.imaging.dti.wls_fit`             ln S         exact, weights of its second
                                                                             pass (:func:`~alps.imaging.noise.leverages`)
``dti``, other      :func:`alps.imaging.dti.fit_tensor` (dipy)   ln S (WLS)   as WLS (an approximation)
``dki``             :func:`alps.imaging.shells.fit_model_tensor`  ln S         DKI design matrix (22 columns),
                    (dipy ``DiffusionKurtosisModel``, WLS)                    weights ``Ŝ²``
``fwdti``           :func:`alps.imaging.shells.fit_model_tensor`  S            Jacobian of the model at the fit
                    (dipy ``FreeWaterTensorModel``, NLS)
==================  ==========================================  ===========  ============================

Free-water DTI models ``S = S0 [(1 − f) exp(−b gᵀDg) + f exp(−b d_iso)]`` (``d_iso = 3e-3``
mm²/s) and dipy fits it by unweighted least squares on ``S``; its Jacobian columns are
``∂S/∂D_k = S0 (1 − f) e^{−b gᵀDg} x_k`` (``x_k`` the DTI design row), ``∂S/∂ ln S0 = S`` and
``∂S/∂f = S0 (e^{−b d_iso} − e^{−b gᵀDg})``, ``h = diag(J (JᵀJ)⁻¹ Jᵀ)``; ``S0`` given the other
parameters is the least-squares ``Σ S g / Σ g²``.

All b-vectors here are in the frame the tensor is fitted in (the image's voxel axes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dti

__all__ = ["Fitted", "fit_tensors", "fitted", "is_default"]

#: free-water diffusivity of dipy's FreeWaterTensorModel (mm²/s)
D_ISO = 3.0e-3


def is_default(model: str, fit_method: str) -> bool:
    """The default estimator (DTI by WLS), whose bootstrap is :func:`alps.imaging.noise.wild_bootstrap_signals`."""
    return model == "dti" and fit_method.upper() == "WLS"


@dataclass(frozen=True)
class Fitted:
    """A model's fit of voxel signals (M, N): ``yhat`` the fitted values and ``resid`` the residuals
    in the domain the fit minimises (``log``: ln S, else S), ``leverage`` (M, N)."""

    yhat: np.ndarray
    resid: np.ndarray
    leverage: np.ndarray
    log: bool

    def replicates(self, *, n_boot: int, seed: int) -> np.ndarray:
        """Wild-bootstrap replicate signals (n_boot, M, N): ``ŷ + v r / √(1 − h)``, ``v = ±1``
        (Rademacher, from ``seed``); volumes with ``h ≥ 1 − 1e-6`` stay at their fitted value."""
        full = self.leverage >= 1 - 1e-6
        resid = np.where(full, 0.0, self.resid / np.sqrt(np.where(full, 1.0, 1.0 - self.leverage)))
        rng = np.random.default_rng(seed)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(int(n_boot),) + resid.shape)
        y = self.yhat[None] + signs * resid[None]
        return np.exp(y) if self.log else y


def _frame(signal, bvecs):
    """Signals as an (M, 1, 1, N) image and the b-vectors in FSL convention for an identity affine
    (so that the pipeline's fit functions, which take FSL b-vectors, fit in the given frame)."""
    from ..io.gradients import voxel_to_fsl

    signal = np.asarray(signal, float)
    eye = np.eye(4)
    return signal[:, None, None, :], voxel_to_fsl(np.asarray(bvecs, float), eye), eye, np.ones((len(signal), 1, 1), bool)


def fit_tensors(signal, bvals, bvecs, *, model: str = "dti", fit_method: str = "WLS",
                b0_threshold: float = 50.0) -> np.ndarray:
    """Tensors (M, 3, 3) of voxel signals (M, N) by the model's stage-1 fit (module table)."""
    data, bvecs_fsl, eye, mask = _frame(signal, bvecs)
    if model == "dti":
        if fit_method.upper() == "WLS":
            return dti.wls_fit(np.asarray(signal, float), bvals, bvecs)
        return dti.fit_tensor(data, bvals, bvecs_fsl, eye, mask, method=fit_method).tensor[mask]
    from .shells import fit_model_tensor

    q, _ = fit_model_tensor(data, bvals, bvecs_fsl, eye, mask, model=model, b0_threshold=b0_threshold)
    return q


def _leverages(J, w2=None) -> np.ndarray:
    """``h = w diag(J (JᵀWJ)⁻¹ Jᵀ)`` per voxel: ``J`` (N, p) shared or (M, N, p); weights (M, N)."""
    J = np.asarray(J, float)
    if w2 is None:
        w2 = np.ones(J.shape[:2] if J.ndim == 3 else (1, J.shape[0]))
    if J.ndim == 2:
        J = np.broadcast_to(J, (w2.shape[0],) + J.shape)
    A = np.einsum("mn,mni,mnj->mij", w2, J, J)
    Ainv = np.linalg.pinv(A)  # (a pseudo-inverse: a degenerate fit, e.g. f at 0 or 1, loses a column)
    return w2 * np.einsum("mni,mij,mnj->mn", J, Ainv, J)


def fitted(signal, bvals, bvecs, *, model: str = "dti", fit_method: str = "WLS",
           b0_threshold: float = 50.0) -> Fitted:
    """The fit of voxel signals (M, N) by ``model`` with its residuals and leverages (module
    docstring)."""
    signal = np.asarray(signal, float)
    bvals = np.asarray(bvals, float)
    bvecs = np.asarray(bvecs, float)
    if model == "dti":
        from .noise import leverages

        X = dti.design_matrix(bvals, bvecs)
        beta, w2 = dti.wls_coefficients(signal, X)
        yhat = beta @ X.T
        return Fitted(yhat, np.log(np.maximum(signal, 1e-3)) - yhat, leverages(X, w2), True)
    from dipy.core.gradients import gradient_table

    gtab = gradient_table(bvals, bvecs=bvecs, b0_threshold=b0_threshold)
    vox = np.maximum(signal, 1e-3)
    if model == "dki":
        from dipy.reconst.dki import DiffusionKurtosisModel, design_matrix

        fit = DiffusionKurtosisModel(gtab, return_S0_hat=True).fit(vox)
        pred = np.maximum(np.asarray(fit.predict(gtab, S0=np.asarray(fit.model_S0, float)), float), 1e-3)
        yhat = np.log(pred)
        return Fitted(yhat, np.log(vox) - yhat, _leverages(design_matrix(gtab), pred ** 2), True)
    if model == "fwdti":
        from dipy.reconst.fwdti import FreeWaterTensorModel

        fit = FreeWaterTensorModel(gtab).fit(vox)
        q = np.nan_to_num(np.asarray(fit.quadratic_form, float))
        f = np.clip(np.nan_to_num(np.asarray(fit.f, float)), 0.0, 1.0)
        X = dti.design_matrix(bvals, bvecs)[:, :6]                      # (N, 6): −b g_i g_j (×2 off-diagonal)
        tissue = np.exp(np.einsum("ni,mi->mn", X, q[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]]))
        free = np.exp(-bvals * D_ISO)[None]
        shape = (1 - f)[:, None] * tissue + f[:, None] * free            # S / S0
        s0 = (vox * shape).sum(1) / np.maximum((shape ** 2).sum(1), 1e-12)
        yhat = s0[:, None] * shape
        J = np.concatenate([(s0[:, None] * (1 - f)[:, None] * tissue)[..., None] * X[None],
                            yhat[..., None], (s0[:, None] * (free - tissue))[..., None]], axis=-1)
        return Fitted(yhat, vox - yhat, _leverages(J), False)
    raise ValueError(f"unknown tensor model {model!r}")
