"""Bland-Altman plot of repeated scans, from :func:`alps.stats.reliability.bland_altman`'s table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats_plots import ALPS_LABELS, _require
from .style import OKABE_ITO, get_ax

_COLORS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "purple", "orange", "sky", "black")]
_MARKERS = "osD^vP*Xh"


def bland_altman_plot(data: pd.DataFrame, *, by: str = "participant_id", session: str = "session_id", ax=None,
                      legend: bool = True):
    """Each scan's difference from its participant's mean against that mean, with ±1.96 SE bars,
    the limits of agreement (dashed) and where noise alone would put them (grey band).

    Parameters
    ----------
    data : rows of one index from :func:`alps.stats.reliability.bland_altman` (columns ``by``,
        ``session``, ``index``, ``subject_mean``, ``difference``, ``se``, ``loa_low``, ``loa_high``,
        ``noise_low``, ``noise_high``)
    ax : axes to draw in (default: a new column-width figure)

    Participants get a colour and are dodged sideways by session (same order within each), so
    that the scans of one participant do not overlap.
    """
    _require(data, [by, session, "index", "subject_mean", "difference", "se", "loa_low", "loa_high",
                    "noise_low", "noise_high"], "bland_altman_plot data")
    indices = data["index"].unique()
    if len(indices) != 1:
        raise ValueError(f"bland_altman_plot: one index at a time, got {list(indices)}")
    ax = get_ax(ax)
    span = float(np.ptp(data["subject_mean"])) or 0.1
    width = 0.3 * span  # total sideways dodge of a participant's scans
    sessions = sorted(data[session].astype(str).unique())
    first = data.iloc[0]
    ax.axhspan(first["noise_low"], first["noise_high"], color=OKABE_ITO["grey"], alpha=0.18, lw=0,
               label="noise only (±1.96 RMS SE)")
    ax.axhline(0.0, color="black", lw=0.6)
    for y in (first["loa_low"], first["loa_high"]):
        ax.axhline(y, color="black", lw=0.9, ls="--", label="limits of agreement" if y == first["loa_low"] else None)
    for i, (pid, g) in enumerate(data.groupby(by, sort=True)):
        colour = _COLORS[i % len(_COLORS)]
        for _, r in g.iterrows():
            j = sessions.index(str(r[session]))
            x = r["subject_mean"] + width * (j - (len(sessions) - 1) / 2) / max(len(sessions) - 1, 1)
            ax.errorbar(x, r["difference"], yerr=1.96 * r["se"] if np.isfinite(r["se"]) else None, fmt=_MARKERS[j % len(_MARKERS)],
                        color=colour, ms=4, mec="white", mew=0.4, elinewidth=0.8, capsize=0,
                        label=str(pid) if j == 0 else None)
    index = indices[0]
    ax.set_xlabel("participant mean")
    ax.set_ylabel("scan − participant mean")
    lim = 1.15 * float(np.nanmax(np.abs(np.r_[data["difference"] + 1.96 * data["se"].fillna(0),
                                              data["difference"] - 1.96 * data["se"].fillna(0),
                                              first["loa_high"], first["noise_high"]])))
    ax.set_ylim(-lim, lim)
    ax.set_xlim(data["subject_mean"].min() - 0.6 * span, data["subject_mean"].max() + 0.6 * span)
    ax.set_title(ALPS_LABELS.get(index, index))
    if legend:
        ax.legend(handles=legend_handles(ax, sessions), loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
                  fontsize=6)
    return ax


def legend_handles(ax, sessions):
    """The axes' legend entries (participants, limits, noise band) and one grey marker per session."""
    from matplotlib.lines import Line2D

    handles, _ = ax.get_legend_handles_labels()
    return handles + [Line2D([], [], ls="", marker=_MARKERS[j % len(_MARKERS)], color=OKABE_ITO["grey"], ms=4,
                             label=s) for j, s in enumerate(sessions)]


def bland_altman_figure(data: pd.DataFrame, *, by: str = "participant_id", session: str = "session_id",
                        indices=("alps_L", "alps_R", "alps")):
    """One Bland-Altman panel per index (:func:`bland_altman_plot`) side by side, page width;
    returns the figure."""
    import matplotlib.pyplot as plt

    from .style import PAGE_WIDTH, panel_label

    indices = [i for i in indices if (data["index"] == i).any()]
    if not indices:
        raise ValueError("bland_altman_figure: no rows for any of the indices")
    fig, axes = plt.subplots(1, len(indices), figsize=(PAGE_WIDTH, 2.7), squeeze=False)
    for k, (ax, index) in enumerate(zip(axes[0], indices)):
        bland_altman_plot(data[data["index"] == index], by=by, session=session, ax=ax, legend=False)
        panel_label(ax, "ABCDEF"[k])
        if k:
            ax.set_ylabel("")
    lim = max(abs(v) for ax in axes[0] for v in ax.get_ylim())
    for ax in axes[0]:
        ax.set_ylim(-lim, lim)
    sessions = sorted(data[session].astype(str).unique())
    fig.legend(handles=legend_handles(axes[0][-1], sessions), loc="lower center", ncol=5 + len(sessions),
               frameon=False, fontsize=6, bbox_to_anchor=(0.5, -0.02), handletextpad=0.3, columnspacing=1.0)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
