"""The susceptibility-correction row of a scan's QC image (:func:`alps.imaging.qc.figure`'s
``extra_rows``): the field and what it did, on native slices.

Four panels, each a native slice nearest to axial (:func:`alps.imaging.qc.native_axial_view`):
the field (Hz, blue negative / red positive, symmetric scale over the brain's range) at the ALPS ROI level and at a lower
slice through the frontal and temporal lobes, where the air of the sinuses and ear canals bends it
most; the uncorrected and the corrected mean b = 0 image at that lower slice, both with the outline
of the corrected image's brain mask (yellow): the uncorrected brain sits shifted along the
phase-encoding axis, stretched or compressed, the corrected one inside the outline.
"""
from __future__ import annotations

import numpy as np

__all__ = ["distortion_row", "LOWER_MM"]

#: the lower slice lies this far (mm, along the slice axis) below the ROI level.
LOWER_MM = 30.0


def distortion_row(field_hz, b0_before, b0_after, mask, affine, roi_index, *, source: str = "",
                   pe_direction: str = "", displacement_max_mm: float = float("nan")):
    """A ``draw(fig, subplotspec)`` for :func:`alps.imaging.qc.figure`'s ``extra_rows``.

    Parameters
    ----------
    field_hz, b0_before, b0_after, mask : ndarray (X, Y, Z)
        The field (Hz), the mean b = 0 image before and after the correction and the brain mask
        (after), on the DWI grid.
    affine : 4x4
    roi_index : sequence of 3 ints
        A voxel at the ROI level (e.g. the centre of the ROI voxels).
    source, pe_direction, displacement_max_mm
        For the titles.
    """
    from .qc import native_axial_view

    aff = np.asarray(affine, float)
    roi_index = np.asarray(roi_index, int)
    m = np.abs(aff[:3, :3])
    ax_z = int(np.argmax(m[2]))
    step = float(np.linalg.norm(aff[:3, ax_z]))
    lower = roi_index.copy()
    lower[ax_z] = int(np.clip(roi_index[ax_z] - round(LOWER_MM / step) * np.sign(aff[2, ax_z] or 1.0), 0,
                              np.shape(field_hz)[ax_z] - 1))
    f = np.asarray(field_hz, float)
    inside = np.asarray(mask, bool)
    vmax = float(np.abs(f[inside]).max()) if inside.any() else float(np.abs(f).max())
    vmax = 5.0 * np.ceil(max(vmax, 1.0) / 5.0)  # the whole range within the brain, in steps of 5 Hz

    def draw(fig, spec):
        grid = spec.subgridspec(1, 4, wspace=0.25)
        axes = [fig.add_subplot(grid[0, i]) for i in range(4)]
        im = None
        for ax, idx, where in ((axes[0], roi_index, "ROI level"), (axes[1], lower, f"{LOWER_MM:g} mm lower")):
            img, axis, s = native_axial_view(f, aff, idx)
            msk, _, _ = native_axial_view(inside.astype(float), aff, idx)
            im = ax.imshow(img, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.contour(msk, levels=[0.5], colors="k", linewidths=0.6, origin="lower")
            ax.set_title(f"field (Hz), {where}\nvoxel slice {'ijk'[axis]} = {s}", fontsize=11)
        fig.colorbar(im, ax=axes[:2], fraction=0.025, pad=0.01)
        msk, _, _ = native_axial_view(inside.astype(float), aff, lower)
        scale = float(np.percentile(np.asarray(b0_after, float)[inside], 99)) if inside.any() else None
        for ax, vol, what in ((axes[2], b0_before, "b = 0 uncorrected"), (axes[3], b0_after, "b = 0 corrected")):
            img, _, _ = native_axial_view(np.asarray(vol, float), aff, lower)
            ax.imshow(img, origin="lower", cmap="gray", vmin=0, vmax=scale)
            ax.contour(msk, levels=[0.5], colors="y", linewidths=0.8, origin="lower")
            ax.set_title(f"{what}, {LOWER_MM:g} mm lower\nbrain outline after correction (yellow)", fontsize=11)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
            for x, t, ha in ((0.02, "L", "left"), (0.98, "R", "right")):
                ax.text(x, 0.97, t, transform=ax.transAxes, ha=ha, va="top", color="k" if ax in axes[:2] else "w",
                        fontsize=12, fontweight="bold")
        title = f"susceptibility correction: {source}, phase encoding {pe_direction}"
        if np.isfinite(displacement_max_mm):
            title += f", largest shift in the brain {displacement_max_mm:.1f} mm"
        axes[0].annotate(title, xy=(0.0, 1.32), xycoords="axes fraction", fontsize=12, fontweight="bold")
        return axes

    return draw
