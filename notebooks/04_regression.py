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
regression_csv = ""
regression_model_csv = ""

# %% [markdown]
# # 04 — Multiple regression in patients
#
# Which clinical features explain the ALPS index in the patients (the design's `patients`, all
# together)? Ordinary least squares with the design's `regression.predictors` (the patient subgroup
# `contrast` coded 1 for its level, 0 for its reference, and clinical variables), adjusted for the
# design's `covariates` (sex coded F = 0, M = 1). The model table reports the diagnostics: Shapiro-Wilk of the residuals,
# Breusch-Pagan (HC3 robust standard errors are used when p < 0.05, stated in `robust_se`),
# Cook's distance (`influential`: the patients with D > 4/n) and variance inflation factors, and
# in `caution` why a fit is fragile (`alps.stats.sizes`: residual df < 10, fewer than 10 patients
# per predictor, Cook's D > 1). With fewer patients than the parameters + 3 the regression is not
# run and its tables say so.

# %%
import pandas as pd

from alps import atomic, stats
from alps.build.series import analysis_setup

# the shared setup of notebooks 03-07: resolved paths, the study design, the cohort and who is excluded
setup = analysis_setup("04_regression", globals())
p, design, cohort, excluded = setup.paths, setup.design, setup.cohort, setup.excluded
print(f"patients analysed: {cohort[design.group_column].isin(design.regression_groups).sum()}; "
      f"excluded before analysis: {list(excluded['participant_id'])}")

# %%
if design.regression is None:  # the tables say why (the report shows the note)
    print(design.skipped()["regression"])
    note = pd.DataFrame({"note": [design.skipped()["regression"]]})
    reg = stats.Regression(note, note)
else:
    try:  # a frozen record (alps.stats.Regression): the terms, the model and the subjects excluded
        reg = stats.regression(cohort, nan_policy="omit", **design.regression_kwargs())
    except stats.InsufficientData as exc:  # too few patients (alps.stats.sizes): a note, not an error
        reg = stats.Regression.skipped("regression", exc)
terms, model = reg.terms, reg.model
atomic.write_table(p["regression_csv"], terms)
atomic.write_table(p["regression_model_csv"], model)
model

# %% [markdown]
# Coefficients: unstandardised B with its standard error and 95 % CI, standardised β
# (B · SD(x) / SD(y)), t, p and VIF.

# %%
terms

# %% [markdown]
# Subjects excluded for missing predictor values (empty when none):

# %%
reg.exclusions
