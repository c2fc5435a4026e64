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
tables_dir = ""
figures_dir = ""
derivatives_dir = ""
data_dir = ""
session = ""  # multi-session ALPS table: the session to analyse, e.g. "ses-01"
session_policy = "strict"  # participants without that session: "strict" (excluded) or "only-scan" (their only scan)
# inputs; empty: the file of that name in tables_dir (participants: data_dir/participants.tsv,
# ground truth: the simulator's under data_dir); None: not available (real data), noted on the figure
alps_table = ""
participants = ""
posthoc_csv = ""
regression_csv = ""
correlations_csv = ""
mediation_csv = ""
truth_table = ""
rotation_sweep_csv = ""

# %% [markdown]
# # 07 — Figures
#
# Every figure of the paper build, drawn from the tables the analysis notebooks wrote
# (`tables_dir`) and the per-subject derivatives (QC images). This notebook computes no
# statistic: every number printed on a figure is read from a table. Figures are saved as PNG
# (300 dpi) and PDF under `figures_dir`, in one colour-blind-safe style (`alps.figures.style`).

# %%
import matplotlib.pyplot as plt
import pandas as pd

from alps import figures, paths, stats
from alps.figures import style as plotting
from alps.io.tables import load_alps, load_cohort

p = paths.resolve(profile, tables_dir=tables_dir, figures_dir=figures_dir,
                  derivatives_dir=derivatives_dir, data_dir=data_dir)
tab, fig_dir = p["tables_dir"], p["figures_dir"]
t = paths.resolve_in(tab, alps_table=alps_table, posthoc_csv=posthoc_csv, regression_csv=regression_csv,
                     correlations_csv=correlations_csv, mediation_csv=mediation_csv,
                     rotation_sweep_csv=rotation_sweep_csv)
t.update(paths.resolve_in(p["data_dir"], participants=participants))
t.update(paths.resolve_in(p["data_dir"] / "derivatives" / "simulation", truth_table=truth_table))
plotting.apply_style()
alps_tab = load_alps(t["alps_table"], session=session or None, session_policy=session_policy)
cohort, excluded = load_cohort(t["alps_table"], t["participants"], session=session or None,
                               session_policy=session_policy)
print(f"{len(cohort)} subjects with a measured ALPS index; excluded: {list(excluded['participant_id'])}")

# %% [markdown]
# ## Figure 1 — Method
# Left: one subject's native colour-FA at the ROI level with the four ROIs mapped from template
# space. Middle: the same subject's FA resampled into MNI space with the template white-matter
# contour (registration check) and the ROIs it was measured with (read from its record).
# Right: the geometry of the index.

# %%
example = figures.first_ok_subject(alps_tab)
fig, axes = plt.subplots(1, 3, figsize=(plotting.PAGE_WIDTH, 2.6),
                         gridspec_kw={"width_ratios": [1, 1, 1.1]})
figures.native_roi_panel(p["derivatives_dir"], example, ax=axes[0])
figures.template_roi_panel(p["derivatives_dir"], example, ax=axes[1])
figures.alps_schematic(ax=axes[2])
for ax, letter in zip(axes, "ABC"):
    plotting.panel_label(ax, letter)
plotting.save_figure(fig, fig_dir / "fig1_method")

# %% [markdown]
# ## Figure 2 — ALPS by group
# Boxes show median and IQR; every subject is a point; marks are the post hoc tests of
# `posthoc.csv` (adjusted p: \* < 0.05, \*\* < 0.01, \*\*\* < 0.001, ns otherwise).

# %%
posthoc = pd.read_csv(t["posthoc_csv"])
fig, axes = plt.subplots(1, 3, figsize=(plotting.PAGE_WIDTH, 2.8), sharey=True)
for ax, dv, letter in zip(axes, ["alps", "alps_L", "alps_R"], "ABC"):
    figures.group_plot(cohort, dv=dv, posthoc=posthoc, ax=ax)
    ax.set_title({"alps": "Mean of hemispheres", "alps_L": "Left hemisphere",
                  "alps_R": "Right hemisphere"}[dv])
    ax.set_ylabel("ALPS index" if dv == "alps" else "")
    plotting.panel_label(ax, letter)
plotting.save_figure(fig, fig_dir / "fig2_groups")

# %% [markdown]
# ## Figure 3 — Multiple regression in patients
# Standardised coefficients with 95 % CIs (labels give the unstandardised B and p), and
# added-variable plots for headache duration and attack frequency.

# %%
terms = pd.read_csv(t["regression_csv"])
regressors = terms.loc[terms["term"] != "Intercept"]
# the very rows and coding the regression used (notebook 04: missing values omitted)
patients = stats.regression_data(cohort, predictors=list(regressors.loc[regressors["role"] == "predictor", "term"]),
                                 covariates=list(regressors.loc[regressors["role"] == "covariate", "term"]),
                                 nan_policy="omit")
others_all = list(regressors["term"])
fig, axes = plt.subplots(1, 3, figsize=(plotting.PAGE_WIDTH, 2.5),
                         gridspec_kw={"width_ratios": [1.5, 1, 1]})
figures.forest_plot(terms, ax=axes[0])
for ax, term in zip(axes[1:], ["duration_years", "attacks_per_month"]):
    figures.partial_regression(patients, outcome="alps", term=term,
                               others=[t for t in others_all if t != term], ax=ax)
for ax, letter in zip(axes, "ABC"):
    plotting.panel_label(ax, letter)
fig.tight_layout()
plotting.save_figure(fig, fig_dir / "fig3_regression")

# %% [markdown]
# ## Figure 4 — Correlations in vestibular migraine
# OLS line with its 95 % confidence band; r (or ρ) and p are those of `correlations.csv`.

# %%
corr = pd.read_csv(t["correlations_csv"])
vm = cohort[cohort["group"] == "VM"]
fig, axes = plt.subplots(1, 2, figsize=(plotting.PAGE_WIDTH * 0.7, 2.6))
for ax, y, letter in zip(axes, ["duration_years", "dhi"], "AB"):
    row = figures.correlation_row(corr, group="VM", x="alps", y=y)
    figures.correlation_plot(vm, row, ax=ax)
    plotting.panel_label(ax, letter)
fig.tight_layout()
plotting.save_figure(fig, fig_dir / "fig4_correlations")

# %% [markdown]
# ## Figure 5 — Mediation in vestibular migraine
# Headache duration → ALPS → DHI, paths and bias-corrected bootstrap CIs from `mediation.csv`.

# %%
med = pd.read_csv(t["mediation_csv"])
ax = figures.mediation_diagram(med)
plotting.save_figure(ax.figure, fig_dir / "fig5_mediation")

# %% [markdown]
# ## Supplementary S1 — QC montage
# Every subject's ROI placement (colour-FA at the ROI level with the ROIs drawn), as written by
# the pipeline; failed subjects are listed, not hidden.

# %%
fig = figures.qc_montage(p["derivatives_dir"], alps_tab)
plotting.save_figure(fig, fig_dir / "figS1_qc_montage")

# %% [markdown]
# ## Supplementary S2 — Measured vs planted ALPS (simulated cohort)
# Template-axis index (the default) beside the classic scanner-axis index. With real data
# (no ground truth) this figure states that instead.

# %%
truth_path = t["truth_table"]
fig, axes = plt.subplots(1, 2, figsize=(plotting.PAGE_WIDTH * 0.75, 3.0))
if truth_path is not None and truth_path.is_file():
    truth = pd.read_csv(truth_path, sep="\t")[["participant_id", "alps"]].rename(columns={"alps": "alps_truth"})
    merged = alps_tab.merge(truth, on="participant_id")
    figures.measured_vs_truth(merged, measured="alps", ax=axes[0], title="Template axes (default)")
    figures.measured_vs_truth(merged, measured="alps_scanner", ax=axes[1],
                              color=plotting.OKABE_ITO["orange"], title="Scanner axes (classic)")
else:
    for ax in axes:
        ax.axis("off")
    axes[0].text(0, 0.5, "No ground truth: input is not a simulated cohort.", transform=axes[0].transAxes)
fig.tight_layout()
plotting.save_figure(fig, fig_dir / "figS2_measured_vs_truth")

# %% [markdown]
# ## Supplementary S3 — Rotation robustness (simulated, known truth)
# One high-SNR simulated subject with the head rotated about each axis (`rotation_sweep.csv`):
# the template-axis index (default) against the classic scanner-axis index.

# %%
fig, axes = plt.subplots(1, 2, figsize=(plotting.PAGE_WIDTH * 0.8, 2.7), sharey=True)
if t["rotation_sweep_csv"] is not None and t["rotation_sweep_csv"].is_file():
    sweep = pd.read_csv(t["rotation_sweep_csv"])
    figures.rotation_plot(sweep, index="alps", ax=axes[0], title="Template axes (default)")
    figures.rotation_plot(sweep, index="alps_scanner", ax=axes[1], title="Scanner axes (classic)")
    axes[1].set_ylabel("")
    axes[1].legend(loc="lower center", frameon=False, ncol=2)
    for ax, letter in zip(axes, "AB"):
        plotting.panel_label(ax, letter)
else:  # a simulation-only product (notebook 02 skips it for a lab's own data)
    for ax in axes:
        ax.axis("off")
    axes[0].text(0, 0.5, "No rotation sweep: it is run on simulated data only (notebook 02).",
                 transform=axes[0].transAxes)
    print("rotation sweep not available (simulation-only product): figure S3 states it")
fig.tight_layout()
plotting.save_figure(fig, fig_dir / "figS3_rotation")
