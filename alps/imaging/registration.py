"""Registration of a subject's FA map to the MNI152 2009a template (ANTs via antspyx).

Default (``kind='affine'``): one ``antsRegistration`` call — centre-of-mass initialisation, a
rigid stage (shrink 6) and a **7-dof similarity** stage (rotation, translation, isotropic
scale; shrink 4/2) — of the subject's FA (moving; brain mask eroded by 4 mm) to the template's
**white-matter probability map** (fixed, 2 mm), with the **global-correlation (GC)** metric
evaluated at **every template-grid point inside the template brain mask** dilated by 4 mm
(``metric_mask``), each point moved by a seeded random offset within its voxel (ITK "Regular"
sampling at 100 %, ``sampling_strategy='regular'``). FA and WM probability share their main
contrast (bright white matter, dark grey matter and CSF).

Why this configuration. A fixed point set on the template grid makes the metric see the same
template points whatever the slab tilt (per-subject random sampling does not; the jitter is the
same for every subject because it is seeded); dropping shear and anisotropic scale (12 → 7 dof)
removes the poorly constrained directions that tilted, partially covered slabs pull
differently; GC was the most consistent metric; restricting the metric to the brain drops the
~75 % of template points that are background. The regular point set is built once per level
from the in-mask points, whereas ITK's ``'dense'`` metric (voxel centres, no jitter) walks the
whole template grid at every iteration and skips the masked points; it is twice as slow and
measured slightly *less* accurate and consistent (below). ``benchmarks/bench_registration.py``
(8 simulated subjects with a known pose; the five tilted Toshiba series of one head, whose ROI
centres and rotations are compared in one world frame through the series' true motion;
``results/bench/registration.csv``):

==============================================  ======  ===========  ===============  =======
configuration                                   time    sim. centre  Toshiba centres  Toshiba
                                                (sim.)  error (max)  RMS / max pair   rot max
==============================================  ======  ===========  ===============  =======
**default**: brain mask, regular, 100 / 100+20  1.1 s   0.17 mm      0.44 / 1.40 mm   1.0°
dense sampling (the previous default)           2.5 s   0.19 mm      0.51 / 1.39 mm   1.5°
first: whole grid, dense, 200+100 / 300+150+50  6.6 s   0.22 mm      0.56 / 1.53 mm   1.0°
regular sampling at 50 %                        1.0 s   0.25 mm      0.49 / 1.36 mm   2.9°
30 iterations at shrink 2                       1.5 s   0.16 mm      0.44 / 1.38 mm   0.8°
FA mask eroded 5 mm instead of 4                1.2 s   0.17 mm      0.46 / 1.46 mm   1.3°
dense, FA mask eroded 5 mm                      2.5 s   0.19 mm      2.84 / 8.07 mm   3.1°
last level shrink 4                             0.6 s   0.28 mm      1.49 / 4.84 mm   3.7°
==============================================  ======  ===========  ===============  =======

The default was chosen on these geometric figures (error against a known pose, consistency of
one head across tilts), not on the ALPS spread of the one Toshiba head, which is no guide: for
the eight rows above the mean template-axis ALPS spreads 0.104 / 0.107 / 0.103 / 0.082 / 0.109
/ 0.115 / 0.109 / 0.123 (2.5 mm spheres), 0.066 / 0.050 / 0.076 / 0.040 / 0.067 / 0.078 / 0.055
/ 0.064 (5 mm) and 0.073 / 0.050 / 0.071 / 0.063 / 0.072 / 0.072 / 0.088 / 0.021 (JHU labels,
trilinear) — the lowest JHU spread comes with the least consistent ROI placement. Dense
sampling also fell into a wrong optimum on one tilted series (8 mm off) when the FA mask was
eroded by 5 mm instead of 4 (two 3 mm voxels instead of one); the regular point set did not. An earlier Mattes-MI, 20 % random sampling,
rigid → 12-dof configuration gave 1.5 / 3.9 mm and 5.4°.

How much of the ALPS spread across the Toshiba tilts is registration: giving all five series one
registration carried over by their true motion (``benchmarks/real_data.py --reuse DIR --oracle``)
leaves 0.080–0.091 of the 0.104 (mean ALPS, 2.5 mm spheres) and 0.051–0.059 of the 0.066 at
5 mm. The noise of these scans alone spreads five measurements by 0.071 and 0.033 on average
(:mod:`alps.imaging.noise`, leverage-adjusted wild bootstrap; ``--bootstrap``): at 2.5 mm most of the
spread is noise, at 5 mm the series also differ systematically (grid, distortion), not between
registrations.
``kind='syn'`` adds ANTs SyN (CC) after the same linear stages; ``kind='rigid'`` is rigid only.

Determinism: the ANTs random seed is fixed (``seed``) and ITK runs single-threaded by default
(``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``, set before ``ants`` is imported), so repeated runs
and runs with different ``n_jobs`` give identical transforms (the seed fixes the jittered
points of the default sampling). ITK's console warnings (e.g. "collected only zero points" for
template regions outside a partial-coverage slab) are captured, not printed; the last lines are
kept in the error message when ``antsRegistration`` fails.

Coordinate conventions (the part that is easy to get wrong)
------------------------------------------------------------
ANTs/ITK work in **LPS** physical space; nibabel and this package in **RAS**. With
``F = diag(-1, -1, 1)``, a point ``p_ras = F p_lps`` and an affine map ``M_lps`` becomes
``M_ras = F M_lps F`` (4x4 with ``F`` padded by 1). ANTs' forward transform of
``registration(fixed=template, moving=subject)`` maps **template points to subject points**
(it is what resampling the subject onto the template grid needs); hence
:attr:`Registration.template_to_subject` is that map in RAS and
:attr:`Registration.subject_to_template` its inverse. The rotation used to put tensors in
template axes is the polar factor of ``subject_to_template[:3, :3]``.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from . import template as tpl
from .ants import (LPS, SCRATCH_PREFIX, RegistrationError, ants_module, ants_points, ants_to_nib, lps_to_ras,
                   make_scratch, nib_to_ants, parseable, ras_to_lps, read_ants_affine, run_linear,
                   write_ants_affine)
from .coverage import fov_in_template

__all__ = ["Registration", "RegistrationError", "register", "moving_image", "registration_metrics", "check_metrics",
           "load_registration", "registration_info", "fixed_image", "metric_mask_image", "KINDS",
           "LINEAR_STAGES", "MIN_CORRELATION", "MIN_DICE", "MIN_COVERAGE", "TEMPLATE_SPACE", "TRANSFORM_ROLES",
           # the coordinate conversions of alps.imaging.ants, part of this module's interface
           "LPS", "lps_to_ras", "ras_to_lps", "read_ants_affine", "write_ants_affine", "nib_to_ants",
           "ants_to_nib", "SCRATCH_PREFIX"]

#: Registration kinds and the antsRegistration preset used for each.
KINDS = {"affine": "rigid (coarse) then 7-dof similarity, dense GC",
         "syn": "the 'affine' linear stages then ANTs SyN (CC)", "rigid": "rigid only, dense GC"}

#: Default QC thresholds (fail the subject below these; see :func:`registration_metrics`; why
#: MIN_COVERAGE, the least fraction of the template brain in the field of view: :mod:`.coverage`).
MIN_CORRELATION, MIN_DICE, MIN_COVERAGE = 0.35, 0.80, 0.5

TEMPLATE_SPACE = tpl.SPACE

#: roles of the kept transform files (``names`` of :func:`register`).
TRANSFORM_ROLES = ("affine", "warp", "inverse_warp")


# ----------------------------------------------------------------------------- result
@dataclass
class Registration:
    """Subject → template registration (transforms on disk + RAS 4x4)."""

    kind: str
    template_to_subject: np.ndarray          # 4x4 RAS, template mm -> subject mm (affine part)
    forward_transforms: list[str]            # ANTs list: resample subject onto template grid
    inverse_transforms: list[str]            # ANTs list: resample template onto subject grid
    inverse_invert: list[bool] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    @property
    def subject_to_template(self) -> np.ndarray:
        return np.linalg.inv(self.template_to_subject)

    @property
    def rotation(self) -> np.ndarray:
        """Rotation (polar factor) of the subject → template affine: tensors to template axes."""
        from .tensor import polar_rotation

        return polar_rotation(self.subject_to_template[:3, :3])

    # --- point mapping -------------------------------------------------------------------
    def points_to_template(self, xyz_subject) -> np.ndarray:
        """Map subject world points (RAS mm, (N, 3)) to template world points."""
        xyz = np.asarray(xyz_subject, float).reshape(-1, 3)
        if self.kind != "syn":
            m = self.subject_to_template
            return xyz @ m[:3, :3].T + m[:3, 3]
        return ants_points(xyz, self.inverse_transforms, self.inverse_invert)

    def points_to_subject(self, xyz_template) -> np.ndarray:
        """Map template world points (RAS mm) to subject world points."""
        xyz = np.asarray(xyz_template, float).reshape(-1, 3)
        if self.kind != "syn":
            m = self.template_to_subject
            return xyz @ m[:3, :3].T + m[:3, 3]
        return ants_points(xyz, self.forward_transforms, [False] * len(self.forward_transforms))

    # --- image mapping -------------------------------------------------------------------
    def to_template(self, img, *, reference=None, interpolator="linear", threads=1) -> nib.Nifti1Image:
        """Resample a subject-space image onto the template grid (default 2 mm MNI)."""
        ants = ants_module(threads)
        ref = reference if reference is not None else tpl.load("wm", resolution=2)
        with parseable(self.forward_transforms) as fwd:
            out = ants.apply_transforms(nib_to_ants(ref), nib_to_ants(img), fwd, interpolator=interpolator)
        return ants_to_nib(out)

    def to_subject(self, img, reference, *, interpolator="linear", threads=1) -> nib.Nifti1Image:
        """Resample a template-space image onto a subject grid ``reference``."""
        ants = ants_module(threads)
        with parseable(self.inverse_transforms) as inv:
            out = ants.apply_transforms(nib_to_ants(reference), nib_to_ants(img), inv,
                                        whichtoinvert=self.inverse_invert, interpolator=interpolator)
        return ants_to_nib(out)


def fixed_image(resolution: int = 2) -> nib.Nifti1Image:
    """The registration target: MNI152 2009a white-matter probability map."""
    return tpl.load("wm", resolution=resolution)


#: Linear stages of the default registration: (transform, ((iterations, shrink, sigma_vox), ...)).
LINEAR_STAGES = {
    "affine": (("Rigid", ((100, 6, 3),)),
               ("Similarity", ((100, 4, 2), (20, 2, 1)))),
    "rigid": (("Rigid", ((100, 6, 3), (100, 4, 2), (20, 2, 1))),),
}

#: the metric mask: template brain mask dilated by this many millimetres.
METRIC_MASK_DILATE_MM = 4.0


def metric_mask_image(resolution: int = 2, dilate_mm: float = METRIC_MASK_DILATE_MM) -> nib.Nifti1Image:
    """Template brain mask dilated by ``dilate_mm`` (uint8, on the template grid): the points
    where the registration metric is evaluated."""
    data, affine = _metric_mask(int(resolution), float(dilate_mm))
    return nib.Nifti1Image(data.copy(), affine.copy())


@functools.lru_cache(maxsize=4)
def _metric_mask(resolution: int, dilate_mm: float):
    from scipy import ndimage as ndi

    m = tpl.load("mask", resolution=resolution)
    iters = int(round(dilate_mm / resolution))
    data = m.get_fdata() > 0.5
    if iters > 0:
        data = ndi.binary_dilation(data, iterations=iters)
    return data.astype(np.uint8), m.affine


def moving_image(fa_img, mask=None, *, erode_mm: float = 4.0) -> nib.Nifti1Image:
    """The image :func:`register` moves: the FA, 0 outside the brain mask eroded by ``erode_mm`` (the
    median-otsu rim's noisy, high FA pulls the fit; not eroded when that would keep < 30 % of the mask)."""
    from scipy import ndimage as ndi

    fa = np.asarray(fa_img.get_fdata(), np.float32)
    if mask is None:
        return nib.Nifti1Image(fa, fa_img.affine)
    reg_mask = np.asarray(mask, bool)
    n_it = int(round(erode_mm / float(np.linalg.norm(np.asarray(fa_img.affine)[:3, :3], axis=0).mean())))
    eroded = ndi.binary_erosion(reg_mask, iterations=n_it) if erode_mm > 0 and n_it > 0 else reg_mask
    reg_mask = eroded if eroded.sum() > 0.3 * reg_mask.sum() else reg_mask
    return nib.Nifti1Image(np.where(reg_mask, fa, 0).astype(np.float32), fa_img.affine)


def register(fa_img, mask=None, *, kind: str = "affine", out_dir=None, prefix: str = "reg_", names=None,
             seed: int = 20260505, threads: int = 1, resolution: int = 2,
             min_correlation: float = MIN_CORRELATION, min_dice: float = MIN_DICE,
             check: bool = True, erode_mm: float = 4.0, sampling: float = 1.0, metric: str = "GC",
             stages=None, metric_mask: bool = True, sampling_strategy: str = "regular",
             scratch_owner: str | None = None) -> Registration:
    """Register a subject FA map to the MNI WM-probability template.

    Parameters
    ----------
    fa_img : nibabel image (3D FA)
    mask : bool array on the FA grid, optional (brain mask; FA outside is set to 0)
    kind : 'affine' (default: rigid then 7-dof similarity, see :data:`LINEAR_STAGES`), 'syn'
        (the same linear start, then ANTs SyN) or 'rigid'
    out_dir : directory where the ANTs transform files are kept (default: a temp dir); ANTs'
        scratch files go to a ``.alps-scratch-[<scratch_owner>.]ants-*`` directory inside it,
        removed afterwards (in the system temp dir instead when its path holds ``[``, ``]`` or
        ``,``, see :func:`alps.imaging.ants.scratch_parent`)
    scratch_owner : the scan key that owns the scratch directory (:func:`make_scratch`), so
        that only a later run of that scan removes it when this one is killed
    prefix : file-name prefix of the transforms in ``out_dir`` (followed by ANTs' own names)
    names : ``{role: file name}`` for the roles of :data:`TRANSFORM_ROLES` (the affine ``.mat``,
        SyN's warp and inverse warp); overrides ``prefix`` (the pipeline's BIDS ``_xfm`` names,
        :mod:`alps.pipeline.layout`)
    seed : ANTs random seed: fixes the jitter of ``'regular'`` sampling (the same template points
        for every subject) and the points of ``'random'``; not used by ``'dense'``
    threads : ITK threads (1 = deterministic)
    check : raise :class:`RegistrationError` when the QC metrics fall below the thresholds
    erode_mm : the brain mask is eroded by this much before masking the FA (the dilated
        median-otsu rim has noisy, spuriously high FA that pulls the fit)
    sampling : fraction of template-grid points used by the metric (default ``1.0``: all of them)
    sampling_strategy : ``'regular'`` (default: every ``1/sampling``-th template-grid point inside
        the metric mask, each moved by a seeded random offset within its voxel — the same points
        for every subject, whatever its slab tilt), ``'dense'`` (every grid point at its centre,
        no jitter; ``sampling`` must be 1) or ``'random'`` (seeded random points)
    metric : 'GC' (global correlation, default: the most consistent across slab tilts on the real
        Toshiba series) or 'MI' (Mattes mutual information, 32 bins)
    stages : override the linear stages ``((transform, ((iterations, shrink, sigma_vox), ...)), ...)``
    metric_mask : evaluate the metric only inside the template brain mask dilated by
        :data:`METRIC_MASK_DILATE_MM` (default; ``False`` = the whole template grid)

    Returns
    -------
    Registration (with ``metrics``: ``reg_corr``, ``reg_dice``, ``reg_coverage`` of
    :func:`registration_metrics`, on the template brain inside the field of view).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown registration {kind!r}; choose one of {sorted(KINDS)}")
    ants = ants_module(threads)
    ants.config._random_seed = int(seed)  # also read by ants.registration (SyN) -> --random-seed
    moving_nib = moving_image(fa_img, mask, erode_mm=erode_mm)
    fixed_nib = fixed_image(resolution)
    fixed = nib_to_ants(fixed_nib)
    moving = nib_to_ants(moving_nib)
    if stages is None:
        stages = LINEAR_STAGES["rigid" if kind == "rigid" else "affine"]
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="alps-xfm-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = make_scratch(out_dir, "ants", scratch_owner)
    try:
        fmask = nib_to_ants(metric_mask_image(resolution)) if metric_mask else None
        lin = run_linear(fixed, moving, os.path.join(tmp, "x_"), stages=stages, metric=metric,
                          sampling=sampling, seed=seed, fixed_mask=fmask,
                          strategy=sampling_strategy)
        if kind == "syn":  # ANTs SyN (CC) from the linear result
            reg = ants.registration(fixed=fixed, moving=moving, type_of_transform="SyNOnly",
                                    initial_transform=lin, reg_iterations=(40, 20, 0),
                                    outprefix=os.path.join(tmp, "s_"), verbose=False)
            fwd_files, inv_files = reg["fwdtransforms"], reg["invtransforms"]
        else:
            fwd_files, inv_files = [lin], [lin]
        fwd = [str(_keep(f, out_dir, prefix, names)) for f in fwd_files]
        inv = [str(_keep(f, out_dir, prefix, names)) for f in inv_files]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    affine_files = [f for f in fwd if f.endswith(".mat")]
    if len(affine_files) != 1:
        raise RegistrationError(f"expected one affine transform from ANTs, got {fwd}")
    t2s = lps_to_ras(read_ants_affine(affine_files[0]))
    inv_invert = [f.endswith(".mat") for f in inv]
    result = Registration(kind=kind, template_to_subject=t2s, forward_transforms=fwd,
                          inverse_transforms=inv, inverse_invert=inv_invert)
    result.metrics = registration_metrics(result, moving_nib, mask, fixed_nib, threads=threads)
    if check:
        check_metrics(result.metrics, min_correlation=min_correlation, min_dice=min_dice)
    return result


def _role(ants_name: str) -> str:
    if ants_name.endswith(".mat"):
        return "affine"
    return "inverse_warp" if "InverseWarp" in ants_name else "warp"


def _keep(path, out_dir: Path, prefix: str, names=None) -> Path:
    """Copy an ANTs output file into ``out_dir`` (atomically) under its kept name."""
    from .. import atomic

    name = Path(path).name
    name = name[2:] if name[:2] in ("x_", "r_", "s_") else name
    dst = out_dir / (names[_role(name)] if names else f"{prefix}{name}")
    return atomic.write_with(dst, lambda tmp: shutil.copyfile(path, tmp))


def registration_metrics(reg: Registration, fa_img, mask, fixed_nib=None, *, threads=1) -> dict:
    """Quality of a registration on the template brain ``T`` inside the field of view ``F``
    (:func:`alps.imaging.coverage.fov_in_template`), ``W`` the warped native brain mask (inside
    ``F``): ``reg_coverage = |T∩F| / |T|``; ``reg_corr``, the Pearson correlation of warped FA and
    template WM over ``T∩F``; ``reg_dice = 2 |W∩T| / (|W| + |T∩F|)`` (NaN without ``mask``). A
    whole-brain field of view (``F ⊇ T``) gives the whole-brain values; a partial-brain slab is
    not penalised for the brain it did not acquire (:mod:`alps.imaging.coverage`)."""
    fixed_nib = fixed_nib if fixed_nib is not None else fixed_image(2)
    warped = reg.to_template(fa_img, reference=fixed_nib, threads=threads).get_fdata()
    wm = fixed_nib.get_fdata()
    tmask = tpl.load("mask", resolution=2)
    if tmask.shape != wm.shape:
        from nilearn.image import resample_to_img

        tmask = resample_to_img(tmask, fixed_nib, interpolation="nearest")
    brain = tmask.get_fdata() > 0.5
    tm = brain & fov_in_template(reg, fa_img.shape, fa_img.affine, fixed_nib, threads=threads)
    a, b = warped[tm], wm[tm]
    corr = float(np.corrcoef(a, b)[0, 1]) if a.size > 1 and a.std() > 0 and b.std() > 0 else 0.0
    out = {"reg_corr": corr, "reg_coverage": float(tm.sum() / max(brain.sum(), 1))}
    if mask is not None:
        mimg = nib.Nifti1Image(np.asarray(mask, np.float32), fa_img.affine)
        wmask = reg.to_template(mimg, reference=fixed_nib, interpolator="nearestNeighbor",
                                threads=threads).get_fdata() > 0.5
        inter = np.logical_and(wmask, tm).sum()
        out["reg_dice"] = float(2 * inter / max(wmask.sum() + tm.sum(), 1))
    else:
        out["reg_dice"] = float("nan")
    return out


def check_metrics(metrics: dict, *, min_correlation=MIN_CORRELATION, min_dice=MIN_DICE,
                  min_coverage=MIN_COVERAGE) -> None:
    """Raise :class:`RegistrationError` when a metric is below its threshold, naming the option
    that sets it and, for a partial field of view, the part of the template it was scored on."""
    corr, dice = metrics.get("reg_corr", 0), metrics.get("reg_dice", float("nan"))
    cov = metrics.get("reg_coverage", 1.0)
    problems = [] if corr >= min_correlation else [
        f"FA-WM correlation {corr:.3f} < {min_correlation:g} (--min-reg-corr)"]
    if np.isfinite(dice) and not dice >= min_dice:
        problems.append(f"brain-mask Dice {dice:.3f} < {min_dice:g} (--min-reg-dice)")
    if problems and cov < 0.995:
        problems[-1] += f", on the {100 * cov:.1f} % of the template brain inside the field of view"
    if not cov >= min_coverage:
        problems.append(f"the field of view holds {100 * cov:.1f} % of the template brain < {100 * min_coverage:g} % "
                        "(--min-reg-coverage): too thin a slab to check its registration")
    if problems:
        raise RegistrationError("registration QC failed: " + "; ".join(problems))


def load_registration(info: dict) -> Registration:
    """Rebuild a :class:`Registration` from the dict stored in the preprocess JSON."""
    return Registration(kind=info["kind"], template_to_subject=np.asarray(info["template_to_subject"], float),
                        forward_transforms=list(info["forward_transforms"]),
                        inverse_transforms=list(info["inverse_transforms"]),
                        inverse_invert=list(info["inverse_invert"]), metrics=dict(info.get("metrics", {})))


def registration_info(reg: Registration, relative_to=None) -> dict:
    """JSON-serialisable description (transform paths relative to ``relative_to`` if given)."""
    def rel(p):
        return os.path.relpath(p, relative_to) if relative_to else str(p)

    return {
        "kind": reg.kind,
        "template": TEMPLATE_SPACE,
        "template_to_subject": np.round(reg.template_to_subject, 10).tolist(),
        "subject_to_template": np.round(reg.subject_to_template, 10).tolist(),
        "rotation": np.round(reg.rotation, 10).tolist(),
        "forward_transforms": [rel(p) for p in reg.forward_transforms],
        "inverse_transforms": [rel(p) for p in reg.inverse_transforms],
        "inverse_invert": list(reg.inverse_invert),
        "metrics": dict(reg.metrics),
    }
