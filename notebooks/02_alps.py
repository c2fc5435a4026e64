# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (alps)
#     language: python
#     name: alps
# ---

# %% tags=["parameters"]
profile = "default"
data_dir = ""
derivatives_dir = ""
pipeline = {}  # pipeline parameters over the profile's `pipeline:` section, e.g. {"roi_radius": 5.0}
truth_table = ""
alps_table = ""
qc_tsv = ""
provenance_tsv = ""
validation_csv = ""
rotation_angles = [5, 10, 15]
rotation_snr = 100.0
rotation_sweep_csv = ""

# %% [markdown]
# # 02 — ALPS index: ROIs, template-axis and scanner-axis ALPS, QC, validation
#
# Second pipeline stage (`alps.pipeline.measure_subject`) on the outputs of notebook 01:
#
# * the four ALPS spheres (SCR ±26, −16, 27 mm; SLF ±38, −16, 27 mm; radius `roi_radius`) are
#   mapped from MNI space into each subject's native grid through the registration: the sphere is
#   sampled on a 0.5 mm template lattice and each sample shares its weight among its 8 native
#   neighbours (trilinear), so the ROI mean equals the mean over the sphere of the interpolated
#   native tensor field — what atlas-based pipelines get by resampling the maps to MNI;
# * **template-axis ALPS** (`alps`, `alps_L`, `alps_R`): the native tensor is rotated into template
#   axes by the rotation of the subject → MNI affine before reading Dxx/Dyy/Dzz — insensitive to
#   head tilt and oblique slabs;
# * **scanner-axis ALPS** (`alps_scanner*`): the classic value, tensor in the image voxel axes;
# * QC flags (registration, ROI FA, eigenvector purity, plausible range) and a QC image per scan.
#
# Pre-processing already done with the same inputs and parameters is reused, not recomputed.

# %%
import sys
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from alps import atomic, paths
from alps.pipeline import run_cohort
from alps.pipeline.params import from_profile
from alps.pipeline.columns import data_dictionary
from alps.pipeline.tables import copy_table, failure_summary
from alps.validation import validation_table

truth_given = bool(truth_table)
p = paths.resolve(profile, data_dir=data_dir, derivatives_dir=derivatives_dir, truth_table=truth_table, alps_table=alps_table, qc_tsv=qc_tsv,
                  provenance_tsv=provenance_tsv, validation_csv=validation_csv, rotation_sweep_csv=rotation_sweep_csv)
data_dir = p['data_dir']
derivatives_dir = p['derivatives_dir']
truth_table = p['truth_table']
alps_table = p['alps_table']
qc_tsv = p['qc_tsv']
provenance_tsv = p['provenance_tsv']
validation_csv = p['validation_csv']
rotation_sweep_csv = p['rotation_sweep_csv']

params = from_profile(profile, pipeline)
res = run_cohort(data_dir, derivatives_dir, params=params)
qc_df = pd.read_csv(derivatives_dir / "qc.tsv", sep="\t")
# the pipeline's tables are deterministic (run timings live in derivatives_dir/timings.tsv); with
# each table goes its data dictionary (alps.json beside alps.tsv: every column described)
copy_table(derivatives_dir / "alps.tsv", alps_table)
copy_table(derivatives_dir / "qc.tsv", qc_tsv)
# per scan: SHA-256 of the inputs, the stage parameters and the package versions (shown in the report)
copy_table(derivatives_dir / "provenance.tsv", provenance_tsv)
print(f"{(res['status'] == 'ok').sum()} of {len(res)} scans measured; "
      f"{int(res['qc_pass'].fillna(False).astype(bool).sum())} pass QC")
failed = failure_summary(res, stage="alps", then=f" (errors in {alps_table}; the statistics exclude them and list "
                                                  "them in tables/exclusions.csv)")
if failed:  # on the console, each on its own line (the cell's stderr reaches it)
    print(failed, file=sys.stderr)
res[["participant_id", "status", "alps_L", "alps_R", "alps", "alps_scanner_L", "alps_scanner_R",
     "alps_scanner", "reg_corr", "qc_flags"]]

# %% [markdown]
# What each column of `alps.tsv` is (its data dictionary, `alps.json`; declared in
# `alps.pipeline.columns`, which names the function that computes each one):

# %%
pd.DataFrame([{"column": k, "units": e.get("Units", ""), "description": e["Description"]}
              for k, e in data_dictionary(res.columns[:14]).items()])

# %% [markdown]
# ## QC images of a couple of subjects
# Left to right: colour FA in template axes at the ROI level with the spheres; warped FA with
# the template WM boundary (axial, coronal); native FA with the native ROI labels.

# %%
for png in [p for p in qc_df["qc_png"].dropna() if p][:2]:
    print(png)
    display(Image(filename=str(derivatives_dir / png)))

# %% [markdown]
# ## Agreement with the ground truth
# For simulated data `truth_table` is the simulator's `ground_truth.tsv`; for real data there is
# no truth and the validation table is written with zero rows.

# %%
if truth_given and not Path(truth_table).is_file():
    raise FileNotFoundError(f"{truth_table}: ground-truth table not found")
truth = pd.read_csv(truth_table, sep="\t") if truth_table and Path(truth_table).is_file() else None
validation = validation_table(res, truth)
if validation_csv:
    atomic.write_table(validation_csv, validation)
if truth is None:
    print("no truth table given (real data): validation table has zero rows")
validation

# %% [markdown]
# ## Rotation robustness (simulated, known truth)
# One simulated subject at high SNR (`rotation_snr`) with the head rotated by 0 and ±`a` degrees
# about each axis for every `a` in `rotation_angles`, run through the same pipeline and
# parameters. The template-axis index should stay flat (spread = max − min close to the noise);
# the classic scanner-axis index drifts with the tilt. The work directory sits beside the
# derivatives and is reused on reruns. A simulation-only product: with `rotation_angles = []` (as
# `alps paper` passes for a lab's own data) it is skipped and no table is written.

# %%
from alps.validation import rotation_sweep, sweep_spreads

if rotation_angles and rotation_sweep_csv:
    sweep = rotation_sweep(Path(derivatives_dir).parent / "rotation_sweep", angles=rotation_angles,
                           snr=rotation_snr, params=params)
    atomic.write_table(rotation_sweep_csv, sweep)
    display(sweep_spreads(sweep))
else:
    print("rotation sweep skipped (simulation-only product: rotation_angles or rotation_sweep_csv empty)")

# %% [markdown]
# ## Repeated scans of the same people: reliability
# Only when the dataset has them (sessions, test-retest, slab tilts; the simulated cohort has one
# scan per subject). Per participant: within-subject SD and CV, the spread of the index across
# the scans against the spread noise alone would give (from each scan's wild-bootstrap SE,
# `alps_se`), Cochran's Q; over participants: ICC(2,1) and ICC(3,1) (`alps.stats.reliability`).
# The same table and a Bland-Altman figure from the command line: `alps reliability OUT_DIR`.

# %%
from alps.stats.reliability import reliability_table

n_scans = res[res["status"] == "ok"].groupby("participant_id").size()
if (n_scans >= 2).any():
    display(reliability_table(res, by="participant_id"))
else:
    print(f"every participant has one scan ({len(n_scans)} participants): no reliability table")
