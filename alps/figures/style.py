"""One figure style for every alps figure: colour-blind-safe palette, journal-column sizes,
PNG (300 dpi) + PDF output.

Palette: Okabe & Ito (2008), "Color Universal Design"; groups keep their colour everywhere.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt

OKABE_ITO = {
    "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
    "grey": "#7F7F7F",
}
#: colours of the groups, in the design's display order (the groups come from the study design)
GROUP_PALETTE = ("blue", "grey", "vermillion", "green", "orange", "sky", "purple", "yellow")


def group_colors(groups) -> dict:
    """``{label: colour}`` for the groups in display order (Okabe-Ito, :data:`GROUP_PALETTE`)."""
    return {g: OKABE_ITO[GROUP_PALETTE[i % len(GROUP_PALETTE)]] for i, g in enumerate(groups)}

#: widths in inches: single journal column and full page width.
COLUMN_WIDTH = 3.5
PAGE_WIDTH = 7.2

STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.2,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "figure.dpi": 110,
    "pdf.fonttype": 42,
    "font.family": "DejaVu Sans",
}


def apply_style() -> None:
    """Apply the alps figure style globally (idempotent)."""
    mpl.rcParams.update(STYLE)


@contextmanager
def style():
    """Context manager applying the alps style temporarily."""
    with mpl.rc_context(STYLE):
        yield


def get_ax(ax=None, *, figsize=(COLUMN_WIDTH, 2.6)):
    """Return ``ax`` or a new axes in a new figure of ``figsize`` inches."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def panel_label(ax, label: str) -> None:
    """Bold panel letter in the top-left corner outside the axes."""
    ax.text(-0.02, 1.16, label, transform=ax.transAxes, fontsize=10, fontweight="bold",
            va="bottom", ha="right")
    ax.figure.canvas.draw_idle()


def save_figure(fig, stem) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (300 dpi) and ``<stem>.pdf`` atomically; returns the paths."""
    from .. import atomic

    stem = Path(stem)
    written = []
    for ext in ("png", "pdf"):
        # fixed metadata so that re-running gives identical files
        meta = {"Software": None} if ext == "png" else {"CreationDate": None, "Producer": None}
        written.append(atomic.save_figure(stem.with_suffix(f".{ext}"), fig, metadata=meta))
    return written


def p_text(p: float) -> str:
    """Format a p value for a figure: ``P < 0.001`` or ``P = 0.012``."""
    if p != p:  # NaN
        return "P = n/a"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def stars(p: float) -> str:
    """Significance marks: *** < 0.001, ** < 0.01, * < 0.05, 'ns' otherwise."""
    if p != p:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "ns"
