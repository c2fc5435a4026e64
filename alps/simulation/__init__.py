"""The simulated cohort: a BIDS DWI dataset with planted, known ALPS.

* :mod:`.phantom` — template-space (MNI152 2009a, 2 mm) anatomy, fibre-orientation field,
  perivascular x-diffusivity and the ALPS oracle;
* :mod:`.clinical` — demographics, headache variables and planted ALPS (the structural model);
* :mod:`.pose` — head pose and native grid; :mod:`.signal` — tensor resampling with
  reorientation, DWI with Rician noise, FSL b-vectors;
* :mod:`.bids` — deterministic BIDS writing; :mod:`.cohort` — the whole cohort
  (``alps simulate``);
* :mod:`.distortion` — a planted susceptibility (and eddy-current) field on an AP/PA pair.
"""
from .bids import write_nifti_gz, write_subject
from .clinical import GROUPS, ClinicalModel, simulate_clinical
from .cohort import (DEFAULT_SEED, GT_COLUMNS, GT_EXTRA, LAMBDA_PAR_RANGE, LAMBDA_PERP_RANGE, SIMULATE_OPTIONS,
                     clinical_table, simulate_cohort)
from .phantom import TISSUE, TemplateFields, make_template_fields, oracle_alps
from .pose import Pose, draw_pose, native_grid, rotation_matrix
from .signal import default_scheme, noise_sigma, simulate_subject, subject_parameters, subject_template_tensor

__all__ = ["simulate_cohort", "simulate_subject", "clinical_table", "simulate_clinical", "ClinicalModel",
           "Pose", "draw_pose", "native_grid", "rotation_matrix", "default_scheme", "noise_sigma",
           "subject_parameters", "subject_template_tensor", "write_nifti_gz", "write_subject",
           "make_template_fields", "oracle_alps", "TemplateFields", "TISSUE", "GROUPS", "DEFAULT_SEED",
           "GT_COLUMNS", "GT_EXTRA", "LAMBDA_PAR_RANGE", "LAMBDA_PERP_RANGE", "SIMULATE_OPTIONS"]
