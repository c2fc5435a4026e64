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
correlations_csv = ""

# %% [markdown]
# # 05 — Correlations of ALPS with clinical scores
#
# Within VM and within MO separately, the ALPS index is correlated with headache duration,
# attack frequency, DHI (VM only), VAS, HIT-6 and PSQI. Pearson r is used when the
# Shapiro-Wilk test does not reject normality (p ≥ 0.05) for both variables in that group,
# otherwise Spearman ρ. Partial correlations control for age and sex (same method; Spearman on
# ranks). 95 % CIs use Fisher's z; p-values are FDR-corrected (Benjamini-Hochberg) within each
# family = group × kind (bivariate / partial).

# %%
import pandas as pd

from alps import atomic, paths, stats
from alps.io.tables import load_cohort

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 30)
p = paths.resolve(profile, alps_table=alps_table, participants=participants,
                  correlations_csv=correlations_csv)
cohort, excluded = load_cohort(p["alps_table"], p["participants"], session=session or None,
                               session_policy=session_policy)
print(f"excluded before analysis: {list(excluded['participant_id'])}")

# %%
corr = stats.correlations(cohort, groups=("VM", "MO"), nan_policy="omit")
atomic.write_table(p["correlations_csv"], corr)
corr[["group", "kind", "y", "method", "n", "r", "ci_low", "ci_high", "p", "p_fdr"]]

# %% [markdown]
# Subjects left out of individual correlations for missing values (empty when none):

# %%
stats.exclusions(corr)
