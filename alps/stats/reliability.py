"""Reliability of the ALPS index over repeated scans of the same people (test-retest, sessions,
slab tilts): ICC, within-subject CV, and whether the scans differ by more than their noise.

Input: ``alps.tsv`` rows (one per scan) with ``participant_id``, ``session_id`` (the repeat; the
same label across participants makes the design crossed, as ICC(2,1)/(3,1) need), the indices
and, for the noise comparison, their per-scan standard errors ``<index>_se``
(:mod:`alps.pipeline.uncertainty`). Only ``status == 'ok'`` rows with a finite value are used.

Per participant and index (:func:`consistency`)
    ``n_scans``, ``mean``, within-subject SD ``sd_within`` (``ddof = 1``), ``cv_within`` =
    ``sd_within / mean``, ``spread`` = max − min, and from the SEs ``σ_i`` Cochran's
    ``Q = Σ (x_i − x̄_w)² / σ_i²`` (χ² with ``n − 1`` df under noise alone), its p value ``q_p`` and
    the noise-only spread (mean ``noise_spread`` and 95th percentile ``noise_spread_q95`` of
    max − min of independent ``N(0, σ_i²)``, Monte Carlo; ``spread_p`` the probability that noise
    alone gives a spread at least as large as the observed one), all from
    :func:`alps.imaging.noise.spread_consistency`.

Cohort rows (``participant_id = 'all'``, :func:`reliability_table`)
    ICC(2,1) — two-way random effects, absolute agreement, single measurement — and ICC(3,1) —
    two-way mixed, consistency, single measurement (Shrout & Fleiss 1979; McGraw & Wong 1996,
    whose ICC(A,1) and ICC(C,1) they are), with 95 % CIs, by :func:`pingouin.intraclass_corr`
    (its CIs are rounded to 2 decimals). Participants missing a session are dropped from the
    ICC (pingouin's ``nan_policy='omit'``). With the mean squares of the two-way ANOVA
    (targets × sessions), ``ICC(3,1) = (MS_R − MS_E) / (MS_R + (k−1) MS_E)`` and
    ``ICC(2,1) = (MS_R − MS_E) / (MS_R + (k−1) MS_E + k (MS_C − MS_E) / n)``.
    ``cv_within`` is the root mean square of the participants' CVs (Glüer et al. 1995);
    ``sd_within`` the root mean square of their SDs; Q and its df are summed over participants
    (independent χ² variables), ``spread`` / ``noise_spread`` are their means (``spread_p`` NaN).

References
----------
Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater reliability. Psychol Bull
1979;86:420-428. McGraw KO, Wong SP. Forming inferences about some intraclass correlation
coefficients. Psychol Methods 1996;1:30-46. Glüer CC et al. Accurate assessment of precision
errors: how to measure the reproducibility of bone densitometry techniques. Osteoporos Int
1995;5:262-270. Bland JM, Altman DG. Statistical methods for assessing agreement between two
methods of clinical measurement. Lancet 1986;i:307-310. Cochran WG. Biometrics 1954;10:101-129.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2

from ..imaging.noise import spread_consistency
from . import _libs
from ._prepare import StatsInputError

#: indices analysed by default.
INDICES = ("alps", "alps_L", "alps_R")

#: columns of :func:`consistency` and :func:`reliability_table`.
RELIABILITY_COLUMNS = ["participant_id", "index", "n_participants", "n_scans", "mean", "sd_within", "cv_within",
                       "spread", "noise_spread", "noise_spread_q95", "spread_p", "cochran_q", "df", "q_p",
                       "icc21", "icc21_ci_low", "icc21_ci_high", "icc31", "icc31_ci_low", "icc31_ci_high",
                       "icc_n_participants", "icc_n_sessions", "note"]

#: columns of :func:`icc`.
ICC_COLUMNS = ["index", "icc_type", "icc", "ci_low", "ci_high", "f", "df1", "df2", "p", "n_participants",
               "n_sessions"]


def _scans(df, by, index):
    """The usable scans of ``index``: status ok (if present), finite value."""
    for col in (by, index):
        if col not in df.columns:
            raise StatsInputError(f"reliability: no column '{col}' in the table; has {list(df.columns)}")
    d = df if "status" not in df.columns else df[df["status"].astype(str) == "ok"]
    d = d.assign(_v=pd.to_numeric(d[index], errors="coerce"))
    return d[np.isfinite(d["_v"])]


def consistency(df: pd.DataFrame, *, by: str = "participant_id", indices=INDICES, n_sim: int = 200_000,
                seed: int = 0) -> pd.DataFrame:
    """Per participant and index: mean, within-subject SD and CV, spread, Cochran's Q against
    the scans' SEs and the noise-only spread (module docstring).

    ``seed`` and ``n_sim``: the Monte-Carlo draws of the noise-only spread. Participants with a
    single scan are left out. Without finite positive SEs (``<index>_se``) the noise columns are
    NaN and ``note`` says so. Returns :data:`RELIABILITY_COLUMNS` (ICC columns NaN).
    """
    rows = []
    for index in indices:
        d = _scans(df, by, index)
        se_col = f"{index}_se"
        for pid, g in d.groupby(by, sort=True):
            x = g["_v"].to_numpy(float)
            if len(x) < 2:
                continue
            row = {"participant_id": str(pid), "index": index, "n_participants": 1, "n_scans": len(x),
                   "mean": float(x.mean()), "sd_within": float(x.std(ddof=1)), "spread": float(x.max() - x.min()),
                   "note": ""}
            row["cv_within"] = row["sd_within"] / row["mean"]
            se = pd.to_numeric(g[se_col], errors="coerce").to_numpy(float) if se_col in g.columns else None
            if se is not None and np.all(np.isfinite(se) & (se > 0)):
                c = spread_consistency(x, se, n_sim=n_sim, seed=seed).iloc[0]
                row.update(noise_spread=c["expected_spread"], noise_spread_q95=c["spread_q95"],
                           spread_p=c["p_spread_ge_observed"], cochran_q=c["cochran_q"], df=int(c["df"]), q_p=c["p_value"])
            else:
                row["note"] = f"no finite positive {se_col} for every scan: no noise comparison"
            rows.append(row)
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)


def icc(df: pd.DataFrame, *, by: str = "participant_id", session: str = "session_id",
        indices=INDICES) -> pd.DataFrame:
    """ICC(2,1) and ICC(3,1) with 95 % CIs per index (pingouin; module docstring).

    Returns :data:`ICC_COLUMNS`, one row per index and ICC type (``icc21``, ``icc31``).
    Raises :class:`~alps.stats.StatsInputError` when there are fewer than two participants or
    two sessions with complete data (the session labels must repeat across participants).
    """
    rows = []
    for index in indices:
        d = _scans(df, by, index)
        if session not in d.columns:
            raise StatsInputError(f"reliability: no column '{session}' (the repeat of each scan)")
        wide = d.pivot_table(index=by, columns=session, values="_v", aggfunc="first")
        wide = wide.dropna(axis=1, how="all")
        complete = wide.dropna(axis=0, how="any")
        if complete.shape[0] < 2 or complete.shape[1] < 2:
            raise StatsInputError(
                f"reliability: ICC of {index} needs at least two participants scanned in the same two or more "
                f"sessions ('{session}' labels shared across participants); have {complete.shape[0]} "
                f"participant(s) with all of {complete.shape[1]} session(s) {list(wide.columns)[:6]}")
        long = complete.reset_index().melt(id_vars=by, var_name="_session", value_name="_value")
        res = _libs.intraclass_corr(long, targets=by, raters="_session", ratings="_value")
        for name in _libs.ICC_TYPES:
            rows.append({"index": index, "icc_type": name, **res[name], "n_participants": int(complete.shape[0]),
                         "n_sessions": int(complete.shape[1])})
    return pd.DataFrame(rows, columns=ICC_COLUMNS)


def reliability_table(df: pd.DataFrame, *, by: str = "participant_id", session: str = "session_id",
                indices=INDICES, n_sim: int = 200_000, seed: int = 0) -> pd.DataFrame:
    """The reliability table: :func:`consistency` rows per participant, then one cohort row
    (``participant_id = 'all'``) per index with the ICCs (:func:`icc`) and the pooled within-subject
    figures (module docstring). When the ICC cannot be computed (one participant, sessions not
    shared), its columns are NaN and ``note`` says why. Returns :data:`RELIABILITY_COLUMNS`."""
    per = consistency(df, by=by, indices=indices, n_sim=n_sim, seed=seed)
    if per.empty:
        raise StatsInputError("reliability: no participant has two or more usable scans")
    try:
        iccs, why = icc(df, by=by, session=session, indices=indices), ""
    except StatsInputError as exc:
        iccs, why = None, str(exc)
    rows = []
    for index in indices:
        p = per[per["index"] == index]
        if p.empty:
            continue
        row = {"participant_id": "all", "index": index, "n_participants": len(p), "n_scans": int(p["n_scans"].sum()),
               "mean": float(np.average(p["mean"], weights=p["n_scans"])),
               "sd_within": float(np.sqrt((p["sd_within"] ** 2).mean())),
               "cv_within": float(np.sqrt((p["cv_within"] ** 2).mean())), "spread": float(p["spread"].mean()),
               "note": why}
        if p["q_p"].notna().all():
            q, dof = float(p["cochran_q"].sum()), int(p["df"].sum())
            row.update(noise_spread=float(p["noise_spread"].mean()), noise_spread_q95=float(p["noise_spread_q95"].mean()),
                       cochran_q=q, df=dof, q_p=float(chi2.sf(q, dof)))
        if iccs is not None:
            for name in _libs.ICC_TYPES:
                r = iccs[(iccs["index"] == index) & (iccs["icc_type"] == name)].iloc[0]
                row.update({name: r["icc"], f"{name}_ci_low": r["ci_low"], f"{name}_ci_high": r["ci_high"],
                            "icc_n_participants": r["n_participants"], "icc_n_sessions": r["n_sessions"]})
        rows.append(row)
    out = pd.concat([per, pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)], ignore_index=True)
    return out[RELIABILITY_COLUMNS]


def bland_altman(df: pd.DataFrame, *, by: str = "participant_id", session: str = "session_id",
                 index: str = "alps") -> pd.DataFrame:
    """Bland-Altman data of repeated scans, one row per scan: ``subject_mean`` (x), ``difference``
    = scan − its participant's mean (y; for two scans per participant, half the classic
    difference), ``se`` (the scan's ``<index>_se`` or NaN), and per table (same on every row)
    ``loa_low``/``loa_high`` = ±1.96 × the RMS of the differences (limits of agreement: where
    95 % of scans lie around their participant's mean) and ``noise_low``/``noise_high`` =
    ±1.96 × the RMS of ``se·√((n−1)/n)`` (where noise alone would put them: ``σ√((n−1)/n)`` is the
    SD of one of ``n`` scans of noise SD ``σ`` about their mean, so both limits estimate the same
    quantity when the scans differ by noise alone)."""
    d = _scans(df, by, index)
    se_col = f"{index}_se"
    parts = []
    for pid, g in d.groupby(by, sort=True):
        if len(g) < 2:
            continue
        n = len(g)
        se = pd.to_numeric(g[se_col], errors="coerce").to_numpy(float) if se_col in g.columns else np.full(n, np.nan)
        parts.append(pd.DataFrame({by: str(pid), session: g[session].astype(str).to_numpy() if session in g else "",
                                   "index": index, "value": g["_v"].to_numpy(float),
                                   "subject_mean": g["_v"].mean(), "difference": g["_v"].to_numpy(float) - g["_v"].mean(),
                                   "se": se, "_shrink": (n - 1) / n}))
    if not parts:
        raise StatsInputError(f"reliability: no participant has two or more usable scans of {index}")
    out = pd.concat(parts, ignore_index=True)
    sd = float(np.sqrt((out["difference"] ** 2).mean()))
    noise = float(np.sqrt(np.mean(out["se"] ** 2 * out["_shrink"]))) if out["se"].notna().all() else np.nan
    out = out.assign(loa_low=-1.96 * sd, loa_high=1.96 * sd, noise_low=-1.96 * noise, noise_high=1.96 * noise)
    return out.drop(columns=["_shrink"]).sort_values([by, session], ignore_index=True)
