"""Checks against something independent: planted truth (:mod:`.truth`), the head-rotation
sweep (:mod:`.sweep`), fibre-field agreement between repeated real scans (:mod:`.fibres`), the
tensor models of multi-shell data against planted non-Gaussian truth (:mod:`.multishell`)."""
from .fibres import fibre_field_agreement
from .multishell import multishell_bias
from .resample import downsample2
from .sweep import rotation_sweep, simulate_pose_subject, sweep_poses, sweep_spreads
from .truth import VALIDATION_COLUMNS, VALIDATION_PAIRS, validation_table

__all__ = ["rotation_sweep", "simulate_pose_subject", "sweep_poses", "sweep_spreads", "fibre_field_agreement",
           "downsample2", "multishell_bias", "validation_table", "VALIDATION_COLUMNS", "VALIDATION_PAIRS"]
