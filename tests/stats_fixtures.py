"""Synthetic cohort with planted effects, for the statistics tests and notebook trial runs.

``python tests/stats_fixtures.py OUTDIR [--n-mo 40 --n-vm 40 --n-hc 20 --seed 0]`` writes
``OUTDIR/participants.tsv``, ``OUTDIR/alps.tsv`` (measured: truth + small noise, a couple of
``failed`` rows and one ALPS row without a participant) and
``OUTDIR/derivatives/simulation/ground_truth.tsv``.

Planted model (patients, MO/VM)::

    alps = 1.50 + B_SUBTYPE*VM + B_DURATION*duration_years + B_FREQUENCY*attacks_per_month
           + B_AGE*(age - 40) + N(0, SIGMA)
    HC:   alps ~ N(HC_MEAN, SIGMA)
    VM:   dhi  = DHI_0 + DHI_ALPS*(alps - 1.25) + DHI_DURATION*duration_years + N(0, 10)
          (rounded to even integers, clipped to 0..100)

so the gradient is MO > HC > VM and, in VM, duration -> alps -> dhi is a mediated path.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

B_SUBTYPE = -0.055
B_DURATION = -0.010
B_FREQUENCY = -0.020
B_AGE = 0.0
SIGMA = 0.03
HC_MEAN = 1.26
DHI_0 = 40.0
DHI_ALPS = -200.0
DHI_DURATION = 0.4


def make_cohort(n_mo: int = 40, n_vm: int = 40, n_hc: int = 20, *, seed: int = 0,
                sigma: float = SIGMA) -> pd.DataFrame:
    """Return one DataFrame with participants columns plus true ``alps``/``alps_L``/``alps_R``."""
    rng = np.random.default_rng(seed)
    rows = []
    for grp, n in (("MO", n_mo), ("VM", n_vm), ("HC", n_hc)):
        for i in range(1, n + 1):
            rows.append({"participant_id": f"sub-{grp}{i:03d}", "group": grp})
    df = pd.DataFrame(rows)
    n = len(df)
    patient = df["group"].isin(["MO", "VM"]).to_numpy()
    vm = (df["group"] == "VM").to_numpy()
    df["age"] = np.round(rng.uniform(22, 60, n), 0)
    df["sex"] = np.where(rng.random(n) < 0.7, "F", "M")
    dur = np.round(rng.uniform(1, 20, n), 1)
    att = np.round(rng.uniform(1, 10, n), 1)
    df["duration_years"] = np.where(patient, dur, np.nan)
    df["attacks_per_month"] = np.where(patient, att, np.nan)
    df["vas"] = np.where(patient, np.round(rng.uniform(3, 9, n), 0), np.nan)
    df["hit6"] = np.where(patient, np.round(rng.uniform(50, 75, n), 0), np.nan)
    df["psqi"] = np.round(rng.uniform(2, 15, n), 0)
    noise = rng.normal(0, sigma, n)
    alps = np.where(
        patient,
        1.50 + B_SUBTYPE * vm + B_DURATION * dur + B_FREQUENCY * att + B_AGE * (df["age"] - 40),
        HC_MEAN,
    ) + noise
    df["alps"] = alps
    asym = rng.normal(0, 0.02, n)
    df["alps_L"] = alps + asym
    df["alps_R"] = alps - asym
    dhi = DHI_0 + DHI_ALPS * (alps - 1.25) + DHI_DURATION * dur + rng.normal(0, 10, n)
    dhi = np.clip(2 * np.round(dhi / 2), 0, 100)
    df["dhi"] = np.where(vm, dhi, np.nan)
    return df


PARTICIPANT_COLS = ["participant_id", "group", "age", "sex", "duration_years",
                    "attacks_per_month", "vas", "hit6", "psqi", "dhi"]


def write_cohort(outdir, *, n_mo=40, n_vm=40, n_hc=20, seed=0, n_failed=2,
                 measurement_sd=0.005) -> dict:
    """Write participants.tsv, alps.tsv and derivatives/simulation/ground_truth.tsv.

    Returns a dict of the three paths plus ``failed`` (ids with status 'failed') and ``orphan``
    (an ALPS row with no participant).
    """
    outdir = Path(outdir)
    (outdir / "derivatives" / "simulation").mkdir(parents=True, exist_ok=True)
    df = make_cohort(n_mo, n_vm, n_hc, seed=seed)
    rng = np.random.default_rng(seed + 1)
    part = df[PARTICIPANT_COLS]
    part.to_csv(outdir / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    truth = df[["participant_id", "alps_L", "alps_R", "alps"]]
    truth_path = outdir / "derivatives" / "simulation" / "ground_truth.tsv"
    truth.to_csv(truth_path, sep="\t", index=False, na_rep="n/a")
    meas = truth.copy()
    for c in ("alps_L", "alps_R"):
        meas[c] = meas[c] + rng.normal(0, measurement_sd, len(meas))
    meas["alps"] = (meas["alps_L"] + meas["alps_R"]) / 2
    for side in ("L", "R", ""):
        col = f"alps_{side}" if side else "alps"
        meas[f"alps_scanner_{side}" if side else "alps_scanner"] = meas[col]
    meas["status"] = "ok"
    failed = list(meas["participant_id"].iloc[[1, -2]][:n_failed])
    meas.loc[meas["participant_id"].isin(failed), ["alps_L", "alps_R", "alps"]] = np.nan
    meas.loc[meas["participant_id"].isin(failed), "status"] = "failed"
    orphan = pd.DataFrame([{"participant_id": "sub-XX999", "alps_L": 1.4, "alps_R": 1.4,
                            "alps": 1.4, "alps_scanner_L": 1.4, "alps_scanner_R": 1.4,
                            "alps_scanner": 1.4, "status": "ok"}])
    meas = pd.concat([meas, orphan], ignore_index=True)
    alps_path = outdir / "alps.tsv"
    meas.to_csv(alps_path, sep="\t", index=False, na_rep="n/a")
    return {"participants": outdir / "participants.tsv", "alps": alps_path,
            "truth": truth_path, "failed": failed, "orphan": ["sub-XX999"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--n-mo", type=int, default=40)
    ap.add_argument("--n-vm", type=int, default=40)
    ap.add_argument("--n-hc", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = write_cohort(a.outdir, n_mo=a.n_mo, n_vm=a.n_vm, n_hc=a.n_hc, seed=a.seed)
    for k, v in out.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
