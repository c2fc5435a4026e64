"""The DTI-ALPS pipeline: per-subject stages, the cohort runner and the ``alps run`` command.

Per subject, two stages (each resumable on its own):

:func:`preprocess_subject`
    load + validate (:mod:`alps.io`) → brain mask → optional MP-PCA / Gibbs / motion correction
    (:mod:`alps.preprocess`, all off by default) → tensor fit (:mod:`alps.dti`, WLS) →
    registration of FA to MNI152 2009a (:mod:`alps.registration`, affine by default). Writes the
    mask, tensor, FA, MD, colour FA, transforms and ``<key>_desc-preprocess.json``.
:func:`measure_subject`
    ROIs to native space → ALPS in template and scanner axes (:mod:`alps.measure`) → QC flags and
    PNG (:mod:`alps.qc`). Writes ``<key>_desc-alpsrois_dseg.nii.gz``, ``<key>_desc-qc.png`` and
    ``<key>_desc-alps.json``.

:func:`run_cohort` runs both over a BIDS dataset (or one file) in parallel (joblib; one ITK
thread per worker so results do not depend on ``n_jobs``), skips subjects whose inputs
(SHA-256), parameters and package versions are unchanged, records a failing subject with
``status='failed'`` and its error while the others finish, and writes ``alps.tsv``,
``qc.tsv`` and ``preprocess.tsv`` atomically under OUT_DIR (a BIDS derivatives dataset).

Reliability
-----------
* every file is written to a hidden temporary name and moved into place (``os.replace``); a
  subject's JSON record is written last and is the only thing that marks a stage finished;
  an existing record is deleted *before* a stage is recomputed, so an interrupted run never
  leaves a finished-looking record beside half-updated files;
* reuse needs identical input hashes, parameters and package versions **and** derivative files
  whose SHA-256 matches the record (a truncated or edited derivative is recomputed);
* stale temporary files of a killed run are removed on the next run; one whole-cohort ``alps run``
  at a time may write to an OUT_DIR (``.alps-run.lock``, an advisory ``flock`` released by the
  kernel even on SIGKILL); every scan is processed under its own lock
  (``sub-X[/ses-Y]/.alps-run.lock``), so participant-level runs (``--participant-label``, e.g. a
  SLURM array) share an OUT_DIR and take OUT_DIR's lock only briefly to write tables (none with
  ``--no-tables``; ``alps group`` gathers them from ``sub-X[/ses-Y]/<key>_desc-run.json``; see
  :mod:`alps.distributed` and docs/scaling.md, also for Dask: ``--scheduler``);
* ``alps.tsv``, ``qc.tsv`` and ``preprocess.tsv`` contain no timing or run-dependent columns
  (same inputs + parameters → byte-identical tables); wall times and the ``*_reused`` flags of
  the last run are in ``timings.tsv``;
* privacy: BIDS sidecars are never read and input NIfTI headers/extensions are never copied
  (every output image is built from arrays with a fresh header), so identifying fields
  (PatientName, InstitutionName, AcquisitionDateTime...) cannot leak into the derivatives.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import time
import traceback
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from . import __version__
from . import io as aio
from .qc import DEFAULTS as QC_DEFAULTS
from .registration import MIN_CORRELATION, MIN_DICE, SAMPLING_STRATEGIES

#: parameters of each stage (these, with the input hashes and package versions, decide reuse).
PREPROCESS_DEFAULTS = dict(denoise=False, gibbs=False, motion_correction=False, motion_model="rigid",
                           motion_reference="b0", registration="affine", registration_sampling="regular",
                           fit_method="WLS", seed=20260505, min_reg_corr=MIN_CORRELATION, min_reg_dice=MIN_DICE,
                           gradcheck="off")
#: gradient-orientation check (alps.gradcheck): 'off', 'report' (QC column + flag) or 'correct'
#: (also fit with the corrected b-vectors when the check flags the table)
GRADCHECK_MODES = ("off", "report", "correct")
MEASURE_DEFAULTS = dict(roi="spheres", roi_radius=2.5, roi_weighting="trilinear", supersample=4, lattice_mm=0.5,
                        atlas_path=None, fa_min=None, purity_min=None,
                        qc_min_reg_corr=QC_DEFAULTS["min_reg_corr"])

PIPELINE_NAME = "alps"
SPACE = "MNI152NLin2009aSym"

#: the four default ALPS spheres span 76 mm + 2 radii left-right; an image whose largest field
#: of view is below 80 % of that (brains are ~±20 % in size) cannot contain them.
MIN_FOV_MM = 0.8 * (76.0 + 2 * 2.5)

#: run-dependent columns (returned by :func:`run_cohort`, written to ``timings.tsv`` only).
RUN_COLUMNS_PREFIX = ("time_",)
RUN_COLUMNS = ("preprocess_reused", "measure_reused")

#: columns of a scan's row that go to ``provenance.tsv`` only (prefix removed there): SHA-256 of the
#: inputs, the stage parameters and the package versions (``key=value; ...``).
PROV_PREFIX = "prov_"

#: leading columns of alps.tsv (then everything else the measurement returns).
MAIN_COLUMNS = ["participant_id", "session_id", "status", "error", "alps_L", "alps_R", "alps",
                "alps_scanner_L", "alps_scanner_R", "alps_scanner"]


# ----------------------------------------------------------------------------- helpers
def package_versions() -> dict:
    import dipy
    import nilearn
    import scipy

    try:
        from importlib.metadata import version

        ants_v = version("antspyx")
    except Exception:  # pragma: no cover
        ants_v = "unknown"
    return {"alps": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "nibabel": nib.__version__, "dipy": dipy.__version__,
            "nilearn": nilearn.__version__, "antspyx": ants_v}


def subject_dir(out_dir, item: aio.SubjectInput) -> Path:
    d = Path(out_dir) / item.participant_id
    if item.session_id:
        d = d / item.session_id
    return d / "dwi"


def output_paths(out_dir, item: aio.SubjectInput) -> dict[str, Path]:
    d = subject_dir(out_dir, item)
    k = item.key
    xfm = f"{k}_from-dwi_to-{SPACE}_mode-image_"
    return {
        "dir": d,
        "mask": d / f"{k}_desc-brain_mask.nii.gz",
        "tensor": d / f"{k}_desc-tensor_dwimap.nii.gz",
        "fa": d / f"{k}_desc-FA_dwimap.nii.gz",
        "md": d / f"{k}_desc-MD_dwimap.nii.gz",
        "colorfa": d / f"{k}_desc-colorFA_dwimap.nii.gz",
        "xfm_prefix": d / xfm,
        "xfm_ras": d / f"{k}_from-dwi_to-{SPACE}_desc-RAS4x4_xfm.txt",
        "preprocess_json": d / f"{k}_desc-preprocess.json",
        "dseg": d / f"{k}_desc-alpsrois_dseg.nii.gz",
        "qc_png": d / f"{k}_desc-qc.png",
        "result_json": d / f"{k}_desc-alps.json",
    }


def _read_json(path):
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _unlink(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


#: names of the temporary files made by alps.io.atomic_* (``.<name>.<8 random chars>.<ext>``)
#: and alps.registration (``.<name>.tmp``).
_TEMP_RE = re.compile(r"^\..+(\.[A-Za-z0-9_]{8}\.(tmp|nii|nii\.gz)|\.tmp)$")


def clean_stale_temporaries(directory) -> list[Path]:
    """Delete temporary files, and ANTs scratch directories (``.alps-scratch-*``, see
    :data:`alps.registration.SCRATCH_PREFIX`), left in ``directory`` (not recursive) by a killed
    run. Call it only under the lock of that directory's scan or cohort."""
    import shutil

    from .registration import SCRATCH_PREFIX

    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for f in directory.iterdir():
        if _TEMP_RE.match(f.name) and f.is_file():
            _unlink(f)
            removed.append(f)
        elif f.name.startswith(SCRATCH_PREFIX) and f.is_dir() and not f.is_symlink():
            shutil.rmtree(f, ignore_errors=True)
            removed.append(f)
    return removed


#: name of the advisory lock files: ``OUT_DIR/.alps-run.lock`` (cohort tables; a whole-cohort run
#: holds it for its duration) and ``OUT_DIR/sub-X[/ses-Y]/.alps-run.lock`` (one scan's derivatives).
LOCK_NAME = ".alps-run.lock"

#: how long a participant-level run or ``alps group`` waits for OUT_DIR's lock to write the tables.
TABLES_LOCK_WAIT_S = 600.0


def _flock(fh, *, blocking: bool) -> None:
    """``flock(LOCK_EX)``; raises ``BlockingIOError`` if held (non-blocking). On a file system
    without ``flock`` support (e.g. Lustre mounted without ``-o flock``) warns and returns unlocked."""
    import errno
    import fcntl
    import warnings

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError as exc:
        if isinstance(exc, BlockingIOError) or exc.errno in (errno.EAGAIN, errno.EACCES):
            raise BlockingIOError(*exc.args) from exc
        if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            warnings.warn(f"{fh.name}: file locking not supported here ({exc.strerror}); "
                          "concurrent runs on this OUT_DIR are not guarded", RuntimeWarning, stacklevel=3)
            return
        raise


@contextlib.contextmanager
def cohort_lock(out_dir, wait: float = 0.0):
    """Exclusive advisory lock on ``OUT_DIR/.alps-run.lock`` (no-op where ``fcntl`` is missing).

    ``wait`` seconds (default 0: fail at once) are spent retrying before
    :class:`alps.io.InputError` is raised.
    """
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(out_dir) / LOCK_NAME
    fh = open(path, "a+")
    try:
        deadline = time.monotonic() + max(0.0, float(wait))
        while True:
            try:
                _flock(fh, blocking=False)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise aio.InputError(
                        f"{out_dir}: another 'alps run' is writing to this directory (lock {path.name} held"
                        + (f" for more than {wait:.0f} s" if wait else "")
                        + "); wait for it or use another OUT_DIR") from exc
                time.sleep(min(0.5, max(0.01, deadline - time.monotonic())))
        yield
    finally:
        fh.close()


def scan_lock_path(out_dir, item: aio.SubjectInput) -> Path:
    """``OUT_DIR/sub-X[/ses-Y]/.alps-run.lock``: guards one scan's derivatives and run record."""
    return subject_dir(out_dir, item).parent / LOCK_NAME


@contextlib.contextmanager
def scan_lock(out_dir, item: aio.SubjectInput):
    """Exclusive advisory lock on one scan's output directory, waiting for it if held.

    Two runs that reach the same scan (two jobs of an array given the same label, a participant-level
    job beside a whole-cohort run) take turns: the second one finds the first one's record and reuses
    it. Released by the kernel when the process dies, even on SIGKILL.
    """
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = scan_lock_path(out_dir, item)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        _flock(fh, blocking=True)
        yield
    finally:
        fh.close()


def scan_locked(out_dir, item: aio.SubjectInput) -> bool:
    """True when a running process holds the scan's lock (never creates the lock file)."""
    import errno

    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        fh = open(scan_lock_path(out_dir, item))
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError as exc:  # EACCES: held (some systems); anything else: locking unsupported
            return exc.errno == errno.EACCES
        return False


def run_record_path(out_dir, item: aio.SubjectInput) -> Path:
    """``OUT_DIR/sub-X[/ses-Y]/<key>_desc-run.json``: the scan's row of the cohort tables (without
    run-dependent columns) from the last run that processed it; gathered by ``alps group``."""
    return subject_dir(out_dir, item).parent / f"{item.key}_desc-run.json"


def write_run_record(out_dir, item: aio.SubjectInput, row: dict, stages) -> None:
    """Record ``row`` for ``alps group``; rewritten only when its content changes (an unchanged
    rerun leaves every file of a finished scan untouched)."""
    rec = {"row": {k: v for k, v in row.items() if not _is_run_column(k)}, "stages": list(stages)}
    path = run_record_path(out_dir, item)
    text = json.dumps(rec, indent=2, sort_keys=True, default=aio._json_default) + "\n"
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    aio.atomic_write_text(path, text)


def read_run_record(out_dir, item: aio.SubjectInput) -> dict | None:
    rec = _read_json(run_record_path(out_dir, item))
    if not rec or not isinstance(rec.get("row"), dict) or not isinstance(rec.get("stages"), list):
        return None
    return rec


def _files_sha256(base, names) -> dict:
    return {n: aio.sha256(Path(base) / n) for n in sorted(set(names))}


def _outputs_intact(base, record) -> bool:
    """All files listed in ``record['outputs_sha256']`` exist with the recorded hashes."""
    hashes = record.get("outputs_sha256")
    if not isinstance(hashes, dict) or not hashes:
        return False
    try:
        return _files_sha256(base, hashes) == hashes
    except OSError:
        return False


def _reuse_key(provenance) -> str:
    """What decides reuse: provenance without the (movable) input paths."""
    return _canon({k: v for k, v in provenance.items() if k != "inputs"})


def check_fov(dwi) -> None:
    """Raise :class:`alps.io.InputError` if the image's field of view is too small to contain
    the ALPS ROIs (cheap, before any fitting or registration)."""
    ext = np.asarray(dwi.data.shape[:3], float) * np.asarray(dwi.zooms)
    if ext.max() < MIN_FOV_MM:
        raise aio.InputError(
            f"{dwi.path}: field of view {' x '.join(f'{e:.0f}' for e in ext)} mm cannot contain the ALPS "
            f"ROIs (the default spheres span 81 mm left-right; need >= {MIN_FOV_MM:.0f} mm along some axis)")


def check_roi_coverage(shape, affine, registration, centers_mm, radius_mm, *, path="<image>") -> None:
    """Raise ``ValueError`` if a template ROI (sphere ``radius_mm`` about each centre) is not
    entirely inside the native field of view after registration (e.g. a slab that does not
    reach MNI z = 27 mm). ``centers_mm``: {name: (x, y, z)} in template mm."""
    shape = np.asarray(tuple(shape[:3]), float)
    inv = np.linalg.inv(np.asarray(affine, float))
    offs = np.vstack([np.zeros(3), np.eye(3), -np.eye(3)]) * float(radius_mm)
    problems = []
    for name, c in centers_mm.items():
        pts_t = np.asarray(c, float)[None] + offs
        pts_s = registration.points_to_subject(pts_t)
        ijk = pts_s @ inv[:3, :3].T + inv[:3, 3]
        outside = np.any((ijk < -0.5) | (ijk > shape - 0.5), axis=1)
        if outside.any():
            problems.append(f"{name} (MNI {tuple(float(v) for v in c)} mm, r = {radius_mm} mm -> native "
                            f"{np.round(pts_s[0], 1).tolist()} mm)")
    if problems:
        raise ValueError(f"{path}: field of view does not contain the ALPS ROI(s) after registration: "
                         + "; ".join(problems) + "; the acquisition must cover MNI z = 27 mm "
                         "(lateral-ventricle bodies) with the full left-right extent")


def _matrix_text(matrix, header: str) -> str:
    """``np.savetxt`` format (``# header`` line, ``%.10f`` values) as a string."""
    import io as _io

    buf = _io.StringIO()
    np.savetxt(buf, np.asarray(matrix, float), fmt="%.10f", header=header)
    return buf.getvalue()


def _kv(d) -> str:
    """``"a=1; b=x"`` (sorted keys): a flat dict as one TSV-safe cell (no tabs, quotes or JSON)."""
    return "; ".join(f"{k}={d[k]}" for k in sorted(d or {}))


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _save(img_data, affine, path, dtype=np.float32):
    img = nib.Nifti1Image(np.asarray(img_data).astype(dtype), affine)
    img.header.set_xyzt_units("mm")
    aio.atomic_save_nifti(img, path)


def _rel(p, base):
    return os.path.relpath(str(p), str(base))


# ----------------------------------------------------------------------------- stage 1
def _stage_params(defaults: dict, params: dict, stage: str) -> dict:
    """``defaults`` overlaid by ``params``; unknown names raise TypeError naming the stage."""
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"unknown {stage} parameter(s): {sorted(unknown)}")
    return {**defaults, **params}


def preprocess_subject(item: aio.SubjectInput, out_dir, *, force: bool = False, hashes=None,
                       **params) -> dict:
    """Load, validate, mask, (denoise/Gibbs/motion), fit tensors, register; write derivatives.

    Returns the preprocess record (also written to ``<key>_desc-preprocess.json``). Reuses an
    existing record when inputs, parameters and package versions are identical (``force``
    recomputes). Raises on any failure (invalid input, registration below QC thresholds...).
    """
    from . import dti, preprocess
    from . import registration as reg_mod

    p = _stage_params(PREPROCESS_DEFAULTS, params, "preprocess")
    if p["registration_sampling"] not in SAMPLING_STRATEGIES:  # before any work is done
        raise ValueError(f"registration_sampling must be one of {list(SAMPLING_STRATEGIES)}, "
                         f"got {p['registration_sampling']!r}")
    paths = output_paths(out_dir, item)
    hashes = hashes or aio.input_hashes(item)
    provenance = {"inputs": {"dwi": str(item.dwi), "bval": str(item.bval), "bvec": str(item.bvec)},
                  "sha256": hashes, "parameters": p, "versions": package_versions()}
    old = _read_json(paths["preprocess_json"])
    if (not force and old and old.get("status") == "ok"
            and _reuse_key(old.get("provenance") or {}) == _reuse_key(provenance)
            and _outputs_intact(paths["dir"], old)):
        old["reused"] = True
        return old
    # invalidate first: from here on no record claims these derivatives are finished
    _unlink(paths["preprocess_json"])
    _unlink(paths["result_json"])

    times = {}
    t0 = time.perf_counter()
    dwi = aio.load_dwi(item.dwi, item.bval, item.bvec)
    check_fov(dwi)
    times["load"] = time.perf_counter() - t0

    t = time.perf_counter()
    data, bvecs = dwi.data, dwi.bvecs
    mask = preprocess.brain_mask(data, dwi.bvals)
    if p["denoise"]:
        data = preprocess.denoise_mppca(data, mask)
    if p["gibbs"]:
        data = preprocess.remove_gibbs(data, axis=preprocess.slice_axis(dwi.affine))
    motion = None
    if p["motion_correction"]:
        paths["dir"].mkdir(parents=True, exist_ok=True)
        data, bvecs, xfms = preprocess.motion_correct(data, dwi.affine, dwi.bvals, bvecs, model=p["motion_model"],
                                                      reference=p["motion_reference"], return_transforms=True,
                                                      scratch_dir=paths["dir"])
        motion = preprocess.motion_summary(xfms, dwi.affine, dwi.data.shape, dwi.bvals)
    times["preprocess"] = time.perf_counter() - t

    gradcheck_info = None
    if p["gradcheck"] not in GRADCHECK_MODES:
        raise ValueError(f"gradcheck must be one of {GRADCHECK_MODES}, got {p['gradcheck']!r}")
    if p["gradcheck"] != "off":
        from . import gradcheck
        from .gradients import fsl_to_voxel

        t = time.perf_counter()
        table = gradcheck.check_gradients(
            data, dwi.bvals, fsl_to_voxel(bvecs, dwi.affine), mask,
            voxel_sizes=np.linalg.norm(dwi.affine[:3, :3], axis=0))
        gradcheck_info = {"best": table.attrs["best"], "margin": float(table.attrs["margin"]),
                          "flag": bool(table.attrs["flag"]), "corrected": False}
        if p["gradcheck"] == "correct" and gradcheck_info["flag"]:
            bvecs = gradcheck.correct_bvecs(bvecs, gradcheck_info["best"], affine=dwi.affine)
            gradcheck_info["corrected"] = True
        times["gradcheck"] = time.perf_counter() - t

    t = time.perf_counter()
    maps = dti.fit_tensor(data, dwi.bvals, bvecs, dwi.affine, mask, method=p["fit_method"])
    times["tensor_fit"] = time.perf_counter() - t
    del data

    aff = dwi.affine
    t = time.perf_counter()
    paths["dir"].mkdir(parents=True, exist_ok=True)
    _save(mask, aff, paths["mask"], np.uint8)
    aio.atomic_save_nifti(dti.tensor_image(maps.tensor, aff), paths["tensor"])
    _save(maps.fa, aff, paths["fa"])
    _save(maps.md, aff, paths["md"])
    _save(maps.color_fa("world"), aff, paths["colorfa"])
    times["write"] = time.perf_counter() - t

    t = time.perf_counter()
    fa_img = nib.Nifti1Image(maps.fa, aff)
    registration = reg_mod.register(
        fa_img, mask, kind=p["registration"], out_dir=paths["dir"], prefix=paths["xfm_prefix"].name,
        seed=p["seed"], threads=1, check=False, sampling_strategy=p["registration_sampling"])
    times["registration"] = time.perf_counter() - t
    t = time.perf_counter()
    aio.atomic_write_text(paths["xfm_ras"], _matrix_text(
        registration.subject_to_template, "subject (scanner RAS mm) -> MNI152NLin2009aSym (RAS mm), 4x4 affine part"))

    record = {
        "participant_id": item.participant_id,
        "session_id": item.session_id,
        "status": "ok",
        "error": "",
        "provenance": provenance,
        "shape": list(maps.fa.shape),
        "voxel_size_mm": [float(v) for v in np.linalg.norm(aff[:3, :3], axis=0)],
        "n_volumes": int(len(dwi.bvals)),
        "mask_volume_ml": float(mask.sum() * abs(np.linalg.det(aff[:3, :3])) / 1000.0),
        "registration": reg_mod.registration_info(registration, relative_to=paths["dir"]),
        "gradcheck": gradcheck_info,
        "motion": motion,
        "files": {k: paths[k].name for k in ("mask", "tensor", "fa", "md", "colorfa", "xfm_ras")},
        "times_s": {k: round(v, 3) for k, v in times.items()},
    }
    reg_files = [os.path.relpath(f, paths["dir"]) for f in
                 list(registration.forward_transforms) + list(registration.inverse_transforms)]
    record["outputs_sha256"] = _files_sha256(paths["dir"], list(record["files"].values()) + reg_files)
    times["write"] += time.perf_counter() - t
    record["times_s"] = {k: round(v, 3) for k, v in times.items()}
    try:
        reg_mod.check_metrics(registration.metrics, min_correlation=p["min_reg_corr"], min_dice=p["min_reg_dice"])
    except reg_mod.RegistrationError as exc:
        record["status"] = "failed"
        record["error"] = str(exc)
        aio.atomic_write_json(paths["preprocess_json"], record)
        raise
    aio.atomic_write_json(paths["preprocess_json"], record)
    record["reused"] = False
    return record


# ----------------------------------------------------------------------------- stage 2
def _load_registration(record, base):
    from .registration import load_registration

    info = dict(record["registration"])
    info["forward_transforms"] = [str(Path(base) / f) for f in info["forward_transforms"]]
    info["inverse_transforms"] = [str(Path(base) / f) for f in info["inverse_transforms"]]
    return load_registration(info)


def measure_subject(item: aio.SubjectInput, out_dir, *, force: bool = False, qc_png: bool = True,
                    **params) -> dict:
    """ROIs → ALPS (template and scanner axes) → QC, from the outputs of :func:`preprocess_subject`.

    Returns the result row (also written to ``<key>_desc-alps.json``).
    """
    from . import dti, measure, qc
    from . import tensor as T

    p = _stage_params(MEASURE_DEFAULTS, params, "measure")
    paths = output_paths(out_dir, item)
    pre = _read_json(paths["preprocess_json"])
    if not pre or pre.get("status") != "ok":
        raise RuntimeError(f"{paths['preprocess_json']}: no successful preprocessing for {item.key}; "
                           "run preprocess_subject first")
    if not _outputs_intact(paths["dir"], pre):
        raise RuntimeError(f"{paths['preprocess_json']}: preprocessing outputs of {item.key} are missing or "
                           "modified; rerun preprocess_subject")
    provenance = {"preprocess": pre["provenance"], "preprocess_outputs_sha256": pre["outputs_sha256"],
                  "parameters": p, "versions": package_versions()}
    if p["roi"] == "jhu":
        from .atlas import find_jhu

        provenance["atlas_sha256"] = aio.sha256(find_jhu(p["atlas_path"]))
    old = _read_json(paths["result_json"])
    outputs = [paths["dseg"]] + ([paths["qc_png"]] if qc_png else [])
    if (not force and old and old.get("status") == "ok"
            and _reuse_key(old.get("provenance") or {}) == _reuse_key(provenance)
            and all(f.is_file() for f in outputs)):
        old["reused"] = True
        return old
    _unlink(paths["result_json"])

    t0 = time.perf_counter()
    base = paths["dir"]
    tensor, aff = dti.load_tensor_image(paths["tensor"])
    fa = np.asarray(nib.load(str(paths["fa"])).dataobj, np.float32)
    md = np.asarray(nib.load(str(paths["md"])).dataobj, np.float32)
    reg = _load_registration(pre, base)
    from .roi import DEFAULT_CENTERS_MM

    check_roi_coverage(fa.shape, aff, reg, DEFAULT_CENTERS_MM,
                       p["roi_radius"] if p["roi"] == "spheres" else 0.0, path=item.dwi)
    weights = measure.roi_weights(p["roi"], fa.shape, aff, reg, radius_mm=p["roi_radius"],
                                  weighting=p["roi_weighting"], supersample=p["supersample"],
                                  lattice_mm=p["lattice_mm"], atlas_path=p["atlas_path"])
    if p["fa_min"] is not None or p["purity_min"] is not None:
        q = reg.rotation @ T.polar_rotation(aff[:3, :3])
        _, evecs = T.eig(tensor)
        v1t = evecs[..., :, 0] @ q.T
        weights = measure.filter_weights(weights, fa=fa, fa_min=p["fa_min"], v1_template=v1t,
                                         purity_min=p["purity_min"])
    values = measure.measure(tensor, aff, reg, weights, fa=fa, md=md)
    dseg = measure.dseg_from_weights(weights, fa.shape)
    _save(dseg, aff, paths["dseg"], np.uint8)
    row = {"participant_id": item.participant_id, "session_id": item.session_id, "status": "ok", "error": ""}
    row.update(values)
    row.update(pre["registration"]["metrics"])
    gc = pre.get("gradcheck")
    if gc:
        row.update({"gradcheck_best": gc["best"], "gradcheck_margin": gc["margin"],
                    "gradcheck_flag": gc["flag"], "gradcheck_corrected": gc["corrected"]})
    # flag (not fail) the band between the preprocess failure threshold and the QC warning one
    thresholds = {"min_reg_corr": max(p["qc_min_reg_corr"], pre["provenance"]["parameters"]["min_reg_corr"]),
                  "min_reg_dice": pre["provenance"]["parameters"]["min_reg_dice"]}
    fl = qc.flags(row, **thresholds)
    row["qc_flags"] = ";".join(fl)
    row["qc_pass"] = not fl
    t_measure = time.perf_counter() - t0
    if qc_png:
        t = time.perf_counter()
        _qc_png(paths, fa, tensor, aff, reg, dseg, p, item)
        row["time_qc_s"] = round(time.perf_counter() - t, 3)
    row["time_measure_s"] = round(t_measure, 3)
    for k, v in pre.get("times_s", {}).items():
        row[f"time_{k}_s"] = v
    record = dict(row)
    record["provenance"] = provenance
    aio.atomic_write_json(paths["result_json"], record)
    record["reused"] = False
    return record


def _qc_png(paths, fa, tensor, aff, reg, dseg, p, item):
    from . import qc
    from . import template as tpl
    from .roi import default_spheres

    ref = tpl.load("wm", resolution=2)
    slices = qc.template_slices(fa, tensor, aff, reg, ref)
    labels = None
    if p["roi"] == "spheres":
        centers = [s.center_mm for s in default_spheres(radius_mm=p["roi_radius"])]
        radius = p["roi_radius"]
        what = f"spheres, r = {p['roi_radius']:g} mm"
    else:  # JHU labels, shown as outlines on the template slices
        from nilearn.image import resample_to_img

        from .measure import template_rois
        from .roi import DEFAULT_CENTERS_MM

        centers, radius = list(DEFAULT_CENTERS_MM.values()), 1.0
        labels = np.rint(resample_to_img(template_rois("jhu", atlas_path=p["atlas_path"]), ref,
                                         interpolation="nearest", force_resample=True,
                                         copy_header=True).get_fdata()).astype(np.uint8)
        what = "JHU labels SCR 25/26, SLF 41/42"
    qc.figure(paths["qc_png"], slices=slices, wm_t=ref.get_fdata(), centers_mm=centers, radius_mm=radius,
              title=f"{item.key}  ({what})", native_fa=fa, native_dseg=dseg, native_affine=aff,
              template_labels=labels)


# ----------------------------------------------------------------------------- one subject
def _split_params(params):
    pre = {k: v for k, v in params.items() if k in PREPROCESS_DEFAULTS}
    mea = {k: v for k, v in params.items() if k in MEASURE_DEFAULTS}
    other = set(params) - set(pre) - set(mea)
    if other:
        raise TypeError(f"unknown pipeline parameter(s): {sorted(other)}")
    return pre, mea


def process_subject(item: aio.SubjectInput, out_dir, *, stages=("preprocess", "measure"),
                    force=False, qc_png=True, **params) -> dict:
    """Run the requested stages for one scan; never raises: failures become ``status='failed'``.

    Holds the scan's lock (:func:`scan_lock`, waiting if another run holds it) for the duration, so
    concurrent runs writing to one OUT_DIR (participant-level jobs, Dask workers) never touch the
    same scan at once, and records the returned row in :func:`run_record_path` for ``alps group``.
    """
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
    pre_p, mea_p = _split_params(params)
    try:
        with scan_lock(out_dir, item):
            row = _process_subject(item, out_dir, stages=stages, force=force, qc_png=qc_png,
                                   pre_p=pre_p, mea_p=mea_p)
            with contextlib.suppress(OSError, TypeError, ValueError):
                write_run_record(out_dir, item, row, stages)
    except OSError as exc:  # the lock could not be taken (unwritable OUT_DIR...)
        row = {"participant_id": item.participant_id, "session_id": item.session_id, "status": "failed",
               "error": f"lock: {type(exc).__name__}: {exc}"}
    return row


def _process_subject(item, out_dir, *, stages, force, qc_png, pre_p, mea_p) -> dict:
    row = {"participant_id": item.participant_id, "session_id": item.session_id}
    stage = "validation"
    try:
        if item.error:
            raise aio.InputError(item.error)
        aio.check_input_files(item)
        clean_stale_temporaries(subject_dir(out_dir, item))
        stage = "hashing"
        t = time.perf_counter()
        hashes = aio.input_hashes(item)
        row["time_hash_s"] = round(time.perf_counter() - t, 3)
        row.update({f"{PROV_PREFIX}{k}_sha256": v for k, v in hashes.items()})
        if "preprocess" in stages:
            stage = "preprocess"
            rec = preprocess_subject(item, out_dir, force=force, hashes=hashes, **pre_p)
            prov = rec.get("provenance") or {}
            row[f"{PROV_PREFIX}preprocess_parameters"] = _kv(prov.get("parameters"))
            row[f"{PROV_PREFIX}versions"] = _kv(prov.get("versions"))
            row["preprocess_reused"] = rec.get("reused", False)
            row.update(rec["registration"]["metrics"])
            row.update(rec.get("motion") or {})
            row.update({f"time_{k}_s": v for k, v in rec.get("times_s", {}).items()})
        if "measure" in stages:
            stage = "measure"
            res = measure_subject(item, out_dir, force=force, qc_png=qc_png, **mea_p)
            row[f"{PROV_PREFIX}measure_parameters"] = _kv((res.get("provenance") or {}).get("parameters"))
            res = {k: v for k, v in res.items() if k != "provenance"}
            row.update(res)
            row["measure_reused"] = res.get("reused", False)
            row.pop("reused", None)
        row["status"] = "ok"
        row["error"] = ""
    except FileNotFoundError as exc:
        row.update(status="failed", error=f"{stage}: input file not found: {exc.filename or exc}")
    except Exception as exc:  # recorded, the cohort continues
        text = str(exc)
        if not any(name in text for name in (item.dwi.name, item.bval.name, item.bvec.name)):
            text = f"{item.dwi}: {text}"  # every recorded error names the scan's file
        msg = f"{stage}: {type(exc).__name__}: {text}"
        if not isinstance(exc, (ValueError, RuntimeError)):
            msg += " | " + traceback.format_exc(limit=3).replace("\n", " ")[-400:]
        row.update(status="failed", error=msg)
    return row


# ----------------------------------------------------------------------------- cohort
def _dataset_description(out_dir, input_path):
    desc = {
        "Name": "DTI-ALPS derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": PIPELINE_NAME, "Version": __version__,
                         "Description": "DTI-ALPS in template (MNI152NLin2009aSym) and scanner axes"}],
        "SourceDatasets": [{"URL": Path(input_path).resolve().as_uri()}],
    }
    path = Path(out_dir) / "dataset_description.json"
    if _read_json(path) != desc:  # written once: concurrent participant-level runs do not rewrite it
        aio.atomic_write_json(path, desc)


def _order_columns(df):
    from .roi import ROI_NAMES

    cols = [c for c in MAIN_COLUMNS if c in df.columns]
    for pre in ("dxx_", "dyy_", "dzz_"):
        cols += [f"{pre}{n}" for n in ROI_NAMES if f"{pre}{n}" in df.columns]
    for pre in ("fa_", "md_", "nvox_"):
        cols += [f"{pre}{n}" for n in ROI_NAMES if f"{pre}{n}" in df.columns]
    cols += [c for c in ("reg_corr", "reg_dice", "qc_flags", "qc_pass") if c in df.columns]
    cols += sorted(c for c in df.columns if c not in cols)
    return df[cols]


def run_cohort(input_path, out_dir, *, participant_label=None, n_jobs: int = 1, roi: str = "spheres",
               roi_radius: float = 2.5, registration: str = "affine", denoise: bool = False,
               gibbs: bool = False, motion_correction: bool = False, bval=None, bvec=None,
               stages=("preprocess", "measure"), force: bool = False, progress: bool = True,
               qc_png: bool = True, scheduler=None, tables: bool = True, **extra) -> pd.DataFrame:
    """Run the pipeline over a BIDS dataset (or one DWI file) and write the cohort tables.

    Parameters beyond the signature (``roi_weighting``, ``fit_method``, ``seed``, ``atlas_path``,
    ``fa_min``, ``purity_min``, ``min_reg_corr``, ``min_reg_dice`` (failure thresholds),
    ``qc_min_reg_corr`` (QC-flag threshold), ``supersample``) are passed
    to the stages. Raises :class:`alps.io.InputError` when the input cannot be read at all.

    Per-scan problems (invalid image or gradients, duplicate runs, failed registration...)
    never stop the run: the scan gets ``status='failed'`` and an ``error`` naming its file.

    ``scheduler``: a ``dask.distributed`` scheduler address (``"tcp://host:8786"``) or ``Client``;
    the scans then run on its workers (which must see INPUT and OUT_DIR at the same paths) instead
    of ``n_jobs`` local processes; the tables are identical (:mod:`alps.distributed`).

    Locking: a whole-cohort run (no ``participant_label``) holds OUT_DIR's lock for its duration
    and raises :class:`alps.io.InputError` when another run holds it. A participant-level run
    (``participant_label`` given, e.g. one job of a SLURM array) locks only its scans
    (:func:`scan_lock`), so any number of them can share OUT_DIR, and takes OUT_DIR's lock only
    briefly to write its tables (waiting up to :data:`TABLES_LOCK_WAIT_S`); ``tables=False`` skips
    the tables altogether (gather them afterwards with ``alps group OUT_DIR``).

    Returns
    -------
    DataFrame, one row per scan; with the measure stage it is ``alps.tsv`` plus the
    run-dependent columns (``preprocess_reused``, ``measure_reused``, ``time_*_s``) that are
    written to ``timings.tsv`` instead; otherwise the preprocessing status table
    (``preprocess.tsv`` plus the same run columns).
    """
    items = aio.discover(input_path, participant_label=participant_label, bval=bval, bvec=bvec, strict=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = dict(n_jobs=n_jobs, roi=roi, roi_radius=roi_radius, registration=registration, denoise=denoise,
                  gibbs=gibbs, motion_correction=motion_correction, stages=stages, force=force,
                  progress=progress, qc_png=qc_png, scheduler=scheduler, **extra)
    if participant_label is None:  # cohort level: the whole run under OUT_DIR's lock
        with cohort_lock(out_dir):
            clean_stale_temporaries(out_dir)
            return _run_cohort_locked(items, input_path, out_dir, tables=tables, lock_tables=False, **kwargs)
    return _run_cohort_locked(items, input_path, out_dir, tables=tables, lock_tables=True, **kwargs)


def _is_run_column(c) -> bool:
    return c in RUN_COLUMNS or c.startswith(RUN_COLUMNS_PREFIX)


#: the cohort tables, in the order they are written.
TABLE_NAMES = ("timings.tsv", "preprocess.tsv", "alps.tsv", "qc.tsv", "provenance.tsv")


def clean_table_temporaries(out_dir) -> list[Path]:
    """Delete temporaries of the cohort tables left in OUT_DIR (call with OUT_DIR's lock held)."""
    removed = []
    for f in Path(out_dir).glob(".*"):
        if _TEMP_RE.match(f.name) and f.is_file() and any(f.name.startswith(f".{n}.") for n in TABLE_NAMES):
            _unlink(f)
            removed.append(f)
    return removed


def write_tables(tables: dict, out_dir, *, lock: bool = False, wait: float | None = None) -> None:
    """Write ``{name: DataFrame}`` atomically under OUT_DIR, holding OUT_DIR's lock if ``lock``
    (waiting up to ``wait`` seconds, default :data:`TABLES_LOCK_WAIT_S`)."""
    wait = TABLES_LOCK_WAIT_S if wait is None else wait
    with cohort_lock(out_dir, wait=wait) if lock else contextlib.nullcontext():
        if lock:
            clean_table_temporaries(out_dir)
        for name, t in tables.items():
            aio.atomic_write_tsv(t, Path(out_dir) / name)


def _run_cohort_locked(items, input_path, out_dir, *, n_jobs, roi, roi_radius, registration, denoise, gibbs,
                       motion_correction, stages, force, progress, qc_png, scheduler=None, tables=True,
                       lock_tables=False, **extra):
    from tqdm.auto import tqdm

    _dataset_description(out_dir, input_path)
    params = dict(roi=roi, roi_radius=float(roi_radius), registration=registration, denoise=bool(denoise),
                  gibbs=bool(gibbs), motion_correction=bool(motion_correction))
    params.update(extra)
    _split_params(params)  # validate names early
    stages = tuple(stages)
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
    rows = []
    n_jobs = max(1, int(n_jobs or 1))
    bar = tqdm(total=len(items), desc=f"alps {'+'.join(stages)}", disable=not progress, unit="subj")
    kw = dict(stages=stages, force=force, qc_png=qc_png, **params)
    if scheduler is not None:
        from .distributed import map_subjects

        for row in map_subjects(items, out_dir, scheduler, **kw):
            rows.append(row)
            bar.update(1)
    elif n_jobs == 1 or len(items) == 1:
        for it in items:
            rows.append(process_subject(it, out_dir, **kw))
            bar.update(1)
    else:
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=min(n_jobs, len(items)), return_as="generator_unordered")
        for row in par(delayed(process_subject)(it, out_dir, **kw) for it in items):
            rows.append(row)
            bar.update(1)
    bar.close()
    df, out_tables = cohort_tables(rows, stages)
    if tables:
        write_tables(out_tables, out_dir, lock=lock_tables)
    return df


def cohort_tables(rows, stages=("preprocess", "measure"), *, timings: bool = True) -> tuple[pd.DataFrame, dict]:
    """Build the cohort tables from per-scan rows (as returned by :func:`process_subject`).

    Returns ``(df, {name: table})``: ``df`` is what :func:`run_cohort` returns; the tables are
    ``timings.tsv`` (unless ``timings=False``), ``preprocess.tsv``, ``provenance.tsv`` (per scan:
    ``dwi_sha256, bval_sha256, bvec_sha256`` of the inputs, ``preprocess_parameters``,
    ``measure_parameters`` and ``versions`` as ``key=value; ...`` with sorted keys) and, with the
    measure stage,
    ``alps.tsv`` and ``qc.tsv``. Rows are sorted by scan, columns canonically
    ordered: the same rows in any order give byte-identical tables.
    """
    out = {}
    df = pd.DataFrame(rows)
    df["_key"] = [r["participant_id"] + (r.get("session_id") or "") for r in rows]
    df = df.sort_values("_key").drop(columns="_key").reset_index(drop=True)
    if "session_id" in df.columns and df["session_id"].isna().all():
        df = df.drop(columns="session_id")
    id_cols = [c for c in ("participant_id", "session_id") if c in df.columns]
    run_cols = [c for c in ("preprocess_reused", "measure_reused") if c in df.columns]
    run_cols += sorted(c for c in df.columns if _is_run_column(c) and c not in run_cols)
    if timings:
        out["timings.tsv"] = df[id_cols + ["status"] + run_cols]
    pre_cols = [c for c in ["participant_id", "session_id", "status", "error", "reg_corr", "reg_dice",
                            "motion_mean_disp_mm", "motion_max_disp_mm", "motion_max_rot_deg", "motion_max_scale",
                            "preprocess_reused"] if c in df.columns]
    pre_cols += sorted(c for c in df.columns if c.startswith("time_") and c not in pre_cols)
    pre_df = df[pre_cols]
    out["preprocess.tsv"] = pre_df[[c for c in pre_cols if not _is_run_column(c)]]
    prov_cols = [f"{PROV_PREFIX}{c}" for c in ("dwi_sha256", "bval_sha256", "bvec_sha256", "preprocess_parameters",
                                               "measure_parameters", "versions")]
    prov = df.reindex(columns=id_cols + ["status"] + prov_cols)
    out["provenance.tsv"] = prov.rename(columns={c: c[len(PROV_PREFIX):] for c in prov_cols})
    df = df.drop(columns=[c for c in df.columns if c.startswith(PROV_PREFIX)])
    if "measure" not in stages:
        return pre_df, out
    df = _order_columns(df)
    out["alps.tsv"] = df[[c for c in df.columns if not _is_run_column(c)]]
    out["qc.tsv"] = qc_table(df)
    return df, out


def qc_table(df: pd.DataFrame) -> pd.DataFrame:
    """Cohort QC table: status, registration metrics, ROI FA/purity, flags, PNG path."""
    from .roi import ROI_NAMES

    cols = ["participant_id", "session_id", "status", "error", "reg_corr", "reg_dice"]
    cols += [f"fa_{n}" for n in ROI_NAMES] + [f"purity_{n}" for n in ROI_NAMES]
    cols += ["alps_L", "alps_R", "alps", "qc_flags", "qc_pass"]
    out = df[[c for c in cols if c in df.columns]].copy()
    png = []
    for _, r in df.iterrows():
        ses = r.get("session_id") if "session_id" in df.columns else None
        ses = ses if isinstance(ses, str) and ses else None
        key = r["participant_id"] + (f"_{ses}" if ses else "")
        sub = r["participant_id"] + (f"/{ses}" if ses else "")
        png.append(f"{sub}/dwi/{key}_desc-qc.png" if r["status"] == "ok" else "")
    out["qc_png"] = png
    return out


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="BIDS dataset root, or one DWI .nii[.gz] file")
    parser.add_argument("out_dir", help="output (BIDS derivatives) directory")
    parser.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                        help="subject labels to process (with or without 'sub-')")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel subjects (default: profile)")
    parser.add_argument("--roi", choices=("spheres", "jhu"), default=None)
    parser.add_argument("--roi-radius", type=float, default=None, metavar="MM")
    parser.add_argument("--registration", choices=("affine", "syn"), default=None)
    parser.add_argument("--registration-sampling", choices=("regular", "dense"), default=None,
                        help="points where the registration metric is evaluated: 'regular' (default: every "
                        "template voxel in the brain, seeded jitter) or 'dense' (voxel centres, ~2x slower)")
    parser.add_argument("--bval", default=None, help="b-values file (single-file input)")
    parser.add_argument("--bvec", default=None, help="b-vectors file (single-file input)")
    parser.add_argument("--denoise", action="store_true", default=None, help="MP-PCA denoising")
    parser.add_argument("--gibbs", action="store_true", default=None, help="Gibbs-ringing removal")
    parser.add_argument("--motion-correction", action="store_true", default=None,
                        help="per-volume motion correction with b-vector rotation (ANTs, to the mean b0; "
                        "per-volume corrections summarised in preprocess.tsv)")
    parser.add_argument("--motion-model", choices=("rigid", "affine"), default=None,
                        help="rigid (default: head motion) or affine (also eddy-current distortion)")
    parser.add_argument("--gradcheck", choices=GRADCHECK_MODES, default=None,
                        help="gradient-orientation check (fibre coherence, Jeurissen et al. 2014): "
                        "'report' adds it to QC, 'correct' also refits with the corrected table "
                        "when it flags (default: off; about 3 s per scan)")
    parser.add_argument("--atlas", default=None, help="JHU label file for --roi jhu")
    parser.add_argument("--force", action="store_true", help="recompute finished subjects")
    parser.add_argument("--profile", default="default", help="configuration profile (config/<name>.yaml)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run the scans on a dask.distributed cluster (e.g. tcp://host:8786; needs "
                        "the 'scale' extra; workers must see INPUT and OUT_DIR at the same paths)")
    parser.add_argument("--no-tables", action="store_true",
                        help="do not write the cohort tables (participant-level jobs of an array; "
                        "gather them afterwards with 'alps group OUT_DIR')")


def cli(args) -> int:
    from . import config

    cfg = config.section(args.profile, "pipeline")
    def pick(name, default):
        v = getattr(args, name)
        return v if v is not None else cfg.get(name, default)

    kwargs = dict(n_jobs=int(pick("n_jobs", 1)), roi=pick("roi", "spheres"), roi_radius=float(pick("roi_radius", 2.5)),
                  registration=pick("registration", "affine"), denoise=bool(pick("denoise", False)),
                  gibbs=bool(pick("gibbs", False)), motion_correction=bool(pick("motion_correction", False)))
    if pick("motion_model", "rigid") != "rigid":
        kwargs["motion_model"] = pick("motion_model", "rigid")
    if pick("registration_sampling", "regular") != "regular":
        kwargs["registration_sampling"] = pick("registration_sampling", "regular")
    if args.atlas:
        kwargs["atlas_path"] = args.atlas
    if pick("gradcheck", "off") != "off":
        kwargs["gradcheck"] = pick("gradcheck", "off")
    try:
        df = run_cohort(args.input, args.out_dir, participant_label=args.participant_label, bval=args.bval,
                        bvec=args.bvec, force=args.force, scheduler=args.scheduler,
                        tables=not args.no_tables, **kwargs)
    except (aio.InputError, aio.GradientError) as exc:
        print(f"alps run: invalid input: {exc}")
        return 2
    except (ImportError, OSError, TimeoutError) as exc:
        if args.scheduler is None:
            raise
        print(f"alps run: cannot use the Dask scheduler {args.scheduler}: {type(exc).__name__}: {exc}")
        return 2
    n_ok = int((df["status"] == "ok").sum())
    dest = "no tables written ('alps group' gathers them)" if args.no_tables else Path(args.out_dir) / "alps.tsv"
    print(f"alps run: {n_ok}/{len(df)} scans processed -> {dest}")
    show = [c for c in ("participant_id", "status", "alps_L", "alps_R", "alps", "alps_scanner", "qc_flags")
            if c in df.columns]
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(df[show].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for _, r in df[df["status"] != "ok"].iterrows():
        print(f"  FAILED {r['participant_id']}: {r['error']}")
    return 0 if n_ok > 0 else 1
