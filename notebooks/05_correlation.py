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
correlations_csv = ""

# %% [markdown]
# # 05 — Correlations of ALPS with clinical scores
#
# Within each group of the design's correlation families (`design.correlations.groups`)
# separately, the ALPS index is correlated with each clinical variable of the family (a variable
# not collected in a group is skipped there). Pearson r is used when the
# Shapiro-Wilk test does not reject normality (p ≥ 0.05) for both variables in that group,
# otherwise Spearman ρ. Partial correlations control for the family's `partial_covariates` (same
# method; Spearman on ranks). 95 % CIs use Fisher's z; p-values are corrected within each
# family = group × kind (bivariate / partial) by the design's `multiple_comparisons.correlations`
# (Benjamini-Hochberg FDR by default). A pair with too few subjects (fewer than 4 + the number of
# covariates) is not computed and `caution` says so; a computed one with fewer than 10 residual
# df carries a caution (`alps.stats.sizes`).

# %%
import pandas as pd

from alps import atomic, stats
from alps.build.series import analysis_setup

# the shared setup of notebooks 03-07: resolved paths, the study design, the cohort and who is excluded
setup = analysis_setup("05_correlation", globals())
p, design, cohort, excluded = setup.paths, setup.design, setup.cohort, setup.excluded
print(f"excluded before analysis: {list(excluded['participant_id'])}")

# %%
if design.correlations is None:  # the table says why (the report shows the note)
    print(design.skipped()["correlations"])
    result = stats.Result(pd.DataFrame({"note": [design.skipped()["correlations"]]}))
else:
    try:  # a frozen record (alps.stats.Result): the table and the subjects excluded
        result = stats.correlations(cohort, nan_policy="omit", **design.correlation_kwargs())
    except stats.InsufficientData as exc:  # no pair can be computed (alps.stats.sizes)
        result = stats.Result.skipped("correlations", exc)
corr = result.table
atomic.write_table(p["correlations_csv"], corr)
corr

# %% [markdown]
# Subjects left out of individual correlations for missing values (empty when none):

# %%
result.exclusions
