"""Table-only cohorts for any study design (no imaging): ``participants.tsv`` and an ALPS table whose
values are the *planted* per-subject ALPS (labelled so: ``derivatives/simulation/ground_truth.tsv``
holds the same values, and the ALPS table's ``source`` column says ``planted (no imaging)``).

Planted model, for a :class:`alps.stats.design.StudyDesign` and ``effects`` (group → mean shift)::

    alps = BASE + effects[group] + sum_v SLOPES[v] * z_v + N(0, SIGMA)      (patients)
    alps = BASE + effects[group] + N(0, SIGMA)                              (reference group)
    z_v  = standardised clinical variable v (measured in the patients only)

and with ``n_sites`` > 0 every subject gets a ``site`` (balanced within group) whose scanner adds
``SITE_SHIFT[s]`` and scales the subject's residual N(0, SIGMA) by ``SITE_SCALE[s]`` (the additive
and multiplicative effects ComBat models). The clinical variable the design's mediation names as ``y``
is generated from ALPS (so the mediation has a planted indirect path).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BASE = 1.40
SIGMA = 0.04
SLOPE = -0.03          # ALPS per SD of each clinical variable (patients)
SITE_SHIFT = (0.0, 0.12, -0.10, 0.06)
SITE_SCALE = (1.0, 1.6, 0.7, 1.3)


def make_design_cohort(design, *, n_per_group: int = 24, effects=None, seed: int = 0,
                       n_sites: int = 0, imbalance: float = 0.0) -> pd.DataFrame:
    """One DataFrame: participants columns, ``site`` (when ``n_sites``), planted ``alps``/``alps_L``/
    ``alps_R`` (after the site effects) and ``alps_true`` (before). ``imbalance`` (0-1): the share of
    group k's subjects scanned at site k (mod n_sites), the rest spread evenly — sites then
    confound the group comparison, as in a multi-site study where each site recruits its own
    patients."""
    rng = np.random.default_rng(seed)
    effects = dict(effects or {})
    rows = []
    for g in design.labels:
        for i in range(1, n_per_group + 1):
            rows.append({"participant_id": f"sub-{g}{i:03d}", "group": g})
    df = pd.DataFrame(rows)
    n = len(df)
    df["age"] = np.round(rng.uniform(40, 80, n), 0)
    df["sex"] = np.where(rng.random(n) < 0.55, "F", "M")
    patient = df["group"].isin(design.patients).to_numpy()
    noise = rng.normal(0, SIGMA, n)
    alps = BASE + df["group"].map(lambda g: effects.get(g, 0.0)).to_numpy(float) + noise
    med_y = design.mediation.y if design.mediation is not None else None
    for v in design.clinical:
        if v.name == med_y:
            continue
        z = rng.normal(0, 1, n)
        df[v.name] = np.where(patient, np.round(20 + 5 * z, 1), np.nan)
        alps = alps + np.where(patient, SLOPE * z, 0.0)
    if med_y is not None:
        y = 50 - 300 * (alps - BASE) + rng.normal(0, 4, n)
        df[med_y] = np.where(df["group"].isin(design.mediation_groups) | patient, np.round(y, 1), np.nan)
    df["alps_true"] = alps
    if n_sites:
        site = np.arange(n) % n_sites
        if imbalance:
            gi = df["group"].map({g: k for k, g in enumerate(design.labels)}).to_numpy()
            own = rng.random(n) < imbalance
            site = np.where(own, gi % n_sites, rng.integers(0, n_sites, n))
        df["site"] = [f"site{s + 1}" for s in site]
        idx = np.array([int(s[4:]) - 1 for s in df["site"]])
        # ComBat's model: the site shifts the value and scales the subject's residual (not the biology)
        alps = alps + (np.asarray(SITE_SCALE)[idx] - 1) * noise + np.asarray(SITE_SHIFT)[idx]
    asym = rng.normal(0, 0.01, n)
    df["alps"], df["alps_L"], df["alps_R"] = alps, alps + asym, alps - asym
    return df


def write_design_cohort(outdir, design, **kwargs) -> dict:
    """Write ``participants.tsv``, ``alps.tsv`` (planted values, ``source`` column) and
    ``derivatives/simulation/ground_truth.tsv``; returns their paths."""
    outdir = Path(outdir)
    (outdir / "derivatives" / "simulation").mkdir(parents=True, exist_ok=True)
    df = make_design_cohort(design, **kwargs)
    part_cols = ["participant_id", "group", "age", "sex"] + [c for c in design.clinical_names if c in df] + \
        (["site"] if "site" in df else [])
    df[part_cols].to_csv(outdir / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    truth = df[["participant_id", "alps_L", "alps_R", "alps"]]
    truth.to_csv(outdir / "derivatives" / "simulation" / "ground_truth.tsv", sep="\t", index=False)
    alps = truth.assign(status="ok", source="planted (no imaging)")
    alps.to_csv(outdir / "alps.tsv", sep="\t", index=False)
    return {"participants": outdir / "participants.tsv", "alps": outdir / "alps.tsv",
            "truth": outdir / "derivatives" / "simulation" / "ground_truth.tsv"}
