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
design = {}  # the study design (config `design:` section; alps.stats.design)
# inputs; empty: the file of that name in tables_dir (participants: data_dir/participants.tsv,
# ground truth: the simulator's under data_dir); None: not available (real data), noted on the figure
alps_table = ""
participants = ""
posthoc_csv = ""
regression_csv = ""
correlations_csv = ""
mediation_csv = ""
harmonisation_csv = ""
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

from alps import figures, stats
from alps.build.series import analysis_setup
from alps.figures import style as plotting
from alps.io.tables import load_alps

# the shared setup of notebooks 03-07: resolved paths (an empty input is the file of that name in
# tables_dir or data_dir), the study design, the cohort and who is excluded
setup = analysis_setup("07_figures", globals())
p, design, cohort, excluded = setup.paths, setup.design, setup.cohort, setup.excluded
fig_dir = p["figures_dir"]
labels = figures.design_var_labels(design)
plotting.apply_style()
alps_tab = load_alps(p["alps_table"], session=session or None, session_policy=session_policy)
# brain panels need the pipeline's derivatives; a table-only run (no imaging) says so instead
has_derivatives = p["derivatives_dir"].is_dir() and any(p["derivatives_dir"].glob("sub-*"))


def note_figure(name, text):
    """A figure that states why it has no content (an analysis or input this run does not have)."""
    fig, ax = plt.subplots(figsize=(plotting.COLUMN_WIDTH, 0.8))
    ax.axis("off")
    ax.text(0, 0.5, text, transform=ax.transAxes, va="center", wrap=True)
    plotting.save_figure(fig, fig_dir / name)
    print(f"{name}: {text}")


print(f"{len(cohort)} subjects with a measured ALPS index; excluded: {list(excluded['participant_id'])}")

# %% [markdown]
# ## Figure 1 — Method
# Left: one subject's native colour-FA at the ROI level with the four ROIs mapped from template
# space. Middle: the same subject's FA resampled into MNI space with the template white-matter
# contour (registration check) and the ROIs it was measured with (read from its record).
# Right: the geometry of the index.

# %%
if has_derivatives:
    example = figures.first_ok_subject(alps_tab)
    fig, axes = plt.subplots(1, 3, figsize=(plotting.PAGE_WIDTH, 2.6),
                             gridspec_kw={"width_ratios": [1, 1, 1.1]})
    figures.native_roi_panel(p["derivatives_dir"], example, ax=axes[0])
    figures.template_roi_panel(p["derivatives_dir"], example, ax=axes[1])
    figures.alps_schematic(ax=axes[2])
    for ax, letter in zip(axes, "ABC"):
        plotting.panel_label(ax, letter)
    plotting.save_figure(fig, fig_dir / "fig1_method")
else:
    note_figure("fig1_method", "No per-subject derivatives (the ALPS table was not measured here): brain panels skipped.")

# %% [markdown]
# ## Figure 2 — ALPS by group
# Boxes show median and IQR; every subject is a point; marks are the post hoc tests of
# `posthoc.csv` (adjusted p: \* < 0.05, \*\* < 0.01, \*\*\* < 0.001, ns otherwise).

# %%
posthoc = pd.read_csv(p["posthoc_csv"])
posthoc = None if stats.table_note(posthoc) else posthoc  # post hoc tests skipped: no marks
fig, axes = plt.subplots(1, 3, figsize=(plotting.PAGE_WIDTH, 2.8), sharey=True)
for ax, dv, letter in zip(axes, ["alps", "alps_L", "alps_R"], "ABC"):
    figures.group_plot(cohort, dv=dv, posthoc=posthoc, groups=design.display_order, ax=ax)
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
terms = pd.read_csv(p["regression_csv"])
if stats.table_note(terms):  # not declared by the design, or too few patients (notebook 04)
    note_figure("fig3_regression", stats.table_note(terms))
else:
    regressors = terms.loc[terms["term"] != "Intercept"]
    # the very rows and coding the regression used (notebook 04: missing values omitted)
    patients = stats.regression_data(cohort, nan_policy="omit", **design.regression_kwargs()).table
    others_all = list(regressors["term"])
    shown = [t for t in design.regression.predictors if t in design.clinical_names][:2]
    fig, axes = plt.subplots(1, 1 + len(shown), figsize=(plotting.PAGE_WIDTH * (1.5 + len(shown)) / 3.5, 2.5),
                             gridspec_kw={"width_ratios": [1.5] + [1] * len(shown)}, squeeze=False,
                             layout="constrained")  # spacing per panel: A's B/P column does not widen every gap
    axes = axes[0]
    figures.forest_plot(terms, labels=labels, ax=axes[0])
    for ax, term in zip(axes[1:], shown):
        figures.partial_regression(patients, outcome="alps", term=term,
                                   others=[t for t in others_all if t != term], labels=labels, ax=ax)
    for ax, letter in zip(axes, "ABC"):
        plotting.panel_label(ax, letter)
    plotting.save_figure(fig, fig_dir / "fig3_regression")

# %% [markdown]
# ## Figure 4 — Headline correlations
# The design's headline correlations (`design.correlations.headline`: group and variable), each
# with its OLS line and 95 % confidence band; r (or ρ) and p are those of `correlations.csv`.

# %%
corr = pd.read_csv(p["correlations_csv"])
pairs = design.correlations.headline if design.correlations is not None else ()
if stats.table_note(corr):  # not declared by the design, or too few subjects (notebook 05)
    note_figure("fig4_correlations", stats.table_note(corr))
elif not pairs:
    note_figure("fig4_correlations", "no headline correlations declared")
else:
    fig, axes = plt.subplots(1, len(pairs), figsize=(plotting.PAGE_WIDTH * 0.35 * len(pairs), 2.6), squeeze=False)
    for ax, (g, y), letter in zip(axes[0], pairs, "ABCDEF"):
        row = figures.correlation_row(corr, group=g, x="alps", y=y)
        figures.correlation_plot(cohort[cohort[design.group_column] == g], row, labels=labels, ax=ax,
                                 color=plotting.group_colors(design.display_order)[g])
        ax.set_title(design.name_of(g))
        plotting.panel_label(ax, letter)
    fig.tight_layout()
    plotting.save_figure(fig, fig_dir / "fig4_correlations")

# %% [markdown]
# ## Figure 5 — Mediation
# The design's mediation model (x → ALPS → y), paths and bias-corrected bootstrap CIs from
# `mediation.csv`.

# %%
med = pd.read_csv(p["mediation_csv"])
if stats.table_note(med):  # not declared by the design, or too few subjects (notebook 06)
    note_figure("fig5_mediation", stats.table_note(med))
else:
    md = design.mediation
    ax = figures.mediation_diagram(med, labels=tuple(design.variable(v).label[:1].upper() + design.variable(v).label[1:]
                                                     if v != "alps" else "ALPS index" for v in (md.x, md.m, md.y)),
                                  title=", ".join(design.name_of(g) for g in design.mediation_groups))
    plotting.save_figure(ax.figure, fig_dir / "fig5_mediation")

# %% [markdown]
# ## Supplementary S1 — QC montage
# Every subject's ROI placement (colour-FA at the ROI level with the ROIs drawn), as written by
# the pipeline; failed subjects are listed, not hidden.

# %%
if has_derivatives:
    fig = figures.qc_montage(p["derivatives_dir"], alps_tab)
    plotting.save_figure(fig, fig_dir / "figS1_qc_montage")
else:
    note_figure("figS1_qc_montage", "No per-subject derivatives: QC montage skipped.")

# %% [markdown]
# ## Supplementary S2 — Measured vs planted ALPS (simulated cohort)
# Template-axis index (the default, with each scan's ±1.96 SE from `alps_se`) beside the classic
# scanner-axis index. With real data
# (no ground truth) this figure states that instead.

# %%
truth_path = p["truth_table"]
fig, axes = plt.subplots(1, 2, figsize=(plotting.PAGE_WIDTH * 0.75, 3.0))
if truth_path is not None and truth_path.is_file():
    truth = pd.read_csv(truth_path, sep="\t")[["participant_id", "alps"]].rename(columns={"alps": "alps_truth"})
    merged = alps_tab.merge(truth, on="participant_id")
    figures.measured_vs_truth(merged, measured="alps", se="alps_se" if "alps_se" in merged.columns else None,
                              ax=axes[0], title="Template axes (default), ±1.96 SE")
    if "alps_scanner" in merged.columns:
        figures.measured_vs_truth(merged, measured="alps_scanner", ax=axes[1],
                                  color=plotting.OKABE_ITO["orange"], title="Scanner axes (classic)")
    else:
        axes[1].axis("off")
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
if p["rotation_sweep_csv"] is not None and p["rotation_sweep_csv"].is_file():
    sweep = pd.read_csv(p["rotation_sweep_csv"])
    fig, axes = plt.subplots(1, 2, figsize=(plotting.PAGE_WIDTH * 0.8, 2.7), sharey=True)
    figures.rotation_plot(sweep, index="alps", ax=axes[0], title="Template axes (default)")
    figures.rotation_plot(sweep, index="alps_scanner", ax=axes[1], title="Scanner axes (classic)")
    axes[1].set_ylabel("")
    axes[1].legend(loc="lower center", frameon=False, ncol=2)
    for ax, letter in zip(axes, "AB"):
        plotting.panel_label(ax, letter)
    fig.tight_layout()
    plotting.save_figure(fig, fig_dir / "figS3_rotation")
else:
    note_figure("figS3_rotation", "No rotation sweep: it is run on simulated data only (notebook 02).")

# %% [markdown]
# ## Supplementary S4 — Site harmonisation (multi-site cohorts)
# ALPS by site as measured and after ComBat (`harmonisation.csv`, notebook 03); points coloured by
# group. A single-site cohort states that instead.

# %%
harm = pd.read_csv(p["harmonisation_csv"])
if "alps_harmonised" in harm.columns:
    axes = figures.site_plot(harm, site_col=design.site_column, groups=design.display_order)
    for ax, letter in zip(axes, "AB"):
        plotting.panel_label(ax, letter)
    axes[0].figure.tight_layout()
    plotting.save_figure(axes[0].figure, fig_dir / "figS4_harmonisation")
else:
    note_figure("figS4_harmonisation", str(harm["note"].iloc[0]))
