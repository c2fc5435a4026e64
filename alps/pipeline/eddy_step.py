"""Stage-1 step: eddy-current and motion correction of one series (:mod:`alps.imaging.eddy`).

Called by :func:`alps.pipeline.preprocess.preprocess_subject` after the optional MP-PCA / Gibbs
steps and before the susceptibility correction and the tensor fit, when the ``eddy_correction``
parameter is on and the input is not already preprocessed (a ``desc-preproc`` DWI, e.g. QSIPrep's;
``item.preprocessed``): every volume is registered to its leave-one-out tensor prediction with a transform
limited to head motion and eddy currents along the phase-encoding axis, outlier slices are
replaced by their prediction, and the b-vectors are turned by each volume's rotation.

The phase-encoding axis is the voxel axis of the sidecar's ``PhaseEncodingDirection`` (or
``PhaseEncodingAxis``; BIDS gives both in voxel axes ``i j k`` of the image, the sign does not
matter here), the slice axis that of ``SliceEncodingDirection`` (BIDS default ``k``). Without
either phase-encoding field the correction models a displacement along both in-plane axes
(``eddy_pe_axis`` says ``unknown (i+j)``, ``eddy_pe_source`` says ``none``); a value that is not a
BIDS axis, a direction and an axis that disagree, or a phase encoding along the slice axis is an
:class:`alps.io.InputError` naming the sidecar — never a guess.

What it writes (:class:`alps.pipeline.layout.ScanLayout`): the per-volume parameters
``<key>_desc-eddy_motion.tsv`` (:func:`alps.imaging.eddy_report.parameters_table`); the corrected
series is kept by :mod:`alps.pipeline.signal` so that the standard errors bootstrap the signal the
index was computed from. What it returns for the stage-1 record (``"eddy"``): the settings, the
per-scan summary (:data:`SUMMARY_COLUMNS` plus ``eddy_pe_source`` and ``eddy_passes``) and the
times of its sub-steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import atomic
from ..io import InputError
from ..io.bidsnames import merged_sidecar

__all__ = ["Encoding", "encoding", "check", "model_for", "correct_series", "run", "qc_rows", "SUMMARY_COLUMNS"]

_AXES = {"i": 0, "j": 1, "k": 2}
#: the step's columns of the scan's row (``preprocess.tsv``, ``alps.tsv``), in their order.
SUMMARY_COLUMNS = ("eddy_model", "eddy_pe_axis", "eddy_pe_source", "eddy_passes", "eddy_mean_disp_mm",
                   "eddy_max_disp_mm", "eddy_max_rot_deg", "eddy_max_trans_mm", "eddy_max_ec_disp_mm",
                   "eddy_n_outlier_slices", "eddy_n_outlier_volumes", "eddy_outlier_volumes")
#: height (inches) of the step's row in the QC image
QC_ROW_IN = 2.9


@dataclass(frozen=True)
class Encoding:
    """Where a scan's phase encoding and slices lie: ``pe_axis`` (voxel axis 0/1/2, or None when the
    sidecars do not say), ``pe_source`` (the sidecar field it came from, or ``"none"``), ``slice_axis``."""

    pe_axis: int | None
    pe_source: str
    slice_axis: int


def _axis(value, field, path, *, signed: bool):
    allowed = ("i", "j", "k", "i-", "j-", "k-") if signed else ("i", "j", "k")
    if not isinstance(value, str) or value.strip() not in allowed:
        raise InputError(f"{path}: {field} {value!r} is not a BIDS voxel axis (one of {', '.join(allowed)})")
    return _AXES[value.strip()[0]]


def encoding(item) -> Encoding:
    """The scan's :class:`Encoding` from its (inherited) BIDS sidecars (module docstring)."""
    sidecars = getattr(item, "sidecars", ()) or ((item.sidecar,) if getattr(item, "sidecar", None) else ())
    meta, _ = merged_sidecar(sidecars)
    path = sidecars[-1] if sidecars else f"{item.dwi} (no sidecar)"
    direction, axis = meta.get("PhaseEncodingDirection"), meta.get("PhaseEncodingAxis")
    slice_field = meta.get("SliceEncodingDirection")
    slice_axis = 2 if slice_field is None else _axis(slice_field, "SliceEncodingDirection", path, signed=True)
    pe, source = None, "none"
    if direction is not None:
        pe, source = _axis(direction, "PhaseEncodingDirection", path, signed=True), "PhaseEncodingDirection"
    if axis is not None:
        a = _axis(axis, "PhaseEncodingAxis", path, signed=False)
        if pe is not None and a != pe:
            raise InputError(f"{path}: PhaseEncodingDirection {direction!r} and PhaseEncodingAxis {axis!r} disagree")
        if pe is None:
            pe, source = a, "PhaseEncodingAxis"
    if pe is not None and pe == slice_axis:
        raise InputError(f"{path}: phase encoding along the slice axis ({'ijk'[pe]}): not an EPI diffusion series "
                         "this correction models")
    return Encoding(pe, source, slice_axis)


def check(item) -> tuple:
    """What ``alps validate`` says of the step for one scan: ``(severity, message)`` — ``info`` with the
    phase-encoding axis and its sidecar field, ``warning`` when no sidecar gives it, ``error`` (the
    sidecar named) when the sidecar's value is invalid or contradictory."""
    try:
        enc = encoding(item)
    except InputError as exc:
        return "error", str(exc)
    if enc.pe_axis is None:
        return "warning", ("eddy-current correction: no PhaseEncodingDirection or PhaseEncodingAxis in the "
                           "sidecars; eddy currents modelled along both in-plane axes (i and j)")
    return "info", f"eddy-current correction along {'ijk'[enc.pe_axis]} ({enc.pe_source})"


def model_for(params, *, pairs: bool = False) -> str:
    """The eddy-current model this scan gets: ``params.eddy_model``, or ``'rigid'`` (head motion
    only) when the susceptibility step will estimate per-volume fields from a matched reverse
    phase-encoded series (``pairs``), which already remove the eddy-current displacement."""
    return "rigid" if pairs else params.eddy_model


def correct_series(data, affine, bvals, bvecs, mask, params, *, encoding: Encoding, model: str | None = None):
    """:func:`alps.imaging.eddy.correct_eddy_motion` with the stage's parameters (also for the other
    series of a reverse phase-encoded pair). Returns its :class:`~alps.imaging.eddy.EddyCorrection`."""
    from ..imaging.eddy import correct_eddy_motion

    return correct_eddy_motion(data, affine, bvals, bvecs, mask, pe_axis=encoding.pe_axis,
                               slice_axis=encoding.slice_axis, model=model or params.eddy_model,
                               outliers=params.eddy_outliers, b0_threshold=params.b0_threshold)


def summary(res, enc: Encoding) -> dict:
    """The step's cells of the scan's row (:data:`SUMMARY_COLUMNS`)."""
    out = res.summary()
    out["eddy_pe_source"] = enc.pe_source
    out["eddy_passes"] = len(res.settings["pass_changes_mm"])
    return {k: out[k] for k in SUMMARY_COLUMNS}


def run(item, data, affine, bvals, bvecs, mask, params, layout, *, pairs: bool = False):
    """The step on one scan: returns ``(corrected data, turned b-vectors (FSL), record)`` and
    writes the per-volume parameters (``layout.eddy_motion``). ``record`` (JSON-able) is what the
    stage-1 record keeps under ``"eddy"``: ``summary`` (the row's cells), ``settings``, ``times_s``,
    ``file``."""
    enc = encoding(item)
    res = correct_series(data, affine, bvals, bvecs, mask, params, encoding=enc, model=model_for(params, pairs=pairs))
    layout.dir.mkdir(parents=True, exist_ok=True)
    atomic.write_table(layout.eddy_motion, res.parameters, float_format="%.6g")
    settings = {k: v for k, v in res.settings.items() if k != "pe_axes"}
    record = {"summary": summary(res, enc), "settings": settings, "times_s": dict(res.times_s),
              "file": layout.eddy_motion.name}
    return res.data, np.asarray(res.bvecs, float), record


def qc_rows(pre) -> tuple:
    """The step's row of the QC image (:func:`alps.imaging.qc.figure`'s ``extra_rows``): the
    per-volume displacement, eddy-current part and rotation, outlier volumes circled
    (:func:`alps.imaging.eddy_report.plot_parameters`); none when the step did not run."""
    if not pre.eddy or not pre.layout.eddy_motion.is_file():
        return ()
    import pandas as pd

    from ..imaging.eddy_report import plot_parameters

    table = pd.read_csv(pre.layout.eddy_motion, sep="\t", keep_default_na=False, na_values=["n/a"])
    e = pre.eddy
    title = (f"eddy currents and motion per volume (model {e['eddy_model']}, phase encoding {e['eddy_pe_axis']})\n"
             f"largest: displacement {e['eddy_max_disp_mm']:.2f} mm, eddy currents {e['eddy_max_ec_disp_mm']:.2f} mm, "
             f"rotation {e['eddy_max_rot_deg']:.2f}°; volumes with outlier slices: {e['eddy_outlier_volumes'] or 'none'}")

    def draw(fig, spec):
        ax = fig.add_subplot(spec)
        plot_parameters(table, ax)
        ax.set_title("")
        ax.set_title(title, fontsize=12, loc="left")
        pos, h = ax.get_position(), fig.get_figheight()   # room for the volume axis below, the legend right
        left = 0.035  # room for the y-axis label at the figure's edge
        ax.set_position([pos.x0 + left, pos.y0 + 0.45 / h, pos.width * 0.8 - left, pos.height - 0.45 / h])
        ax.legend(fontsize=10, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
        return [ax]

    return ((QC_ROW_IN, draw),)
