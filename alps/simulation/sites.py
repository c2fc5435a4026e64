"""Multi-site cohorts (``alps simulate --sites N``): each subject is scanned at one of ``n_sites``
sites whose scanner changes the imaged ALPS by a planted additive shift and a multiplicative factor
(the two effects ComBat models); the biology — ``planted_alps`` in ``ground_truth.tsv`` — is not
changed.

For subject j at site s, per hemisphere, the index the phantom encodes (and the pipeline measures)::

    imaged = planted + SHIFT[s] + (SCALE[s] - 1) * (planted - mean(planted))

(``mean`` over the cohort). Sites are assigned in turn within each group (balanced), or with
``imbalance`` > 0 that share of group k goes to site k (mod N) — sites then confound the group
comparison, as when each site recruits its own patients.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: planted additive (ALPS units) and multiplicative site effects; site k uses entry k mod len
SITE_SHIFT = (0.0, 0.10, -0.08, 0.05)
SITE_SCALE = (1.0, 1.3, 0.8, 1.15)
#: columns :func:`assign_sites` adds
SITE_COLUMNS = ("site", "site_shift", "site_scale", "imaged_alps_L", "imaged_alps_R")


def assign_sites(clinical: pd.DataFrame, n_sites: int, *, seed: int, imbalance: float = 0.0) -> pd.DataFrame:
    """``clinical`` (with ``group``, ``planted_alps_L/R``) plus :data:`SITE_COLUMNS`; ``n_sites`` < 2
    returns it unchanged."""
    if n_sites < 2:
        return clinical
    if not 0 <= imbalance <= 1:
        raise ValueError(f"site imbalance must be between 0 and 1, got {imbalance}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(3,)))
    out = clinical.reset_index(drop=True).copy()
    site = np.empty(len(out), int)
    for k, (_, idx) in enumerate(out.groupby("group", sort=False).groups.items()):
        pos = np.arange(len(idx)) % n_sites
        if imbalance:
            own = rng.random(len(idx)) < imbalance
            pos = np.where(own, k % n_sites, rng.integers(0, n_sites, len(idx)))
        site[np.asarray(idx)] = pos
    shift = np.asarray(SITE_SHIFT)[site % len(SITE_SHIFT)]
    scale = np.asarray(SITE_SCALE)[site % len(SITE_SCALE)]
    out["site"] = [f"site{s + 1}" for s in site]
    out["site_shift"], out["site_scale"] = shift, scale
    for side in ("L", "R"):
        planted = out[f"planted_alps_{side}"].to_numpy(float)
        out[f"imaged_alps_{side}"] = planted + shift + (scale - 1) * (planted - planted.mean())
    return out
