"""Brain-image figures: the ALPS geometry schematic and panels drawn from a scan's derivatives
(found through :mod:`alps.pipeline.layout`): native colour FA with the ROIs, FA in MNI space with
the ROIs, the QC montage of a cohort and the registration check of notebook 01."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..imaging.roi import DEFAULT_CENTERS_MM
from ..pipeline.layout import find_scan, load_registration
from .style import OKABE_ITO, PAGE_WIDTH, get_ax

#: ROI colours by label (1..4 = proj_L, proj_R, assoc_L, assoc_R).
ROI_COLORS = {1: OKABE_ITO["sky"], 2: OKABE_ITO["blue"], 3: OKABE_ITO["yellow"], 4: OKABE_ITO["orange"]}
ROI_LABELS = {1: "proj L", 2: "proj R", 3: "assoc L", 4: "assoc R"}
_LABEL_OF = {"proj_L": 1, "proj_R": 2, "assoc_L": 3, "assoc_R": 4}


def alps_schematic(ax=None):
    """Schematic of the ALPS geometry on an axial slice at the lateral-ventricle bodies.

    Projection fibres run inferior–superior (z, through the slice; blue in colour-FA),
    association fibres anterior–posterior (y; green), and the medullary veins with their
    perivascular spaces right–left (x; red), perpendicular to both. Diffusivity along x in both
    areas (Dxx) therefore samples the perivascular direction, while Dyy in the projection area
    and Dzz in the association area are perpendicular to both fibres and vessels.
    """
    from matplotlib.patches import Ellipse, Rectangle

    ax = get_ax(ax, figsize=(3.0, 2.6))
    ax.set_xlim(-10, 10)
    ax.set_ylim(-9.2, 8.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.add_patch(Ellipse((0, 0), 18.5, 13.5, fc="#F7F7F7", ec="black", lw=0.8))
    for sx in (-1, 1):
        ax.add_patch(Ellipse((sx * 1.1, 0.2), 1.6, 6.5, fc="#D9D9D9", ec="black", lw=0.6))
        # projection area: fibres through the plane (z)
        ax.add_patch(Rectangle((sx * 3.9 - 1.0, -1.6), 2.0, 3.2, fc="#BFD3F2", ec=OKABE_ITO["blue"], lw=0.8))
        for yy in (-1.0, 0.0, 1.0):
            for xx in (-0.5, 0.5):
                ax.plot(sx * 3.9 + xx, yy, marker="o", ms=3.5, mfc="white", mec=OKABE_ITO["blue"], mew=0.8)
                ax.plot(sx * 3.9 + xx, yy, marker=".", ms=2, color=OKABE_ITO["blue"])
        # association area: fibres along y
        ax.add_patch(Rectangle((sx * 6.6 - 1.0, -1.6), 2.0, 3.2, fc="#C4E8D8", ec=OKABE_ITO["green"], lw=0.8))
        for xx in (-0.5, 0.0, 0.5):
            ax.plot([sx * 6.6 + xx] * 2, [-1.4, 1.4], color=OKABE_ITO["green"], lw=1.0)
        # medullary veins / PVS along x
        for yy in (-0.5, 0.5):
            ax.plot([sx * 2.4, sx * 8.2], [yy, yy], color=OKABE_ITO["vermillion"], lw=1.3)
    ax.text(0, 7.2, "Axial slice at the lateral-ventricle bodies", ha="center", fontsize=7)
    ax.text(3.9, -2.3, "projection\n(SCR, z)", ha="center", va="top", fontsize=6.5, color=OKABE_ITO["blue"])
    ax.text(6.9, 2.0, "association\n(SLF, y)", ha="center", va="bottom", fontsize=6.5, color=OKABE_ITO["green"])
    ax.text(-5.3, -2.3, "perivascular space /\nmedullary veins (x)", ha="center", va="top", fontsize=6.5,
            color=OKABE_ITO["vermillion"])
    ax.annotate("", (-8.8, -5.6), (-6.8, -5.6), arrowprops={"arrowstyle": "<->", "lw": 0.7})
    ax.text(-7.8, -5.4, "x (R–L)", ha="center", fontsize=6)
    ax.annotate("", (8.8, -6.2), (8.8, -4.2), arrowprops={"arrowstyle": "<->", "lw": 0.7})
    ax.text(8.4, -5.2, "y (A–P)", ha="right", va="center", fontsize=6)
    ax.text(0, -7.4, r"ALPS = $\frac{\mathrm{mean}(D_{xx}^{proj},\ D_{xx}^{assoc})}"
            r"{\mathrm{mean}(D_{yy}^{proj},\ D_{zz}^{assoc})}$", ha="center", va="top", fontsize=7.5)
    return ax


def _canonical(img, *, vector: bool = False):
    """Data reoriented to RAS voxel order; for a colour-FA (vector) image the colour channels are
    permuted with the axes so that red stays the image's first (x) axis."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(img.affine)
    data = np.asarray(img.dataobj)
    out = nib.orientations.apply_orientation(data, ornt)
    aff = img.affine @ nib.orientations.inv_ornt_aff(ornt, img.shape[:3])
    if vector:
        perm = np.argsort(ornt[:, 0].astype(int))
        out = out[..., perm]
    return out, aff


def _existing(path):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: derivative not found (has the pipeline run?)")
    return path


def native_roi_panel(der_dir, subject: str, *, session: str | None = None, ax=None):
    """One scan's native colour-FA (RAS display, neurological: left on the left) at the axial
    slice holding most ROI voxels, with the four mapped ROIs outlined."""
    import nibabel as nib

    lay = find_scan(der_dir, subject, session)
    rgb, _ = _canonical(nib.load(_existing(lay.colorfa)), vector=True)
    dseg, _ = _canonical(nib.load(_existing(lay.dseg)))
    k = int(np.argmax((dseg > 0).sum(axis=(0, 1))))
    ax = get_ax(ax)
    sl = np.clip(np.asarray(rgb[:, :, k, :], float), 0, None)
    if sl.max() > 1.0:
        sl = sl / np.percentile(sl[sl > 0], 99.5) if (sl > 0).any() else sl
    ax.imshow(np.clip(np.transpose(sl, (1, 0, 2)), 0, 1), origin="lower", interpolation="nearest")
    for lab, color in ROI_COLORS.items():
        # ROIs of a tilted head may lie on neighbouring slices: outline their projection
        m = (dseg == lab).any(axis=2).T
        if m.any():
            ax.contour(m.astype(float), levels=[0.5], colors=[color], linewidths=0.9)
    ax.set_title(f"{lay.key}: native colour FA, slice {k}\n(ROI outlines projected through slices)",
                 fontsize=6.5)
    ax.text(0.02, 0.5, "L", transform=ax.transAxes, color="white", fontsize=7, va="center")
    ax.text(0.98, 0.5, "R", transform=ax.transAxes, color="white", fontsize=7, va="center", ha="right")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def measure_parameters(der_dir, subject: str, session: str | None = None) -> dict:
    """The measurement parameters a scan was measured with (its ``*_desc-alps.json``)."""
    lay = find_scan(der_dir, subject, session)
    rec = lay.read_result()
    if not rec:
        raise FileNotFoundError(f"{lay.result_json}: no measurement record (has the pipeline run?)")
    return dict((rec.get("provenance") or {}).get("parameters") or {})


def template_roi_panel(der_dir, subject: str, *, session: str | None = None, z_mm: float = 27.0, ax=None):
    """The scan's FA resampled into MNI space through the affine part of its registration
    (``*_desc-RAS4x4_xfm.txt``, subject → template), the template white-matter contour (p = 0.5)
    and the ROIs it was measured with (its ``*_desc-alps.json``) on the axial plane ``z_mm``:
    circles of the recorded radius for spheres, outlines of the native ROI voxels carried into
    MNI space for JHU labels."""
    import nibabel as nib
    from matplotlib.patches import Circle
    from scipy import ndimage as ndi

    from ..imaging import template as tpl

    lay = find_scan(der_dir, subject, session)
    params = measure_parameters(der_dir, subject, session)
    fa_img = nib.load(_existing(lay.fa))
    s2t = np.loadtxt(_existing(lay.xfm_ras))
    wm = tpl.load("wm", resolution=1)
    k = int(round(np.linalg.solve(wm.affine, [0, 0, z_mm, 1])[2]))
    ii, jj = np.meshgrid(np.arange(wm.shape[0]), np.arange(wm.shape[1]), indexing="ij")
    vox = np.stack([ii, jj, np.full_like(ii, k), np.ones_like(ii)], axis=0).reshape(4, -1).astype(float)
    native_vox = np.linalg.inv(fa_img.affine) @ np.linalg.inv(s2t) @ wm.affine @ vox
    fa_t = ndi.map_coordinates(np.asarray(fa_img.dataobj, float), native_vox[:3], order=1,
                               cval=0.0).reshape(ii.shape)
    ax = get_ax(ax)
    x0, y0 = wm.affine[0, 3], wm.affine[1, 3]
    extent = (x0 - 0.5, x0 + wm.shape[0] - 0.5, y0 - 0.5, y0 + wm.shape[1] - 0.5)
    ax.imshow(fa_t.T, origin="lower", cmap="gray", vmin=0, vmax=0.8, extent=extent)
    ax.contour(np.asarray(wm.dataobj)[:, :, k].T, levels=[0.5], colors=[OKABE_ITO["vermillion"]],
               linewidths=0.5, extent=extent, origin="lower")
    if params.get("roi", "spheres") == "spheres":
        radius_mm = float(params.get("roi_radius", 2.5))
        for name, (cx, cy, _) in DEFAULT_CENTERS_MM.items():
            ax.add_patch(Circle((cx, cy), max(radius_mm, 2.0), fill=False, ec=ROI_COLORS[_LABEL_OF[name]],
                                lw=1.0))
        what = f"circles: spheres, r = {radius_mm:g} mm"
    else:
        dseg = np.asarray(nib.load(_existing(lay.dseg)).dataobj)
        lab_t = ndi.map_coordinates(dseg.astype(float), native_vox[:3], order=0, cval=0.0).reshape(ii.shape)
        for lab, color in ROI_COLORS.items():
            if (lab_t == lab).any():
                ax.contour((lab_t == lab).T.astype(float), levels=[0.5], colors=[color], linewidths=0.9,
                           extent=extent, origin="lower")
        what = f"outlines: {params.get('roi')} ROI voxels"
    ax.set_xlim(-75, 75)
    ax.set_ylim(-95, 60)
    ax.set_title(f"FA in MNI space, z = {z_mm:g} mm\nred: template WM p = 0.5\n{what}", fontsize=6.5)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    return ax


def _short_error(err, *, width: int = 30, lines: int = 4) -> str:
    """A scan's error for a montage tile: folders dropped from its paths (the tile names the
    scan), wrapped to the tile's width, at most ``lines`` lines."""
    import re
    import textwrap

    text = re.sub(r"(?:/[^/\s:]+)+/([^/\s:]+)", r"\1", str(err or ""))
    out = textwrap.wrap(text, width, break_long_words=True)
    return "\n".join(out[:lines - 1] + [out[lines - 1] + (" …" if len(out) > lines else "")] if len(out) >= lines
                     else out)


def qc_montage(der_dir, alps_tab: pd.DataFrame, *, ncols: int = 5, max_subjects: int | None = None):
    """Montage of every scan's ROI placement (native colour FA with mapped ROIs); failed scans are
    shown as a labelled empty tile with their error."""
    import matplotlib.pyplot as plt

    tab = alps_tab.copy()
    if "session_id" not in tab.columns:
        tab["session_id"] = None
    tab["_ses"] = [s if isinstance(s, str) and s else "" for s in tab["session_id"]]
    tab = tab.sort_values(["participant_id", "_ses"]).head(max_subjects) if max_subjects else \
        tab.sort_values(["participant_id", "_ses"])
    n = len(tab)
    nrows = int(np.ceil(n / ncols))
    height = 1.45 * nrows + 0.45
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, height), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), tab.iterrows()):
        sub, ses = row["participant_id"], row["_ses"] or None
        label = sub + (f"_{ses}" if ses else "")
        ok = row.get("status", "ok") == "ok"
        err = row.get("error", "")
        if ok:
            try:
                native_roi_panel(der_dir, sub, session=ses, ax=ax)
            except FileNotFoundError as exc:
                ok, err = False, str(exc)
        if ok:
            flags = str(row.get("qc_flags", "") or "")
            flags = "" if flags == "nan" else flags
            ax.set_title(label + (f"\n⚠ {flags}" if flags else ""), fontsize=6,
                         color=OKABE_ITO["vermillion"] if flags else "black")
        else:
            ax.text(0.5, 0.5, f"{label}\nFAILED\n{_short_error(err)}", ha="center", va="center",
                    fontsize=5.5, color=OKABE_ITO["vermillion"], transform=ax.transAxes)
        ax.axis("off")
    fig.suptitle("ROI placement, every subject (native colour FA; ROIs: light/dark blue = projection L/R, "
                 "yellow/orange = association L/R)", fontsize=7, y=1 - 0.08 / height, va="top")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.22 / height))  # keep the title's 0.22 in free of tiles
    return fig


def registration_figure(derivatives_dir, participant_id, session_id=None):
    """Figure for notebook 01: a scan's FA warped to MNI with the template WM contour (axial
    z = 27 mm, coronal y = −16 mm, sagittal x = −26 mm), from the preprocess outputs."""
    import matplotlib.pyplot as plt
    import nibabel as nib

    from ..imaging import template as tpl

    lay = find_scan(derivatives_dir, participant_id, session_id)
    rec = lay.read_preprocess()
    if not rec:
        raise FileNotFoundError(f"{lay.preprocess_json}: no preprocessing record (has the pipeline run?)")
    reg = load_registration(rec, lay.dir)
    ref = tpl.load("wm", resolution=2)
    fa_t = reg.to_template(nib.load(str(_existing(lay.fa))), reference=ref).get_fdata()
    wm = ref.get_fdata()
    inv = np.linalg.inv(ref.affine)
    i, j, k = (int(round(v)) for v in (inv @ [-26.0, -16.0, 27.0, 1])[:3])
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, sl, name in ((axes[0], (slice(None), slice(None), k), "axial z=27"),
                         (axes[1], (slice(None), j, slice(None)), "coronal y=-16"),
                         (axes[2], (i, slice(None), slice(None)), "sagittal x=-26")):
        ax.imshow(fa_t[sl].T, origin="lower", cmap="gray", vmin=0, vmax=0.8)
        ax.contour(wm[sl].T, levels=[0.5], colors="r", linewidths=0.7, origin="lower")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    m = reg.metrics
    fig.suptitle(f"{lay.key}: FA in MNI + template WM (red); corr={m.get('reg_corr', float('nan')):.2f}, "
                 f"Dice={m.get('reg_dice', float('nan')):.2f}", fontsize=10)
    fig.tight_layout()
    return fig
