"""Quality control: per-subject flags and a QC figure; cohort QC table.

Flags (a subject can carry several; ``qc_pass`` is True when there are none):

``gradient_table``   the gradient-orientation check (``--gradcheck report``) found a flipped or
                     swapped axis fitting the data better than the table as given
``reg_corr_low``     correlation of warped FA with the template WM map < ``min_reg_corr``
``reg_dice_low``     Dice of warped brain mask vs template brain mask < ``min_reg_dice``
``fa_low_<roi>``     ROI mean FA < ``min_roi_fa`` (ROI probably not in white matter)
``purity_low_<roi>`` fraction of ROI voxels whose template-axis principal eigenvector lies along
                     the expected axis (z for projection, y for association fibres) < ``min_purity``
``alps_range``       template-axis ALPS (L, R or mean) outside ``alps_range``

Thresholds are defaults, not findings; change them through :func:`flags`' keyword arguments.
"""
from __future__ import annotations

import numpy as np

from .roi import ROI_NAMES

DEFAULTS = dict(min_reg_corr=0.35, min_reg_dice=0.80, min_roi_fa=0.20, min_purity=0.5,
                alps_range=(0.8, 2.5))


def flags(row: dict, *, min_reg_corr=DEFAULTS["min_reg_corr"], min_reg_dice=DEFAULTS["min_reg_dice"],
          min_roi_fa=DEFAULTS["min_roi_fa"], min_purity=DEFAULTS["min_purity"],
          alps_range=DEFAULTS["alps_range"]) -> list[str]:
    """QC flags of one result row (see module docstring)."""
    out = []
    corr = row.get("reg_corr")
    if corr is not None and np.isfinite(corr) and corr < min_reg_corr:
        out.append("reg_corr_low")
    dice = row.get("reg_dice")
    if dice is not None and np.isfinite(dice) and dice < min_reg_dice:
        out.append("reg_dice_low")
    for name in ROI_NAMES:
        fa = row.get(f"fa_{name}")
        if fa is not None and np.isfinite(fa) and fa < min_roi_fa:
            out.append(f"fa_low_{name}")
        pur = row.get(f"purity_{name}")
        if pur is not None and np.isfinite(pur) and pur < min_purity:
            out.append(f"purity_low_{name}")
    if row.get("gradcheck_flag") and not row.get("gradcheck_corrected"):
        out.append("gradient_table")
    lo, hi = alps_range
    for k in ("alps_L", "alps_R", "alps"):
        v = row.get(k)
        if v is None or not np.isfinite(v) or not lo <= v <= hi:
            out.append("alps_range")
            break
    return out


def figure(path, *, fa_t, rgb_t, template_affine, wm_t, centers_mm, radius_mm, title="",
           native_fa=None, native_dseg=None, native_affine=None, roi_z_mm=27.0):
    """Write the QC PNG.

    Panels: (1) colour FA in template axes, resampled to the template, axial slice at the ROI
    level with the ROI circles; (2) warped FA with the template WM (p = 0.5) contour, same
    slice; (3) the same overlay, coronal slice through the ROIs (y = −16 mm);
    (4) native FA with the native ROI labels, on the native slice nearest the ROI centres.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    from .io import atomic_write_bytes

    inv = np.linalg.inv(template_affine)
    k = int(round((inv @ [0, 0, roi_z_mm, 1])[2]))
    j = int(round((inv @ [0, -16.0, 0, 1])[1]))
    k = int(np.clip(k, 0, fa_t.shape[2] - 1))
    j = int(np.clip(j, 0, fa_t.shape[1] - 1))
    ext_ax = _extent(template_affine, fa_t.shape, (0, 1))
    ext_co = _extent(template_affine, fa_t.shape, (0, 2))
    n_pan = 4 if native_fa is not None else 3
    fig, axes = plt.subplots(1, n_pan, figsize=(4.2 * n_pan, 4.4), dpi=90)
    ax = axes[0]
    ax.imshow(np.clip(np.transpose(rgb_t[:, :, k], (1, 0, 2)) * 1.6, 0, 1), origin="lower", extent=ext_ax)
    for (x, y, _), col in zip(centers_mm, ("w", "w", "y", "y")):
        ax.add_patch(Circle((x, y), max(radius_mm, 1.0), fill=False, ec=col, lw=1.2))
    ax.set_title(f"colour FA (template axes) z={roi_z_mm:g} mm\nR=x L-R, G=y A-P, B=z I-S", fontsize=8)
    ax.set_xlabel("x (mm, L→R)", fontsize=7)
    ax = axes[1]
    ax.imshow(fa_t[:, :, k].T, origin="lower", cmap="gray", vmin=0, vmax=0.8, extent=ext_ax)
    ax.contour(wm_t[:, :, k].T, levels=[0.5], colors="r", linewidths=0.7, origin="lower", extent=ext_ax)
    for (x, y, _) in centers_mm:
        ax.add_patch(Circle((x, y), max(radius_mm, 1.0), fill=False, ec="c", lw=1.0))
    ax.set_title("warped FA + template WM (p=0.5, red)", fontsize=8)
    ax = axes[2]
    ax.imshow(fa_t[:, j, :].T, origin="lower", cmap="gray", vmin=0, vmax=0.8, extent=ext_co)
    ax.contour(wm_t[:, j, :].T, levels=[0.5], colors="r", linewidths=0.7, origin="lower", extent=ext_co)
    for (x, _, z) in centers_mm:
        ax.add_patch(Circle((x, z), max(radius_mm, 1.0), fill=False, ec="c", lw=1.0))
    ax.set_title("coronal y=-16 mm", fontsize=8)
    if native_fa is not None:
        ax = axes[3]
        lab = np.asarray(native_dseg)
        if lab.any():
            idx = np.argwhere(lab > 0)
            ks = int(np.round(np.median(idx[:, 2])))
        else:
            ks = native_fa.shape[2] // 2
        ax.imshow(native_fa[:, :, ks].T, origin="lower", cmap="gray", vmin=0, vmax=0.8)
        over = np.ma.masked_equal(lab[:, :, ks].T, 0)
        ax.imshow(over, origin="lower", cmap="tab10", vmin=0, vmax=9, alpha=0.9, interpolation="nearest")
        ax.set_title(f"native FA, voxel slice k={ks} + ROIs (voxel axes)", fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _extent(affine, shape, axes):
    """imshow extent (world mm) for a template-grid slice (template is axis-aligned RAS)."""
    lo = affine @ np.r_[np.zeros(3), 1]
    hi = affine @ np.r_[np.asarray(shape[:3]) - 1, 1]
    a, b = axes
    return (lo[a], hi[a], lo[b], hi[b])


def registration_figure(derivatives_dir, participant_id, session_id=None):
    """Matplotlib figure for notebook 01: a subject's FA warped to MNI with the template WM contour
    (axial z = 27 mm, coronal y = −16 mm, sagittal x = −26 mm), from the preprocess outputs."""
    import json
    from pathlib import Path

    import matplotlib.pyplot as plt
    import nibabel as nib

    from . import template as tpl
    from .registration import load_registration

    key = participant_id + (f"_{session_id}" if session_id else "")
    d = Path(derivatives_dir) / participant_id
    if session_id:
        d = d / session_id
    d = d / "dwi"
    rec = json.loads((d / f"{key}_desc-preprocess.json").read_text())
    info = dict(rec["registration"])
    info["forward_transforms"] = [str(d / f) for f in info["forward_transforms"]]
    info["inverse_transforms"] = [str(d / f) for f in info["inverse_transforms"]]
    reg = load_registration(info)
    ref = tpl.load("wm", resolution=2)
    fa_t = reg.to_template(nib.load(str(d / f"{key}_desc-FA_dwimap.nii.gz")), reference=ref).get_fdata()
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
    fig.suptitle(f"{key}: FA in MNI + template WM (red); corr={m.get('reg_corr', float('nan')):.2f}, "
                 f"Dice={m.get('reg_dice', float('nan')):.2f}", fontsize=10)
    fig.tight_layout()
    return fig
