"""Figures: one style (:mod:`.style`), plots of the statistics tables (:mod:`.stats_plots`) and
brain-image panels from the derivatives (:mod:`.brain`). Each plot takes tidy tables and an
optional ``ax``, draws, and returns the axes; none computes a statistic that it then reports —
printed numbers are read from the tables."""
from .brain import (ROI_COLORS, ROI_LABELS, alps_schematic, measure_parameters, native_roi_panel, qc_montage,
                    registration_figure, template_roi_panel)
from .reliability_plots import bland_altman_figure, bland_altman_plot
from .stats_plots import (ALPS_LABELS, VAR_LABELS, correlation_plot, correlation_row, design_var_labels, first_ok_subject,
                          forest_plot, group_labels_legend, group_plot, measured_vs_truth, mediation_diagram,
                          partial_regression, rotation_plot, site_plot)

__all__ = ["alps_schematic", "native_roi_panel", "template_roi_panel", "qc_montage", "registration_figure",
           "measure_parameters", "group_plot", "forest_plot", "partial_regression", "correlation_plot",
           "mediation_diagram", "measured_vs_truth", "rotation_plot", "correlation_row", "first_ok_subject",
           "group_labels_legend", "design_var_labels", "site_plot", "bland_altman_plot", "bland_altman_figure", "ROI_COLORS", "ROI_LABELS", "ALPS_LABELS", "VAR_LABELS"]
