"""Quality control: per-subject flags and a QC figure; cohort QC table.

Flags (a subject can carry several; ``qc_pass`` is True when there are none):

``gradient_table``   the gradient-orientation check (``--gradcheck report``) found a flipped or
                     swapped axis fitting the data better than the table as given
``reg_corr_low``     correlation of warped FA with the template WM map < ``min_reg_corr``
                     (default 0.45). A scan below the pipeline's *failure* threshold
                     (``min_reg_corr`` of the preprocess stage, 0.35) is not measured at all; this
                     flag marks the band between, where a registration can have converged to a
                     wrong optimum: on the real Toshiba series, correct registrations give
                     0.51–0.55 and one that landed 8 mm off gave 0.385 (``tests/test_realdata.py``);
                     the simulated cohort gives 0.96–0.98
``reg_dice_low``     Dice of warped brain mask vs template brain mask (on the part of the template
                     the field of view covers, :func:`alps.imaging.registration.registration_metrics`)
                     < ``min_reg_dice`` (0.80, or the preprocess threshold if higher)
``reg_loosened``     the registration passed only because ``--min-reg-corr`` / ``--min-reg-dice`` /
                     ``--min-reg-coverage`` were lowered: its correlation, Dice or coverage
                     (``reg_coverage``, the fraction of the template brain inside the field of view)
                     is below the default failure thresholds of :mod:`alps.imaging.registration`
                     (``MIN_CORRELATION`` 0.35, ``MIN_DICE`` 0.80, ``MIN_COVERAGE`` 0.5)
``fa_low_<roi>``     ROI mean FA < ``min_roi_fa`` (ROI probably not in white matter)
``purity_low_<roi>`` fraction of ROI voxels whose template-axis principal eigenvector lies along
                     the expected axis (z for projection, y for association fibres) < ``min_purity``
``alps_range``       template-axis ALPS (L, R or mean) outside ``alps_range``
``high_b``           the tensor was fitted on a shell above its model's maximum b-value (a
                     single-shell b = 2000/2500 scan, or a raised ``--max-bval``;
                     :func:`alps.imaging.shells.fit_flags`): for ``dti`` the index is not comparable
                     with b = 1000 studies (planted truth, kurtosis 0.6: +20 % at b = 2500). Added by
                     the measure stage with the column ``bval_fit`` (the largest b-value fitted)
``se_high``          the scan's standard error ``alps_se`` exceeds ``se_max`` (the row's ``se_high``,
                     set by :mod:`alps.pipeline.uncertainty`): its index is too noisy to compare
``sdc_folds``        the susceptibility correction's displacement folds inside the brain mask
                     (``sdc_min_jacobian`` <= 0, :mod:`alps.pipeline.distortion`): the field is not
                     invertible there (a measured field map extrapolated at the edge of the brain,
                     e.g. over the frontal sinus), and the corrected image is wrong around it
``reg_unstable``     the registration does not pin the ROIs down: the largest ROI-centre SD
                     ``roi_sd_max`` (:mod:`alps.imaging.regse`) exceeds ``max_roi_sd``, by default
                     1.25 mm ≈ the 2.5 mm sphere radius / 1.96 — beyond it the 95 % range of
                     where the centre lands is wider than the ROI itself, so where the ROI sits,
                     not the tissue, decides its value. The shared real 3 mm scans give
                     0.45–0.66 mm, the simulated 2 mm cohort about 0.05 mm.

Thresholds are defaults, not findings; change them through :func:`flags`' keyword arguments.
"""
from __future__ import annotations

import numpy as np

from .registration import MIN_CORRELATION, MIN_COVERAGE, MIN_DICE
from .roi import ROI_NAMES

DEFAULTS = dict(min_reg_corr=0.45, min_reg_dice=0.80, min_roi_fa=0.20, min_purity=0.5,
                alps_range=(0.8, 2.5), max_roi_sd=1.25)


def flags(row: dict, *, min_reg_corr=DEFAULTS["min_reg_corr"], min_reg_dice=DEFAULTS["min_reg_dice"],
          min_roi_fa=DEFAULTS["min_roi_fa"], min_purity=DEFAULTS["min_purity"],
          alps_range=DEFAULTS["alps_range"], max_roi_sd=DEFAULTS["max_roi_sd"]) -> list[str]:
    """QC flags of one result row (see module docstring)."""
    out = []
    corr = row.get("reg_corr")
    if corr is not None and np.isfinite(corr) and corr < min_reg_corr:
        out.append("reg_corr_low")
    dice = row.get("reg_dice")
    if dice is not None and np.isfinite(dice) and dice < min_reg_dice:
        out.append("reg_dice_low")
    below = [v is not None and np.isfinite(v) and v < t for v, t in
             ((corr, MIN_CORRELATION), (dice, MIN_DICE), (row.get("reg_coverage"), MIN_COVERAGE))]
    if any(below):
        out.append("reg_loosened")
    for name in ROI_NAMES:
        fa = row.get(f"fa_{name}")
        if fa is not None and np.isfinite(fa) and fa < min_roi_fa:
            out.append(f"fa_low_{name}")
        pur = row.get(f"purity_{name}")
        if pur is not None and np.isfinite(pur) and pur < min_purity:
            out.append(f"purity_low_{name}")
    if row.get("gradcheck_flag") and not row.get("gradcheck_corrected"):
        out.append("gradient_table")
    sd = row.get("roi_sd_max")
    if sd is not None and np.isfinite(sd) and sd > max_roi_sd:
        out.append("reg_unstable")
    lo, hi = alps_range
    for k in ("alps_L", "alps_R", "alps"):
        v = row.get(k)
        if v is None or not np.isfinite(v) or not lo <= v <= hi:
            out.append("alps_range")
            break
    se_high = row.get("se_high")
    if isinstance(se_high, (bool, np.bool_)) and se_high:
        out.append("se_high")
    jac = row.get("sdc_min_jacobian")
    if jac is not None and np.isfinite(jac) and jac <= 0:
        out.append("sdc_folds")
    return out


def template_slices(fa, tensor, affine, registration, template_img, *, z_mm=27.0, y_mm=-16.0) -> dict:
    """The native FA and template-axis colour FA sampled on two slices of the template grid.

    Only the displayed planes are resampled (trilinear): the axial plane nearest ``z_mm`` and the
    coronal plane nearest ``y_mm`` of ``template_img``'s grid, each template point mapped to the
    subject through ``registration``. Colour FA is ``|v1|·FA`` with ``v1`` the principal
    eigenvector of the interpolated tensor rotated into template axes.

    Returns
    -------
    dict with ``fa_axial`` (X, Y), ``fa_coronal`` (X, Z), ``rgb_axial`` (X, Y, 3), the slice
    indices ``k`` and ``j`` and the template ``shape`` and ``affine``.
    """
    from scipy.ndimage import map_coordinates

    from . import tensor as T

    taff = np.asarray(template_img.affine, float)
    shape = tuple(template_img.shape[:3])
    inv = np.linalg.inv(taff)
    k = int(np.clip(round((inv @ [0, 0, z_mm, 1])[2]), 0, shape[2] - 1))
    j = int(np.clip(round((inv @ [0, y_mm, 0, 1])[1]), 0, shape[1] - 1))
    aff = np.asarray(affine, float)
    ainv = np.linalg.inv(aff)
    q = registration.rotation @ T.polar_rotation(aff[:3, :3])
    six = T.to_six(tensor)

    def sample(ijk_template, with_rgb):
        world_t = ijk_template @ taff[:3, :3].T + taff[:3, 3]
        world_s = registration.points_to_subject(world_t)
        ijk = (world_s @ ainv[:3, :3].T + ainv[:3, 3]).T
        fa_s = map_coordinates(np.asarray(fa, np.float32), ijk, order=1, cval=0.0)
        if not with_rgb:
            return fa_s, None
        comp = np.stack([map_coordinates(six[..., c], ijk, order=1, cval=0.0) for c in range(6)], -1)
        _, evecs = T.eig(T.from_six(comp))
        rgb = np.abs(evecs[..., :, 0] @ q.T) * np.clip(fa_s, 0, 1)[:, None]
        return fa_s, np.clip(rgb, 0, 1)

    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    ax = np.stack([ii, jj, np.full_like(ii, k)], -1).reshape(-1, 3).astype(float)
    fa_ax, rgb_ax = sample(ax, True)
    ii, kk = np.meshgrid(np.arange(shape[0]), np.arange(shape[2]), indexing="ij")
    co = np.stack([ii, np.full_like(ii, j), kk], -1).reshape(-1, 3).astype(float)
    fa_co, _ = sample(co, False)
    return {"fa_axial": fa_ax.reshape(shape[0], shape[1]), "fa_coronal": fa_co.reshape(shape[0], shape[2]),
            "rgb_axial": rgb_ax.reshape(shape[0], shape[1], 3), "k": k, "j": j, "shape": shape, "affine": taff}


def native_axial_view(volume, affine, index):
    """The native slice nearest to axial through voxel ``index``, shown in neurological
    orientation: subject's right on the right, anterior up.

    The slice axis is the voxel axis most aligned with world z (I-S), so a sagittally or
    obliquely stored scan still shows an axial-like slice; the in-plane axes are the remaining
    voxel axes most aligned with world x and y, flipped so that x (L→R) grows to the right and
    y (P→A) upwards. Returns ``(image, slice_axis, slice_index)`` with ``image[row, col]``, row
    0 at the bottom (``imshow(..., origin="lower")``).
    """
    vol = np.asarray(volume)
    m = np.abs(np.asarray(affine, float)[:3, :3])
    ax_z = int(np.argmax(m[2]))
    rest = [a for a in range(3) if a != ax_z]
    ax_x = rest[int(np.argmax([m[0, a] for a in rest]))]
    ax_y = [a for a in rest if a != ax_x][0]
    s = int(index[ax_z])
    img = np.moveaxis(vol, (ax_x, ax_y, ax_z), (0, 1, 2))[:, :, s]  # (x-ish, y-ish)
    aff = np.asarray(affine, float)
    if aff[0, ax_x] < 0:
        img = img[::-1, :]
    if aff[1, ax_y] < 0:
        img = img[:, ::-1]
    return img.T, ax_z, s


def figure(path, *, slices, wm_t, centers_mm, radius_mm, title="",
           native_fa=None, native_dseg=None, native_affine=None, roi_z_mm=27.0, template_labels=None,
           centre_scatter=None, default_centers_mm=None, zoom_slices=None, note="", extra_rows=()):
    """Write the QC PNG (readable at page width).

    ``slices`` is the output of :func:`template_slices`; ``wm_t`` the template WM map.
    Top row: (1) colour FA in template axes, resampled to the template, axial slice at the ROI
    level with the ROIs; (2) warped FA with the template WM (p = 0.5) contour, same slice; (3)
    the same overlay, coronal slice through the ROIs (y = −16 mm). Bottom row: native FA with
    the native ROI voxels, one panel per ROI on the native slice through that ROI's centre
    (:func:`native_axial_view`: on a tilted scan the four ROIs lie on different slices). Every
    panel is labelled L/R (template panels: world x; native panels: from ``native_affine``).
    The ROIs are circles of ``radius_mm`` around ``centers_mm`` (spheres) or, with
    ``template_labels`` (a 1..4 label array on the template grid: proj_L, proj_R, assoc_L,
    assoc_R — the JHU ROIs), outlines of the labels on the displayed slices.

    The second panel of the top row zooms on the ROIs (colour FA of ``zoom_slices``, default
    ``slices``: the axial slice at the ROIs' level): the ROI circles; ``centre_scatter`` — ``(K, 3)``
    template points per ROI (in ``centers_mm``'s order) where each ROI centre lands under the
    registration's perturbations (:mod:`alps.imaging.regse`) — as magenta dots with their 2-SD
    ellipse; ``default_centers_mm`` — the spheres before tract-guided placement
    (:mod:`alps.imaging.placement`) — as grey crosses where they differ from ``centers_mm``.
    ``note`` (e.g. why the scan failed) is printed in red under the title, wrapped. ``extra_rows``:
    further rows under these, ``(height in inches, draw)`` each, ``draw(fig, subplotspec)`` drawing
    into its row (e.g. :func:`alps.imaging.qc_distortion.distortion_row`).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Circle

    from .. import atomic

    template_affine, shape = slices["affine"], slices["shape"]
    k, j = slices["k"], slices["j"]
    ext_ax = _extent(template_affine, shape, (0, 1))
    ext_co = _extent(template_affine, shape, (0, 2))
    import textwrap

    native = native_fa is not None
    note_lines = textwrap.wrap(note, 120) if note else []
    height = (9.4 if native else 5.0) + 0.25 * len(note_lines)
    extra = float(sum(h for h, _ in extra_rows))
    fig = plt.figure(figsize=(12.0, height + extra), dpi=110)

    def fy(f):  # a height fraction of the panels above the extra rows -> of the whole figure
        return (extra + f * height) / (height + extra)

    top = (0.86 if native else 0.78) - 0.25 * len(note_lines) / height  # the title (and note) above
    bottom = 0.03 if native else 0.6 / height
    grid = fig.add_gridspec(2 if native else 1, 12, left=0.04, right=0.99, bottom=fy(bottom), top=fy(top),
                            wspace=0.5, hspace=0.5)
    if note_lines:
        fig.text(0.5, fy(1.0 - 0.55 / height), "\n".join(note_lines), ha="center", va="top", color="#c00000",
                 fontsize=11)
    top = [fig.add_subplot(grid[0, 3 * i:3 * i + 3]) for i in range(4)]
    fs = 11
    labels = None if template_labels is None else np.asarray(template_labels)

    def lr(ax, left="L", right="R"):
        for x, t, ha in ((0.02, left, "left"), (0.98, right, "right")):
            ax.text(x, 0.97, t, transform=ax.transAxes, ha=ha, va="top", color="w", fontsize=fs + 2,
                    fontweight="bold")

    def draw_rois(ax, plane, colours):
        if labels is not None:  # outlines of the label regions on this template slice
            sl = labels[:, :, k] if plane == "axial" else labels[:, j, :]
            ext = ext_ax if plane == "axial" else ext_co
            for value, col in zip((1, 2, 3, 4), colours):
                m = (sl == value).astype(float)
                if m.any():
                    ax.contour(m.T, levels=[0.5], colors=col, linewidths=1.5, origin="lower", extent=ext)
            return
        for (x, y, z), col in zip(centers_mm, colours):
            ax.add_patch(Circle((x, y) if plane == "axial" else (x, z), max(radius_mm, 1.0), fill=False,
                                ec=col, lw=1.5))

    def draw_zoom(ax):
        from matplotlib.patches import Ellipse

        zs = zoom_slices if zoom_slices is not None else slices
        ax.imshow(np.clip(np.transpose(zs["rgb_axial"], (1, 0, 2)) * 1.6, 0, 1), origin="lower",
                  extent=_extent(zs["affine"], zs["shape"], (0, 1)))
        if labels is None:
            draw_rois(ax, "axial", ("w", "w", "y", "y"))
        for pts in centre_scatter or ():
            pts = np.asarray(pts, float).reshape(-1, 3)
            ax.plot(pts[:, 0], pts[:, 1], ".", ms=3, color="m")
            w, v = np.linalg.eigh(np.cov(pts[:, :2].T, bias=True))
            ax.add_patch(Ellipse(pts[:, :2].mean(0), *(4 * np.sqrt(np.clip(w[::-1], 0, None))),
                                 angle=float(np.degrees(np.arctan2(v[1, 1], v[0, 1]))), fill=False, ec="m", lw=1))
        for c0, c in zip(default_centers_mm or (), centers_mm):
            if np.linalg.norm(np.subtract(c0, c)) > 0.25:
                ax.plot([c0[0]], [c0[1]], "+", ms=9, mew=1.5, color="0.8")
        ax.set_xlim(-50, 50)
        ax.set_ylim(-60, 28)
        z = float(zs["affine"][2, 2] * zs["k"] + zs["affine"][2, 3])
        ax.set_title(f"ROIs, colour FA at z = {z:g} mm\n+ before placement; dots, ellipse:\n"
                     "registration uncertainty (2 SD)", fontsize=fs)

    shape_word = "outlines" if labels is not None else "circles"
    ax = top[0]
    ax.imshow(np.clip(np.transpose(slices["rgb_axial"], (1, 0, 2)) * 1.6, 0, 1), origin="lower", extent=ext_ax)
    draw_rois(ax, "axial", ("w", "w", "y", "y"))
    ax.set_title(f"colour FA, template axes, z = {roi_z_mm:g} mm\nred x, green y, blue z\n"
                 f"{shape_word}: SCR (white), SLF (yellow)", fontsize=fs)
    draw_zoom(top[1])
    ax = top[2]
    ax.imshow(slices["fa_axial"].T, origin="lower", cmap="gray", vmin=0, vmax=0.8, extent=ext_ax)
    ax.contour(wm_t[:, :, k].T, levels=[0.5], colors="r", linewidths=0.8, origin="lower", extent=ext_ax)
    draw_rois(ax, "axial", ("c",) * 4)
    ax.set_title("FA warped to MNI, same slice\ntemplate WM p = 0.5 (red)\nROIs (cyan)", fontsize=fs)
    ax = top[3]
    ax.imshow(slices["fa_coronal"].T, origin="lower", cmap="gray", vmin=0, vmax=0.8, extent=ext_co)
    ax.contour(wm_t[:, j, :].T, levels=[0.5], colors="r", linewidths=0.8, origin="lower", extent=ext_co)
    draw_rois(ax, "coronal", ("c",) * 4)
    ax.set_title("FA warped to MNI, coronal\ny = -16 mm, template WM\np = 0.5 (red), ROIs (cyan)", fontsize=fs)
    for ax in top:
        ax.set_xlabel("x (mm, L→R)", fontsize=fs - 1)
        lr(ax)
    axes = list(top)
    if native:
        lab = np.asarray(native_dseg)
        fa = np.asarray(native_fa)
        aff = np.asarray(native_affine if native_affine is not None else np.eye(4), float)
        roi_cmap = ListedColormap(["#3b7dd8", "#3b7dd8", "#2ca02c", "#2ca02c"])
        full = {"proj": "SCR", "assoc": "SLF"}
        for i, name in enumerate(ROI_NAMES):
            ax = fig.add_subplot(grid[1, 3 * i:3 * i + 3])
            axes.append(ax)
            idx = np.argwhere(lab == i + 1)
            centre = np.round(idx.mean(axis=0)).astype(int) if len(idx) else np.array(fa.shape[:3]) // 2
            img, axis, s = native_axial_view(fa, aff, centre)
            over, _, _ = native_axial_view(lab, aff, centre)
            ax.imshow(img, origin="lower", cmap="gray", vmin=0, vmax=0.8)
            ax.imshow(np.ma.masked_equal(over, 0), origin="lower", cmap=roi_cmap, vmin=0.5, vmax=4.5, alpha=0.9,
                      interpolation="nearest")
            kind, side = name.split("_")
            found = "" if len(idx) else " (no voxels)"
            ax.set_title(f"native FA, {full[kind]} {'left' if side == 'L' else 'right'}{found}\n"
                         f"voxel slice {'ijk'[axis]} = {s}", fontsize=fs)
            ax.set_xticks([])
            ax.set_yticks([])
            lr(ax)
        fig.text(0.5, fy(0.425), "native grid, one slice through each ROI (nearest-to-axial voxel plane; ROI voxels "
                 "with weight > 0: SCR blue, SLF green)", ha="center", fontsize=fs)
    below = extra
    for h, draw in extra_rows:  # each row: 0.7 in for its titles above, the panels below
        below -= h
        spec = fig.add_gridspec(1, 1, left=0.04, right=0.97, bottom=(below + 0.15) / (height + extra),
                                top=(below + h - 0.8) / (height + extra))[0, 0]
        axes += list(draw(fig, spec) or [])
    for ax in axes:
        ax.tick_params(labelsize=fs - 2)
    fig.suptitle(title, fontsize=fs + 3, y=fy(1.0 - 0.14 / height if note_lines else 0.985))
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())
    return path


def _extent(affine, shape, axes):
    """imshow extent (world mm) for a template-grid slice (template is axis-aligned RAS)."""
    lo = affine @ np.r_[np.zeros(3), 1]
    hi = affine @ np.r_[np.asarray(shape[:3]) - 1, 1]
    a, b = axes
    return (lo[a], hi[a], lo[b], hi[b])
