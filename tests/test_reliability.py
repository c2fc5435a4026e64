"""Reliability over repeated scans (alps.stats.reliability, alps reliability) on simulated repeated
measurements with planted between-subject, session and noise variances: ICCs against the
analytic values and a second (ANOVA mean-square) implementation, within-subject CV, Cochran's Q
and the noise-only spread against planted noise, the Bland-Altman limits, and the CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alps.stats import StatsInputError
from alps.stats import reliability as R

MU, SD_SUBJECT, SD_NOISE = 1.40, 0.10, 0.05


def _scans(n=200, k=4, *, session_offsets=None, sd_noise=SD_NOISE, seed=0, se=None):
    """``alps.tsv``-like rows: alps = MU + subject + session offset + noise; ``alps_se`` = ``se``
    (default the planted noise SD); alps_L/alps_R the same construction."""
    rng = np.random.default_rng(seed)
    off = np.zeros(k) if session_offsets is None else np.asarray(session_offsets, float)
    rows = []
    subj = rng.normal(0, SD_SUBJECT, n)
    for i in range(n):
        for j in range(k):
            row = {"participant_id": f"sub-{i:03d}", "session_id": f"ses-{j + 1}", "status": "ok"}
            for index in R.INDICES:
                row[index] = MU + subj[i] + off[j] + rng.normal(0, sd_noise)
                row[f"{index}_se"] = sd_noise if se is None else se
            rows.append(row)
    return pd.DataFrame(rows)


def _icc_by_anova(df, index="alps"):
    """ICC(2,1) and ICC(3,1) from the two-way ANOVA mean squares (Shrout & Fleiss 1979)."""
    y = df.pivot(index="participant_id", columns="session_id", values=index).to_numpy(float)
    n, k = y.shape
    g = y.mean()
    ms_r = k * ((y.mean(1) - g) ** 2).sum() / (n - 1)
    ms_c = n * ((y.mean(0) - g) ** 2).sum() / (k - 1)
    ms_e = ((y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + g) ** 2).sum() / ((n - 1) * (k - 1))
    icc3 = (ms_r - ms_e) / (ms_r + (k - 1) * ms_e)
    icc2 = (ms_r - ms_e) / (ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n)
    return icc2, icc3


def test_icc_matches_planted_values_and_anova():
    offsets = [-0.06, -0.02, 0.02, 0.06]
    df = _scans(session_offsets=offsets)
    t = R.icc(df).set_index(["index", "icc_type"])
    var_s, var_e = SD_SUBJECT ** 2, SD_NOISE ** 2
    var_c = np.var(offsets, ddof=1)  # the fixed session effects, as (MS_C - MS_E)/n estimates them
    truth = {"icc31": var_s / (var_s + var_e), "icc21": var_s / (var_s + var_c + var_e)}
    assert truth["icc21"] < truth["icc31"] - 0.1  # the session offsets matter for absolute agreement
    for index in R.INDICES:
        icc2, icc3 = _icc_by_anova(df, index)
        assert t.loc[(index, "icc21"), "icc"] == pytest.approx(icc2, abs=1e-10)
        assert t.loc[(index, "icc31"), "icc"] == pytest.approx(icc3, abs=1e-10)
        for name, value in truth.items():
            r = t.loc[(index, name)]
            assert abs(r["icc"] - value) < 0.06, (index, name, r["icc"], value)
            assert r["ci_low"] - 0.005 <= value <= r["ci_high"] + 0.005, (index, name, r.to_dict())
    assert (t["n_participants"] == 200).all() and (t["n_sessions"] == 4).all()


def test_cv_q_and_noise_spread_under_noise_alone():
    k = 5
    df = _scans(n=200, k=k, seed=1)
    per = R.consistency(df, n_sim=5000, indices=("alps",))
    a = per[per["index"] == "alps"]
    assert len(a) == 200 and (a["n_scans"] == k).all()
    # within-subject SD and CV: the planted noise
    assert np.sqrt((a["sd_within"] ** 2).mean()) == pytest.approx(SD_NOISE, rel=0.05)
    assert np.sqrt((a["cv_within"] ** 2).mean()) == pytest.approx(SD_NOISE / MU, rel=0.07)
    # noise-only spread of 5 scans with equal SD: d2(5) sigma = 2.326 sigma; observed spreads agree
    assert a["noise_spread"].to_numpy() == pytest.approx(2.3259 * SD_NOISE, rel=0.02)
    assert a["spread"].mean() == pytest.approx(2.3259 * SD_NOISE, rel=0.06)
    # Q p values uniform under noise alone
    assert 0.02 < (a["q_p"] < 0.05).mean() < 0.09
    assert 0.02 < (a["spread_p"] < 0.05).mean() < 0.09
    table = R.reliability_table(df, n_sim=5000, indices=("alps",))
    cohort = table[(table["participant_id"] == "all") & (table["index"] == "alps")].iloc[0]
    assert cohort["df"] == 200 * (k - 1) and cohort["q_p"] > 0.01
    assert cohort["cv_within"] == pytest.approx(SD_NOISE / MU, rel=0.07)


def test_q_detects_a_systematic_session_effect_and_understated_ses():
    # session offsets of 2 noise SDs: the scans differ by more than their noise
    df = _scans(n=40, k=5, session_offsets=[-0.1, -0.05, 0.0, 0.05, 0.1], seed=2)
    table = R.reliability_table(df, n_sim=5000)
    a = table[table["index"] == "alps"]
    assert a.set_index("participant_id").loc["all", "q_p"] < 1e-6
    assert (a["q_p"] < 0.05).mean() > 0.6
    # noise alone, but SEs reported at half the real noise: Q rejects as well
    df2 = _scans(n=40, k=5, seed=3, se=SD_NOISE / 2)
    assert R.reliability_table(df2, n_sim=5000).set_index(["participant_id", "index"]).loc[("all", "alps"), "q_p"] < 1e-6


def test_bland_altman_limits():
    k = 4
    df = _scans(n=150, k=k, seed=4)
    ba = R.bland_altman(df, index="alps")
    assert len(ba) == 150 * k
    assert ba.groupby("participant_id")["difference"].sum().abs().max() < 1e-12
    expected = 1.96 * SD_NOISE * np.sqrt((k - 1) / k)
    assert ba["noise_high"].iloc[0] == pytest.approx(expected, rel=1e-12)
    assert ba["loa_high"].iloc[0] == pytest.approx(expected, rel=0.07)
    assert ba["loa_low"].iloc[0] == -ba["loa_high"].iloc[0]


def test_reliability_without_icc_or_ses_says_why():
    df = _scans(n=1, k=3, seed=5)
    t = R.reliability_table(df, n_sim=2000)
    cohort = t[t["participant_id"] == "all"]
    assert cohort["icc21"].isna().all() and cohort["note"].str.contains("at least two participants").all()
    no_se = _scans(n=3, k=3, seed=6).drop(columns=[f"{i}_se" for i in R.INDICES])
    t2 = R.reliability_table(no_se, n_sim=2000)
    assert t2["q_p"].isna().all() and t2["icc31"].notna().any()
    assert t2.loc[t2["participant_id"] != "all", "note"].str.contains("alps_se|alps_L_se|alps_R_se").all()
    failed = _scans(n=2, k=2, seed=7)
    failed.loc[0, "status"] = "failed"  # one scan unusable: that participant has one left
    assert set(R.consistency(failed, n_sim=2000)["participant_id"]) == {"sub-001"}
    with pytest.raises(StatsInputError, match="two or more usable scans"):
        R.reliability_table(failed.iloc[[0, 1, 2]], n_sim=2000)


def test_cli_writes_the_tables_and_figure(tmp_path, capsys):
    from alps import atomic
    from alps.cli import main
    from alps.pipeline.layout import RELIABILITY_FILES

    assert main(["reliability", str(tmp_path)]) == 2
    assert "alps.tsv: no such file" in capsys.readouterr().out
    atomic.write_table(tmp_path / "alps.tsv", _scans(n=6, k=3, seed=8))
    assert main(["reliability", str(tmp_path), "--by", "participant_id"]) == 0
    t = pd.read_csv(tmp_path / RELIABILITY_FILES["table"], sep="\t")
    assert list(t.columns) == R.RELIABILITY_COLUMNS
    assert len(t) == 6 * 3 + 3
    assert (tmp_path / f"{RELIABILITY_FILES['figure']}.png").stat().st_size > 10_000
    ba = pd.read_csv(tmp_path / RELIABILITY_FILES["bland_altman"], sep="\t")
    assert set(ba["index"]) == set(R.INDICES) and len(ba) == 3 * 18
