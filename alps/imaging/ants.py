"""ANTs (antspyx) plumbing of the registration: LPS/RAS conversions, transform files, safe file
names for ANTs' command-line parser, scratch directories, captured ITK console output and the
``antsRegistration`` call of one linear registration.

Coordinate conventions: ANTs/ITK work in **LPS** physical space; nibabel and this package in
**RAS**. With ``F = diag(-1, -1, 1)``, a point ``p_ras = F p_lps`` and an affine map ``M_lps``
becomes ``M_ras = F M_lps F`` (4x4 with ``F`` padded by 1).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import nibabel as nib
import numpy as np

class RegistrationError(RuntimeError):
    """Registration failed or did not pass its quality thresholds."""


#: ANTs LPS <-> nibabel RAS flip.
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: ITK threads of every ANTs call of the package: one, so that registrations do not depend on the
#: machine or on ``n_jobs`` (with a fixed seed, repeated runs give identical transforms).
ITK_THREADS = 1
_ANTS_IMPORT = threading.Lock()


def ants_module(threads: int | None = None):
    """antspyx, imported with ITK's thread count fixed to :data:`ITK_THREADS`.

    The one place the package sets ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``: once per process,
    under a lock, just before antspyx is first imported (ITK reads it then; changing it later has
    no effect, and changing the environment while other threads run is not safe). ``threads`` is
    ignored (kept for the callers that still pass it). A program that imports antspyx itself
    before alps must set the variable to 1 first."""
    if "ants" not in sys.modules:
        with _ANTS_IMPORT:
            if "ants" not in sys.modules:
                os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(ITK_THREADS)
                import ants  # noqa: F401
    return sys.modules["ants"]


# ----------------------------------------------------------------------------- conversions
def nib_to_ants(img, *, threads=1):
    """nibabel 3D image → ANTsImage (float32), through the LPS conversion of the affine."""
    ants = ants_module(threads)
    data = np.asarray(img.get_fdata() if hasattr(img, "get_fdata") else img, np.float32)
    aff = LPS @ np.asarray(img.affine, float)
    lin = aff[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    direction = lin / spacing
    return ants.from_numpy(data, origin=aff[:3, 3].tolist(), spacing=spacing.tolist(),
                           direction=direction)


def ants_to_nib(aimg) -> nib.Nifti1Image:
    """ANTsImage (3D) → nibabel image in RAS."""
    direction = np.asarray(aimg.direction, float)
    spacing = np.asarray(aimg.spacing, float)
    aff = np.eye(4)
    aff[:3, :3] = direction * spacing
    aff[:3, 3] = aimg.origin
    aff = LPS @ aff
    img = nib.Nifti1Image(np.asarray(aimg.numpy(), np.float32), aff)
    img.header.set_xyzt_units("mm")
    return img


def read_ants_affine(path) -> np.ndarray:
    """4x4 matrix (LPS) of an ANTs/ITK ``.mat`` affine: ``y = A (x − c) + c + t``."""
    ants = ants_module(None)
    tx = ants.read_transform(str(path))
    p = np.asarray(tx.parameters, float)
    c = np.asarray(tx.fixed_parameters, float)
    a = p[:9].reshape(3, 3)
    t = p[9:12]
    m = np.eye(4)
    m[:3, :3] = a
    m[:3, 3] = t + c - a @ c
    return m


def write_ants_affine(matrix_lps, path) -> Path:
    """Write a 4x4 LPS matrix as an ITK ``AffineTransform_double_3_3`` ``.mat`` (centre 0)."""
    ants = ants_module(None)
    m = np.asarray(matrix_lps, float)
    tx = ants.create_ants_transform(transform_type="AffineTransform", precision="double", dimension=3,
                                    matrix=m[:3, :3], offset=m[:3, 3])
    ants.write_transform(tx, str(path))
    return Path(path)


def lps_to_ras(matrix_lps) -> np.ndarray:
    """``F M F`` with ``F = diag(-1, -1, 1, 1)``: an LPS point map expressed in RAS."""
    return LPS @ np.asarray(matrix_lps, float) @ LPS


ras_to_lps = lps_to_ras  # the conjugation is its own inverse


def ants_points(xyz_ras, transforms, invert):
    """Map RAS points ``(N, 3)`` through a list of ANTs transform files."""
    import pandas as pd

    ants = ants_module(None)
    lps = xyz_ras * np.array([-1.0, -1.0, 1.0])
    df = pd.DataFrame(lps, columns=["x", "y", "z"])
    with parseable(transforms) as files:
        out = ants.apply_transforms_to_points(3, df, files, whichtoinvert=list(invert))
    return out[["x", "y", "z"]].to_numpy(float) * np.array([-1.0, -1.0, 1.0])


#: name prefix of the scratch directories of ANTs runs (inside the output directory):
#: ``.alps-scratch-[<owner>.]<kind>-<random>`` (:func:`make_scratch`).
SCRATCH_PREFIX = ".alps-scratch-"

#: characters that ANTs' command-line parser reads as syntax inside a file name.
ANTS_SYNTAX = "[],"


def ants_unsafe(path) -> bool:
    """Does ``path`` hold a character that ANTs' command-line parser would misread?"""
    return any(c in str(path) for c in ANTS_SYNTAX)


@contextlib.contextmanager
def parseable(paths):
    """Yield ``paths`` as a list, with copies in a temporary directory for those whose names
    hold :data:`ANTS_SYNTAX` characters (ANTs would misread them, e.g. an output folder
    ``study [2024]``)."""
    paths = [str(p) for p in paths]
    bad = [i for i, p in enumerate(paths) if ants_unsafe(p)]
    if not bad:
        yield paths
        return
    tmp = tempfile.mkdtemp(prefix=SCRATCH_PREFIX + "xfm-")
    try:
        out = list(paths)
        for i in bad:
            out[i] = os.path.join(tmp, f"{i}_{Path(paths[i]).name.translate({ord(c): '_' for c in ANTS_SYNTAX})}")
            shutil.copyfile(paths[i], out[i])
        yield out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scratch_parent(directory):
    """Where ANTs' scratch files go: ``directory`` (beside the kept outputs, so that a killed run
    leaves them where the next run of the same scan removes them,
    :func:`alps.pipeline.records.clean_stale_temporaries`),
    or ``None`` (the system temp dir) when its path holds characters that ANTs' command-line
    parser reads as syntax (``[``, ``]``, ``,``)."""
    if directory is None or ants_unsafe(Path(directory).resolve()):
        return None
    return str(directory)


def scratch_prefix(kind: str, owner: str | None = None) -> str:
    """Name prefix of a scratch directory: ``.alps-scratch-<owner>.<kind>-`` (or
    ``.alps-scratch-<kind>-`` without an owner). The owner (a scan's key, which holds no ``.``) is
    what lets a later run of that scan, and only that scan, remove it when a killed run left it
    (:func:`alps.pipeline.records.clean_stale_temporaries`)."""
    if owner is not None and (not owner or "." in owner or "/" in owner):
        raise ValueError(f"scratch owner {owner!r}: must be a non-empty name without '.' or '/'")
    return f"{SCRATCH_PREFIX}{owner}.{kind}-" if owner else f"{SCRATCH_PREFIX}{kind}-"


def owns_scratch(name: str, owner: str) -> bool:
    """Is ``name`` a scratch directory made for ``owner`` (:func:`scratch_prefix`)?"""
    return bool(owner) and name.startswith(f"{SCRATCH_PREFIX}{owner}.")


def make_scratch(directory, kind: str, owner: str | None = None) -> str:
    """Make a new, uniquely named scratch directory (:func:`scratch_prefix`) in
    :func:`scratch_parent` of ``directory``; the caller removes it."""
    return tempfile.mkdtemp(prefix=scratch_prefix(kind, owner), dir=scratch_parent(directory))


@contextlib.contextmanager
def captured_stderr():
    """Redirect the process's C-level stderr (fd 2: ITK/ANTs console output) to a temporary file;
    yields a callable returning what was written so far."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lambda: (tmp.seek(0), tmp.read().decode("utf-8", "replace"))[1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


#: sampling strategies of the metric: name -> antsRegistration's word.
SAMPLING_STRATEGIES = {"regular": "Regular", "dense": "None", "random": "Random"}


def _metric_arg(metric, fixed_ptr, moving_ptr, weight, strategy, sampling) -> str:
    if metric == "MI":
        return f"MI[{fixed_ptr},{moving_ptr},{weight:g},32,{strategy},{min(float(sampling), 1.0)}]"
    if metric == "GC":
        return f"GC[{fixed_ptr},{moving_ptr},{weight:g},1,{strategy},{min(float(sampling), 1.0)}]"
    raise ValueError(f"unknown metric {metric!r}; choose 'MI' or 'GC'")


def _stage_args(transform, levels, fixed_ptr, moving_ptr, *, metric, sampling, step=0.1, mask_ptr=None,
                strategy="regular", moving_mask_ptr=None, extra=()):
    """antsRegistration arguments of one linear stage (metric on the fixed = template grid);
    ``extra``: further ``(metric, fixed_ptr, moving_ptr, weight)`` channels of the same stage."""
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {list(SAMPLING_STRATEGIES)}")
    if strategy == "dense" and sampling < 1:
        raise ValueError(f"dense sampling uses every point; got sampling={sampling} (use 'regular' or 'random')")
    strategy = SAMPLING_STRATEGIES[strategy]
    args = ["--metric", _metric_arg(metric, fixed_ptr, moving_ptr, 1, strategy, sampling)]
    for m, f, mv, weight in extra:
        args += ["--metric", _metric_arg(m, f, mv, weight, strategy, sampling)]
    its = "x".join(str(int(lv[0])) for lv in levels)
    shrink = "x".join(str(int(lv[1])) for lv in levels)
    sigma = "x".join(f"{float(lv[2]):g}" for lv in levels)
    args += ["--transform", f"{transform}[{step}]", "--convergence", f"[{its},1e-6,10]",
             "--shrink-factors", shrink, "--smoothing-sigmas", f"{sigma}vox"]
    if mask_ptr is not None or moving_mask_ptr is not None:
        args += ["--masks", f"[{mask_ptr or 'NA'},{moving_mask_ptr or 'NA'}]"]
    return args


def run_linear(fixed, moving, outprefix, *, stages, metric, sampling, seed, init=1, fixed_mask=None,
                strategy=None, moving_mask=None, channels=()):
    """One antsRegistration call: start from ``init`` (1 = centres of mass, 0 = image centres, or
    the path of a transform file), then ``stages``; the metric is evaluated only inside
    ``fixed_mask`` (an ANTsImage on the fixed grid) when given, and only at points that map
    inside ``moving_mask`` (an ANTsImage on the moving grid) when given, at the points of
    ``strategy`` (a key of :data:`SAMPLING_STRATEGIES`; default ``'dense'`` when ``sampling >= 1``,
    else ``'regular'``). ``channels``: further ``(metric, fixed, moving, weight)`` image pairs
    whose metrics are added to every stage's (weight 1 for the main pair)."""
    if strategy is None:
        strategy = "dense" if sampling >= 1 else "regular"
    ants = ants_module(None)
    from ants.internal import get_lib_fn, get_pointer_string

    fp, mp = get_pointer_string(fixed), get_pointer_string(moving)
    kp = get_pointer_string(fixed_mask) if fixed_mask is not None else None
    mkp = get_pointer_string(moving_mask) if moving_mask is not None else None
    extra = [(m, get_pointer_string(f), get_pointer_string(mv), float(w)) for m, f, mv, w in channels]
    start = str(init) if isinstance(init, (str, os.PathLike)) else f"[{fp},{mp},{int(init)}]"
    args = ["--dimensionality", "3", "--initial-moving-transform", start]
    for stage in stages:  # (transform, levels) or (transform, levels, this stage's sampling fraction)
        transform, levels = stage[0], stage[1]
        args += _stage_args(transform, levels, fp, mp, metric=metric,
                            sampling=stage[2] if len(stage) > 2 else sampling, mask_ptr=kp,
                            strategy=strategy, moving_mask_ptr=mkp, extra=extra)
    args += ["--output", str(outprefix), "--collapse-output-transforms", "1",
             "--random-seed", str(int(seed)), "--float", "1", "--write-composite-transform", "0"]
    with captured_stderr() as err:
        rc = get_lib_fn("antsRegistration")(args)
        text = err() if rc != 0 else ""
    if rc != 0:
        tail = " | ".join(line for line in text.strip().splitlines()[-5:] if line.strip())
        raise RegistrationError(f"antsRegistration failed with exit code {rc}" + (f": {tail}" if tail else ""))
    del ants
    return str(outprefix) + "0GenericAffine.mat"
