"""Every column of the pipeline's cohort tables, declared once: name, units, description, the
stage that makes it and the function that computes it.

The registry gives the tables their column order (:func:`order`) and the BIDS data dictionary
written beside each table (``alps.json`` beside ``alps.tsv`` …, :func:`write_dictionary`), and
the report and figures take their labels from it (:func:`label`).

From a column to its code in one lookup: find its name in :data:`COLUMNS` below (a per-ROI
column is declared once with ``{roi}`` for the ROI name: ``dxx_scanner_proj_L`` is
``dxx_scanner_{roi}``), or ask ``alps columns dxx_scanner_proj_L``; ``source``
names the function that computes it.

Adding a column: declare it here, or for a stage-1 correction in
:mod:`alps.pipeline.columns_corrections` (with its ``stage`` and ``source``), and put it in the
:data:`TABLES` entry of every table that shows it. A column a table holds but the registry does
not declare is put last (alphabetically) and described as undocumented, with an
:class:`UndescribedColumnWarning` (an error in the test suite).
"""
from __future__ import annotations

import sys
import warnings

from ..imaging.roi import ROI_NAMES
from ..io.bidsnames import SCAN_ENTITIES
from .column_decl import BOOL, ROI_WORDS, Column
from .columns_corrections import CORRECTION_COLUMNS
from .columns_corrections import EDDY_COLUMNS as _EDDY
from .columns_corrections import SDC_COLUMNS as _SDC

__all__ = ["Column", "COLUMNS", "TABLES", "UndescribedColumnWarning", "lookup", "label", "order",
           "data_dictionary", "dictionary_path", "write_dictionary"]

class UndescribedColumnWarning(UserWarning):
    """A table holds a column :data:`COLUMNS` does not declare."""


MEASURE = "alps.imaging.measure.measure"
INDEX = "alps.imaging.index.alps_from_roi_tensors (via alps.imaging.measure.measure)"
TEMPLATE = ("template axes (the native tensor rotated by the rotation of the subject-to-MNI152 affine; "
            "insensitive to head tilt)")
SCANNER = "scanner axes (the tensor as fitted, in the image's voxel axes i, j, k, as FSL dtifit gives it)"
_ENT = {"acq": "acquisition", "rec": "reconstruction", "dir": "phase-encoding direction", "run": "run",
        "space": "space"}

_C = [
    Column("participant_id", "BIDS participant label of the scan (sub-<label>).", "discovery",
           "alps.pipeline.layout.id_columns"),
    Column("session_id", "BIDS session label of the scan (ses-<label>); only in datasets with sessions.",
           "discovery", "alps.pipeline.layout.id_columns"),
    *[Column(e, f"BIDS '{e}' ({_ENT[e]}) entity of the scan's file name; only when some scan has one (several "
              "series of one session each get their own row).", "discovery", "alps.pipeline.layout.id_columns")
      for e in SCAN_ENTITIES],
    Column("status", "Whether the scan went through every requested stage.", "run",
           "alps.pipeline.subject.process_subject",
           levels=(("ok", "processed"), ("failed", "not processed; 'error' says why"))),
    Column("error", "Why the scan failed: the stage, the exception and the file (empty when status is ok).",
           "run", "alps.pipeline.subject.process_subject"),
    # ---- the index
    Column("alps_L", f"ALPS index of the left hemisphere, {TEMPLATE}: mean(Dxx_proj, Dxx_assoc) / "
           "mean(Dyy_proj, Dzz_assoc) of the ROI-mean tensors.", "measure", INDEX, long_name="ALPS index, left"),
    Column("alps_R", f"ALPS index of the right hemisphere, {TEMPLATE}.", "measure", INDEX,
           long_name="ALPS index, right"),
    Column("alps", "ALPS index, mean of alps_L and alps_R (template axes).", "measure", INDEX,
           long_name="ALPS index (mean of hemispheres)"),
    Column("alps_scanner_L", f"ALPS index of the left hemisphere in {SCANNER}; same ROI weights.", "measure",
           MEASURE, long_name="scanner-axis ALPS index, left"),
    Column("alps_scanner_R", f"ALPS index of the right hemisphere in {SCANNER}.", "measure", MEASURE,
           long_name="scanner-axis ALPS index, right"),
    Column("alps_scanner", "Scanner-axis ALPS index, mean of alps_scanner_L and alps_scanner_R.", "measure",
           MEASURE, long_name="scanner-axis ALPS index"),
    # ---- uncertainty
    Column("alps_se", "Standard error of alps from the thermal noise: SD of the index over leverage-adjusted "
           "wild-bootstrap replicates of the tensor fit for the scan's fixed ROIs (n/a when the signal was "
           "denoised, Gibbs-corrected or motion-corrected with ANTs, see se_note; after the eddy-current correction "
           "the corrected signal, kept as desc-preproc_dwi, is resampled).", "uncertainty",
           "alps.pipeline.uncertainty.scan_se"),
    Column("alps_L_se", "Standard error of alps_L (as alps_se).", "uncertainty", "alps.pipeline.uncertainty.scan_se"),
    Column("alps_R_se", "Standard error of alps_R (as alps_se).", "uncertainty", "alps.pipeline.uncertainty.scan_se"),
    Column("se_high", "alps_se exceeds the se_max parameter.", "uncertainty", "alps.pipeline.uncertainty.scan_se",
           levels=BOOL),
    Column("se_note", "Why the standard errors are n/a, or a caveat on them (computed on a corrected, resampled "
           "signal); empty otherwise.", "uncertainty",
           "alps.pipeline.uncertainty.scan_se"),
    # ---- the registration's share of the uncertainty, the ROIs' placement (alps.pipeline.placement)
    Column("alps_reg_se", "Standard error of alps from the registration: SD of the index over the 14 sigma points "
           "(unscented transform) of the registration's sandwich covariance (7 similarity parameters; the "
           "image-template mismatch resampled in 16 mm template blocks), the ROIs mapped through each perturbed "
           "registration with their centres held in template space (n/a for a non-linear registration or "
           "nearest-neighbour label ROIs, see reg_se_note).", "uncertainty",
           "alps.imaging.regse.registration_se (via alps.pipeline.placement.reg_se)"),
    Column("alps_L_reg_se", "Standard error of alps_L from the registration (as alps_reg_se).", "uncertainty",
           "alps.imaging.regse.registration_se (via alps.pipeline.placement.reg_se)"),
    Column("alps_R_reg_se", "Standard error of alps_R from the registration (as alps_reg_se).", "uncertainty",
           "alps.imaging.regse.registration_se (via alps.pipeline.placement.reg_se)"),
    Column("alps_total_se", "Total standard error of alps: sqrt(alps_se^2 + alps_reg_se^2) (thermal noise and "
           "registration, independent); n/a when either is.", "uncertainty", "alps.pipeline.placement.columns"),
    Column("alps_L_total_se", "Total standard error of alps_L: sqrt(alps_L_se^2 + alps_L_reg_se^2).", "uncertainty",
           "alps.pipeline.placement.columns"),
    Column("alps_R_total_se", "Total standard error of alps_R: sqrt(alps_R_se^2 + alps_R_reg_se^2).", "uncertainty",
           "alps.pipeline.placement.columns"),
    Column("roi_sd_{roi}", "How far the registration's uncertainty moves the centre of the {roi}: square root of the "
           "trace of its displacement covariance (template space).", "uncertainty",
           "alps.imaging.regse.registration_se (via alps.pipeline.placement.reg_se)", units="mm"),
    Column("roi_sd_max", "The largest roi_sd_<roi> of the scan; above the qc_max_roi_sd parameter the scan is "
           "flagged reg_unstable.", "uncertainty", "alps.imaging.regse.registration_se (via "
           "alps.pipeline.placement.reg_se)", units="mm"),
    Column("reg_se_note", "Why the registration standard errors are n/a (empty when they were computed).",
           "uncertainty", "alps.pipeline.placement.reg_se"),
    Column("roi_shift_{roi}", "How far the tract-guided placement (roi_placement tract) moved the {roi} from its "
           "template centre (0: it sat on its tract, or roi_placement template).", "measure",
           "alps.imaging.placement.place_rois (via alps.pipeline.placement.columns)", units="mm"),
    # ---- per-ROI values
    *[Column(f"d{a}{a}_{{roi}}", f"D{a}{a} (the {a}-{a} component) of the weighted ROI-mean tensor of the {{roi}}, "
             f"{TEMPLATE}.", "measure", INDEX, units="mm^2/s") for a in "xyz"],
    *[Column(f"d{a}{a}_scanner_{{roi}}", f"D{a}{a} of the weighted ROI-mean tensor of the {{roi}}, in {SCANNER}.",
             "measure", MEASURE, units="mm^2/s") for a in "xyz"],
    Column("fa_{roi}", "Weighted mean fractional anisotropy in the {roi}.", "measure", MEASURE),
    Column("md_{roi}", "Weighted mean mean diffusivity in the {roi}.", "measure", MEASURE, units="mm^2/s"),
    Column("nvox_{roi}", "Number of native voxels with a non-zero weight in the {roi}.", "measure", MEASURE),
    Column("wsum_{roi}", "Sum of the native ROI weights of the {roi}: its volume in native voxels.", "measure",
           MEASURE),
    Column("purity_{roi}", "Weighted fraction of the {roi}'s voxels whose principal eigenvector (template axes) "
           "lies along the expected axis (z for projection, y for association fibres).", "measure", MEASURE),
    # ---- registration and QC
    Column("reg_corr", "Correlation of the registered FA with the template white-matter map (inside the "
           "template brain mask).", "preprocess", "alps.imaging.registration.registration_metrics"),
    Column("reg_dice", "Dice overlap of the registered brain mask with the template brain mask, over the part of "
           "the template brain inside the field of view (the whole brain for a whole-brain scan).", "preprocess",
           "alps.imaging.registration.registration_metrics"),
    Column("reg_coverage", "Fraction of the template brain inside the scan's field of view after registration "
           "(1 for a whole-brain scan; below min_reg_coverage the registration cannot be checked and the scan "
           "fails).", "preprocess", "alps.imaging.registration.registration_metrics"),
    Column("qc_flags", "QC flags, ';'-separated (empty when none): reg_corr_low, reg_dice_low, reg_loosened, "
           "fa_low_<roi>, purity_low_<roi>, gradient_table, alps_range, se_high, high_b, reg_unstable, sdc_folds "
           "(alps.imaging.qc).",
           "measure", "alps.imaging.qc.flags"),
    Column("qc_pass", "The scan passed QC: qc_flags is empty.", "measure", "alps.imaging.qc.flags", levels=BOOL),
    Column("qc_png", "The scan's QC image, relative to the derivatives folder (empty for a failed scan).",
           "tables", "alps.pipeline.tables.qc_table"),
    # ---- gradient check
    Column("gradcheck_best", "The gradient-table transform (axis flips/permutation) that fits the data best "
           "(gradcheck report|correct).", "preprocess", "alps.imaging.gradcheck.check_gradients"),
    Column("gradcheck_margin", "Score of the best transform over the table as given (1 when the table as given "
           "is best).", "preprocess", "alps.imaging.gradcheck.check_gradients"),
    Column("gradcheck_flag", "The check found a transform fitting clearly better than the table as given.",
           "preprocess", "alps.imaging.gradcheck.check_gradients", levels=BOOL),
    Column("gradcheck_corrected", "The tensors were fitted with the corrected table (gradcheck correct).",
           "preprocess", "alps.pipeline.preprocess.preprocess_subject", levels=BOOL),
    # ---- acquisition and scanner metadata
    Column("shells", "The scan's non-zero shells (b-values, ','-separated).", "preprocess",
           "alps.imaging.shells.select_volumes", units="s/mm^2"),
    Column("bvals_used", "b = 0 and the shells the tensor model was fitted on.", "preprocess",
           "alps.imaging.shells.select_volumes", units="s/mm^2"),
    Column("bval_fit", "The largest b-value the tensor model was fitted on (above the model's maximum for a "
           "single-shell high-b scan, flagged high_b: not comparable with b = 1000 studies).", "preprocess",
           "alps.imaging.shells.select_volumes", units="s/mm^2"),
    Column("n_volumes_used", "Volumes the tensor model was fitted on.", "preprocess",
           "alps.imaging.shells.select_volumes"),
    Column("n_directions", "Diffusion-weighted volumes of the scan.", "preprocess", "alps.imaging.shells.select_volumes"),
    Column("manufacturer", "Manufacturer (BIDS sidecar).", "metadata", "alps.io.metadata.scan_metadata"),
    Column("manufacturer_model", "ManufacturersModelName (BIDS sidecar).", "metadata", "alps.io.metadata.scan_metadata"),
    Column("magnetic_field_strength", "MagneticFieldStrength (BIDS sidecar).", "metadata",
           "alps.io.metadata.scan_metadata", units="T"),
    Column("software_versions", "SoftwareVersions of the scanner (BIDS sidecar).", "metadata",
           "alps.io.metadata.scan_metadata"),
    Column("echo_time", "EchoTime (BIDS sidecar).", "metadata", "alps.io.metadata.scan_metadata", units="s"),
    Column("repetition_time", "RepetitionTime (BIDS sidecar).", "metadata", "alps.io.metadata.scan_metadata",
           units="s"),
    Column("phase_encoding_direction", "PhaseEncodingDirection (BIDS sidecar: i, j, k, with - for reversed).",
           "metadata", "alps.io.metadata.scan_metadata"),
    Column("phase_encoding_axis", "PhaseEncodingAxis (BIDS sidecar, or the direction without its sign).",
           "metadata", "alps.io.metadata.scan_metadata"),
    Column("voxel_size_mm", "Voxel size of the DWI (image header), 'x'-separated.", "metadata",
           "alps.io.metadata.scan_metadata", units="mm"),
    # ---- motion (motion_correction)
    Column("motion_mean_disp_mm", "Mean over the diffusion-weighted volumes of the largest displacement, by the "
           "volume's motion-correction transform, of six points 50 mm from the image centre.", "preprocess",
           "alps.imaging.preprocess.motion_summary", units="mm"),
    Column("motion_max_disp_mm", "Largest such displacement over the diffusion-weighted volumes.", "preprocess",
           "alps.imaging.preprocess.motion_summary", units="mm"),
    Column("motion_max_rot_deg", "Largest rotation of a volume's motion-correction transform.", "preprocess",
           "alps.imaging.preprocess.motion_summary", units="deg"),
    Column("motion_max_scale", "Largest deviation of a motion-correction transform's singular values from 1 "
           "(scaling/shear, e.g. eddy currents).", "preprocess", "alps.imaging.preprocess.motion_summary"),
    *CORRECTION_COLUMNS,
    # ---- provenance.tsv
    *[Column(f"{f}_sha256", f"SHA-256 of the input {f} file.", "discovery", "alps.io.bids.input_hashes")
      for f in ("dwi", "bval", "bvec")],
    Column("preprocess_parameters", "Parameters of the preprocess stage, 'key=value; ...' with sorted keys.",
           "preprocess", "alps.pipeline.provenance.kv"),
    Column("measure_parameters", "Parameters of the measure stage, 'key=value; ...' with sorted keys.", "measure",
           "alps.pipeline.provenance.kv"),
    Column("versions", "Versions of Python and the packages the stages used, 'name=version; ...'.", "preprocess",
           "alps.pipeline.provenance.package_versions"),
    # ---- timings.tsv (run-dependent)
    Column("preprocess_reused", "The preprocess stage was reused from an earlier run (same inputs, parameters "
           "and versions).", "run", "alps.pipeline.preprocess.preprocess_subject", levels=BOOL),
    Column("measure_reused", "The measure stage was reused from an earlier run.", "run",
           "alps.pipeline.measure.measure_subject", levels=BOOL),
    *[Column(f"time_{k}_s", f"Wall time of {what}.", "run", src, units="s") for k, what, src in (
        ("hash", "hashing the inputs", "alps.pipeline.subject.process_subject"),
        ("load", "loading and validating the DWI", "alps.pipeline.preprocess.preprocess_subject"),
        ("preprocess", "masking and the optional denoising / Gibbs / motion correction",
         "alps.pipeline.preprocess.preprocess_subject"),
        ("sdc", "the susceptibility-distortion correction (field, unwarping, per-volume fields)",
         "alps.pipeline.distortion.correct_series"),
        ("sdc_pairs", "the per-volume fields of two full series of opposite phase encoding (part of time_sdc_s)",
         "alps.imaging.volume_pairs.correct_volume_pairs"),
        ("eddy", "the eddy-current and motion correction", "alps.pipeline.eddy_step.run"),
        ("signal", "writing the corrected signal (desc-preproc_dwi)", "alps.pipeline.signal.keep"),
        ("gradcheck", "the gradient check", "alps.pipeline.preprocess.preprocess_subject"),
        ("tensor_fit", "the tensor fit", "alps.pipeline.preprocess.preprocess_subject"),
        ("write", "writing the preprocess derivatives", "alps.pipeline.preprocess.preprocess_subject"),
        ("registration", "the registration to MNI152", "alps.pipeline.preprocess.preprocess_subject"),
        ("measure", "the measure stage (without the standard errors and the QC image)",
         "alps.pipeline.measure.measure_subject"),
        ("se", "the standard errors (wild bootstrap)", "alps.pipeline.uncertainty.scan_se"),
        ("reg_se", "the registration standard errors", "alps.pipeline.placement.reg_se"),
        ("qc", "drawing the QC image", "alps.pipeline.measure.measure_subject"))],
]

#: every column, by its declared name (``{roi}`` for per-ROI columns).
COLUMNS: dict[str, Column] = {c.name: c for c in _C}
if len(COLUMNS) != len(_C):  # pragma: no cover - a module-level declaration error
    raise RuntimeError("alps.pipeline.columns: a column is declared twice")

_IDS = ("participant_id", "session_id", *SCAN_ENTITIES)
_ROI = ("dxx_{roi}", "dyy_{roi}", "dzz_{roi}", "fa_{roi}", "md_{roi}", "nvox_{roi}")
_GRADCHECK = ("gradcheck_best", "gradcheck_margin", "gradcheck_flag", "gradcheck_corrected")
_REG_SE = ("alps_reg_se", "alps_L_reg_se", "alps_R_reg_se", "alps_total_se", "alps_L_total_se", "alps_R_total_se",
           "roi_sd_max")
_MOTION = ("motion_mean_disp_mm", "motion_max_disp_mm", "motion_max_rot_deg", "motion_max_scale")
#: the other columns of alps.tsv (alphabetical there)
_ALPS_MORE = ("se_note", "reg_se_note", "roi_sd_{roi}", "roi_shift_{roi}", "dxx_scanner_{roi}", "dyy_scanner_{roi}",
              "dzz_scanner_{roi}", "wsum_{roi}", "purity_{roi}",
              *_GRADCHECK, "shells", "bvals_used", "bval_fit", "n_volumes_used", "n_directions", "manufacturer",
              "manufacturer_model", "magnetic_field_strength", "software_versions", "echo_time", "repetition_time",
              "phase_encoding_direction", "phase_encoding_axis", "voxel_size_mm", *_MOTION, *_EDDY, *_SDC)

#: the column order of each table: sections of declared names, in order; a section marked
#: ``sorted`` is alphabetical, and columns no section names join the last section.
TABLES = {
    "alps.tsv": ((_IDS + ("status", "error", "alps_L", "alps_R", "alps", "alps_scanner_L", "alps_scanner_R",
                          "alps_scanner", "alps_se", "alps_L_se", "alps_R_se", "se_high", *_REG_SE, "alps_combined",
                          "alps_combined_se", "alps_combined_n", "alps_pair_z") + _ROI
                  + ("reg_corr", "reg_dice", "reg_coverage", "qc_flags", "qc_pass"), False),
                 (_ALPS_MORE, True)),
    "qc.tsv": ((_IDS + ("status", "error", "reg_corr", "reg_dice", "reg_coverage", "fa_{roi}", "purity_{roi}", *_GRADCHECK, "alps_L", "alps_R", "alps",
                        "alps_se", "alps_total_se", "roi_sd_max", "se_high", "sdc_source", "sdc_min_jacobian",
                        "alps_pair_z", "qc_flags", "qc_pass", "qc_png"), False),),
    "preprocess.tsv": ((_IDS + ("status", "error", "reg_corr", "reg_dice", "reg_coverage", *_MOTION, *_EDDY, *_SDC),
                        False),),
    "timings.tsv": ((_IDS + ("status", "preprocess_reused", "measure_reused"), False),
                    (tuple(n for n in COLUMNS if n.startswith("time_")), True)),
    "provenance.tsv": ((_IDS + ("status", "dwi_sha256", "bval_sha256", "bvec_sha256", "preprocess_parameters",
                                "measure_parameters", "versions"), False),),
}


def lookup(name: str) -> Column | None:
    """The declaration of a concrete column name (``dxx_scanner_proj_L`` → ``dxx_scanner_{roi}``), or None."""
    if name in COLUMNS:
        return COLUMNS[name]
    for r in ROI_NAMES:
        if name.endswith("_" + r) and name[: -len(r)] + "{roi}" in COLUMNS:
            return COLUMNS[name[: -len(r)] + "{roi}"]
    return None


def label(name: str) -> str:
    """A column's label for figures and the report: its long name, else its name."""
    c = lookup(name)
    return (c.entry(name).get("LongName") or name) if c else name


def table_columns(table: str) -> list[str]:
    """Every concrete column ``table`` can hold, in its order."""
    return [n for names, _ in TABLES[table] for d in names for n in COLUMNS[d].names()]


def order(table: str, columns) -> list[str]:
    """``columns`` (the ones a table holds) in the table's order (:data:`TABLES`)."""
    present = list(dict.fromkeys(columns))
    out = []
    sections = TABLES[table]
    for i, (names, alphabetical) in enumerate(sections):
        cols = [n for d in names for n in COLUMNS[d].names() if n in present and n not in out]
        if i == len(sections) - 1:
            cols += [c for c in present if c not in out and c not in cols
                     and not any(c in COLUMNS[d].names() for s, _ in sections for d in s)]
        out += sorted(cols) if alphabetical else cols
    return out + [c for c in present if c not in out]


def data_dictionary(columns) -> dict:
    """The BIDS data dictionary (``{column: {LongName, Description, Levels, Units}}``) of a table's
    columns, in their order; an undeclared column is described as such, with a warning."""
    out = {}
    for name in columns:
        c = lookup(name)
        if c is None:
            warnings.warn(f"column {name!r} is not declared in alps.pipeline.columns", UndescribedColumnWarning,
                          stacklevel=2)
            out[name] = {"Description": "Not described: a column alps.pipeline.columns does not declare."}
        else:
            out[name] = c.entry(name)
    return out


def dictionary_path(table_path):
    """The data dictionary's path beside a table: ``alps.tsv`` → ``alps.json``."""
    from pathlib import Path

    return Path(table_path).with_suffix(".json")


def write_dictionary(table_path, columns):
    """Write the data dictionary of a table's ``columns`` beside it (atomically); returns its path."""
    from .. import atomic

    return atomic.write_json(dictionary_path(table_path), data_dictionary(columns), sort_keys=False)


def main(argv=None) -> int:
    """``alps columns NAME ...`` (:mod:`alps.cli.columns`): where each column comes from; ``0``, or ``1``
    when a name is not declared."""
    names = sys.argv[1:] if argv is None else argv
    status = 0
    for name in names or COLUMNS:
        c = lookup(name)
        if c is None:
            print(f"{name}: not declared")
            status = 1
            continue
        e = c.entry(name) if "{roi}" not in name else {"Description": c.description}
        print(f"{name}  [{c.stage}]  {c.source}\n    {e['Description']}" + (f" ({c.units})" if c.units else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
