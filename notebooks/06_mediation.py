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
alps_table = ""
participants = ""
session = ""  # multi-session ALPS table: the session to analyse, e.g. "ses-01"
session_policy = "strict"  # participants without that session: "strict" (excluded) or "only-scan" (their only scan)
design = {}  # the study design (config `design:` section; alps.stats.design)
truth_table = ""
n_boot = 5000
seed = 20260505
mediation_csv = ""
reproduction_csv = ""
key_numbers_json = ""
truth_check_csv = ""

# %% [markdown]
# # 06 — Mediation and the reproduction table
#
# Does the ALPS index mediate the association between the design's exposure and outcome
# (`design.mediation`: x → m → y within its groups)? Paths from OLS: a (x → ALPS), b (ALPS → y
# adjusting for x), c (total effect), c′ (direct effect); indirect effect a·b with a bias-corrected bootstrap
# 95 % CI (`n_boot` case resamples, seed `seed`), and the proportion mediated a·b / c with its
# own bootstrap CI. The proportion is flagged (`warning`) when the total effect's CI includes
# 0, because the ratio is then unstable.

# %%
import pandas as pd

from alps import atomic, stats
from alps.build.series import analysis_setup
from alps.io import sha256
from alps.io.tables import load_alps, load_participants, merge_cohort

# the shared setup of notebooks 03-07: resolved paths, the study design, the cohort and who is excluded
setup = analysis_setup("06_mediation", globals())
p, design, cohort, excluded = setup.paths, setup.design, setup.cohort, setup.excluded
print(f"analysed in {list(design.mediation_groups)}: {cohort[design.group_column].isin(design.mediation_groups).sum()}; "
      f"excluded before analysis: {list(excluded['participant_id'])}")

# %%
if design.mediation is None:  # the table says why (the report shows the note)
    print(design.skipped()["mediation"])
    med = pd.DataFrame({"note": [design.skipped()["mediation"]]})
else:
    try:
        med = stats.mediation(cohort, n_boot=int(n_boot), seed=int(seed), nan_policy="omit",
                              **design.mediation_kwargs()).table
    except stats.InsufficientData as exc:  # too few subjects (alps.stats.sizes): a note, not an error
        med = stats.skipped_table("mediation", exc)
atomic.write_table(p["mediation_csv"], med)
med

# %% [markdown]
# ## Reproduction table
#
# Every headline quantity of the study, recomputed from the measured ALPS table and — for a
# simulated cohort (`truth_table` given) — from the planted ground-truth ALPS of the same
# subjects, beside the values published in the paper (`paper`: the design's `published`, quoted,
# not computed). The same `n_boot`/`seed` are used for both.

# %%
measured = stats.headline_numbers(cohort, design, n_boot=int(n_boot), seed=int(seed))
truth = None
if truth_table:
    truth_cohort, truth_excluded = merge_cohort(load_alps(truth_table),
                                                load_participants(p["participants"], groups=design.labels,
                                                                  numeric=design.numeric_columns))
    truth = stats.headline_numbers(truth_cohort, design, n_boot=int(n_boot), seed=int(seed))
repro = stats.reproduction_table(measured, truth, published=design.published)
atomic.write_table(p["reproduction_csv"], repro)
# the truth table is identified by its content, not its path (same inputs give the same JSON anywhere)
key = {"n": int(len(cohort)), "n_excluded": int(len(excluded)), "n_boot": int(n_boot),
       "seed": int(seed), "measured": stats.headline_values(measured),
       "truth": stats.headline_values(truth) if truth is not None else None,
       "truth_table_sha256": sha256(truth_table) if truth_table else None}
atomic.write_json(p["key_numbers_json"], key, sort_keys=False, strict=True)  # NaN/inf written as null
repro

# %% [markdown]
# ## Measured against the planted truth
#
# For a simulated cohort: does each measured headline quantity fall inside the 95 % CI of the same
# quantity computed on the planted ALPS of the same subjects (`truth_check_csv`; t intervals for
# group means, the regression's CIs, Fisher-z for correlations, BC bootstrap for the mediation)?

# %%
if truth_table:
    check = stats.truth_intervals(truth_cohort, measured, design, n_boot=int(n_boot), seed=int(seed))
else:
    check = pd.DataFrame({"note": ["no planted truth: the input is not a simulated cohort"]})
atomic.write_table(p["truth_check_csv"], check)
check
