"""Loading, validating and merging the cohort tables used by the statistics notebooks.

Two tables are combined:

``participants.tsv``
    BIDS participants file (tab-separated, ``n/a`` for missing). Columns
    ``participant_id``, ``group`` (the labels the study design declares), usually ``age``
    (years) and ``sex`` (``F``/``M``), and the design's clinical columns (``n/a`` where a
    variable is not measured, e.g. in controls).
ALPS table
    Either the measured ``alps.tsv`` (``participant_id``, ``alps_L``, ``alps_R``, ``alps``,
    ``status`` ... ) or the simulation's ground truth (same ALPS columns, no ``status``; every
    row then counts as ``ok``).

:func:`merge_cohort` never drops a subject silently: every subject that is not in the merged
table appears in the returned exclusions table with a reason.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: Columns every ``participants.tsv`` must have (the study design, :mod:`alps.stats.design`, names
#: the groups, the covariates and the clinical columns).
PARTICIPANT_COLUMNS = ("participant_id", "group")
#: Numeric columns checked when no list is given (a column absent from the table is not required).
NUMERIC_PARTICIPANT_COLUMNS = ("age",)
#: Columns required in an ALPS table.
ALPS_COLUMNS = ("participant_id", "alps_L", "alps_R", "alps")
#: Columns of the exclusions table returned by :func:`merge_cohort`.
EXCLUSION_COLUMNS = ("participant_id", "group", "source", "reason")

_NA_VALUES = ["n/a", "N/A", "NA", "nan", "NaN", ""]


def read_tsv(path, what: str, *, text_columns=("participant_id",)) -> pd.DataFrame:
    """A BIDS-style TSV (``n/a`` and the like are missing; ``text_columns`` kept as text)."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    try:
        df = pd.read_csv(path, sep="\t", na_values=_NA_VALUES, keep_default_na=False,
                         dtype={c: str for c in text_columns})
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{what}: {path} is empty") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _require(df: pd.DataFrame, columns, what: str) -> None:
    """``what`` names the table (and its file, when read from one)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing required column(s) {missing}; "
                         f"found {list(df.columns)}")


#: BIDS entities that tell several series of one session apart (alps.tsv columns)
SERIES_ENTITIES = ("acq", "rec", "dir", "run")


def _check_ids(df: pd.DataFrame, what: str) -> None:
    ids = df["participant_id"]
    if ids.isna().any():
        rows = list(np.flatnonzero(ids.isna().to_numpy()) + 2)  # +2: header line, 1-based
        raise ValueError(f"{what}: empty participant_id on line(s) {rows}")
    dup = sorted(ids[ids.duplicated(keep=False)].unique())
    if dup:
        series = [c for c in SERIES_ENTITIES if c in df.columns and df.loc[ids.isin(dup), c].notna().any()]
        hint = ""
        if series:  # several series of one participant (run-/dir-/acq-): the analysis needs one row each
            hint = (f"; they are several series ({', '.join(f'{c}-' for c in series)}) of one participant: "
                    "run the pipeline on one of them (alps run --bids-filter-file, e.g. "
                    '{"dwi": {"direction": "PA"}}; a reverse phase-encoded partner still corrects it)')
        raise ValueError(f"{what}: duplicate participant_id(s) {dup}{hint}")


def _coerce_numeric(df: pd.DataFrame, columns, what: str) -> pd.DataFrame:
    """Convert ``columns`` to float; raise naming column and participant ids on bad values."""
    df = df.copy()
    problems = []
    for col in columns:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            ids = df.loc[bad, "participant_id"].tolist()
            vals = raw[bad].astype(str).tolist()
            problems.append(f"column '{col}': non-numeric value(s) {vals} for {ids}")
        df[col] = num.astype(float)
    if problems:
        raise ValueError(f"{what}: " + "; ".join(problems))
    return df


def load_participants(path, *, groups=None, numeric=None) -> pd.DataFrame:
    """Read and validate a BIDS ``participants.tsv``.

    Parameters
    ----------
    path : path-like
        The TSV file (``n/a`` marks missing values).
    groups : sequence of str, keyword-only
        Allowed labels of the ``group`` column (None: any label; the notebooks pass the design's).
    numeric : sequence of str, keyword-only
        Columns that must be present and numeric (the design's covariates and clinical columns);
        None: those of :data:`NUMERIC_PARTICIPANT_COLUMNS` that are present.

    Returns
    -------
    pandas.DataFrame
        One row per participant; ``participant_id``, ``group`` and ``sex`` as strings (stripped),
        the ``numeric`` columns as float (NaN where ``n/a``).

    Raises
    ------
    FileNotFoundError
        If the file does not exist (the message names it).
    ValueError
        Missing columns, duplicate or empty ids, unknown group labels, sex not ``F``/``M``,
        non-numeric clinical values (the message names column and participant ids).
    """
    what = "participants table"
    df = read_tsv(path, what)
    what = f"participants table ({path})"  # messages below name the file
    numeric = tuple(c for c in NUMERIC_PARTICIPANT_COLUMNS if c in df.columns) if numeric is None else tuple(numeric)
    _require(df, PARTICIPANT_COLUMNS + numeric, what)
    for col in ("participant_id", "group", "sex"):
        if col not in df.columns:
            continue
        df[col] = df[col].astype("string").str.strip().astype(object)
        df.loc[df[col].isna(), col] = np.nan
    _check_ids(df, what)
    bad_group = ~df["group"].isin(groups) if groups is not None else df["group"].isna()
    if bad_group.any():
        labels = sorted(df.loc[bad_group, "group"].astype(str).unique())
        ids = df.loc[bad_group, "participant_id"].tolist()
        raise ValueError(f"{what}: unknown group label(s) {labels} for {ids}; "
                         f"expected one of {list(groups)}")
    bad_sex = (df["sex"].notna() & ~df["sex"].isin(["F", "M"])) if "sex" in df.columns else pd.Series(False, index=df.index)
    if bad_sex.any():
        vals = sorted(df.loc[bad_sex, "sex"].astype(str).unique())
        ids = df.loc[bad_sex, "participant_id"].tolist()
        raise ValueError(f"{what}: column 'sex' must be 'F' or 'M', got {vals} for {ids}")
    return _coerce_numeric(df, numeric, what)


#: what :func:`select_session` does with a participant who has no scan of the chosen session:
#: ``strict`` excludes them (the exclusions table names the sessions they have); ``only-scan``
#: uses their scan when they have exactly one (e.g. a dataset where only some subjects have
#: ``ses-*`` folders) and excludes them, naming their sessions, when they have several.
SESSION_POLICIES = ("strict", "only-scan")


def _session_label(value) -> str:
    return value if isinstance(value, str) and value.strip() else "no session"


@dataclass(frozen=True)
class SessionSelection:
    """What :func:`select_session` returns: the ``table`` with one session per participant and the
    participants it ``excluded`` (``{participant_id: reason}``, which :func:`merge_cohort` reports
    through its ``session_excluded``). A typed record rather than ``DataFrame.attrs``, which pandas
    operations (``concat``, ``merge`` ...) drop: the reason would silently become "no row in the
    ALPS table"."""

    table: pd.DataFrame
    excluded: dict = field(default_factory=dict)


def select_session(df: pd.DataFrame, session: str | None, what: str, *, policy: str = "strict"
                   ) -> SessionSelection:
    """Keep one session per participant of a table with a ``session_id`` column.

    ``session=None`` keeps the table as it is when every participant has one row (a
    single-session dataset, or one session given per participant), and raises when a participant
    has several: the analysis must say which session it uses. ``session='ses-01'`` keeps the
    rows of that session; a participant without it is handled by ``policy`` (one of
    :data:`SESSION_POLICIES`). Returns a :class:`SessionSelection`: the rows kept and the
    participants left out, with the reason, which :func:`merge_cohort` reports.
    """
    if policy not in SESSION_POLICIES:
        raise ValueError(f"{what}: session policy {policy!r} unknown; choose from {list(SESSION_POLICIES)}")
    has = "session_id" in df.columns and df["session_id"].notna().any() and \
        (df["session_id"].astype("string").str.strip().fillna("") != "").any()
    if session in (None, ""):
        if has:
            ids = df["participant_id"]
            dup = sorted(ids[ids.duplicated(keep=False)].unique())
            if dup:
                sessions = sorted(df["session_id"].dropna().astype(str).unique())
                raise ValueError(f"{what}: {len(dup)} participant(s) have several sessions (e.g. {dup[:3]}); "
                                 f"choose one with session=... (sessions in the table: {sessions})")
        return SessionSelection(df)
    if not has:
        raise ValueError(f"{what}: session={session!r} asked for, but the table has no session_id values")
    sid = df["session_id"].astype("string").str.strip()
    keep = (sid == str(session)).fillna(False).to_numpy(bool)
    if not keep.any():
        sessions = sorted(sid.dropna().unique())
        raise ValueError(f"{what}: no row of session {session!r} (sessions in the table: {sessions})")
    chosen = set(df.loc[keep, "participant_id"])
    excluded = {}
    for pid, rows in df.loc[~df["participant_id"].isin(chosen)].groupby("participant_id", sort=True):
        have = ", ".join(sorted(_session_label(v) for v in rows["session_id"]))
        if policy == "only-scan" and len(rows) == 1:
            keep[df.index.get_loc(rows.index[0])] = True
        elif policy == "only-scan":
            excluded[pid] = f"no scan of {session}; {len(rows)} other scans ({have}), none chosen"
        else:
            excluded[pid] = f"no scan of {session} (has: {have}; session_policy 'only-scan' would use an only scan)"
    return SessionSelection(df.loc[keep].reset_index(drop=True), excluded)


def load_alps(path, *, session: str | None = None, session_policy: str = "strict") -> pd.DataFrame:
    """Read and validate an ALPS table (measured ``alps.tsv`` or the simulation ground truth).

    Parameters
    ----------
    path : path-like
        Tab-separated file with at least :data:`ALPS_COLUMNS`. A ``status`` column (``ok`` /
        ``failed``) is optional; when absent (ground truth) every row is ``ok``.
    session : str, keyword-only, optional
        For a multi-session table (``session_id`` column, as ``alps run`` writes for BIDS
        ``ses-*`` data): the session to analyse, e.g. ``'ses-01'`` (:func:`select_session`).

    Returns
    -------
    pandas.DataFrame
        The table with ALPS columns (and ``alps_scanner*`` when present) as float and a
        ``status`` column. Who the session choice left out: :func:`load_alps_sessions`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Missing columns, duplicate ids, a participant with several sessions and no ``session``
        chosen, a ``session`` not in the table, non-numeric ALPS values in rows whose status is
        ``ok``.
    """
    return load_alps_sessions(path, session=session, session_policy=session_policy).table


def load_alps_sessions(path, *, session: str | None = None, session_policy: str = "strict") -> SessionSelection:
    """:func:`load_alps` with the participants the session choice left out: a
    :class:`SessionSelection` (``table``: what :func:`load_alps` returns; ``excluded``:
    ``{participant_id: reason}``, to pass to :func:`merge_cohort` as ``session_excluded``)."""
    what = "ALPS table"
    df = read_tsv(path, what)
    what = f"ALPS table ({path})"
    _require(df, ALPS_COLUMNS, what)
    df["participant_id"] = df["participant_id"].astype("string").str.strip().astype(object)
    selection = select_session(df, session, what, policy=session_policy)
    df = selection.table
    _check_ids(df, what)
    if "status" not in df.columns:
        df["status"] = "ok"
    df["status"] = df["status"].astype("string").fillna("n/a").str.strip().astype(object)
    value_cols = [c for c in df.columns if c.startswith("alps")]
    ok = df["status"] == "ok"
    checked = _coerce_numeric(df.loc[ok, ["participant_id", *value_cols]], value_cols, what)
    for col in value_cols:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        df.loc[ok, col] = checked[col]
    return SessionSelection(df, selection.excluded)


def merge_cohort(alps_df: pd.DataFrame, participants_df: pd.DataFrame, *,
                 value_col: str = "alps", session_excluded=None, _stacklevel: int = 2
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge an ALPS table with the participants table, reporting every excluded subject.

    Parameters
    ----------
    alps_df : pandas.DataFrame
        Output of :func:`load_alps`.
    participants_df : pandas.DataFrame
        Output of :func:`load_participants`.
    value_col : str, keyword-only
        ALPS column that must be finite for a subject to be analysed (default ``alps``).
    session_excluded : mapping, keyword-only, optional
        ``{participant_id: reason}`` of the participants whose scans a session choice left out
        (:attr:`SessionSelection.excluded` of :func:`load_alps_sessions`): their exclusion gives
        that reason instead of "no row in the ALPS table".

    Returns
    -------
    df : pandas.DataFrame
        Participants with ``status == 'ok'`` and a finite ``value_col`` that are in both tables
        (participants columns first, then the ALPS columns), sorted as in ``participants_df``.
    exclusions : pandas.DataFrame
        Columns :data:`EXCLUSION_COLUMNS`: one row per subject not in ``df`` with the reason
        (``scan failed: <its error>``, missing ALPS value, no scan of the chosen session, only in
        one of the two tables). A :class:`UserWarning` summarises the exclusions when there are
        any.
    """
    _require(alps_df, ALPS_COLUMNS + ("status",), "ALPS table")
    _require(participants_df, ("participant_id", "group"), "participants table")
    for name, d in (("ALPS table", alps_df), ("participants table", participants_df)):
        _check_ids(d, name)
    if value_col not in alps_df.columns:
        raise ValueError(f"ALPS table: no column '{value_col}'")
    group_of = dict(zip(participants_df["participant_id"], participants_df["group"]))
    alps_ids = set(alps_df["participant_id"])
    part_ids = set(participants_df["participant_id"])
    rows = []
    by_session = dict(session_excluded or {})
    for pid in participants_df["participant_id"]:
        if pid not in alps_ids:
            rows.append((pid, group_of[pid], "participants", by_session.get(pid, "no row in the ALPS table")))
    for _, r in alps_df.iterrows():
        pid = r["participant_id"]
        grp = group_of.get(pid, np.nan)
        if pid not in part_ids:
            rows.append((pid, grp, "alps", "not in participants table"))
        elif r["status"] == "failed":
            err = r.get("error")
            rows.append((pid, grp, "alps", f"scan failed: {err}" if isinstance(err, str) and err
                         else "scan failed (no error recorded)"))
        elif r["status"] != "ok":
            err = r.get("error")
            rows.append((pid, grp, "alps", f"ALPS status '{r['status']}' (not ok)"
                         + (f": {err}" if isinstance(err, str) and err else "")))
        elif not np.isfinite(r[value_col]):
            rows.append((pid, grp, "alps", f"ALPS value '{value_col}' missing"))
    exclusions = pd.DataFrame(rows, columns=list(EXCLUSION_COLUMNS))
    excluded = set(exclusions["participant_id"])
    alps_keep = alps_df[~alps_df["participant_id"].isin(excluded)]
    # columns in both tables: ALPS measures/status come from the ALPS table, the rest from
    # participants.tsv
    overlap = (set(alps_keep.columns) & set(participants_df.columns)) - {"participant_id"}
    from_alps = {c for c in overlap if c.startswith("alps") or c == "status"}
    part = participants_df.drop(columns=sorted(from_alps))
    alps_keep = alps_keep.drop(columns=sorted(overlap - from_alps))
    df = part.merge(alps_keep, on="participant_id", how="inner", validate="one_to_one")
    df = df.reset_index(drop=True)
    if len(exclusions):
        summary = "; ".join(f"{p} ({why})" for p, _, _, why in rows)
        warnings.warn(f"merge_cohort: {len(exclusions)} subject(s) excluded: {summary}",
                      UserWarning, stacklevel=_stacklevel)
    return df, exclusions


def load_cohort(alps_path, participants_path, *, session: str | None = None, session_policy: str = "strict",
                groups=None, numeric=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``merge_cohort(load_alps(alps_path, session=..., session_policy=...),
    load_participants(participants_path, groups=groups, numeric=numeric))``, the participants the
    session choice left out reported with that reason (:func:`load_alps_sessions`); ``session`` picks one
    session of a multi-session ALPS table, ``session_policy`` what to do with participants without
    it (:func:`select_session`)."""
    alps = load_alps_sessions(alps_path, session=session, session_policy=session_policy)
    return merge_cohort(alps.table, load_participants(participants_path, groups=groups, numeric=numeric),
                        session_excluded=alps.excluded, _stacklevel=3)
