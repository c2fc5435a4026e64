"""Input validation shared by the statistics: columns, groups, coding, missing values, and the
:class:`Result` record in which an analysis returns its table together with the subjects it excluded."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps



class StatsInputError(ValueError):
    """Invalid input to an :mod:`alps.stats` function (message says what and who)."""


class InsufficientData(StatsInputError):
    """Valid input with too little in it for the analysis: too few subjects (the rules of
    :mod:`alps.stats.sizes`), a group without subjects, a regressor that does not vary. The
    notebooks skip the analysis with this message as the note of its table
    (:func:`alps.stats.sizes.skipped_table`) instead of stopping the series."""


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, str):
        return (x,)
    return tuple(x)


def _require_columns(df, cols, where: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise StatsInputError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise StatsInputError(f"{where}: missing column(s) {missing}; available: "
                              f"{list(df.columns)}")


def _check_groups(df, group_col: str, groups, where: str) -> None:
    """Every requested group has subjects, and no subject lacks a group label. Which labels a study
    has is the design's business (:meth:`alps.stats.design.StudyDesign.check_cohort`)."""
    _require_columns(df, [group_col], where)
    labels = set(df[group_col].dropna().astype(str))
    if df[group_col].isna().any():
        raise StatsInputError(f"{where}: missing group label for {_ids(df[df[group_col].isna()])}")
    absent = [g for g in groups if g not in labels]
    if absent:
        raise InsufficientData(f"{where}: group(s) {absent} have no subjects (unknown group label in "
                              f"'{group_col}'? labels present: {sorted(labels)})")


def _groups(df, groups, group_col: str, where: str) -> tuple:
    """``groups`` as a tuple, or (None) every label of ``group_col`` in order of first appearance."""
    if groups is not None:
        return tuple(groups)
    _require_columns(df, [group_col], where)
    return tuple(dict.fromkeys(df[group_col].dropna().astype(str)))


def _ids(df, id_col="participant_id") -> list:
    if id_col in df.columns:
        return df[id_col].astype(str).tolist()
    return [f"row {i}" for i in df.index]


def _numeric(df, cols, where: str) -> pd.DataFrame:
    out = df.copy()
    for c in cols:
        try:
            out[c] = pd.to_numeric(out[c], errors="raise").astype(float)
        except (ValueError, TypeError) as exc:
            bad = pd.to_numeric(out[c], errors="coerce").isna() & out[c].notna()
            raise StatsInputError(f"{where}: column '{c}' is not numeric for "
                                  f"{_ids(out[bad])}") from exc
    return out


def _code_sex(series: pd.Series, where: str) -> pd.Series:
    """F -> 0, M -> 1 (already-numeric 0/1 accepted)."""
    if pd.api.types.is_numeric_dtype(series):
        bad = series.notna() & ~series.isin([0, 1])
        if bad.any():
            raise StatsInputError(f"{where}: numeric 'sex' must be 0 (F) or 1 (M)")
        return series.astype(float)
    s = series.astype("string").str.strip().str.upper()
    coded = s.map({"F": 0.0, "M": 1.0})
    bad = s.notna() & coded.isna()
    if bad.any():
        raise StatsInputError(f"{where}: 'sex' must be F or M, got {sorted(set(s[bad]))}")
    return coded.astype(float)


def _prepare(df, cols, *, where, group_col="group", groups=None, id_col="participant_id",
             nan_policy="raise", derive=(), contrast=None):
    """Subset to ``groups``, derive coded columns (``contrast = (name, level, reference)``: ``name``
    = 1 for ``level``, 0 otherwise), check numeric, handle NaNs.

    Returns (clean_df, exclusion_records).
    """
    if nan_policy not in ("raise", "omit"):
        raise StatsInputError(f"{where}: nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    groups = tuple(groups) if groups is not None else None
    base = [c for c in cols if c not in derive]
    _require_columns(df, base + ([group_col] if groups is not None else []), where)
    if groups is not None:
        _check_groups(df, group_col, groups, where)
        df = df[df[group_col].isin(groups)]
    df = df.copy()
    if contrast is not None and contrast[0] in derive:
        df[contrast[0]] = (df[group_col] == contrast[1]).astype(float)
    if "sex" in cols:
        df["sex"] = _code_sex(df["sex"], where)
    df = _numeric(df, [c for c in cols], where)
    miss = df[list(cols)].isna().any(axis=1)
    records = []
    if miss.any():
        bad = df[miss]
        detail = {pid: [c for c in cols if pd.isna(row[c])]
                  for pid, (_, row) in zip(_ids(bad, id_col), bad.iterrows())}
        if nan_policy == "raise":
            raise StatsInputError(
                f"{where}: missing values (NaN) in " + "; ".join(
                    f"{p}: {v}" for p, v in detail.items())
                + " — fix the data or pass nan_policy='omit' to exclude and report them")
        for pid, (_, row) in zip(_ids(bad, id_col), bad.iterrows()):
            records.append({"participant_id": pid,
                            "group": row.get(group_col, np.nan),
                            "analysis": where,
                            "reason": "missing " + ", ".join(detail[pid])})
        warnings.warn(f"{where}: excluded {len(records)} subject(s) with missing values: "
                      + "; ".join(f"{r['participant_id']} ({r['reason']})" for r in records),
                      UserWarning, stacklevel=3)
        df = df[~miss]
    return df, records


#: Columns of :attr:`Result.exclusions`.
EXCLUSION_COLUMNS = ("participant_id", "group", "analysis", "reason")


def _exclusion_table(records=()) -> pd.DataFrame:
    return pd.DataFrame(list(records), columns=list(EXCLUSION_COLUMNS))


@dataclass(frozen=True)
class Result:
    """What an analysis of :mod:`alps.stats` returns: its tidy ``table`` and the ``exclusions``, the
    subjects it left out for missing values (``nan_policy='omit'``; columns
    :data:`EXCLUSION_COLUMNS`, empty when none).

    Why a record: the exclusions used to travel in ``table.attrs``, which pandas marks
    experimental — ``pd.concat``, ``merge`` and other operations drop or propagate it
    unpredictably, so the list could vanish between the analysis and the notebook that shows it.
    A frozen record returned explicitly keeps both, typed, while the table stays a plain tidy
    DataFrame (``result.table``); it is the least disruptive of the explicit designs: one return
    value as before, no out-parameter, no second call that repeats the analysis to find who it
    dropped.
    """

    table: pd.DataFrame
    exclusions: pd.DataFrame = field(default_factory=_exclusion_table)

    @classmethod
    def of(cls, table: pd.DataFrame, records=()) -> "Result":
        """A result from its table and exclusion records (``{participant_id, group, analysis, reason}``)."""
        return cls(table, _exclusion_table(records))

    @classmethod
    def skipped(cls, analysis: str, reason) -> "Result":
        """The result of an analysis that is not run: the table of
        :func:`alps.stats.sizes.skipped_table` (its ``note``), nobody excluded."""
        from .sizes import skipped_table

        return cls(skipped_table(analysis, reason))


def exclusions(*results) -> pd.DataFrame:
    """The subjects excluded inside one or more analyses (their :attr:`Result.exclusions`,
    stacked, duplicates dropped): columns :data:`EXCLUSION_COLUMNS`."""
    tables = [r.exclusions for r in results if len(r.exclusions)]
    if not tables:
        return _exclusion_table()
    return pd.concat(tables, ignore_index=True).drop_duplicates(ignore_index=True)


def _shapiro_p(x) -> float:
    x = np.asarray(x, float)
    if len(x) < 3 or np.ptp(x) == 0:
        return float("nan")
    return float(sps.shapiro(x).pvalue)
