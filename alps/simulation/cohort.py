"""Simulated default cohort: a BIDS DWI dataset with planted, known ALPS.

``alps simulate OUT_DIR`` writes 40 MO + 40 VM + 20 HC participants (defaults from
``config/<profile>.yaml``, section ``simulate``). Pieces:

* :mod:`alps.simulation.phantom` — template-space (MNI152 2009a, 2 mm) anatomy, fibre-orientation
  field, perivascular x-diffusivity and the ALPS oracle;
* :mod:`alps.simulation.clinical` — demographics, headache variables and planted ALPS (the
  structural model and its equations are in that module's docstring and in ``data/README.md``);
* :mod:`alps.simulation.pose` (head pose, native grid), :mod:`alps.simulation.signal` (tensor
  resampling with reorientation, DWI with Rician noise, FSL bvecs) and
  :mod:`alps.simulation.bids` (deterministic BIDS writing);
* this module — the whole cohort: per-subject seeds, pose and tissue draws, the tables.

Clinical (structural) model
---------------------------
(:mod:`alps.simulation.clinical`; parameter values and their analytic derivation in ``data/README.md``)::

    d  ~ Gamma(μ_d[g], σ_d[g])                     duration (y), MO/VM
    f  = μ_f[g] + γ (d − μ_d[g]) + e_f             attacks/month, MO/VM
    A  = α + β_s·VM + β_d·d + β_f·f + e_A          planted ALPS, patients
    A  = m_HC + e_HC                               planted ALPS, HC
    A_L, A_R = A ± δ/2                             δ ~ N(0, 0.02²)
    DHI = δ0 + c'·d + b·A + e_D                    VM only; indirect a·b = 80 % of total

The perivascular diffusivities ``p_L``/``p_R`` are calibrated per subject so that the oracle
ALPS (noise-free template-space field, default 2.5 mm spheres) equals ``A_L``/``A_R``
(:func:`alps.simulation.phantom.calibrate_perivascular`).

Determinism: per-participant seeds are ``SeedSequence(seed, spawn_key=(1, i))`` (pose, tissue
diffusivities) and ``(2, i)`` (noise); the clinical table uses ``(0,)``; the gradient scheme
uses ``seed``. NIfTI files are gzip'ed with ``mtime=0`` and no file name in the gzip header,
so the same seed gives byte-identical files regardless of ``n_jobs``. Every file is written
to a hidden temporary name and moved into place with :func:`os.replace`;
``dataset_description.json`` is written last.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__, atomic
from .bids import GROUND_TRUTH_JSON, PARTICIPANTS_JSON, write_json, write_subject, write_tsv
from .clinical import ClinicalModel, simulate_clinical
from .sites import SITE_COLUMNS, SITE_SCALE, SITE_SHIFT, assign_sites
from .phantom import TISSUE
from .pose import draw_pose
from .signal import default_scheme

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



#: options of :func:`simulate_cohort` a configuration's ``simulate:`` section may set.
SIMULATE_OPTIONS = ("seed", "n_mo", "n_vm", "n_hc", "max_rotation", "snr", "n_jobs", "max_translation",
                    "max_scale", "orientation", "oblique", "n_b0", "n_dirs", "bval", "dtype", "sites",
                    "site_imbalance")


def clinical_table(seed=DEFAULT_SEED, *, n_mo=40, n_vm=40, n_hc=20,
                   model: ClinicalModel | None = None) -> pd.DataFrame:
    """The cohort's clinical table with planted ALPS, exactly as :func:`simulate_cohort` draws it
    (``SeedSequence(seed, spawn_key=(0,))``), without generating any image."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    return simulate_clinical(rng, n_mo=n_mo, n_vm=n_vm, n_hc=n_hc, model=model)


def simulate_cohort(out_dir, *, seed=DEFAULT_SEED, n_mo=40, n_vm=40, n_hc=20, max_rotation=10.0,
                    snr=25.0, n_jobs=1, max_translation=5.0, max_scale=0.05, orientation="LAS",
                    oblique=False, n_b0=5, n_dirs=32, bval=1000.0, dtype="int16", sites=0,
                    site_imbalance=0.0, progress=True, model: ClinicalModel | None = None) -> pd.DataFrame:
    """Generate the simulated BIDS cohort in ``out_dir``; returns the ground-truth table.

    Writes ``dataset_description.json``, ``README``, ``participants.tsv``/``.json``,
    ``sub-*/dwi/sub-*_dwi.{nii.gz,bval,bvec,json}`` and
    ``derivatives/simulation/{dataset_description.json, ground_truth.tsv, ground_truth.json,
    simulation_parameters.json}``.

    ``sites`` ≥ 2 (``alps simulate --sites N``): subjects are scanned at N sites with planted
    additive and multiplicative site effects on the imaged ALPS (:mod:`alps.simulation.sites`;
    ``site_imbalance`` confounds sites with groups): ``participants.tsv`` gains ``site``;
    ``ground_truth.tsv``'s oracle columns (``alps*``) are what was imaged, ``planted_alps*`` the
    biology, plus ``site, site_shift, site_scale, imaged_alps_L/R``. ``sites=0`` is unchanged.
    """
    from joblib import Parallel, delayed
    from ..progress import progress_bar as tqdm

    if orientation not in ("LAS", "RAS", "mixed"):
        raise ValueError(f"orientation must be LAS, RAS or mixed, got {orientation!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(seed)
    model = model or ClinicalModel()
    clinical = clinical_table(seed, n_mo=n_mo, n_vm=n_vm, n_hc=n_hc, model=model)
    multisite = int(sites) >= 2  # scanners with planted site effects (alps.simulation.sites)
    clinical = assign_sites(clinical, int(sites), seed=seed, imbalance=float(site_imbalance))
    src = "imaged_alps" if multisite else "planted_alps"
    scheme = default_scheme(seed=seed, n_b0=n_b0, n_dirs=n_dirs, bval=bval)
    tasks = []
    for i, row in enumerate(clinical.itertuples(index=False)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
        pose = draw_pose(rng, max_rotation, max_translation, max_scale)
        planted = {"alps_L": float(getattr(row, f"{src}_L")), "alps_R": float(getattr(row, f"{src}_R")),
                   "lam_par": float(rng.uniform(*LAMBDA_PAR_RANGE)),
                   "lam_perp": float(rng.uniform(*LAMBDA_PERP_RANGE))}
        orient = orientation if orientation != "mixed" else ("LAS", "RAS")[int(rng.integers(2))]
        noise_seed = np.random.SeedSequence(seed, spawn_key=(2, i))
        tasks.append(delayed(write_subject)(out_dir, row.participant_id, pose, planted, snr,
                                            noise_seed, scheme, orient, oblique, dtype, seed))
    rows = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    rows = list(tqdm(rows, total=len(tasks), desc="simulate", unit="subject",
                     disable=not progress))
    gt = pd.DataFrame(rows)
    gt.insert(gt.columns.get_loc("perivascular_L"), "planted_alps",
              clinical["planted_alps"].to_numpy())
    gt = gt[GT_COLUMNS + GT_EXTRA]
    if multisite:  # the oracle columns hold what the scanner imaged; the biology stays in planted_alps
        gt["planted_alps_L"] = clinical["planted_alps_L"].to_numpy()
        gt["planted_alps_R"] = clinical["planted_alps_R"].to_numpy()
        for c in SITE_COLUMNS:
            gt[c] = clinical[c].to_numpy()

    participants = clinical.drop(columns=["planted_alps", "planted_alps_L", "planted_alps_R"]
                                 + ([c for c in SITE_COLUMNS if c != "site"] if multisite else []))
    write_tsv(out_dir / "participants.tsv", participants)
    write_json(out_dir / "participants.json", PARTICIPANTS_JSON)
    deriv = out_dir / "derivatives" / "simulation"
    write_tsv(deriv / "ground_truth.tsv", gt)
    write_json(deriv / "ground_truth.json", GROUND_TRUTH_JSON)
    params = {
        "seed": seed, "n_mo": n_mo, "n_vm": n_vm, "n_hc": n_hc, "max_rotation_deg": max_rotation,
        "max_translation_mm": max_translation, "max_scale": max_scale, "snr": snr,
        "orientation": orientation, "oblique": oblique, "n_b0": n_b0, "n_dirs": n_dirs,
        "bval": bval, "dtype": dtype, "tissue": TISSUE,
        **({"sites": int(sites), "site_imbalance": float(site_imbalance), "site_shift": SITE_SHIFT,
            "site_scale": SITE_SCALE} if multisite else {}),
        "lambda_par_range": LAMBDA_PAR_RANGE, "lambda_perp_range": LAMBDA_PERP_RANGE,
        "clinical_model": model.as_dict(), "alps_version": __version__,
    }
    write_json(deriv / "simulation_parameters.json", params)
    write_json(deriv / "dataset_description.json", {
        "Name": "alps simulation ground truth", "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "alps", "Version": __version__,
                         "Description": "alps simulate: planted ALPS and head poses"}],
    })
    atomic.write_text(out_dir / "README", (
        "Simulated DWI cohort generated by `alps simulate` (alps "
        f"{__version__}, seed {seed}). All data are synthetic: a digital brain on the MNI152 "
        "2009a template with a planted perivascular (ALPS) diffusivity. Ground truth is in "
        "derivatives/simulation/. See data/README.md of the alps repository.\n"))
    write_json(out_dir / "dataset_description.json", {
        "Name": "alps simulated migraine DTI-ALPS cohort", "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "alps", "Version": __version__,
                         "Description": f"alps simulate --seed {seed}"}],
    })
    return gt
