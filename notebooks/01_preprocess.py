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
preprocess_tsv = ""

# %% [markdown]
# # 01 — Pre-processing: validation, brain mask, tensor fit, registration to MNI
#
# For every DWI of the BIDS dataset `data_dir` this notebook runs the first pipeline stage
# (`alps.pipeline.preprocess_subject`):
#
# 1. load and validate the image and its FSL gradient table (`alps.io`);
# 2. brain mask (dipy `median_otsu` on the mean b0); MP-PCA denoising, Gibbs removal and motion
#    correction only if switched on (off by default);
# 3. WLS tensor fit in the image's voxel axes (`alps.dti`), FA/MD/colour FA, full tensor saved;
# 4. rigid → affine registration of FA to the MNI152 2009a white-matter probability map
#    (`alps.registration`, ANTs, seeded, single-threaded), with a correlation and a Dice QC.
#
# The parameters are the profile's `pipeline:` section (`config/<profile>.yaml`) overlaid by
# `pipeline`; every name is checked before any scan is read (`alps.pipeline.params`). Outputs go
# to `derivatives_dir` as BIDS derivatives; finished subjects with unchanged inputs and parameters
# are reused.

# %%
import sys
from pathlib import Path

from alps import paths
from alps.figures import registration_figure
from alps.pipeline import run_cohort
from alps.pipeline.params import from_profile
from alps.pipeline.tables import copy_table, failure_summary

p = paths.resolve(profile, data_dir=data_dir, derivatives_dir=derivatives_dir, preprocess_tsv=preprocess_tsv)
data_dir = p['data_dir']
derivatives_dir = p['derivatives_dir']
preprocess_tsv = p['preprocess_tsv']
params = from_profile(profile, pipeline)
print("data:", data_dir)
print("derivatives:", derivatives_dir)
params

# %%
pre = run_cohort(data_dir, derivatives_dir, params=params, stages=("preprocess",))
# the pipeline writes the deterministic status table (no timings) into derivatives_dir
if Path(preprocess_tsv) != derivatives_dir / "preprocess.tsv":
    copy_table(derivatives_dir / "preprocess.tsv", preprocess_tsv)  # and its data dictionary
print(f"{(pre['status'] == 'ok').sum()} of {len(pre)} scans pre-processed")
failed = failure_summary(pre, stage="preprocess", then=f" (status and error per scan: {preprocess_tsv})")
if failed:  # on the console, each on its own line (the cell's stderr reaches it)
    print(failed, file=sys.stderr)
pre

# %% [markdown]
# Failed scans (if any) and why — they are kept in the table with `status = failed`.

# %%
pre[pre["status"] != "ok"][["participant_id", "error"]]

# %% [markdown]
# ## Registration check for one subject
# The subject's FA resampled into MNI space with the template white-matter boundary (p = 0.5)
# drawn on top, at the level of the ALPS regions.

# %%
ok = pre[pre["status"] == "ok"]
if len(ok):
    first = ok.iloc[0]
    ses = first.get("session_id") if "session_id" in ok.columns else None
    fig = registration_figure(derivatives_dir, first["participant_id"], ses if isinstance(ses, str) else None)
else:
    print("no successfully pre-processed scan to show")
