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
demographics_csv = ""
group_tests_csv = ""
posthoc_csv = ""
ancova_csv = ""
exclusions_csv = ""
harmonisation_csv = ""

# %% [markdown]
# # 03 — Demographics and group comparisons
#
# Inputs: the per-subject ALPS table (`alps_table`: the measured `alps.tsv`, or the simulation's
# ground truth) and the BIDS `participants.tsv`. Every subject that cannot be analysed (failed
# ALPS measurement, missing from one of the two tables) is listed in `exclusions_csv`, never
# dropped silently. All statistics come from `alps.stats`; this notebook only calls them and
# writes the tables.

# %%
import pandas as pd

from alps import atomic, stats
from alps.build.series import analysis_setup

# the shared setup of notebooks 03-07: resolved paths, the study design, the cohort and who is excluded
setup = analysis_setup("03_group_tests", globals())
p, design, cohort, excluded = setup.paths, setup.design, setup.cohort, setup.excluded
print(f"analysed: {len(cohort)} subjects "
      f"({', '.join(f'{g} {n}' for g, n in cohort['group'].value_counts().items())}); "
      f"excluded: {len(excluded)}")
atomic.write_table(p["exclusions_csv"], excluded)
excluded

# %% [markdown]
# ## Table 1 — Demographics and clinical characteristics
#
# Each variable is summarised as mean ± SD when the Shapiro-Wilk test does not reject normality
# (p ≥ 0.05) in every group that has it, otherwise as median [IQR]. The omnibus test follows the
# same choice: one-way ANOVA or Kruskal-Wallis across three or more groups, Student t or
# Mann-Whitney U when only two groups have the variable (e.g. scores collected in patients only);
# a variable collected in one group only is descriptive. Sex: chi-square, or the exact Fisher
# (Freeman-Halton) test when an expected count is below 5. Groups, covariates and clinical
# variables are those of the study design (`design`).

# %%
try:  # an analysis the data cannot support is skipped with a note in its table (alps.stats.sizes)
    table1 = stats.demographics(cohort, **design.demographics_kwargs())
except stats.InsufficientData as exc:
    table1 = stats.skipped_table("demographics", exc)
atomic.write_table(p["demographics_csv"], table1)
table1

# %% [markdown]
# ## ALPS index across groups
#
# For the bilateral mean ALPS index and each hemisphere: Shapiro-Wilk per group and Levene
# (median-centred) choose the omnibus test — ANOVA when both hold, Welch's ANOVA when variances
# differ, Kruskal-Wallis when normality fails. η² and ω² are reported for every test.

# %%
# each analysis returns a frozen record (alps.stats.Result): its table and the subjects it excluded
try:
    gt = stats.group_tests(cohort, nan_policy="omit", **design.group_kwargs())
except stats.InsufficientData as exc:
    gt = stats.Result.skipped("group tests", exc)
atomic.write_table(p["group_tests_csv"], gt.table)
gt.table

# %% [markdown]
# Post hoc pairwise comparisons matching the omnibus test (Tukey HSD after ANOVA,
# Games-Howell after Welch, Dunn with Holm adjustment after Kruskal-Wallis), with Hedges' g and
# the simultaneous 95 % CI of the mean difference (not defined for Dunn).

# %%
try:
    ph = stats.posthoc(cohort, nan_policy="omit", **design.posthoc_kwargs())
except stats.InsufficientData as exc:
    ph = stats.Result.skipped("post hoc tests", exc)
atomic.write_table(p["posthoc_csv"], ph.table)
ph.table if stats.table_note(ph.table) else ph.table[["dv", "test", "group_a", "group_b", "mean_diff", "ci_low",
                                                      "ci_high", "p_adj", "hedges_g"]]

# %% [markdown]
# ## ANCOVA adjusted for the design's covariates
#
# The group effect on each ALPS measure adjusted for the covariates (Type II sums of squares;
# sex coded F = 0, M = 1), with the covariate-adjusted group means.

# %%
try:
    anc = stats.ancova(cohort, dv=["alps", "alps_L", "alps_R"], nan_policy="omit", **design.ancova_kwargs())
except stats.InsufficientData as exc:
    anc = stats.Result.skipped("ANCOVA", exc)
atomic.write_table(p["ancova_csv"], anc.table)
anc.table

# %% [markdown]
# ## Site harmonisation (multi-site cohorts)
#
# When `participants.tsv` has the design's site column (`design.site_column`, default `site`) with
# at least two sites, the per-subject ALPS values and per-ROI diffusivities are harmonised across
# sites with ComBat (neuroCombat; additive and multiplicative site effects, empirical Bayes),
# preserving the group and the covariates, and the omnibus group test is repeated on the
# harmonised values. Single-site cohorts write a one-line note instead.

# %%
if design.has_sites(cohort):
    try:
        harm = stats.harmonise(cohort, **design.harmonise_kwargs()).table
        gt_h = stats.group_tests(harm.drop(columns=["alps", "alps_L", "alps_R"])
                                 .rename(columns={"alps_harmonised": "alps", "alps_L_harmonised": "alps_L",
                                                  "alps_R_harmonised": "alps_R"}), **design.group_kwargs()).table
        display(gt_h[["dv", "test", "statistic", "p"] + [f"mean_{g}" for g in design.labels]])
    except stats.InsufficientData as exc:
        harm = stats.skipped_table("harmonisation", exc)
else:
    harm = pd.DataFrame({"note": [f"single site: no '{design.site_column}' column with two or more sites, "
                                  "nothing harmonised"]})
atomic.write_table(p["harmonisation_csv"], harm)
harm.head()

# %% [markdown]
# Subjects excluded inside the analyses (missing values) are listed below in addition to the
# table-level exclusions above (empty when none).

# %%
stats.exclusions(gt, ph, anc)
