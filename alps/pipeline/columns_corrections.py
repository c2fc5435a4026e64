"""The registry's columns of the stage-1 corrections (:mod:`alps.pipeline.columns`): eddy currents
and motion (:mod:`alps.pipeline.eddy_step`), the susceptibility-distortion correction
(:mod:`alps.pipeline.distortion`) and the participant's index from two reverse phase-encoded series
(:mod:`alps.pipeline.pairs`). Declared here, listed by :data:`alps.pipeline.columns.COLUMNS`."""
from __future__ import annotations

from .column_decl import Column

__all__ = ["CORRECTION_COLUMNS", "EDDY_COLUMNS", "SDC_COLUMNS"]

EDDY = "alps.pipeline.eddy_step.summary"

CORRECTION_COLUMNS = [
    # ---- eddy currents and motion (eddy_correction; alps.pipeline.eddy_step)
    Column("eddy_model", "Eddy-current model of the correction (the eddy_model parameter, or rigid when per-volume "
           "fields of a reverse phase-encoded pair remove the eddy currents).", "preprocess", EDDY,
           levels=(("linear", "rigid motion + displacement along the phase-encoding axis linear in position"),
                   ("quadratic", "the same, quadratic in position"), ("rigid", "head motion only"))),
    Column("eddy_pe_axis", "Voxel axis (i, j, k) along which the eddy-current displacement was modelled, from the "
           "sidecar; 'unknown (i+j)' when no sidecar gives it (a displacement along both in-plane axes).",
           "preprocess", EDDY),
    Column("eddy_pe_source", "Sidecar field the phase-encoding axis came from (PhaseEncodingDirection, "
           "PhaseEncodingAxis), or none.", "preprocess", EDDY),
    Column("eddy_passes", "Registration passes of the correction (one smoothed, then until no parameter moves by "
           "more than 0.05 mm, at most 8; again after outlier slices were replaced).", "preprocess", EDDY),
    Column("eddy_mean_disp_mm", "Mean over the diffusion-weighted volumes of the mean displacement of the brain "
           "voxels by the volume's transform (motion and eddy currents; the first b = 0 is the reference).",
           "preprocess", EDDY, units="mm"),
    Column("eddy_max_disp_mm", "Largest displacement of a brain voxel by a volume's transform.", "preprocess", EDDY,
           units="mm"),
    Column("eddy_max_rot_deg", "Largest head rotation of a volume.", "preprocess", EDDY, units="deg"),
    Column("eddy_max_trans_mm", "Largest head translation of a volume (about the brain's centroid).", "preprocess",
           EDDY, units="mm"),
    Column("eddy_max_ec_disp_mm", "Largest displacement of a brain voxel by the eddy-current part alone.",
           "preprocess", EDDY, units="mm"),
    Column("eddy_n_outlier_slices", "Slices (over all volumes) whose signal fell more than 4 SD below their "
           "leave-one-out prediction (replaced by it when eddy_outliers is replace).", "preprocess", EDDY),
    Column("eddy_n_outlier_volumes", "Volumes with at least one outlier slice.", "preprocess", EDDY),
    Column("eddy_outlier_volumes", "Those volumes (0-based, among the volumes of the tensor model), "
           "comma-separated.", "preprocess", EDDY),
    # ---- susceptibility-distortion correction (alps.pipeline.distortion, sdc auto)
    Column("sdc_source", "Where the susceptibility field of the scan came from (only when some scan of the cohort "
           "was corrected).", "preprocess", "alps.pipeline.distortion.find_source",
           levels=(("pepolar-dwi", "the other full DWI series of opposite phase encoding (dir-AP/dir-PA)"),
                   ("pepolar-epi", "reverse phase-encoded b = 0 images in fmap/ (IntendedFor/B0FieldIdentifier)"),
                   ("phasediff", "a GRE phase-difference field map in fmap/"),
                   ("fieldmap", "a field map in fmap/"),
                   ("none", "no field source found (not corrected)"), ("off", "sdc off (not corrected)"))),
    Column("sdc_inputs", "The field source's files, ';'-separated.", "preprocess", "alps.io.fmap.field_source"),
    Column("sdc_readout_s", "TotalReadoutTime of the corrected series (sidecar, or EffectiveEchoSpacing x "
           "(ReconMatrixPE - 1)): a field f (Hz) shifts it by f x readout voxels along the phase-encoding axis.",
           "preprocess", "alps.io.fmap.phase_encoding", units="s"),
    Column("sdc_displacement_p95_mm", "95th percentile of the correction's displacement within the brain mask.",
           "preprocess", "alps.imaging.susceptibility.field_summary", units="mm"),
    Column("sdc_displacement_max_mm", "Largest displacement of the correction within the brain mask.", "preprocess",
           "alps.imaging.susceptibility.field_summary", units="mm"),
    Column("sdc_min_jacobian", "Smallest Jacobian (1 + d displacement / d position along the phase-encoding axis) "
           "within the brain mask; at or below 0 the field folds the image.", "preprocess",
           "alps.imaging.susceptibility.field_summary"),
    Column("sdc_mismatch_before", "Reverse phase encoding: normalised mean squared difference of the two b = 0 "
           "images before the correction.", "preprocess", "alps.imaging.pepolar.estimate_field"),
    Column("sdc_mismatch_after", "The same after the correction.", "preprocess", "alps.imaging.pepolar.estimate_field"),
    Column("sdc_rigid_mm", "Largest translation of the rigid motion measured between the field source and the "
           "series (reverse phase encoding: between the corrected b = 0 images).", "preprocess",
           "alps.imaging.susceptibility.correct_pepolar", units="mm"),
    Column("sdc_rigid_deg", "Largest rotation of that motion.", "preprocess",
           "alps.imaging.susceptibility.correct_pepolar", units="deg"),
    Column("sdc_volume_pairs", "Two full series of opposite phase encoding: matched diffusion-weighted volume pairs "
           "corrected with their own field (sdc_pairs auto).", "preprocess",
           "alps.imaging.volume_pairs.correct_volume_pairs"),
    Column("sdc_volume_field_rms_hz", "RMS over the volume pairs of each pair's field within the brain (eddy "
           "currents along the phase-encoding axis).", "preprocess", "alps.imaging.volume_pairs.correct_volume_pairs",
           units="Hz"),
    Column("alps_combined", "The participant's index from two full series of opposite phase encoding corrected "
           "with each other (same value on both rows): inverse-variance weighted mean of their alps, weights "
           "1/alps_se^2 (plain mean when an SE is n/a).", "tables", "alps.pipeline.pairs.combine_pairs",
           long_name="ALPS index, both phase encodings"),
    Column("alps_combined_se", "Standard error of alps_combined: 1/sqrt(sum of 1/alps_se^2).", "tables",
           "alps.pipeline.pairs.combine_pairs"),
    Column("alps_combined_n", "Series combined in alps_combined.", "tables", "alps.pipeline.pairs.combine_pairs"),
    Column("alps_pair_z", "Agreement of the two series: (alps of the dir label sorting first - the other's) / "
           "sqrt(alps_se^2 + alps_se^2); beyond +-2 they differ by more than their noise.", "tables",
           "alps.pipeline.pairs.combine_pairs"),
]

#: the eddy step's columns of preprocess.tsv, in order
EDDY_COLUMNS = ("eddy_model", "eddy_pe_axis", "eddy_pe_source", "eddy_passes", "eddy_mean_disp_mm", "eddy_max_disp_mm",
                "eddy_max_rot_deg", "eddy_max_trans_mm", "eddy_max_ec_disp_mm", "eddy_n_outlier_slices",
                "eddy_n_outlier_volumes", "eddy_outlier_volumes")
#: the susceptibility correction's columns of preprocess.tsv, in order
SDC_COLUMNS = ("sdc_source", "sdc_inputs", "sdc_readout_s", "sdc_displacement_p95_mm", "sdc_displacement_max_mm",
               "sdc_min_jacobian", "sdc_mismatch_before", "sdc_mismatch_after", "sdc_rigid_mm", "sdc_rigid_deg",
               "sdc_volume_pairs", "sdc_volume_field_rms_hz")
