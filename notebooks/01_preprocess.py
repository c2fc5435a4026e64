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
n_jobs = 2
roi = "spheres"
roi_radius = 2.5
registration = "affine"
registration_sampling = "regular"
denoise = False
gibbs = False
motion_correction = False
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
# Outputs go to `derivatives_dir` as BIDS derivatives; finished subjects with unchanged inputs
# and parameters are reused.

# %%
from pathlib import Path

import pandas as pd

from alps import io as aio
from alps import paths, pipeline, qc

p = paths.resolve(profile, data_dir=data_dir, derivatives_dir=derivatives_dir, preprocess_tsv=preprocess_tsv)
data_dir = p['data_dir']
derivatives_dir = p['derivatives_dir']
preprocess_tsv = p['preprocess_tsv']
print("data:", data_dir)
print("derivatives:", derivatives_dir)

# %%
pre = pipeline.run_cohort(
    data_dir, derivatives_dir, n_jobs=n_jobs, roi=roi, roi_radius=roi_radius,
    registration=registration, registration_sampling=registration_sampling, denoise=denoise, gibbs=gibbs,
    motion_correction=motion_correction,
    stages=("preprocess",))
# the pipeline writes the deterministic status table (no timings) into derivatives_dir
if Path(preprocess_tsv) != derivatives_dir / "preprocess.tsv":
    aio.atomic_write_tsv(pd.read_csv(derivatives_dir / "preprocess.tsv", sep="\t"), preprocess_tsv)
print(f"{(pre['status'] == 'ok').sum()} of {len(pre)} scans pre-processed")
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
    fig = qc.registration_figure(derivatives_dir, first["participant_id"], ses if isinstance(ses, str) else None)
else:
    print("no successfully pre-processed scan to show")
