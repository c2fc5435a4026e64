"""Simulated default cohort: a BIDS DWI dataset with planted, known ALPS.

``alps simulate OUT_DIR`` writes 40 MO + 40 VM + 20 HC participants (defaults from
``config/<profile>.yaml``, section ``simulate``). Pieces:

* :mod:`alps.phantom` — template-space (MNI152 2009a, 2 mm) anatomy, fibre-orientation field,
  perivascular x-diffusivity and the ALPS oracle;
* :mod:`alps.clinical` — demographics, headache variables and planted ALPS (the structural
  model and its equations are in that module's docstring and in ``data/README.md``);
* this module — per-subject head pose, native-space resampling with tensor reorientation,
  DWI synthesis with Rician noise, FSL bvecs, atomic/deterministic BIDS writing, CLI.

Geometry
--------
A subject's head is the template brain under the pose ``x_n = s R x_t + t`` (``R = Rz Ry Rx``,
angles ``rot_x/y/z_deg`` about the MNI axes through the MNI origin, isotropic scale ``s``,
translation ``t`` mm). The native image is an axis-aligned 2 mm LAS grid (``orientation='RAS'``
for a positive-determinant affine; ``'mixed'`` draws one per subject) cropped to the posed
brain + ``margin_mm``; with ``oblique=True`` the affine's axes are instead rotated by ``R`` (the
head then lies straight in the grid). For every native voxel centre ``x_n``, the template
point ``x_t = pose⁻¹(x_n)`` is sampled trilinearly (six tensor components and S0) and the
tensor reoriented ``D_world = R D_t Rᵀ``. DWI follow ``S = S0 exp(−b gᵀ D_world g)`` with
world-frame gradient directions ``g``, which are written as FSL bvecs relative to the image
axes (:func:`alps.gradients.world_to_voxel` then :func:`alps.gradients.voxel_to_fsl`). Rician
noise: ``σ = mean S0 in template WM (f_wm > 0.9) / snr``.

Clinical (structural) model
---------------------------
(:mod:`alps.clinical`; parameter values and their analytic derivation in ``data/README.md``)::

    d  ~ Gamma(μ_d[g], σ_d[g])                     duration (y), MO/VM
    f  = μ_f[g] + γ (d − μ_d[g]) + e_f             attacks/month, MO/VM
    A  = α + β_s·VM + β_d·d + β_f·f + e_A          planted ALPS, patients
    A  = m_HC + e_HC                               planted ALPS, HC
    A_L, A_R = A ± δ/2                             δ ~ N(0, 0.02²)
    DHI = δ0 + c'·d + b·A + e_D                    VM only; indirect a·b = 80 % of total

The perivascular diffusivities ``p_L``/``p_R`` are calibrated per subject so that the oracle
ALPS (noise-free template-space field, default 2.5 mm spheres) equals ``A_L``/``A_R``
(:func:`alps.phantom.calibrate_perivascular`).

Determinism: per-participant seeds are ``SeedSequence(seed, spawn_key=(1, i))`` (pose, tissue
diffusivities) and ``(2, i)`` (noise); the clinical table uses ``(0,)``; the gradient scheme
uses ``seed``. NIfTI files are gzip'ed with ``mtime=0`` and no file name in the gzip header,
so the same seed gives byte-identical files regardless of ``n_jobs``. Every file is written
to a hidden temporary name and moved into place with :func:`os.replace`;
``dataset_description.json`` is written last.
"""
from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from . import __version__, atomic
from .clinical import ClinicalModel, simulate_clinical
from .gradients import B0_THRESHOLD, voxel_to_fsl, world_to_voxel
from .gradients import scheme as make_scheme
from .phantom import (TISSUE, TemplateFields, calibrate_perivascular, make_template_fields,
                      oracle_alps)
from .tensor import from_six, rotate, to_six

DEFAULT_SEED = 20260505
BIDS_VERSION = "1.9.0"
#: ground_truth.tsv columns (in order), then extra columns.
GT_COLUMNS = ["participant_id", "alps_L", "alps_R", "alps", "planted_alps_L", "planted_alps_R",
              "rot_x_deg", "rot_y_deg", "rot_z_deg", "trans_x_mm", "trans_y_mm", "trans_z_mm",
              "scale"]
GT_EXTRA = ["planted_alps", "perivascular_L", "perivascular_R", "lambda_par", "lambda_perp",
            "orientation", "noise_sigma"]
#: per-subject WM diffusivity ranges (mm²/s), uniform draws.
LAMBDA_PAR_RANGE = (1.60e-3, 1.70e-3)
LAMBDA_PERP_RANGE = (0.35e-3, 0.45e-3)


# ----------------------------------------------------------------------------- pose / grid
def rotation_matrix(rx_deg, ry_deg, rz_deg) -> np.ndarray:
    """``R = Rz @ Ry @ Rx`` for right-handed rotations (degrees) about the x, y, z axes."""
    ax, ay, az = np.deg2rad([rx_deg, ry_deg, rz_deg])
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Pose:
    """Head pose ``x_native = scale · R · x_template + trans`` (mm, world RAS+)."""

    rot_deg: tuple = (0.0, 0.0, 0.0)
    trans_mm: tuple = (0.0, 0.0, 0.0)
    scale: float = 1.0

    @property
    def R(self) -> np.ndarray:
        return rotation_matrix(*self.rot_deg)

    def forward(self, xyz):
        """Template → native world points, ``(..., 3)``."""
        return self.scale * np.asarray(xyz, float) @ self.R.T + np.asarray(self.trans_mm, float)

    def inverse(self, xyz):
        """Native world → template points, ``(..., 3)``."""
        return ((np.asarray(xyz, float) - np.asarray(self.trans_mm, float)) @ self.R) / self.scale


def draw_pose(rng, max_rotation=10.0, max_translation=5.0, max_scale=0.05) -> Pose:
    """Uniform rotations (±max_rotation° per axis), translations (±max_translation mm per axis)
    and isotropic scale (1 ± max_scale)."""
    rot = rng.uniform(-max_rotation, max_rotation, 3)
    trans = rng.uniform(-max_translation, max_translation, 3)
    scale = rng.uniform(1 - max_scale, 1 + max_scale)
    return Pose(tuple(float(v) for v in rot), tuple(float(v) for v in trans), float(scale))


def native_grid(fields: TemplateFields, pose: Pose, *, orientation="LAS", oblique=False,
                voxel_mm=2.0, margin_mm=4.0):
    """Shape and affine of a subject's native grid covering the posed brain + margin.

    Axis-aligned grids are snapped to the template's 2 mm lattice, so that an identity pose
    samples the template exactly at its voxel centres.
    """
    if orientation not in ("LAS", "RAS"):
        raise ValueError(f"orientation must be 'LAS' or 'RAS', got {orientation!r}")
    sx = -voxel_mm if orientation == "LAS" else voxel_mm
    lin = np.diag([sx, voxel_mm, voxel_mm])
    ijk = np.argwhere(fields.mask).astype(float)
    pts = pose.forward(ijk @ fields.affine[:3, :3].T + fields.affine[:3, 3])
    if oblique:
        lin = pose.R @ lin
        u = pts @ np.linalg.inv(lin).T
        lo = np.floor(u.min(axis=0) - margin_mm / voxel_mm)
        hi = np.ceil(u.max(axis=0) + margin_mm / voxel_mm)
        shape = tuple(int(v) for v in hi - lo + 1)
        origin = lin @ lo
    else:
        t0 = fields.affine[:3, 3]
        lo = t0 + voxel_mm * np.floor((pts.min(axis=0) - margin_mm - t0) / voxel_mm)
        hi = t0 + voxel_mm * np.ceil((pts.max(axis=0) + margin_mm - t0) / voxel_mm)
        shape = tuple(int(round(v)) for v in (hi - lo) / voxel_mm + 1)
        origin = lo.copy()
        if orientation == "LAS":
            origin[0] = hi[0]
    affine = np.eye(4)
    affine[:3, :3] = lin
    affine[:3, 3] = origin
    return shape, affine


# ----------------------------------------------------------------------------- subject
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


def default_scheme(seed=0, n_b0=5, n_dirs=32, bval=1000.0):
    """The acquisition scheme (world-frame directions), :func:`alps.gradients.scheme`."""
    return make_scheme(n_b0=n_b0, n_dirs=n_dirs, bval=bval, seed=int(seed))


def simulate_subject(fields: TemplateFields, pose: Pose, planted: dict, *, snr=25.0, seed=0,
                     scheme=None, orientation="LAS", oblique=False, dtype="int16",
                     margin_mm=4.0, return_tensor=False):
    """Synthesise one subject's native-space DWI.

    Parameters
    ----------
    fields : TemplateFields
        From :func:`alps.phantom.make_template_fields`.
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
                                margin_mm=margin_mm)
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
    signal = np.exp(-(d_world6.astype(np.float32) @ bmat.T.astype(np.float32)))
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
    bvecs_fsl = voxel_to_fsl(world_to_voxel(g_world, affine), affine)
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


# ----------------------------------------------------------------------------- writing
def _atomic_write(path, data: bytes) -> None:
    atomic.write_bytes(path, data, suffix=".partial")


def write_nifti_gz(img, path, compresslevel=1) -> None:
    """Write a NIfTI as ``.nii.gz`` deterministically (gzip mtime 0, no name) and atomically."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=compresslevel,
                       mtime=0) as gz:
        gz.write(img.to_bytes())
    _atomic_write(path, buf.getvalue())


def _write_text(path, text: str) -> None:
    _atomic_write(path, text.encode("utf-8"))


def _write_json(path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _write_tsv(path, df: pd.DataFrame) -> None:
    _write_text(path, df.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.10g",
                                lineterminator="\n"))


def write_gradients(bvals, bvecs_fsl, bval_path, bvec_path) -> None:
    """FSL text files (same format as :func:`alps.gradients.write_bvals_bvecs`), atomically."""
    bvecs = np.asarray(bvecs_fsl, float).reshape(-1, 3) + 0.0
    _write_text(bval_path, " ".join(f"{b:g}" for b in np.asarray(bvals, float).ravel()) + "\n")
    _write_text(bvec_path, "\n".join(" ".join(f"{v:.6f}" for v in row) for row in bvecs.T) + "\n")


PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Participant label (simulated)."},
    "group": {"Description": "Diagnostic group (simulated).",
              "Levels": {"MO": "migraine without aura", "VM": "vestibular migraine",
                         "HC": "healthy control"}},
    "age": {"Description": "Age at scan (simulated).", "Units": "year"},
    "sex": {"Description": "Sex (simulated).", "Levels": {"F": "female", "M": "male"}},
    "duration_years": {"Description": "Headache (disease) duration; n/a for HC (simulated).",
                       "Units": "year"},
    "attacks_per_month": {"Description": "Headache attack frequency; n/a for HC (simulated).",
                          "Units": "attacks/month"},
    "vas": {"Description": "Headache intensity, visual analogue scale 0 (none) to 10 (worst); "
                           "n/a for HC (simulated).", "Units": "score (0-10)"},
    "hit6": {"Description": "Headache Impact Test-6 total score, 36-78; n/a for HC (simulated).",
             "Units": "score (36-78)"},
    "psqi": {"Description": "Pittsburgh Sleep Quality Index global score, 0-21 (simulated).",
             "Units": "score (0-21)"},
    "dhi": {"Description": "Dizziness Handicap Inventory total score, 0-100 in steps of 2; VM "
                           "only, n/a otherwise (simulated).", "Units": "score (0-100)"},
}

GROUND_TRUTH_JSON = {
    "participant_id": {"Description": "Participant label."},
    "alps_L": {"Description": "Oracle ALPS, left: ALPS of the subject's noise-free template-space "
                              "tensor field within the default spheres (radius 2.5 mm).",
               "Units": "ratio"},
    "alps_R": {"Description": "Oracle ALPS, right (as alps_L).", "Units": "ratio"},
    "alps": {"Description": "Mean of alps_L and alps_R.", "Units": "ratio"},
    "planted_alps_L": {"Description": "Left ALPS requested by the clinical model.",
                       "Units": "ratio"},
    "planted_alps_R": {"Description": "Right ALPS requested by the clinical model.",
                       "Units": "ratio"},
    "rot_x_deg": {"Description": "Head rotation about the MNI x axis; pose x_native = scale*R*x + "
                                 "t with R = Rz Ry Rx.", "Units": "degree"},
    "rot_y_deg": {"Description": "Head rotation about the MNI y axis.", "Units": "degree"},
    "rot_z_deg": {"Description": "Head rotation about the MNI z axis.", "Units": "degree"},
    "trans_x_mm": {"Description": "Head translation along world x.", "Units": "mm"},
    "trans_y_mm": {"Description": "Head translation along world y.", "Units": "mm"},
    "trans_z_mm": {"Description": "Head translation along world z.", "Units": "mm"},
    "scale": {"Description": "Isotropic brain scale factor of the pose.", "Units": "ratio"},
    "planted_alps": {"Description": "Mean planted ALPS (latent variable of the clinical model).",
                     "Units": "ratio"},
    "perivascular_L": {"Description": "Calibrated perivascular x-diffusivity p, left.",
                       "Units": "mm^2/s"},
    "perivascular_R": {"Description": "Calibrated perivascular x-diffusivity p, right.",
                       "Units": "mm^2/s"},
    "lambda_par": {"Description": "WM axial diffusivity of this subject.", "Units": "mm^2/s"},
    "lambda_perp": {"Description": "WM radial diffusivity of this subject.", "Units": "mm^2/s"},
    "orientation": {"Description": "Native image storage orientation (LAS: det(affine) < 0; "
                                   "RAS: det > 0)."},
    "noise_sigma": {"Description": "Rician noise sigma (0 = noise-free).", "Units": "a.u."},
}


def _subject_task(out_dir, pid, pose, planted, snr, noise_seed, scheme, orientation, oblique,
                  dtype, seed):
    fields = make_template_fields()
    img, bvals, bvecs, extras = simulate_subject(
        fields, pose, planted, snr=snr, seed=noise_seed, scheme=scheme,
        orientation=orientation, oblique=oblique, dtype=dtype)
    dwi = Path(out_dir) / pid / "dwi"
    stem = dwi / f"{pid}_dwi"
    write_gradients(bvals, bvecs, f"{stem}.bval", f"{stem}.bvec")
    sidecar = {
        "Manufacturer": "alps simulation",
        "SoftwareVersions": f"alps {__version__}",
        "SimulationSeed": int(seed),
        "SimulationSNR": None if snr is None or not np.isfinite(snr) else float(snr),
        "SimulationNoise": "Rician" if extras["sigma"] > 0 else "none",
        "SimulationNoiseSigma": extras["sigma"],
        "SimulationModel": "single-tensor S = S0 exp(-b g^T D g), tensor partial volume",
    }
    _write_json(f"{stem}.json", sidecar)
    write_nifti_gz(img, f"{stem}.nii.gz")
    p = extras["planted"]
    return {
        "participant_id": pid,
        "alps_L": extras["oracle"]["alps_L"], "alps_R": extras["oracle"]["alps_R"],
        "alps": extras["oracle"]["alps"],
        "planted_alps_L": p["alps_L"], "planted_alps_R": p["alps_R"],
        "rot_x_deg": pose.rot_deg[0], "rot_y_deg": pose.rot_deg[1], "rot_z_deg": pose.rot_deg[2],
        "trans_x_mm": pose.trans_mm[0], "trans_y_mm": pose.trans_mm[1],
        "trans_z_mm": pose.trans_mm[2], "scale": pose.scale,
        "perivascular_L": p["p_L"], "perivascular_R": p["p_R"],
        "lambda_par": p["lam_par"], "lambda_perp": p["lam_perp"],
        "orientation": orientation, "noise_sigma": extras["sigma"],
    }


def clinical_table(seed=DEFAULT_SEED, *, n_mo=40, n_vm=40, n_hc=20,
                   model: ClinicalModel | None = None) -> pd.DataFrame:
    """The cohort's clinical table with planted ALPS, exactly as :func:`simulate_cohort` draws it
    (``SeedSequence(seed, spawn_key=(0,))``), without generating any image."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    return simulate_clinical(rng, n_mo=n_mo, n_vm=n_vm, n_hc=n_hc, model=model)


def simulate_cohort(out_dir, *, seed=DEFAULT_SEED, n_mo=40, n_vm=40, n_hc=20, max_rotation=10.0,
                    snr=25.0, n_jobs=1, max_translation=5.0, max_scale=0.05, orientation="LAS",
                    oblique=False, n_b0=5, n_dirs=32, bval=1000.0, dtype="int16",
                    progress=True, model: ClinicalModel | None = None) -> pd.DataFrame:
    """Generate the simulated BIDS cohort in ``out_dir``; returns the ground-truth table.

    Writes ``dataset_description.json``, ``README``, ``participants.tsv``/``.json``,
    ``sub-*/dwi/sub-*_dwi.{nii.gz,bval,bvec,json}`` and
    ``derivatives/simulation/{dataset_description.json, ground_truth.tsv, ground_truth.json,
    simulation_parameters.json}``.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    if orientation not in ("LAS", "RAS", "mixed"):
        raise ValueError(f"orientation must be LAS, RAS or mixed, got {orientation!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(seed)
    model = model or ClinicalModel()
    clinical = clinical_table(seed, n_mo=n_mo, n_vm=n_vm, n_hc=n_hc, model=model)
    scheme = default_scheme(seed=seed, n_b0=n_b0, n_dirs=n_dirs, bval=bval)
    tasks = []
    for i, row in enumerate(clinical.itertuples(index=False)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
        pose = draw_pose(rng, max_rotation, max_translation, max_scale)
        planted = {"alps_L": float(row.planted_alps_L), "alps_R": float(row.planted_alps_R),
                   "lam_par": float(rng.uniform(*LAMBDA_PAR_RANGE)),
                   "lam_perp": float(rng.uniform(*LAMBDA_PERP_RANGE))}
        orient = orientation if orientation != "mixed" else ("LAS", "RAS")[int(rng.integers(2))]
        noise_seed = np.random.SeedSequence(seed, spawn_key=(2, i))
        tasks.append(delayed(_subject_task)(out_dir, row.participant_id, pose, planted, snr,
                                            noise_seed, scheme, orient, oblique, dtype, seed))
    rows = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    rows = list(tqdm(rows, total=len(tasks), desc="simulate", unit="subject",
                     disable=not progress))
    gt = pd.DataFrame(rows)
    gt.insert(gt.columns.get_loc("perivascular_L"), "planted_alps",
              clinical["planted_alps"].to_numpy())
    gt = gt[GT_COLUMNS + GT_EXTRA]

    participants = clinical.drop(columns=["planted_alps", "planted_alps_L", "planted_alps_R"])
    _write_tsv(out_dir / "participants.tsv", participants)
    _write_json(out_dir / "participants.json", PARTICIPANTS_JSON)
    deriv = out_dir / "derivatives" / "simulation"
    _write_tsv(deriv / "ground_truth.tsv", gt)
    _write_json(deriv / "ground_truth.json", GROUND_TRUTH_JSON)
    params = {
        "seed": seed, "n_mo": n_mo, "n_vm": n_vm, "n_hc": n_hc, "max_rotation_deg": max_rotation,
        "max_translation_mm": max_translation, "max_scale": max_scale, "snr": snr,
        "orientation": orientation, "oblique": oblique, "n_b0": n_b0, "n_dirs": n_dirs,
        "bval": bval, "dtype": dtype, "tissue": TISSUE,
        "lambda_par_range": LAMBDA_PAR_RANGE, "lambda_perp_range": LAMBDA_PERP_RANGE,
        "clinical_model": model.as_dict(), "alps_version": __version__,
    }
    _write_json(deriv / "simulation_parameters.json", params)
    _write_json(deriv / "dataset_description.json", {
        "Name": "alps simulation ground truth", "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "alps", "Version": __version__,
                         "Description": "alps simulate: planted ALPS and head poses"}],
    })
    _write_text(out_dir / "README", (
        "Simulated DWI cohort generated by `alps simulate` (alps "
        f"{__version__}, seed {seed}). All data are synthetic: a digital brain on the MNI152 "
        "2009a template with a planted perivascular (ALPS) diffusivity. Ground truth is in "
        "derivatives/simulation/. See data/README.md of the alps repository.\n"))
    _write_json(out_dir / "dataset_description.json", {
        "Name": "alps simulated migraine DTI-ALPS cohort", "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "alps", "Version": __version__,
                         "Description": f"alps simulate --seed {seed}"}],
    })
    return gt


# ----------------------------------------------------------------------------- CLI
_CLI_KEYS = ("seed", "n_mo", "n_vm", "n_hc", "max_rotation", "snr", "n_jobs")


def add_arguments(parser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="BIDS root to write")
    parser.add_argument("--seed", type=int, default=None, help="master seed")
    parser.add_argument("--n-mo", type=int, default=None, help="number of MO patients")
    parser.add_argument("--n-vm", type=int, default=None, help="number of VM patients")
    parser.add_argument("--n-hc", type=int, default=None, help="number of healthy controls")
    parser.add_argument("--max-rotation", type=float, default=None, metavar="DEG",
                        help="max head rotation about each axis (degrees)")
    parser.add_argument("--snr", type=float, default=None, help="b0 white-matter SNR")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel subjects")
    parser.add_argument("--profile", default="default",
                        help="configuration profile supplying defaults (config/<NAME>.yaml)")
    parser.add_argument("--orientation", choices=("LAS", "RAS", "mixed"), default=None,
                        help="native image storage orientation (default LAS)")
    parser.add_argument("--oblique", action="store_true", default=None,
                        help="put the head pose into an oblique affine")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def cli(args) -> int:
    from .config import section

    kwargs = section(args.profile, "simulate")
    allowed = set(_CLI_KEYS) | {"orientation", "oblique", "max_translation", "max_scale",
                                "n_b0", "n_dirs", "bval", "dtype"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise SystemExit(f"config/{args.profile}.yaml [simulate]: unknown keys {sorted(unknown)}")
    for key in _CLI_KEYS + ("orientation", "oblique"):
        value = getattr(args, key, None)
        if value is not None:
            kwargs[key] = value
    gt = simulate_cohort(args.out_dir, progress=not args.no_progress, **kwargs)
    print(f"wrote {len(gt)} participants to {args.out_dir}; ground truth in "
          f"{Path(args.out_dir) / 'derivatives' / 'simulation' / 'ground_truth.tsv'}")
    return 0
