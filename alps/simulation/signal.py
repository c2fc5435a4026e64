"""Diffusion signal of a simulated subject: tissue parameters calibrated to the planted ALPS,
the template tensor field resampled to the native grid with tensor reorientation, DWI with
Rician noise and FSL-convention b-vectors as a scanner export writes them.

For every native voxel centre ``x_n``, the template point ``x_t = pose⁻¹(x_n)`` is sampled
trilinearly (six tensor components and S0) and the tensor reoriented ``D_world = R D_t Rᵀ``. DWI
follow ``S = S0 exp(−b gᵀ D_world g)`` with world-frame gradient directions ``g``, written as FSL
bvecs relative to the image axes (:func:`alps.imaging.tensor.vectors_world_to_voxel` then
:func:`alps.io.gradients.voxel_to_fsl`). Rician noise: ``σ = mean S0 in template WM (f_wm > 0.9)
/ snr``.

Non-Gaussian signal (multi-shell validation; both off by default): an isotropic kurtosis ``K``
(kurtosis tensor ``W_ijkl = K (δ_ij δ_kl + δ_ik δ_jl + δ_il δ_jk) / 3``, so that the apparent
kurtosis ``K_app(g) = K MD² / D_app(g)²``) and a free-water compartment of fraction ``f`` and
diffusivity ``d_free`` (3.0e-3 mm²/s, water at 37 °C)::

    S = S0 [ (1 − f) exp(−b gᵀDg + b² MD² K / 6) + f exp(−b d_free) ]

With ``f = 0`` a single-shell DTI fit at b returns exactly ``D − (b MD² K / 6) I`` (the isotropic
term is the same along every direction), which :func:`apparent_oracle` gives as planted truth of
the b = 1000 protocol; ``D`` itself is what a DKI fit recovers, and with ``K = 0`` the tissue ``D``
is what free-water-eliminated DTI recovers (the ``oracle`` of :func:`simulate_subject`).
"""
from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..imaging.tensor import from_six, rotate, to_six, vectors_world_to_voxel
from ..io.gradients import B0_THRESHOLD, voxel_to_fsl
from ..io.gradients import scheme as make_scheme
from .phantom import TISSUE, TemplateFields, calibrate_perivascular, oracle_alps
from .pose import Pose, native_grid


def noise_sigma(fields: TemplateFields, snr) -> float:
    """Rician σ = mean noise-free S0 over template WM (f_wm > 0.9) / snr (0 if snr is None/inf)."""
    if snr is None or not np.isfinite(snr):
        return 0.0
    if snr <= 0:
        raise ValueError(f"snr must be positive, got {snr}")
    return float(fields.s0()[fields.f_wm > 0.9].mean() / snr)


def subject_parameters(fields: TemplateFields, alps_L, alps_R, *, lam_par=None, lam_perp=None,
                       radius_mm=2.5) -> dict:
    """Tissue parameters of one subject, with the perivascular terms calibrated to the ALPS."""
    lam_par = TISSUE["wm_lambda_par"] if lam_par is None else float(lam_par)
    lam_perp = TISSUE["wm_lambda_perp"] if lam_perp is None else float(lam_perp)
    p_L, p_R = calibrate_perivascular(fields, lam_par, lam_perp, alps_L, alps_R,
                                      radius_mm=radius_mm)
    return {"alps_L": float(alps_L), "alps_R": float(alps_R), "lam_par": lam_par,
            "lam_perp": lam_perp, "p_L": p_L, "p_R": p_R}


def subject_template_tensor(fields: TemplateFields, planted: dict) -> np.ndarray:
    """Noise-free template-space six-component tensor field of a subject, ``grid + (6,)``."""
    if "p_L" not in planted:
        planted = subject_parameters(fields, planted["alps_L"], planted["alps_R"],
                                     lam_par=planted.get("lam_par"),
                                     lam_perp=planted.get("lam_perp"))
    return fields.tensor6(planted["lam_par"], planted["lam_perp"], planted["p_L"], planted["p_R"])


#: diffusivity of the free-water compartment (mm²/s).
D_FREE = 3.0e-3


def apparent_oracle(fields: TemplateFields, planted: dict, *, bval: float, kurtosis: float) -> dict:
    """Template-space oracle ALPS of the apparent tensor a single-shell DTI fit at ``bval`` sees
    with isotropic kurtosis ``kurtosis`` and no free water: ``D − (b MD² K / 6) I`` voxel-wise."""
    t6 = np.array(subject_template_tensor(fields, planted), float)
    md = (t6[..., 0] + t6[..., 3] + t6[..., 5]) / 3.0
    shift = float(bval) * md ** 2 * float(kurtosis) / 6.0
    for c in (0, 3, 5):
        t6[..., c] -= shift
    return oracle_alps(t6, fields.affine)


def default_scheme(seed=0, n_b0=5, n_dirs=32, bval=1000.0):
    """The acquisition scheme (world-frame directions), :func:`alps.io.gradients.scheme`."""
    return make_scheme(n_b0=n_b0, n_dirs=n_dirs, bval=bval, seed=int(seed))


def simulate_subject(fields: TemplateFields, pose: Pose, planted: dict, *, snr=25.0, seed=0,
                     scheme=None, orientation="LAS", oblique=False, dtype="int16",
                     margin_mm=4.0, return_tensor=False, kurtosis: float = 0.0, free_water: float = 0.0,
                     d_free: float = D_FREE, voxel_mm: float = 2.0):
    """Synthesise one subject's native-space DWI.

    Parameters
    ----------
    fields : TemplateFields
        From :func:`alps.simulation.phantom.make_template_fields`.
    pose : Pose
    planted : dict
        ``alps_L``, ``alps_R`` and optionally ``lam_par``, ``lam_perp`` (mm²/s); ``p_L``/``p_R``
        are calibrated if absent (see :func:`subject_parameters`).
    snr : float or None
        b = 0 WM SNR; ``None``/``inf`` for noise-free data.
    seed : int or SeedSequence or Generator
        Noise seed.
    scheme : (bvals, bvecs_world), optional
        Default :func:`default_scheme`.
    dtype : {'int16', 'float32'}
        Stored data type. int16 uses ``scl_slope = σ/4`` (rounding SD σ/√192 ≈ 0.07 σ, i.e.
        +0.5 % noise variance) or ``max/32000`` when noise-free.
    kurtosis, free_water, d_free : float
        Isotropic kurtosis ``K`` and free-water fraction ``f`` (of diffusivity ``d_free``) of the
        brain's signal (module docstring); 0 (default): Gaussian single-compartment signal.
    voxel_mm : float
        Native voxel size (default 2 mm, the template's; 3 mm as clinical scans: the template
        fields are then sampled trilinearly at the 3 mm voxel centres, without partial-volume averaging).

    Returns
    -------
    dwi_img : nibabel.Nifti1Image
    bvals : ndarray (N,)
    bvecs_fsl : ndarray (N, 3)
    extras : dict
        ``pose``, ``affine``, ``sigma``, ``planted`` (with p_L/p_R), ``oracle`` (template-space
        ALPS dict), ``bvecs_world``; with ``return_tensor`` also ``tensor_world6`` (native grid,
        world frame, noise-free) and ``template_tensor6``.
    """
    if dtype not in ("int16", "float32"):
        raise ValueError(f"dtype must be 'int16' or 'float32', got {dtype!r}")
    if "p_L" not in planted:
        planted = subject_parameters(fields, planted["alps_L"], planted["alps_R"],
                                     lam_par=planted.get("lam_par"),
                                     lam_perp=planted.get("lam_perp"))
    bvals, g_world = default_scheme() if scheme is None else scheme
    bvals = np.asarray(bvals, float)
    g_world = np.asarray(g_world, float)
    t6 = subject_template_tensor(fields, planted)
    oracle = oracle_alps(t6, fields.affine)
    s0_t = fields.s0()

    shape, affine = native_grid(fields, pose, orientation=orientation, oblique=oblique,
                                margin_mm=margin_mm, voxel_mm=voxel_mm)
    # native voxel (i, j, k) -> template voxel coordinates: inv(A_t) · pose⁻¹ · A_native
    inv_pose = np.eye(4)
    inv_pose[:3, :3] = pose.R.T / pose.scale
    inv_pose[:3, 3] = -pose.R.T @ np.asarray(pose.trans_mm, float) / pose.scale
    m = np.linalg.inv(fields.affine) @ inv_pose @ affine
    axes = [np.arange(n, dtype=float) for n in shape]
    vt = np.empty((3,) + tuple(shape))
    for c in range(3):
        vt[c] = (m[c, 0] * axes[0][:, None, None] + m[c, 1] * axes[1][None, :, None]
                 + m[c, 2] * axes[2][None, None, :] + m[c, 3])
    vt = vt.reshape(3, -1)
    brain = ndimage.map_coordinates(fields.mask.astype(np.float32), vt, order=1,
                                    mode="constant", cval=0.0, prefilter=False) > 0
    coords = vt[:, brain]
    s0 = ndimage.map_coordinates(s0_t, coords, order=1, mode="constant", prefilter=False)
    d6 = np.stack([ndimage.map_coordinates(t6[..., c], coords, order=1, mode="constant",
                                           prefilter=False) for c in range(6)], axis=-1)
    d_world6 = to_six(rotate(from_six(d6), pose.R))

    gx, gy, gz = g_world.T
    bmat = bvals[:, None] * np.stack(
        [gx * gx, 2 * gx * gy, 2 * gx * gz, gy * gy, 2 * gy * gz, gz * gz], axis=1)
    if not 0.0 <= free_water < 1.0 or kurtosis < 0:
        raise ValueError(f"free_water must be in [0, 1) and kurtosis >= 0, got {free_water}, {kurtosis}")
    adc = d_world6.astype(np.float32) @ bmat.T.astype(np.float32)
    if kurtosis:
        md = (d_world6[:, 0] + d_world6[:, 3] + d_world6[:, 5]) / 3.0
        adc -= ((md ** 2)[:, None] * (bvals ** 2)[None, :] * (kurtosis / 6.0)).astype(np.float32)
    signal = np.exp(-adc)
    del adc
    if free_water:
        signal *= np.float32(1.0 - free_water)
        signal += np.exp(-bvals * d_free).astype(np.float32)[None, :] * np.float32(free_water)
    signal *= s0.astype(np.float32)[:, None]
    n_vox, n_vol = int(np.prod(shape)), len(bvals)
    data = np.empty((n_vox, n_vol), np.float32)
    sigma = noise_sigma(fields, snr)
    if sigma > 0:
        # Rician magnitude |S + σ(n1 + i n2)|; outside the brain S = 0, i.e. Rayleigh, drawn
        # directly as σ sqrt(−2 ln U) (same distribution, one draw instead of two).
        rng = np.random.default_rng(seed)
        n1 = rng.standard_normal(signal.shape, dtype=np.float32)
        n1 *= sigma
        signal += n1
        np.square(signal, out=signal)
        rng.standard_normal(out=n1, dtype=np.float32)
        n1 *= sigma
        np.square(n1, out=n1)
        signal += n1
        np.sqrt(signal, out=signal)
        del n1
        n_bg = n_vox - int(brain.sum())
        u = rng.random((n_bg, n_vol), dtype=np.float32)
        np.subtract(np.float32(1.0), u, out=u)  # (0, 1]
        np.log(u, out=u)
        u *= np.float32(-2.0 * sigma * sigma)
        np.sqrt(u, out=u)
        data[~brain] = u
        del u
    else:
        data[~brain] = 0.0
    data[brain] = signal
    del signal
    data = data.reshape(shape + (n_vol,))
    slope = None
    if dtype == "int16":
        # quantisation step σ/4 (rounding SD σ/13.9, +0.5 % noise variance); noise-free: range/32000
        slope = float(sigma / 4.0) if sigma > 0 else float(max(data.max(), 1e-6) / 32000.0)
        data /= np.float32(slope)
        np.rint(data, out=data)
        np.minimum(data, np.iinfo(np.int16).max, out=data)
        data = data.astype(np.int16)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")  # no (invented) repetition time in pixdim[4] units
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)

    b0 = bvals <= B0_THRESHOLD
    bvecs_fsl = voxel_to_fsl(vectors_world_to_voxel(g_world, affine), affine)
    bvecs_fsl[b0] = 0.0
    bvecs_fsl = bvecs_fsl + 0.0  # no negative zeros in the text file
    extras = {"pose": pose, "affine": affine, "sigma": sigma, "planted": planted,
              "oracle": oracle, "bvecs_world": g_world, "orientation": orientation,
              "oblique": oblique}
    if return_tensor:
        full = np.zeros((n_vox, 6))
        full[brain] = d_world6
        extras["tensor_world6"] = full.reshape(shape + (6,))
        extras["template_tensor6"] = t6
    return img, bvals, bvecs_fsl, extras
