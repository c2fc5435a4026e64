"""The pipeline's parameters: typed, frozen objects that hold the only defaults.

:class:`PreprocessParams` (stage 1) and :class:`MeasureParams` (stage 2) are what a scan's
derivatives depend on: written into its provenance (``*_desc-preprocess.json``,
``*_desc-alps.json``, ``provenance.tsv``) and compared on reruns to decide reuse.
:class:`PipelineParams` bundles them with the run-level ``n_jobs`` and is what the
configuration's ``pipeline:`` section, ``alps run``'s options, notebooks 01/02 (one
``pipeline`` mapping) and :func:`alps.pipeline.run_cohort` all build.

Every value is validated when an object is made — before any scan is loaded — and a mapping
with an unknown key is refused with a message naming the key, where it came from and the
allowed names::

    >>> PipelineParams.from_mapping({"roi_raduis": 5})
    Traceback (most recent call last):
    ParameterError: pipeline parameters: unknown parameter 'roi_raduis'; allowed: ...

Each field's ``metadata`` carries its help text (and choices, or a check), from which
:func:`add_arguments` generates the command-line options (``--roi-radius MM`` ...).
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ..config import ParameterError, reject_unknown as _reject_unknown
from ..imaging.ants import SAMPLING_STRATEGIES
from ..imaging.dti import FIT_METHODS
from ..imaging.eddy import OUTLIER_MODES as EDDY_OUTLIER_MODES
from ..imaging.eddy_transform import EC_MODELS
from ..imaging.measure import WEIGHTINGS
from ..imaging.preprocess import MOTION_MODELS, MOTION_REFERENCES
from ..imaging.qc import DEFAULTS as QC_DEFAULTS
from ..imaging.registration import KINDS, MIN_CORRELATION, MIN_COVERAGE, MIN_DICE
from ..imaging.shells import MODEL_MAX_BVAL, TENSOR_MODELS
from ..io.gradients import B0_THRESHOLD

#: values of ``sdc`` and ``sdc_pairs`` (:mod:`alps.pipeline.distortion`).
SDC_MODES = ("auto", "off")

__all__ = ["ParameterError", "PreprocessParams", "MeasureParams", "PipelineParams", "ROI_KINDS", "ROI_PLACEMENTS",
           "GRADCHECK_MODES", "from_profile", "add_arguments", "from_args"]

#: ROI sets: the four template spheres, or JHU ICBM-DTI-81 labels (:mod:`alps.imaging.atlas`).
ROI_KINDS = ("spheres", "jhu")
#: where the ROI spheres go: the template centres as registered, or moved onto the tracts
#: (:mod:`alps.imaging.placement`).
ROI_PLACEMENTS = ("template", "tract")
#: gradient-orientation check (:mod:`alps.imaging.gradcheck`): 'off', 'report' (QC column + flag)
#: or 'correct' (also fit with the corrected b-vectors when the check flags the table).
GRADCHECK_MODES = ("off", "report", "correct")


def _param(default, help: str, *, choices=None, check=None, metavar=None, flag=None):
    """A dataclass field with its documentation: ``help`` (one line), ``choices`` (allowed
    values), ``check`` (``(predicate, "what it must be")``), the CLI ``metavar`` and ``flag``."""
    return field(default=default, metadata={"help": help, "choices": choices, "check": check,
                                            "metavar": metavar, "flag": flag})


_POSITIVE = (lambda v: v > 0, "positive")
_UNIT = (lambda v: 0 <= v <= 1, "between 0 and 1")
_AT_LEAST_ONE = (lambda v: v >= 1, "at least 1")
_NON_NEGATIVE = (lambda v: v >= 0, "zero or positive")


def _coerce(value, kind, name, where):
    """``value`` as ``kind`` (bool, int, float, str, or ``X | None``), or ParameterError."""
    def bad(expected):
        return ParameterError(f"{where}: parameter '{name}' must be {expected}, got {value!r}")

    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], name, where)
    if kind is bool:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return bool(value)
        raise bad("true or false")
    if kind is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if hasattr(value, "__index__"):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad("an integer")
    if kind is float:
        if isinstance(value, bool):
            raise bad("a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if kind is str:
        if hasattr(value, "__fspath__"):
            return str(value)
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise TypeError(f"unsupported parameter type {kind!r}")  # pragma: no cover - programming error


class _Params:
    """Validation, construction from mappings and replacement, shared by the stage objects."""

    #: what the messages call this object
    _what = "parameters"

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = _coerce(getattr(self, f.name), hints[f.name], f.name, self._what)
            choices, check = f.metadata.get("choices"), f.metadata.get("check")
            if choices is not None and value is not None and value not in choices:
                raise ParameterError(f"{self._what}: parameter '{f.name}' must be one of "
                                     f"{list(choices)}, got {value!r}")
            if check is not None and value is not None and not check[0](value):
                raise ParameterError(f"{self._what}: parameter '{f.name}' must be {check[1]}, got {value!r}")
            object.__setattr__(self, f.name, value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None = None, *, source: str | None = None):
        """Build from a mapping (config section, notebook parameter); unknown keys are refused."""
        mapping = dict(mapping or {})
        _reject_unknown(mapping, cls.names(), source or cls._what)
        try:
            return cls(**mapping)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}" if source else str(exc)) from None

    def replace(self, **changes):
        """A copy with ``changes`` (validated, unknown names refused)."""
        _reject_unknown(changes, self.names(), self._what)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """``{name: value}``: what provenance records."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class PreprocessParams(_Params):
    """Stage 1 (:func:`alps.pipeline.preprocess_subject`): mask, optional pre-processing, tensor
    fit, registration. The values decide whether a scan's preprocessing is reused."""

    _what = "preprocess parameters"

    denoise: bool = _param(False, "MP-PCA denoising (Veraart et al. 2016) before the tensor fit")
    gibbs: bool = _param(False, "Gibbs-ringing removal (Kellner et al. 2016) along the slice axis")
    motion_correction: bool = _param(
        False, "per-volume motion correction with b-vector rotation (ANTs, to the mean b0; "
        "per-volume corrections summarised in preprocess.tsv; minutes per scan)")
    motion_model: str = _param("rigid", "motion-correction model: rigid (head motion) or affine (also "
                               "eddy-current distortion)", choices=MOTION_MODELS)
    motion_reference: str = _param("b0", "motion-correction target: the mean b0, or the mean "
                                   "diffusion-weighted image for DW volumes", choices=MOTION_REFERENCES)
    # ---- eddy-current and motion correction (alps.pipeline.eddy_step)
    eddy_correction: bool = _param(
        False, "eddy-current and motion correction, pip-only: each volume registered to its leave-one-out "
        "tensor prediction (rigid motion + eddy currents along the sidecar's phase-encoding axis), b-vectors "
        "turned, outlier slices replaced; 15-60 s per 3 mm scan; not for preprocessed inputs; replaces "
        "--motion-correction")
    eddy_model: str = _param("linear", "eddy-current model: linear (shear and scaling along the phase-encoding "
                             "axis; within 60 s a 3 mm scan), quadratic (quadratic in position, as FSL eddy's "
                             "default; 3-5x slower) or rigid (head motion only)", choices=EC_MODELS)
    eddy_outliers: str = _param("replace", "slices whose signal falls > 4 SD below their prediction: replace them "
                                "by it (as FSL eddy --repol), flag them only, or off", choices=EDDY_OUTLIER_MODES)
    registration: str = _param("affine", "registration of FA to MNI152 2009a: affine (rigid then 7-dof "
                               "similarity), syn (then ANTs SyN) or rigid", choices=tuple(KINDS))
    registration_sampling: str = _param(
        "regular", "points where the registration metric is evaluated: regular (every template voxel "
        "in the brain, seeded jitter), dense (voxel centres, ~2x slower) or random",
        choices=tuple(SAMPLING_STRATEGIES))
    fit_method: str = _param("WLS", "tensor fit: WLS (vectorised, = dipy WLS), or dipy's OLS, NLLS, "
                             "RESTORE, DIPY-WLS", choices=FIT_METHODS)
    seed: int = _param(20260505, "random seed of the registration's metric sampling and motion correction",
                       metavar="N")
    min_reg_corr: float = _param(MIN_CORRELATION, "fail a scan whose FA-WM correlation after registration "
                                 "is below this", check=_UNIT, metavar="R")
    min_reg_dice: float = _param(MIN_DICE, "fail a scan whose brain-mask Dice after registration (on the "
                                 "part of the template brain inside the field of view) is below this",
                                 check=_UNIT, metavar="D")
    min_reg_coverage: float = _param(MIN_COVERAGE, "fail a scan whose field of view holds less than this fraction "
                                     "of the template brain after registration (too thin a slab to check its "
                                     "registration)", check=_UNIT, metavar="F")
    gradcheck: str = _param("off", "gradient-orientation check (fibre coherence, Jeurissen et al. 2014): "
                            "'report' adds it to QC, 'correct' also refits with the corrected table when "
                            "it flags (about 3 s per scan)", choices=GRADCHECK_MODES)
    tensor_model: str = _param(
        "dti", "tensor the index is computed from: dti (b0 + the shells <= --max-bval; a scan with none takes its "
        "lowest shell, flagged high_b), fwdti (free-water-eliminated DTI, dipy) or dki (the diffusion tensor of "
        "a kurtosis fit, dipy); fwdti and dki need >= 2 non-zero shells <= --max-bval", choices=TENSOR_MODELS)
    max_bval: float | None = _param(
        None, "largest shell (s/mm²) the tensor model is fitted on; higher shells are left out (default: where "
        "the model holds, " + ", ".join(f"{m} {b:g}" for m, b in MODEL_MAX_BVAL.items())
        + "); a fit above its default is flagged high_b", check=_POSITIVE, metavar="B")
    b0_threshold: float = _param(B0_THRESHOLD, "b-values at or below this (s/mm²) are b = 0 volumes",
                                 check=_NON_NEGATIVE, metavar="B")
    shell_tolerance: float = _param(100.0, "b-values within this (s/mm²) of their neighbour form one shell "
                                    "(995/1000/1005 -> 1000)", check=_POSITIVE, metavar="B")
    # ---- susceptibility-distortion correction (alps.pipeline.distortion)
    sdc: str = _param(
        "auto", "susceptibility-distortion correction: auto corrects every scan of a BIDS dataset that has a "
        "field source (the other dir- DWI series of opposite phase encoding, reverse-PE b0s in fmap/, a GRE "
        "phasediff or a fieldmap; PhaseEncodingDirection and TotalReadoutTime from the sidecars), off never",
        choices=SDC_MODES)
    sdc_pairs: str = _param(
        "auto", "with two full series of opposite phase encoding (dir-AP/dir-PA): auto also gives each matched "
        "pair of diffusion-weighted volumes its own field (eddy currents along the phase-encoding axis), off "
        "only the b0 field", choices=SDC_MODES)

    def __post_init__(self):
        super().__post_init__()
        if self.eddy_correction and self.motion_correction:
            raise ParameterError(f"{self._what}: eddy_correction and motion_correction both correct head motion; "
                                 "turn one off (eddy_correction replaces the ANTs motion correction)")


@dataclass(frozen=True)
class MeasureParams(_Params):
    """Stage 2 (:func:`alps.pipeline.measure_subject`): ROIs, the index, QC. The values decide
    whether a scan's measurement is reused."""

    _what = "measure parameters"

    roi: str = _param("spheres", "ROI set: spheres at SCR (+-26, -16, 27) and SLF (+-38, -16, 27) mm, or "
                      "JHU ICBM-DTI-81 labels (needs the atlas, see --atlas)", choices=ROI_KINDS)
    roi_radius: float = _param(2.5, "radius of the ROI spheres", check=_POSITIVE, metavar="MM")
    roi_placement: str = _param(
        "tract", "where the spheres go: template (the MNI centres through the registration) or tract (a "
        "hemisphere whose spheres miss their tracts - principal eigenvector not along z (projection) or y "
        "(association) - is moved, within 6 mm in x and 4 mm in y/z, to where they are on them; spheres on their "
        "tracts stay; both spheres of a hemisphere keep one axial level and line; alps.imaging.placement)",
        choices=ROI_PLACEMENTS)
    roi_weighting: str = _param("trilinear", "how native voxels share a template ROI: trilinear (sphere "
                                "sampled on a lattice, interpolated), partial (volume fraction) or centre "
                                "(binary)", choices=WEIGHTINGS)
    supersample: int = _param(4, "sub-voxel samples per axis of 'partial' weighting", check=_AT_LEAST_ONE,
                              metavar="N")
    lattice_mm: float = _param(0.5, "template lattice spacing of 'trilinear' weighting", check=_POSITIVE,
                               metavar="MM")
    atlas_path: str | None = _param(None, "JHU label file for --roi jhu (default: $ALPS_JHU_ATLAS, $FSLDIR, "
                                    "Debian mricron-data)", metavar="FILE", flag="--atlas")
    fa_min: float | None = _param(None, "drop ROI voxels with FA below this", check=_UNIT, metavar="FA")
    purity_min: float | None = _param(None, "keep only ROI voxels whose principal eigenvector has at least "
                                      "this component along the expected axis", check=_UNIT, metavar="P")
    reg_se: bool = _param(True, "registration SEs alps_reg_se, alps_L_reg_se, alps_R_reg_se (the index over the "
                          "registration's sandwich covariance, alps.imaging.regse; about 0.2 s with spheres, about 20 s with "
                          "--roi jhu, whose labels are mapped again at 14 sigma points) and the totals "
                          "alps_total_se = sqrt(alps_se^2 + alps_reg_se^2)")
    qc_max_roi_sd: float = _param(QC_DEFAULTS["max_roi_sd"], "flag (reg_unstable) a scan whose largest ROI-centre SD "
                                  "from the registration exceeds this (default: ~ sphere radius / 1.96)",
                                  check=_POSITIVE, metavar="MM")
    qc_min_reg_corr: float = _param(QC_DEFAULTS["min_reg_corr"], "flag (not fail) a scan whose FA-WM "
                                    "correlation is below this", check=_UNIT, metavar="R")
    se_replicates: int = _param(200, "wild-bootstrap replicates of each scan's standard errors alps_se, "
                                "alps_L_se, alps_R_se (0: none; 200 take 0.2-0.5 s on a real 3 mm scan, 0.7 s at 2 mm)",
                                check=(lambda v: v == 0 or v >= 2, "0 or at least 2"), metavar="N")
    se_seed: int = _param(20260505, "random seed of the standard errors' bootstrap", metavar="N")
    se_max: float = _param(0.05, "flag (se_high) a scan whose alps_se exceeds this: its 95-percent interval "
                           "(+-0.1) is as wide as the group differences ALPS studies report (0.08-0.18); "
                           "the real 3 mm, 12-direction tilt scans give 0.02-0.04", check=_POSITIVE, metavar="SE")


@dataclass(frozen=True)
class PipelineParams:
    """Everything a cohort run is parameterised by: both stages and ``n_jobs``.

    Built from one flat mapping (the ``pipeline:`` config section, a notebook's ``pipeline``
    parameter, keyword arguments of :func:`alps.pipeline.run_cohort`) whose keys are the names
    of :class:`PreprocessParams`, :class:`MeasureParams` and ``n_jobs``.
    """

    preprocess: PreprocessParams = field(default_factory=PreprocessParams)
    measure: MeasureParams = field(default_factory=MeasureParams)
    n_jobs: int = 1

    def __post_init__(self):
        n = _coerce(self.n_jobs, int, "n_jobs", "pipeline parameters")
        if n < 1:
            raise ParameterError(f"pipeline parameters: parameter 'n_jobs' must be at least 1, got {self.n_jobs!r}")
        object.__setattr__(self, "n_jobs", n)

    @staticmethod
    def names() -> tuple[str, ...]:
        return PreprocessParams.names() + MeasureParams.names() + ("n_jobs",)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None = None, *, source: str = "pipeline parameters",
                     base: PipelineParams | None = None) -> PipelineParams:
        """Build from a flat mapping (over ``base``, default the defaults); unknown keys refused."""
        mapping = dict(mapping or {})
        _reject_unknown(mapping, cls.names(), source)
        base = base or cls()
        pre = {k: v for k, v in mapping.items() if k in PreprocessParams.names()}
        mea = {k: v for k, v in mapping.items() if k in MeasureParams.names()}
        try:
            return cls(preprocess=dataclasses.replace(base.preprocess, **pre),
                       measure=dataclasses.replace(base.measure, **mea),
                       n_jobs=mapping.get("n_jobs", base.n_jobs))
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}") from None

    def replace(self, **changes) -> PipelineParams:
        """A copy with flat ``changes`` (validated, unknown names refused)."""
        return self.from_mapping(changes, base=self)

    def flat(self) -> dict[str, Any]:
        """One flat ``{name: value}`` mapping (the inverse of :meth:`from_mapping`)."""
        return {**self.preprocess.as_dict(), **self.measure.as_dict(), "n_jobs": self.n_jobs}


def from_profile(profile: str = "default", overrides: Mapping[str, Any] | None = None,
                 *, what: str = "overrides") -> PipelineParams:
    """The ``pipeline:`` section of a profile (``config/<profile>.yaml``, or a YAML file's path,
    :func:`alps.paths.config_file`) overlaid by ``overrides`` (e.g. a
    notebook's ``pipeline`` parameter or the options of ``alps run``); every key validated.

    Without the repository's ``config/`` folder (an installed, not editable, package) the
    ``default`` profile is the parameter defaults; any other profile must exist."""
    from .. import config, paths

    try:
        path = paths.config_file(profile)
    except FileNotFoundError:
        if profile != "default" or paths.CONFIG_DIR.is_dir():
            raise
        params = PipelineParams()
    else:
        params = PipelineParams.from_mapping(config.section(profile, "pipeline"), source=f"{path} [pipeline]")
    return PipelineParams.from_mapping(overrides, source=f"pipeline {what}", base=params)


# ----------------------------------------------------------------------------- command line
def _fields_for_cli():
    yield from ((f, PreprocessParams) for f in fields(PreprocessParams))
    yield from ((f, MeasureParams) for f in fields(MeasureParams))


def _flag(f) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, names=None) -> None:
    """Add one option per pipeline parameter (and ``--n-jobs``), with its help text, choices and
    default. Every option defaults to ``None`` (= not given), so that the configuration profile
    and then the parameter defaults apply; :func:`from_args` collects what was given. ``names``:
    only these parameters (no ``--n-jobs``)."""
    group = parser.add_argument_group("pipeline parameters (defaults: the configuration profile, else "
                                      "the value shown)")
    hints = {**typing.get_type_hints(PreprocessParams), **typing.get_type_hints(MeasureParams)}
    for f, _ in _fields_for_cli():
        if names is not None and f.name not in names:
            continue
        kind = hints[f.name]
        md = f.metadata
        shown = "off" if f.default is False else "on" if f.default is True else f.default
        text = md["help"] if "(default:" in md["help"] else f"{md['help']} (default: {shown})"
        kw = dict(dest=f.name, default=None, help=text)
        if kind is bool:
            group.add_argument(_flag(f), action=argparse.BooleanOptionalAction, **kw)
            continue
        base = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
        kw["type"] = base[0]
        if md.get("choices"):
            kw["choices"] = list(md["choices"])
        if md.get("metavar"):
            kw["metavar"] = md["metavar"]
        group.add_argument(_flag(f), **kw)
    if names is None:
        group.add_argument("--n-jobs", dest="n_jobs", type=int, default=None, metavar="N",
                           help="scans processed in parallel (default: 1)")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline parameters given on the command line (options left at ``None`` omitted)."""
    return {name: getattr(args, name) for name in PipelineParams.names()
            if getattr(args, name, None) is not None}
