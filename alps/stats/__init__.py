"""Statistics of the DTI-ALPS study, one module per test family: Table 1 (:mod:`.demographics`),
group tests and post hoc (:mod:`.groups`), ANCOVA (:mod:`.ancova`), regression
(:mod:`.regression`), correlations (:mod:`.correlation`), mediation (:mod:`.mediation`), shared
building blocks (:mod:`.effects`, :mod:`._prepare`) and the reproduced study's published values
and headline numbers (:mod:`.study`).

The statistics libraries (pingouin, statsmodels, scikit-posthocs, neuroCombat, scipy's Tukey HSD)
are called in one module, :mod:`._libs`, which renames their output, so every function returns
tidy DataFrames with stable snake_case columns (documented per function); no other module of
:mod:`alps` imports them (``tests/test_architecture.py``).

Conventions
-----------
* Data are the first positional argument (a merged cohort table from
  :func:`alps.io.tables.merge_cohort`); every option is keyword-only; random seeds are
  parameters.
* Inputs are validated (missing columns, unknown group labels, too few subjects, missing
  values) and problems raise :class:`StatsInputError` (a :class:`ValueError`) with a message
  naming the column / labels / participant ids. Data too few for an analysis (the minimum sizes
  of :mod:`.sizes`, an empty group, a constant regressor) raise its subclass
  :class:`InsufficientData`, on which the notebooks skip the analysis with a note in its table
  (:func:`skipped_table`); results from small samples carry a ``caution`` column (:mod:`.sizes`).
* Missing values: ``nan_policy='raise'`` (default) raises naming the subjects;
  ``nan_policy='omit'`` drops them, emits a :class:`UserWarning` and lists them in the returned
  record: an analysis returns a frozen :class:`Result` (its tidy ``table`` and its
  ``exclusions``, a DataFrame ``participant_id, group, analysis, reason``; :func:`regression`
  returns :class:`Regression`, :func:`harmonise` :class:`Harmonised`), never a side channel in
  ``DataFrame.attrs``, which pandas operations drop; :func:`exclusions` stacks several results. Values that are missing *by design*
  (e.g. a score collected in one group only, clinical variables in controls) are not exclusions: the analysis is
  simply restricted to the groups where the variable exists.
* The study design (:mod:`.design`, the ``design:`` section of the profile) names the groups, the
  patient subgroup contrast, the covariates and clinical variables; without it the functions use
  every group label present (order of appearance) and need the study's variables as arguments.
* Coding: the contrast regressor = 1 for its level, 0 for its reference; ``sex`` = 0 for F, 1 for M.

References
----------
Hou et al., Chin J Magn Reson Imaging 2026 (the reproduced study);
Welch (1951) Biometrika 38:330; Games & Howell (1976) J Educ Stat 1:113; Dunn (1964)
Technometrics 6:241; Holm (1979) Scand J Stat 6:65; Benjamini & Hochberg (1995) JRSS-B 57:289;
Hedges & Olkin (1985) Statistical Methods for Meta-Analysis; Olejnik & Algina (2003) Psychol
Methods 8:434 (eta2/omega2); Long & Ervin (2000) Am Stat 54:217 (HC3); Breusch & Pagan (1979)
Econometrica 47:1287; Efron & Tibshirani (1993) An Introduction to the Bootstrap (BC interval);
Preacher & Hayes (2008) Behav Res Methods 40:879 (bootstrap mediation).
"""

from . import sizes
from ._prepare import EXCLUSION_COLUMNS, InsufficientData, Result, StatsInputError, exclusions
from .ancova import ancova
from .correlation import correlations
from .demographics import demographics
from .design import StudyDesign
from .effects import bc_interval, bh_fdr, fisher_exact_rx2, hedges_g
from .groups import group_tests, posthoc
from .harmonise import Harmonised, harmonise
from .mediation import mediation
from .regression import Regression, regression, regression_data
from .reliability import bland_altman, consistency, icc, reliability_table
from .sizes import skipped_table, table_note
from .study import Headline, headline_numbers, headline_quantities, headline_values, reproduction_table, truth_intervals

__all__ = [
    "StatsInputError", "InsufficientData", "sizes", "skipped_table", "table_note", "StudyDesign", "harmonise", "Harmonised", "Result", "EXCLUSION_COLUMNS", "exclusions", "demographics", "group_tests",
    "posthoc", "ancova", "regression", "regression_data", "Regression", "correlations", "mediation", "headline_numbers",
    "Headline", "headline_quantities", "headline_values", "reproduction_table", "truth_intervals", "fisher_exact_rx2", "bh_fdr", "bc_interval", "hedges_g",
    "reliability_table", "consistency", "icc", "bland_altman",
]
