"""The declared study design: which groups, contrasts, covariates, clinical variables and analyses a
cohort's statistics run — one typed, frozen object read from the ``design:`` section of
``config/<profile>.yaml`` (or a notebook's ``design`` mapping).

Nothing in :mod:`alps.stats`, the notebooks, the figures or the report names a diagnostic group:
they ask the design. The default profile's design reproduces the study (Hou et al. 2026: MO, VM,
HC); another lab declares its own (AD/MCI/SCD/HC, two groups, no clinical scores) in its profile.
Analyses the design does not declare (no clinical variables → no regression, correlations or
mediation) are *skipped*, and :meth:`StudyDesign.skipped` says why, for the notebooks and the report.

Every value is checked when the object is made and an unknown key is refused with its name, where
it came from and the allowed names (:func:`alps.config.reject_unknown`, shared with the pipeline's
parameters)::

    >>> StudyDesign.from_mapping({"groups": [{"label": "A"}, {"label": "B"}], "covarites": []})
    Traceback (most recent call last):
    ParameterError: design: unknown parameter 'covarites' (did you mean 'covariates'?); allowed: ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..config import ParameterError, reject_unknown

__all__ = ["StudyDesign", "Group", "Variable", "Contrast", "Correlations", "Mediation", "Regression",
           "MULTIPLE_COMPARISON_METHODS", "from_profile"]

#: methods of :func:`statsmodels.stats.multitest.multipletests` a family may be corrected with
MULTIPLE_COMPARISON_METHODS = ("fdr_bh", "holm", "bonferroni", "fdr_by", "sidak", "holm-sidak", "none")


def _tuple(value, what: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)):
        raise ParameterError(f"{what}: expected a list, got {value!r}")
    return tuple(value)


def _mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParameterError(f"{what}: expected a mapping, got {value!r}")
    return dict(value)


def _str(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParameterError(f"{what}: expected a non-empty string, got {value!r}")
    return value


def _build(cls, value, what: str):
    m = _mapping(value, what)
    reject_unknown(m, cls.__dataclass_fields__, what)
    return cls(**m)


@dataclass(frozen=True)
class Group:
    """One diagnostic group: its ``label`` in the group column and its ``name`` in words."""

    label: str
    name: str = ""

    def __post_init__(self):
        _str(self.label, "design.groups: label")
        object.__setattr__(self, "name", str(self.name or self.label))


@dataclass(frozen=True)
class Variable:
    """A clinical variable: column ``name``, ``label`` in words, ``unit`` and the short ``key`` of
    the headline numbers (``reg_b_<key>``, ``r_<group>_<key>``; default: the column name)."""

    name: str
    label: str = ""
    unit: str = ""
    key: str = ""

    def __post_init__(self):
        _str(self.name, "design.clinical: name")
        object.__setattr__(self, "label", str(self.label or self.name))
        object.__setattr__(self, "key", str(self.key or self.name))


@dataclass(frozen=True)
class Contrast:
    """The patient subgroup contrast: regressor ``name`` = 1 for ``level``, 0 for ``reference``."""

    name: str
    level: str
    reference: str


@dataclass(frozen=True)
class Regression:
    """The regression of ALPS on ``predictors`` (clinical variables and/or the contrast's name) in
    the ``groups`` (default: the patients), adjusted for the design's covariates."""

    predictors: tuple = ()
    groups: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "predictors", _tuple(self.predictors, "design.regression.predictors"))
        object.__setattr__(self, "groups", _tuple(self.groups, "design.regression.groups"))
        if not self.predictors:
            raise ParameterError("design.regression: 'predictors' is empty (leave the section out, or null, for none)")


@dataclass(frozen=True)
class Correlations:
    """Correlation families: ALPS with each of ``variables`` within each of ``groups`` (bivariate,
    and partial on ``partial_covariates``); ``headline``: ``[group, variable]`` pairs reported in the
    reproduction table."""

    groups: tuple = ()
    variables: tuple = ()
    partial_covariates: tuple = ()
    headline: tuple = ()

    def __post_init__(self):
        for f in ("groups", "variables", "partial_covariates"):
            object.__setattr__(self, f, _tuple(getattr(self, f), f"design.correlations.{f}"))
        pairs = tuple(tuple(_tuple(p, "design.correlations.headline")) for p in _tuple(self.headline, "h"))
        if any(len(p) != 2 for p in pairs):
            raise ParameterError(f"design.correlations.headline: expected [group, variable] pairs, got {self.headline!r}")
        object.__setattr__(self, "headline", pairs)
        if not self.groups or not self.variables:
            raise ParameterError("design.correlations: 'groups' and 'variables' are required")


@dataclass(frozen=True)
class Mediation:
    """Simple mediation ``x → m → y`` within ``groups``, adjusted for ``covariates``."""

    x: str
    y: str
    m: str = "alps"
    covariates: tuple = ()
    groups: tuple = ()

    def __post_init__(self):
        for f in ("covariates", "groups"):
            object.__setattr__(self, f, _tuple(getattr(self, f), f"design.mediation.{f}"))


@dataclass(frozen=True)
class StudyDesign:
    """A study's design (see the module docstring); build with :meth:`from_mapping`.

    Attributes
    ----------
    groups : tuple of Group
        Analysis order of the groups (the order of every table's per-group columns).
    display_order : tuple of str
        Order of the groups in figures (default: ``groups``).
    group_column : str
        Column of ``participants.tsv`` holding the labels.
    site_column : str
        Column of ``participants.tsv`` naming each subject's site/scanner (ComBat harmonisation
        runs when it is present with ≥ 2 sites).
    reference : str or None
        The control group (default: the last group).
    patients : tuple of str
        Groups with clinical scores (default: every group but ``reference``).
    contrast : Contrast or None
        The patient subgroup contrast (e.g. VM vs MO), or None.
    covariates : tuple of str
        Covariates of the ANCOVA and the regression (``sex`` coded F=0/M=1).
    clinical : tuple of Variable
        Clinical variables with their units (Table 1 and the analyses that use them).
    regression, correlations, mediation
        The analyses to run, or None to skip them.
    multiple_comparisons : dict
        Correction per family: ``correlations`` (default ``fdr_bh``) and ``dunn`` (default
        ``holm``), each one of :data:`MULTIPLE_COMPARISON_METHODS`.
    published : dict
        Published values quoted for the reproduction table's ``paper`` column (typed in from the
        paper, not results).
    """

    groups: tuple
    display_order: tuple = ()
    group_column: str = "group"
    site_column: str = "site"
    reference: str | None = None
    patients: tuple = ()
    contrast: Contrast | None = None
    covariates: tuple = ("age", "sex")
    clinical: tuple = ()
    regression: Regression | None = None
    correlations: Correlations | None = None
    mediation: Mediation | None = None
    multiple_comparisons: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *, source: str = "design") -> StudyDesign:
        """Build from a ``design:`` mapping; unknown keys (at any level) are refused."""
        m = _mapping(mapping, source)
        reject_unknown(m, cls.names(), source)
        if "groups" not in m:
            raise ParameterError(f"{source}: 'groups' is required (a list of {{label, name}})")
        try:
            m["groups"] = tuple(_build(Group, g if isinstance(g, Mapping) else {"label": g}, f"{source}.groups")
                                for g in _tuple(m["groups"], f"{source}.groups"))
            m["clinical"] = tuple(_build(Variable, v if isinstance(v, Mapping) else {"name": v},
                                         f"{source}.clinical") for v in _tuple(m.get("clinical"), f"{source}.clinical"))
            for name, kind in (("contrast", Contrast), ("regression", Regression),
                               ("correlations", Correlations), ("mediation", Mediation)):
                if m.get(name) is not None:
                    m[name] = _build(kind, m[name], f"{source}.{name}")
            for name in ("display_order", "patients", "covariates"):
                if name in m:
                    m[name] = _tuple(m[name], f"{source}.{name}")
            return cls(**m)
        except TypeError as exc:  # a required key of a section is missing
            raise ParameterError(f"{source}: {exc}") from None
        except ParameterError as exc:
            raise ParameterError(f"{exc}" if str(exc).startswith(source) else f"{source}: {exc}") from None

    def __post_init__(self):
        labels = self.labels
        if len(labels) < 2:
            raise ParameterError(f"design: need at least 2 groups, got {list(labels)}")
        if len(set(labels)) != len(labels):
            raise ParameterError(f"design: duplicate group labels in {list(labels)}")
        ref = self.reference if self.reference is not None else labels[-1]
        object.__setattr__(self, "reference", ref)
        object.__setattr__(self, "display_order", tuple(self.display_order) or labels)
        object.__setattr__(self, "patients", tuple(self.patients) or tuple(g for g in labels if g != ref))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        mc = _mapping(self.multiple_comparisons, "design.multiple_comparisons")
        reject_unknown(mc, ("correlations", "dunn"), "design.multiple_comparisons")
        mc = {"correlations": "fdr_bh", "dunn": "holm", **mc}
        for fam, method in mc.items():
            if method not in MULTIPLE_COMPARISON_METHODS:
                raise ParameterError(f"design.multiple_comparisons: '{fam}' must be one of "
                                     f"{list(MULTIPLE_COMPARISON_METHODS)}, got {method!r}")
        object.__setattr__(self, "multiple_comparisons", mc)
        object.__setattr__(self, "published", _mapping(self.published, "design.published"))
        self._check_labels(ref, "reference")
        for name in ("display_order", "patients"):
            for g in getattr(self, name):
                self._check_labels(g, name)
        if sorted(self.display_order) != sorted(labels):
            raise ParameterError(f"design: display_order {list(self.display_order)} must list every group {list(labels)}")
        if self.contrast is not None:
            for g in (self.contrast.level, self.contrast.reference):
                self._check_labels(g, "contrast")
        clinical = {v.name for v in self.clinical}
        if self.regression is not None:
            for g in self.regression.groups:
                self._check_labels(g, "regression.groups")
            known = clinical | set(self.covariates) | ({self.contrast.name} if self.contrast else set())
            bad = [p for p in self.regression.predictors if p not in known]
            if bad:
                raise ParameterError(f"design.regression: predictor(s) {bad} are not clinical variables, covariates "
                                     f"or the contrast; declared: {sorted(known)}")
        if self.correlations is not None:
            for g in self.correlations.groups:
                self._check_labels(g, "correlations.groups")
            bad = [v for v in self.correlations.variables if v not in clinical]
            if bad:
                raise ParameterError(f"design.correlations: variable(s) {bad} are not declared clinical variables "
                                     f"{sorted(clinical)}")
            for g, v in self.correlations.headline:
                if g not in self.correlations.groups or v not in self.correlations.variables:
                    raise ParameterError(f"design.correlations.headline: [{g}, {v}] is not one of the families")
        if self.mediation is not None:
            for g in self.mediation.groups:
                self._check_labels(g, "mediation.groups")

    def _check_labels(self, g, where):
        if g not in self.labels:
            raise ParameterError(f"design.{where}: unknown group {g!r}; groups: {list(self.labels)}")

    # ------------------------------------------------------------------ questions
    @property
    def labels(self) -> tuple[str, ...]:
        """Group labels in analysis order."""
        return tuple(g.label for g in self.groups)

    def name_of(self, label: str) -> str:
        """The group's name in words."""
        return {g.label: g.name for g in self.groups}.get(label, label)

    def variable(self, name: str) -> Variable:
        """The clinical variable ``name`` (an undeclared column gets its own name as label)."""
        return {v.name: v for v in self.clinical}.get(name) or Variable(name)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """Columns of ``participants.tsv`` that must be numeric: covariates but ``sex``, clinical."""
        return tuple(c for c in self.covariates if c != "sex") + self.clinical_names

    @property
    def clinical_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.clinical)

    @property
    def regression_groups(self) -> tuple[str, ...]:
        return (self.regression.groups or self.patients) if self.regression else ()

    @property
    def mediation_groups(self) -> tuple[str, ...]:
        return (self.mediation.groups or self.patients) if self.mediation else ()

    def contrast_tuple(self):
        """``(name, level, reference)`` of the subgroup contrast, or None."""
        c = self.contrast
        return (c.name, c.level, c.reference) if c else None

    # ------------------------------------------------------------------ arguments of the analyses
    def demographics_kwargs(self) -> dict:
        """Table 1: numeric covariates and the clinical variables; ``sex`` as the categorical."""
        cont = tuple(c for c in self.covariates if c != "sex") + self.clinical_names
        return {"groups": self.labels, "group_col": self.group_column, "continuous": cont,
                "categorical": ("sex",) if "sex" in self.covariates else ()}

    def harmonise_kwargs(self) -> dict:
        """:func:`~alps.stats.harmonise`: the site column; the group and covariates preserved."""
        return {"site_col": self.site_column, "group_col": self.group_column, "covariates": self.covariates}

    def has_sites(self, df) -> bool:
        """Whether ``df`` has the site column with at least two sites."""
        return self.site_column in df.columns and df[self.site_column].dropna().nunique() >= 2

    def group_kwargs(self) -> dict:
        """:func:`~alps.stats.group_tests`, :func:`~alps.stats.ancova` (+ ``covariates``)."""
        return {"groups": self.labels, "group_col": self.group_column}

    def posthoc_kwargs(self) -> dict:
        return {**self.group_kwargs(), "p_adjust": self.multiple_comparisons["dunn"]}

    def ancova_kwargs(self) -> dict:
        return {**self.group_kwargs(), "covariates": self.covariates}

    def regression_kwargs(self) -> dict:
        """:func:`~alps.stats.regression` and :func:`~alps.stats.regression_data`."""
        r = self._need("regression")
        return {"predictors": r.predictors, "covariates": self.covariates, "groups": self.regression_groups,
                "contrast": self.contrast_tuple(), "group_col": self.group_column}

    def correlation_kwargs(self) -> dict:
        c = self._need("correlations")
        return {"groups": c.groups, "y": c.variables, "partial_covariates": c.partial_covariates,
                "p_adjust": self.multiple_comparisons["correlations"], "group_col": self.group_column}

    def mediation_kwargs(self) -> dict:
        md = self._need("mediation")
        return {"x": md.x, "m": md.m, "y": md.y, "covariates": md.covariates, "groups": self.mediation_groups,
                "group_col": self.group_column}

    def _need(self, name):
        value = getattr(self, name)
        if value is None:
            raise ParameterError(f"design: no '{name}' declared ({self.skipped()[name]})")
        return value

    def check_cohort(self, df) -> None:
        """Raise :class:`~alps.stats.StatsInputError` naming any label of the group column the design
        does not declare (and the subjects carrying it)."""
        from ._prepare import StatsInputError, _require_columns

        _require_columns(df, [self.group_column], "design")
        bad = ~df[self.group_column].isin(self.labels)
        if bad.any():
            labels = sorted(df.loc[bad, self.group_column].astype(str).unique())
            ids = df.loc[bad, "participant_id"].astype(str).tolist() if "participant_id" in df else []
            raise StatsInputError(f"design: unknown group label(s) {labels} in '{self.group_column}' for {ids}; "
                                  f"the design declares {list(self.labels)}")

    def skipped(self) -> dict[str, str]:
        """Analyses this design does not run, each with the reason (for notebooks and the report)."""
        out = {}
        why = "the design declares no clinical variables" if not self.clinical else "not declared in the design"
        for name, title in (("regression", "regression"), ("correlations", "correlations"),
                            ("mediation", "mediation")):
            if getattr(self, name) is None:
                out[name] = f"{title} skipped: {why}"
        return out


def from_profile(profile: str = "default") -> StudyDesign:
    """The ``design:`` section of a profile (:func:`alps.paths.config_file`) as a :class:`StudyDesign`."""
    from .. import config, paths

    return StudyDesign.from_mapping(config.section(profile, "design"),
                                    source=f"{paths.config_file(profile)} [design]")
