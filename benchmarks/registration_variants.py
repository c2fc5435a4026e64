"""Registration variants evaluated by ``benchmarks/placement.py --registration NAME``.

Each variant maps ``(fa_img, mask, *, fit, scan, real)`` to the subject's template → subject
4x4 RAS affine. ``rerun`` repeats the default (:func:`alps.imaging.registration.register`) and
must give the saved matrix back; the others change one thing each:

* ``fovmask`` — the metric ignores template points that map outside the acquired slab (a
  moving-image mask: the native grid less one voxel at each face), so a tilted slab's missing
  cortex no longer pulls the fit;
* ``affine12`` — a full 12-parameter affine after the similarity stage;
* ``fine`` — one more level at full template resolution (shrink 1, no smoothing);
* ``csf`` — a second channel: the subject's MD against the template CSF fraction (ventricles);
* ``multistart`` — the default run from 7 starts (centre of mass, and ±10° about each axis),
  averaged (the mean of the 7 affines);
* ``t1w`` — through the subject's own T1w (mean b0 → T1w rigid, Mattes MI; T1w → MNI T1
  rigid + similarity, GC), where the dataset has one (Philips, XA30).
Combinations join names with ``+`` (e.g. ``fovmask+csf``); ``fine20``/``fine5`` (20/5 iterations
at full resolution), ``sharp`` (one more level at shrink 2 without smoothing) and ``fs10``/``fs25``/
``fs50`` (a separate full-resolution Similarity stage on 10/25/50 % of the points) are cheaper
tries at ``fine``.

Measured (``benchmarks/placement.py WORK OUT --registration NAME --bootstrap 100 --heads
toshiba_tilts,canon_tilts,canon_turned``; ROI-centre RMS in each head's reference frame, mm —
Toshiba tilts / Canon tilts / Canon head-turned; mean-index spread; CPU seconds beside the
default's 1.4–1.9 on the contended reference machine):

=================  ==================  ===================  ==========
variant            centre RMS (mm)     mean-index spread    extra CPU
=================  ==================  ===================  ==========
default            0.44 / 1.60 / 1.54  0.104 / 0.184 / 0.365
fine               0.40 / 0.81 / 1.49  0.113 / 0.178 / 0.347  +2.5 s
fine20             0.42 / 0.82 / 1.50  0.113 / 0.183 / 0.341  +4.5 s
fine5              0.37 / 1.52 / 1.46  0.112 / 0.191 / 0.340  +1.3 s
affine12           0.44 / 1.38 / 0.73  0.082 / 0.195 / 0.210
fine+affine12      0.40 / 1.43 / 0.92  0.092 / 0.222 / 0.171
multistart         0.46 / 1.39 / 1.50  0.097 / 0.170 / 0.363  ×7
sharp              0.55 / 1.50 / 1.23  0.102 / 0.139 / 0.287  +0.3–1.1 s
fs25               0.70 / 1.71 / 2.12  0.113 / 0.277 / 0.154  +0.5 s
csf                1.17 / 2.08 / 1.92  0.148 / 0.260 / 0.346
fovmask            3.38 / 2.48 / 10.8  (fails)
=================  ==================  ===================  ==========

Only a full-resolution level run to convergence (``fine``: 10 iterations, 100 % of the points)
halves the Canon head's centre RMS (the SAG and ALL series from 2.8 and 3.2 mm to 1.3 and 1.7 mm
off the ortho one) without hurting the Toshiba head, and no variant makes the index spreads
consistently smaller: the default is unchanged (``fine`` costs more than the per-scan time budget
leaves, for no gain in the index).
"""
from __future__ import annotations

import os
import shutil
import tempfile

import nibabel as nib
import numpy as np

from alps.imaging import registration as R
from alps.imaging import template as tpl
from alps.imaging.ants import lps_to_ras, nib_to_ants, read_ants_affine, run_linear

SEED = 20260505
T1W = {"philips_ingenia_elition_2mm/2201_WIP_DTI_S2MB2": "philips_ingenia_elition_2mm/1301_WIP_ADNI_Sag3D_MPRAGE",
       "siemens_prisma_xa30_pepolar/10_DWI_dir80_PA": "siemens_prisma_xa30_pepolar/5_anat-T1w_acq-tfl",
       "siemens_prisma_xa30_pepolar/17_DWI_dir80_AP": "siemens_prisma_xa30_pepolar/5_anat-T1w_acq-tfl"}


def eroded_fa(fa_img, mask, erode_mm=4.0):
    from scipy import ndimage as ndi

    fa = np.asarray(fa_img.get_fdata(), np.float32)
    vox = float(np.linalg.norm(fa_img.affine[:3, :3], axis=0).mean())
    n = int(round(erode_mm / vox))
    m = np.asarray(mask, bool)
    er = ndi.binary_erosion(m, iterations=n) if n > 0 else m
    if er.sum() > 0.3 * m.sum():
        m = er
    return nib.Nifti1Image(np.where(m, fa, 0).astype(np.float32), fa_img.affine)


def fov_mask(img, margin: int = 1):
    d = np.zeros(img.shape[:3], np.float32)
    d[margin:-margin, margin:-margin, margin:-margin] = 1
    return nib.Nifti1Image(d, img.affine)


def csf_template():
    mask = tpl.load("mask", resolution=2)
    gm, wm = tpl.load("gm", resolution=2), tpl.load("wm", resolution=2)
    m = mask.get_fdata() > 0.5
    csf = np.where(m, np.clip(1 - gm.get_fdata() - wm.get_fdata(), 0, 1), 0)
    return nib.Nifti1Image(csf.astype(np.float32), mask.affine)


def linear(fixed_img, moving_img, *, stages=None, fixed_mask=True, moving_mask=None, channels=(), init=1,
           metric="GC", strategy="regular") -> np.ndarray:
    """One antsRegistration run as :func:`alps.imaging.registration.register` does it, with the
    extras; returns the template → subject RAS 4x4."""
    tmp = tempfile.mkdtemp(prefix="alps-variant-")
    try:
        fm = nib_to_ants(R.metric_mask_image(2)) if fixed_mask is True else fixed_mask
        mm = nib_to_ants(moving_mask) if moving_mask is not None else None
        ch = [(m, nib_to_ants(f), nib_to_ants(mv), w) for m, f, mv, w in channels]
        f = run_linear(nib_to_ants(fixed_img), nib_to_ants(moving_img), os.path.join(tmp, "x_"),
                       stages=stages or R.LINEAR_STAGES["affine"], metric=metric, sampling=1.0, seed=SEED,
                       fixed_mask=fm, strategy=strategy, moving_mask=mm, channels=ch, init=init)
        return lps_to_ras(read_ants_affine(f))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stages(parts):
    stages = list(R.LINEAR_STAGES["affine"])
    if "fine" in parts or "fine20" in parts:
        t, lv = stages[-1]
        stages[-1] = (t, tuple(lv) + ((20 if "fine20" in parts else 10, 1, 0),))
    if "sharp" in parts:  # one more level at shrink 2 without smoothing
        t, lv = stages[-1]
        stages[-1] = (t, tuple(lv) + ((20, 2, 0),))
    if "fine5" in parts:
        t, lv = stages[-1]
        stages[-1] = (t, tuple(lv) + ((5, 1, 0),))
    for frac in (10, 25, 50):
        if f"fs{frac}" in parts:  # a separate full-resolution stage with this % of the points
            stages.append(("Similarity", ((10, 1, 0),), frac / 100))
    if "affine12" in parts:
        stages.append(("Affine", ((50, 2, 1),)))
    return tuple(stages)


def _init_file(t2s_ras, tmpdir):
    from alps.imaging.ants import ras_to_lps, write_ants_affine

    return str(write_ants_affine(ras_to_lps(t2s_ras), os.path.join(tmpdir, "init.mat")))


def _rot(axis, deg):
    from scipy.spatial.transform import Rotation

    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(np.radians(deg) * np.eye(3)[axis]).as_matrix()
    return m


def variant(name: str):
    parts = set(name.split("+"))
    unknown = parts - {"rerun", "fovmask", "affine12", "fine", "fine20", "csf", "multistart", "t1w", "fs10", "fs25", "fs50", "sharp", "fine5"}
    if unknown:
        raise KeyError(f"unknown variant parts {sorted(unknown)}")

    def run(fa_img, mask, *, fit, scan, real):
        fixed = R.fixed_image(2)
        moving = eroded_fa(fa_img, mask)
        kw = dict(stages=_stages(parts))
        if "fovmask" in parts:
            kw["moving_mask"] = fov_mask(fa_img)
        if "csf" in parts:
            lay = fit[5]
            md = np.asarray(nib.load(str(lay.md)).dataobj, np.float32)
            md = np.where(mask, np.clip(md / 3e-3, 0, 1), 0).astype(np.float32)
            kw["channels"] = [("GC", csf_template(), nib.Nifti1Image(md, fa_img.affine), 0.5)]
        if "t1w" in parts:
            return _through_t1w(fa_img, mask, scan, real, kw)
        if "multistart" in parts:
            t0 = linear(fixed, moving, **kw)
            mats = [t0]
            tmp = tempfile.mkdtemp(prefix="alps-ms-")
            try:
                c = np.array([0.0, -18.0, 18.0])  # rotate about a point near the brain centre
                for ax in range(3):
                    for deg in (-10.0, 10.0):
                        shift = np.eye(4)
                        shift[:3, 3] = c
                        start = t0 @ shift @ _rot(ax, deg) @ np.linalg.inv(shift)
                        mats.append(linear(fixed, moving, init=_init_file(start, tmp), **kw))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return np.mean(mats, axis=0)
        return linear(fixed, moving, **kw)

    return run


def _through_t1w(fa_img, mask, scan, real, kw):
    """DWI → T1w (rigid, mean b0 vs T1w, MI) composed with T1w → MNI (rigid + similarity, T1 vs
    MNI T1, GC, template brain mask)."""
    if scan not in T1W:
        raise KeyError(f"{scan}: no T1w")
    t1 = nib.load(str(real / (T1W[scan] + ".nii.gz")))
    t1 = nib.Nifti1Image(np.asarray(t1.dataobj, np.float32), t1.affine)
    img = nib.load(str(real / (scan + ".nii.gz")))
    bv = np.loadtxt(real / (scan + ".bval"))
    b0 = nib.Nifti1Image(np.asarray(img.dataobj, np.float32)[..., bv < 50].mean(-1), img.affine)
    mni_t1 = tpl.load("t1", resolution=2)
    # T1w (moving) to MNI T1 (fixed): template -> T1w
    t_mni_t1 = linear(mni_t1, t1, metric="MI")
    # b0 (moving) to T1w (fixed): T1w world -> b0 world
    rig = (("Rigid", ((200, 4, 2), (100, 2, 1), (50, 1, 0))),)
    t_t1_b0 = linear(t1, b0, stages=rig, fixed_mask=None, metric="MI")
    return t_t1_b0 @ t_mni_t1


class _Variants(dict):
    def __missing__(self, key):
        return variant(key)


VARIANTS = _Variants()
