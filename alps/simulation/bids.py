"""Writing a simulated subject as BIDS: deterministic ``.nii.gz`` (gzip mtime 0, no file name),
FSL gradient files, sidecars and the metadata of the participants and ground-truth tables.
Every file goes through :mod:`alps.atomic`."""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from .. import __version__, atomic
from ..io.gradients import write_bvals_bvecs
from .phantom import make_template_fields
from .signal import simulate_subject


def write_nifti_gz(img, path, compresslevel=1) -> None:
    """Write a NIfTI as ``.nii.gz`` deterministically (gzip mtime 0, no name) and atomically."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=compresslevel,
                       mtime=0) as gz:
        gz.write(img.to_bytes())
    atomic.write_bytes(path, buf.getvalue())


def write_json(path, obj) -> None:
    """JSON in the order written (sidecars read as a person would write them)."""
    atomic.write_json(path, obj, sort_keys=False)


def write_tsv(path, df) -> None:
    """BIDS TSV with ``%.10g`` floats (``n/a`` for missing)."""
    atomic.write_table(path, df, float_format="%.10g")


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


def write_subject(out_dir, pid, pose, planted, snr, noise_seed, scheme, orientation, oblique,
                  dtype, seed):
    fields = make_template_fields()
    img, bvals, bvecs, extras = simulate_subject(
        fields, pose, planted, snr=snr, seed=noise_seed, scheme=scheme,
        orientation=orientation, oblique=oblique, dtype=dtype)
    dwi = Path(out_dir) / pid / "dwi"
    stem = dwi / f"{pid}_dwi"
    write_bvals_bvecs(bvals, bvecs, f"{stem}.bval", f"{stem}.bvec")
    sidecar = {
        "Manufacturer": "alps simulation",
        "SoftwareVersions": f"alps {__version__}",
        "SimulationSeed": int(seed),
        "SimulationSNR": None if snr is None or not np.isfinite(snr) else float(snr),
        "SimulationNoise": "Rician" if extras["sigma"] > 0 else "none",
        "SimulationNoiseSigma": extras["sigma"],
        "SimulationModel": "single-tensor S = S0 exp(-b g^T D g), tensor partial volume",
    }
    write_json(f"{stem}.json", sidecar)
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
