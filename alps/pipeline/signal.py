"""The corrected signal stage 1 fitted, kept as a derivative so that the standard errors bootstrap it.

A stage-1 step that resamples the series (eddy-current and motion correction, susceptibility
correction) changes the signal the tensor is fitted on; the wild bootstrap of the standard errors
(:mod:`alps.pipeline.uncertainty`) must resample that signal, not the input file. :func:`keep`
writes it once, after the last such step — ``<key>_desc-preproc_dwi.nii.gz`` (float32, the volumes
of the tensor model) with its ``.bval``/``.bvec`` (FSL convention, the b-vectors as corrected) —
and returns the :class:`~alps.pipeline.contract.PreparedDWI` that points at it; the stage-1 record
keeps ``{"steps", "dwi", "bval", "bvec"}`` under ``"signal"`` and :func:`prepared` rebuilds the
same object from it when stage 1 is reused.

The b-values and b-vectors are returned as read back from the files (``%g``, ``%.6f``): the fit of a fresh run and the bootstrap of a
reused one see the same numbers, and the tables stay identical between the two.
"""
from __future__ import annotations

import numpy as np

__all__ = ["keep", "prepared", "se_caveat", "SIGNAL_FILES"]

#: the layout roles (:class:`alps.pipeline.layout.ScanLayout`) of the kept signal's files.
SIGNAL_FILES = ("preproc_dwi", "preproc_bval", "preproc_bvec")


def keep(layout, data, bvals, bvecs, affine, *, steps, b0_threshold):
    """Write the corrected series of the steps ``steps`` (names, e.g. ``("eddy",)``); returns
    ``(prepared DWI, b-values and b-vectors as read back, record)`` (module docstring)."""
    import nibabel as nib

    from .. import atomic
    from ..io.gradients import bvals_text, bvecs_text, read_bvals_bvecs
    from .contract import PreparedDWI

    data = np.asarray(data, np.float32)
    img = nib.Nifti1Image(data, np.asarray(affine, float))
    img.header.set_xyzt_units("mm")
    layout.dir.mkdir(parents=True, exist_ok=True)
    atomic.save_nifti(layout.preproc_dwi, img)
    atomic.write_text(layout.preproc_bval, bvals_text(bvals))
    atomic.write_text(layout.preproc_bvec, bvecs_text(bvecs))
    bvals, bvecs = read_bvals_bvecs(layout.preproc_bval, layout.preproc_bvec, n_volumes=data.shape[3],
                                    b0_threshold=b0_threshold)
    dwi = PreparedDWI(layout.preproc_dwi, np.arange(data.shape[3]), bvals, bvecs, np.asarray(affine, float),
                      tuple(data.shape[:3]))
    record = {"steps": list(steps), **{role.removeprefix("preproc_"): getattr(layout, role).name
                                       for role in SIGNAL_FILES}}
    return dwi, bvals, bvecs, record


def prepared(layout, record: dict, *, b0_threshold):
    """The :class:`~alps.pipeline.contract.PreparedDWI` of a kept signal from the stage-1 record's
    ``"signal"`` entry (a reused stage 1)."""
    from ..io.dwi import load_image
    from ..io.gradients import read_bvals_bvecs
    from .contract import PreparedDWI

    path = layout.dir / record["dwi"]
    img = load_image(path)
    bvals, bvecs = read_bvals_bvecs(layout.dir / record["bval"], layout.dir / record["bvec"], n_volumes=img.shape[3],
                                    b0_threshold=b0_threshold)
    return PreparedDWI(path, np.arange(img.shape[3]), bvals, bvecs, np.asarray(img.affine, float),
                       tuple(img.shape[:3]))


def se_caveat(steps) -> str:
    """``se_note`` of SEs bootstrapped on a kept corrected signal: what makes them slightly low."""
    replaced = " and replaced outlier slices have small residuals" if "eddy" in steps else ""
    return ("bootstrap of the signal corrected by " + "+".join(steps) + " (desc-preproc_dwi): the resampling "
            f"at sub-voxel shifts smooths the noise{replaced}, so the SEs may be up to ~10 % low")
