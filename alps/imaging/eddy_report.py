"""What :func:`alps.imaging.eddy.correct_eddy_motion` reports: one row per volume (its transform,
displacements, outlier slices) and the per-scan summary for ``preprocess.tsv``."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from . import eddy_transform as ET


SUMMARY_COLUMNS = ("eddy_model", "eddy_pe_axis", "eddy_mean_disp_mm", "eddy_max_disp_mm", "eddy_max_rot_deg",
                   "eddy_max_trans_mm", "eddy_max_ec_disp_mm", "eddy_n_outlier_slices",
                   "eddy_n_outlier_volumes", "eddy_outlier_volumes")


def summarise(params: pd.DataFrame, settings: dict) -> dict:
    """:meth:`EddyCorrection.summary` from a parameters table and the settings."""
    dw = params[~params["b0"]]
    out = params[params["outlier"]]
    return {"eddy_model": settings["model"], "eddy_pe_axis": settings["pe_axis_label"],
            "eddy_mean_disp_mm": float(dw["mean_disp_mm"].mean()), "eddy_max_disp_mm": float(params["max_disp_mm"].max()),
            "eddy_max_rot_deg": float(params["rot_deg"].max()), "eddy_max_trans_mm": float(params["trans_mm"].max()),
            "eddy_max_ec_disp_mm": float(dw["max_ec_disp_mm"].max()),
            "eddy_n_outlier_slices": int(params["n_outlier_slices"].sum()),
            "eddy_n_outlier_volumes": int(len(out)),
            "eddy_outlier_volumes": ",".join(str(int(v)) for v in out["volume"])}


def parameters_table(transforms, gains, costs, geom, bvals, b0, models, flags, scores, mask) -> pd.DataFrame:
    """One row per volume: ``trans_x/y/z`` (mm, world RAS, about the mask centroid), ``rot_x/y/z``
    (degrees, rotation-vector components about the world axes) and ``rot_deg`` (its angle),
    ``trans_mm``, the eddy-current coefficients ``ec_<displaced axis>_<term>`` (mm at 100 mm from
    the centre; NaN for rigid volumes), ``mean_disp_mm``/``max_disp_mm`` (displacement of the brain
    voxels, motion and eddy currents), ``max_ec_disp_mm`` (eddy currents alone), ``gain`` (the
    registration's intensity factor, not applied), ``cost`` (its mean weighted squared leave-one-out
    residual, log units), ``n_outlier_slices``, ``outlier_slices`` (';'-separated indices), ``min_slice_score``
    and ``outlier``."""
    pts = np.argwhere(mask).astype(float)
    terms = ET.ec_terms(geom.model)
    rows = []
    for n, tr in enumerate(transforms):
        rv = np.degrees(Rotation.from_matrix(tr.rotation).as_rotvec())
        row = {"volume": n, "bval": float(bvals[n]), "b0": bool(b0[n]), "model": models[n],
               "trans_x": tr.translation[0], "trans_y": tr.translation[1], "trans_z": tr.translation[2],
               "rot_x": rv[0], "rot_y": rv[1], "rot_z": rv[2], "rot_deg": float(np.linalg.norm(rv)),
               "trans_mm": float(np.linalg.norm(tr.translation))}
        for i, a in enumerate(geom.pe_axes):
            for k, name in enumerate(terms):
                row[f"ec_{ET.AXES[a]}_{name}"] = float(tr.ec[i, k]) if tr.ec.size else np.nan
        disp = ET.displacement_mm(tr, geom, pts)
        row["mean_disp_mm"] = float(disp.mean())
        row["max_disp_mm"] = float(disp.max())
        row["max_ec_disp_mm"] = float(ET.displacement_mm(tr, geom, pts, ec_only=True).max()) if tr.ec.size else 0.0
        row.update({"gain": float(gains[n]), "cost": float(costs[n])})
        bad = np.flatnonzero(flags[n])
        row.update({"n_outlier_slices": int(bad.size), "outlier_slices": ";".join(str(int(z)) for z in bad),
                    "min_slice_score": float(np.nanmin(scores[n])) if np.isfinite(scores[n]).any() else np.nan,
                    "outlier": bool(bad.size)})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_parameters(params: pd.DataFrame, ax=None, *, title: str | None = None):
    """QC panel: per volume, the largest displacement of the brain (motion and eddy currents), the
    eddy-current part and the rotation (degrees × 10, right axis), outlier volumes marked in red.
    ``ax=None`` makes a figure; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 2.4))
    v = params["volume"].to_numpy()
    ax.plot(v, params["max_disp_mm"], "o-", ms=3, lw=1, label="max displacement (mm)")
    ax.plot(v, params["max_ec_disp_mm"], "s-", ms=3, lw=1, label="eddy currents (mm)")
    ax.plot(v, 10 * params["rot_deg"], "^-", ms=3, lw=1, label="rotation (deg × 10)")
    out = params["outlier"].to_numpy(bool)
    if out.any():
        ax.plot(v[out], params["max_disp_mm"].to_numpy()[out], "o", ms=7, mfc="none", mec="red",
                label="outlier slices")
    b0 = params["b0"].to_numpy(bool)
    for x in v[b0]:
        ax.axvline(x, color="0.85", lw=0.8, zorder=0)
    ax.set(xlabel="volume (grey: b = 0)", ylabel="mm", title=title or "eddy currents and motion")
    ax.legend(fontsize=6, frameon=False)
    return ax
