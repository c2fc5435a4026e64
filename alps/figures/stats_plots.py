"""Figure functions of the paper build. Each takes tidy tables (as written by the analysis
notebooks) and an optional ``ax``, draws, and returns the axes; none computes a statistic that
it then reports — printed numbers are read from the tables.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from ..pipeline.columns import label
from .style import OKABE_ITO, get_ax, group_colors, p_text, stars

#: axis labels of the indices: their long names in the column registry (:mod:`alps.pipeline.columns`)
ALPS_LABELS = {k: label(k) for k in ("alps", "alps_L", "alps_R")}
#: axis labels of variables the design does not describe (its clinical variables have their own)
VAR_LABELS = {"age": "Age (years)", "sex": "Sex (M vs F)", "alps": "ALPS index"}


def design_var_labels(design) -> dict:
    """``{column: "label (unit)"}`` of a study design's clinical variables and contrast, over
    :data:`VAR_LABELS`."""
    out = dict(VAR_LABELS)
    for v in design.clinical:
        out[v.name] = f"{v.label[:1].upper()}{v.label[1:]}" + (f" ({v.unit})" if v.unit else "")
    if design.contrast is not None:
        c = design.contrast
        out[c.name] = f"{c.name[:1].upper()}{c.name[1:]} ({c.level} vs {c.reference})"
    return out


def _require(df: pd.DataFrame, columns, what: str):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; has {list(df.columns)}")


def group_plot(data: pd.DataFrame, *, dv: str = "alps", posthoc: pd.DataFrame | None = None,
               groups=None, colors=None, ax=None, seed: int = 0):
    """Box plot of ``dv`` by group with every subject's point and post hoc marks.

    Parameters
    ----------
    data : DataFrame with ``group`` and ``dv`` columns (one row per subject).
    posthoc : DataFrame, optional
        ``posthoc.csv`` rows (columns ``dv, group_a, group_b, p_adj``); marks are drawn for the
        pairs of this ``dv``.
    groups : sequence of str, optional
        Groups in display order (the design's ``display_order``; None: order of appearance).
    colors : dict, optional
        ``{group: colour}`` (default :func:`~alps.figures.style.group_colors` of ``groups``).
    seed : int
        Seed of the horizontal jitter (the figure is deterministic).
    """
    _require(data, ["group", dv], "group_plot data")
    ax = get_ax(ax)
    groups = list(dict.fromkeys(data["group"].dropna())) if groups is None else list(groups)
    colors = colors or group_colors(groups)
    groups = [g for g in groups if (data["group"] == g).any()]
    values = [data.loc[data["group"] == g, dv].dropna().to_numpy() for g in groups]
    bp = ax.boxplot(values, positions=range(len(groups)), widths=0.55, showfliers=False,
                    patch_artist=True, medianprops={"color": "black"})
    rng = np.random.default_rng(seed)
    for i, (g, v) in enumerate(zip(groups, values)):
        bp["boxes"][i].set_facecolor(colors.get(g, OKABE_ITO["grey"]))
        bp["boxes"][i].set_alpha(0.35)
        ax.scatter(i + rng.uniform(-0.16, 0.16, len(v)), v, s=9, color=colors.get(g),
                   edgecolor="white", linewidth=0.3, zorder=3)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{g}\n(n={len(v)})" for g, v in zip(groups, values)])
    ax.set_ylabel(ALPS_LABELS.get(dv, dv))
    if posthoc is not None and len(posthoc):
        _require(posthoc, ["dv", "group_a", "group_b", "p_adj"], "posthoc table")
        rows = posthoc[posthoc["dv"] == dv]
        top = max(np.nanmax(v) for v in values if len(v))
        span = top - min(np.nanmin(v) for v in values if len(v))
        level = 0
        for _, r in rows.iterrows():
            if r["group_a"] not in groups or r["group_b"] not in groups:
                continue
            a, b = sorted((groups.index(r["group_a"]), groups.index(r["group_b"])))
            y = top + span * (0.08 + 0.11 * level)
            ax.plot([a, a, b, b], [y - span * 0.02, y, y, y - span * 0.02], color="black", lw=0.7)
            ax.text((a + b) / 2, y, stars(float(r["p_adj"])), ha="center", va="bottom", fontsize=7)
            level += 1
        _set_ylim_keeping_shared(ax, top + span * (0.12 + 0.11 * max(level, 1)))
    return ax


def _set_ylim_keeping_shared(ax, top: float) -> None:
    """Set the y limits to ``top`` (room for the marks) and a bottom below every point of every
    panel that shares the y axis (Figure 2's three panels do). ``set_ylim(top=...)`` alone froze
    the bottom at the first panel's data, and a lower point of a later panel fell off the axis."""
    lims = [s.dataLim for s in ax.get_shared_y_axes().get_siblings(ax) if np.isfinite(s.dataLim.y0)]
    lo, hi = min(d.y0 for d in lims), max(d.y1 for d in lims)
    bottom = lo - 0.05 * (hi - lo)
    if not ax.get_autoscaley_on():  # a panel drawn before set limits: keep its room too
        bottom, top = min(bottom, ax.get_ylim()[0]), max(top, ax.get_ylim()[1])
    ax.set_ylim(bottom, top)


def forest_plot(terms: pd.DataFrame, *, standardized: bool = True, labels=None, ax=None):
    """Coefficient plot of a regression table (``regression.csv``).

    With ``standardized=True`` the standardised coefficients β are drawn with their 95 % CI
    rescaled by β/b (same t statistic), so terms on different scales share one axis.
    """
    _require(terms, ["term", "b", "ci_low", "ci_high", "p"], "regression table")
    rows = terms[terms["term"] != "Intercept"].reset_index(drop=True)
    ax = get_ax(ax)
    if standardized:
        _require(rows, ["beta"], "regression table")
        scale = rows["beta"] / rows["b"]
        est, lo, hi = rows["beta"], rows["ci_low"] * scale, rows["ci_high"] * scale
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        ax.set_xlabel("Standardised coefficient β (95 % CI)")
    else:
        est, lo, hi = rows["b"], rows["ci_low"], rows["ci_high"]
        ax.set_xlabel("Coefficient B (95 % CI)")
    y = np.arange(len(rows))[::-1]
    colors = [OKABE_ITO["vermillion"] if p < 0.05 else OKABE_ITO["grey"] for p in rows["p"]]
    ax.hlines(y, lo, hi, color=colors, lw=1.4)
    ax.scatter(est, y, color=colors, zorder=3, s=18)
    ax.axvline(0, color="black", lw=0.6, ls="--")
    ax.set_yticks(y)
    labels = labels or VAR_LABELS
    ax.set_yticklabels([labels.get(t, t) for t in rows["term"]])
    for yi, (b, p) in zip(y, zip(rows["b"], rows["p"])):
        ax.annotate(f"B = {b:.3g}, {p_text(p)}", (1.02, yi), xycoords=("axes fraction", "data"),
                    fontsize=6.5, va="center")
    return ax


def partial_regression(data: pd.DataFrame, *, outcome: str, term: str, others, labels=None, ax=None,
                       color=OKABE_ITO["blue"]):
    """Added-variable (partial-regression) plot of ``outcome`` on ``term`` adjusting for ``others``.

    Both ``outcome`` and ``term`` are residualised on ``[1, others]`` by least squares; the slope
    of the residual scatter equals the multiple-regression coefficient of ``term``
    (Frisch–Waugh–Lovell theorem), which the figure prints from the residuals it draws.
    """
    cols = [outcome, term, *others]
    _require(data, cols, "partial_regression data")
    d = data[cols].dropna()
    z = np.column_stack([np.ones(len(d))] + [d[c].to_numpy(float) for c in others])

    def resid(v):
        beta, *_ = np.linalg.lstsq(z, v, rcond=None)
        return v - z @ beta

    ex, ey = resid(d[term].to_numpy(float)), resid(d[outcome].to_numpy(float))
    ax = get_ax(ax)
    ax.scatter(ex, ey, s=10, color=color, alpha=0.8, edgecolor="white", linewidth=0.3)
    slope = float(ex @ ey / (ex @ ex))
    xs = np.linspace(ex.min(), ex.max(), 50)
    ax.plot(xs, slope * xs, color="black", lw=1)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(4))
    labels = labels or VAR_LABELS
    import textwrap

    ax.set_xlabel(textwrap.fill(str(labels.get(term, term)), 22) + " | others")
    ax.set_ylabel(f"{labels.get(outcome, outcome)} | others")
    return ax


def correlation_plot(data: pd.DataFrame, corr_row: pd.Series, *, labels=None, ax=None, color=None):
    """Scatter of ``corr_row.x`` vs ``corr_row.y`` with OLS line, 95 % CI band, and r/p read
    from the correlation table row (``correlations.csv``). A pair the table did not compute (r
    NaN: too few subjects) shows its points and the table's ``caution`` instead."""
    x, y = corr_row["x"], corr_row["y"]
    _require(data, [x, y], "correlation_plot data")
    d = data[[x, y]].dropna()
    xv, yv = d[y].to_numpy(float), d[x].to_numpy(float)  # clinical variable on the x axis
    color = color or OKABE_ITO["blue"]
    ax = get_ax(ax)
    ax.scatter(xv, yv, s=12, color=color, alpha=0.85, edgecolor="white", linewidth=0.3)
    labels = labels or VAR_LABELS
    ax.set_xlabel(labels.get(y, y))
    ax.set_ylabel(labels.get(x, x))
    if not np.isfinite(float(corr_row["r"])):
        why = str(corr_row.get("caution", "") or "not computed")
        ax.text(0.97, 0.96, "\n".join(textwrap.wrap(why, 28)) + f"\nn = {int(corr_row['n'])}",
                transform=ax.transAxes, ha="right", va="top", fontsize=7)
        return ax
    n = len(xv)
    X = np.column_stack([np.ones(n), xv])
    beta, *_ = np.linalg.lstsq(X, yv, rcond=None)
    resid = yv - X @ beta
    s2 = resid @ resid / (n - 2)
    xs = np.linspace(xv.min(), xv.max(), 100)
    Xs = np.column_stack([np.ones_like(xs), xs])
    se = np.sqrt(s2 * np.einsum("ij,jk,ik->i", Xs, np.linalg.inv(X.T @ X), Xs))
    from scipy import stats as _st

    tcrit = _st.t.ppf(0.975, n - 2)
    fit = Xs @ beta
    ax.plot(xs, fit, color="black", lw=1)
    ax.fill_between(xs, fit - tcrit * se, fit + tcrit * se, color=color, alpha=0.18, lw=0)
    method = str(corr_row.get("method", "r")).lower()
    sym = "ρ" if method.startswith("spearman") else "r"
    ax.text(0.97, 0.96, f"{sym} = {corr_row['r']:.3f}\n{p_text(float(corr_row['p']))}\nn = {int(corr_row['n'])}",
            transform=ax.transAxes, ha="right", va="top", fontsize=7)
    return ax


def mediation_diagram(med: pd.DataFrame, *, labels=("Exposure", "ALPS index", "Outcome"), title: str = "",
                      ax=None):
    """Path diagram X → M → Y with a, b, c, c′ and the indirect effect from ``mediation.csv``;
    ``labels`` name X, M, Y in words, ``title`` the sample (e.g. the group's name)."""
    _require(med, ["path", "estimate", "ci_low", "ci_high", "p"], "mediation table")
    rows = {r["path"]: r for _, r in med.iterrows()}

    def fmt(key, ci=False):
        r = rows.get(key)
        if r is None:
            return f"{key}: n/a"
        txt = f"{r['estimate']:.3g}"
        if ci:
            txt += f"\n95 % CI [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
        elif r["p"] == r["p"]:
            txt += f" ({p_text(float(r['p']))})"
        return txt

    ax = get_ax(ax, figsize=(4.8, 2.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, 6.3)
    ax.axis("off")
    boxes = {"X": (1.2, 1.2), "M": (5.0, 4.6), "Y": (8.8, 1.2)}
    for key, label in zip("XMY", labels):
        x, y = boxes[key]
        ax.text(x, y, "\n".join(textwrap.wrap(label, 16)), ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.5", "fc": "#F2F2F2", "ec": "black", "lw": 0.8})
    arrow = {"arrowstyle": "-|>", "lw": 1.0, "color": "black", "shrinkA": 0, "shrinkB": 0}
    ax.annotate("", (4.2, 4.2), (2.2, 1.75), arrowprops=arrow)   # X -> M (a)
    ax.annotate("", (7.8, 1.75), (5.8, 4.2), arrowprops=arrow)   # M -> Y (b)
    ax.annotate("", (7.5, 1.2), (2.5, 1.2), arrowprops=arrow)    # X -> Y (c, c')
    ax.text(2.6, 3.4, "a = " + fmt("a"), ha="right", fontsize=7)
    ax.text(7.4, 3.4, "b = " + fmt("b"), ha="left", fontsize=7)
    ax.text(5.0, 0.75, "c = " + fmt("c") + "\nc′ = " + fmt("c_prime"), ha="center", va="top", fontsize=7)
    ind = rows.get("indirect")
    prop = rows.get("proportion_mediated")
    lines = []
    if ind is not None:
        lines.append(f"Indirect a×b = {ind['estimate']:.3g}, 95 % BC CI [{ind['ci_low']:.3g}, {ind['ci_high']:.3g}]")
    if prop is not None:
        lines.append(f"Proportion mediated = {100 * prop['estimate']:.1f} % "
                     f"[{100 * prop['ci_low']:.1f}, {100 * prop['ci_high']:.1f}]")
    if "n" in med and med["n"].notna().any():
        lines.insert(0, (f"{title}, " if title else "") + f"n = {int(med['n'].dropna().iloc[0])}")
    ax.text(5.0, 6.2, "\n".join(lines), ha="center", va="top", fontsize=7)
    warn = med["warning"].dropna().astype(str) if "warning" in med else pd.Series(dtype=str)
    warn = [w for w in warn if w.strip()]
    if warn:
        ax.text(5.0, -0.3, "Note: " + warn[0], ha="center", va="top", fontsize=6, color=OKABE_ITO["vermillion"],
                wrap=True)
    return ax


def measured_vs_truth(merged: pd.DataFrame, *, measured: str = "alps", truth: str = "alps_truth",
                      se: str | None = None, ax=None, color=OKABE_ITO["blue"], title=None):
    """Scatter of measured vs planted ALPS with the identity line; r and bias are computed from
    the drawn points (they are the figure's own description, not a reported result).

    ``se`` names a column of per-scan standard errors (e.g. ``alps_se``): each point gets a
    ±1.96 SE bar and the text the share of scans whose interval holds the planted value
    (coverage; about 95 % when the SEs describe the scan's noise and the bias is small).
    """
    _require(merged, [measured, truth] + ([se] if se else []), "measured_vs_truth data")
    d = merged[[measured, truth] + ([se] if se else [])].dropna()
    ax = get_ax(ax)
    extra = ""
    if se:
        ax.errorbar(d[truth], d[measured], yerr=1.96 * d[se], fmt="none", ecolor=color, alpha=0.35, lw=0.6)
        covered = float(((d[measured] - d[truth]).abs() <= 1.96 * d[se]).mean())
        extra = f"\nwithin ±1.96 SE: {100 * covered:.0f} %"
    ax.scatter(d[truth], d[measured], s=10, color=color, alpha=0.8, edgecolor="white", linewidth=0.3)
    lo = float(min(d[[measured, truth]].min()))
    hi = float(max(d[[measured, truth]].max()))
    pad = 0.03 * (hi - lo)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.7, ls="--")
    r = np.corrcoef(d[truth], d[measured])[0, 1] if len(d) > 2 else np.nan
    bias = float((d[measured] - d[truth]).mean())
    ax.text(0.04, 0.96, f"r = {r:.3f}\nbias = {bias:+.3f}\nn = {len(d)}{extra}", transform=ax.transAxes,
            va="top", fontsize=7)
    ax.set_xlabel("Planted (ground-truth) ALPS")
    ax.set_ylabel("Measured ALPS")
    if title:
        ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def group_labels_legend(ax, design):
    """Add a legend mapping the design's group labels to their names and colours."""
    from matplotlib.patches import Patch

    colors = group_colors(design.display_order)
    ax.legend(handles=[Patch(color=colors[g], label=f"{g}: {design.name_of(g)}") for g in design.display_order],
              loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
    return ax


def correlation_row(corr: pd.DataFrame, *, group: str, x: str, y: str, kind: str = "bivariate") -> pd.Series:
    """The one row of ``correlations.csv`` for ``group``, ``x``, ``y`` (bivariate by default)."""
    _require(corr, ["group", "x", "y", "r", "p", "n"], "correlation table")
    sel = corr[(corr["group"] == group) & (corr["x"] == x) & (corr["y"] == y)]
    if "kind" in sel:
        sel = sel[sel["kind"] == kind]
    if len(sel) != 1:
        raise ValueError(f"correlation table: expected one {kind} row for {group}: {x} ~ {y}, found {len(sel)}")
    return sel.iloc[0]


def first_ok_subject(alps_tab: pd.DataFrame) -> str:
    """participant_id of the first subject (sorted) whose status is 'ok'."""
    ok = alps_tab[alps_tab["status"] == "ok"] if "status" in alps_tab else alps_tab
    if ok.empty:
        raise ValueError("no subject with status 'ok' in the ALPS table")
    return str(sorted(ok["participant_id"])[0])


def rotation_plot(sweep: pd.DataFrame, *, index: str = "alps", ax=None, title=None):
    """ALPS vs head rotation about each axis (rows of ``rotation_sweep.csv``) with the planted
    value as a dashed line; the spread printed is max − min over the poses drawn."""
    _require(sweep, ["rot_x_deg", "rot_y_deg", "rot_z_deg", "status", "truth_alps", index], "rotation sweep")
    ok = sweep[sweep["status"] == "ok"]
    ax = get_ax(ax)
    colors = {"x": OKABE_ITO["vermillion"], "y": OKABE_ITO["green"], "z": OKABE_ITO["blue"]}
    rot = ok[["rot_x_deg", "rot_y_deg", "rot_z_deg"]].to_numpy(float)
    for i, axis in enumerate("xyz"):
        others = [j for j in range(3) if j != i]
        sel = np.all(rot[:, others] == 0, axis=1)
        d = ok[sel].assign(angle=rot[sel, i]).sort_values("angle")
        ax.plot(d["angle"], d[index], marker="o", ms=3.5, color=colors[axis], label=f"about {axis}")
    ax.axhline(float(ok["truth_alps"].mean()), color="black", ls="--", lw=0.7, label="planted")
    spread = float(ok[index].max() - ok[index].min())
    ax.set_xlabel("Head rotation (degrees)")
    ax.set_ylabel("ALPS index")
    ax.set_title((f"{title}\n" if title else "") + f"spread (max − min) = {spread:.3f}", fontsize=8)
    return ax


def site_plot(harm: pd.DataFrame, *, dv: str = "alps", site_col: str = "site", groups=None, axes=None):
    """ALPS by site before (left) and after (right) ComBat harmonisation, from
    ``harmonisation.csv`` (columns ``<site_col>, group, <dv>, <dv>_harmonised``): per site one box
    with every subject's point coloured by group. Returns the two axes."""
    import matplotlib.pyplot as plt

    _require(harm, [site_col, "group", dv, f"{dv}_harmonised"], "harmonisation table")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(7.2 * 0.8, 2.6), sharey=True)
    sites = sorted(harm[site_col].astype(str).unique())
    groups = list(dict.fromkeys(harm["group"])) if groups is None else list(groups)
    colors = group_colors(groups)
    rng = np.random.default_rng(0)
    for ax, col, title in zip(axes, (dv, f"{dv}_harmonised"), ("As measured", "ComBat-harmonised")):
        values = [harm.loc[harm[site_col].astype(str) == s, col].to_numpy(float) for s in sites]
        ax.boxplot(values, positions=range(len(sites)), widths=0.55, showfliers=False,
                   medianprops={"color": "black"})
        for i, s in enumerate(sites):
            sub = harm[harm[site_col].astype(str) == s]
            ax.scatter(i + rng.uniform(-0.18, 0.18, len(sub)), sub[col], s=8, zorder=3, edgecolor="white",
                       linewidth=0.3, color=[colors.get(g, OKABE_ITO["grey"]) for g in sub["group"]])
        ax.set_xticks(range(len(sites)))
        ax.set_xticklabels([f"{s}\n(n={len(v)})" for s, v in zip(sites, values)])
        ax.set_title(title)
    axes[0].set_ylabel(ALPS_LABELS.get(dv, dv))
    from matplotlib.patches import Patch

    axes[1].legend(handles=[Patch(color=colors[g], label=g) for g in groups], frameon=False, fontsize=6,
                   loc="upper right")
    return axes

