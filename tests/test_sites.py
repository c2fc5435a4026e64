"""alps simulate --sites N: planted per-site additive and multiplicative effects on the imaged ALPS
(alps.simulation.sites), tested on the clinical table (no image is generated here)."""
from __future__ import annotations

import numpy as np
import pytest

from alps.simulation.cohort import SIMULATE_OPTIONS, clinical_table
from alps.simulation.sites import SITE_SCALE, SITE_SHIFT, assign_sites


def test_sites_plant_additive_and_multiplicative_effects_and_keep_the_biology():
    clin = clinical_table(7, n_mo=12, n_vm=12, n_hc=9)
    out = assign_sites(clin, 3, seed=7)
    assert list(out["planted_alps_L"]) == list(clin["planted_alps_L"])  # biology unchanged
    assert out.groupby("group")["site"].value_counts().unstack().min().min() >= 3  # balanced in each group
    mean = clin["planted_alps_L"].mean()
    for k in range(3):
        s = out[out.site == f"site{k + 1}"]
        np.testing.assert_allclose(s["imaged_alps_L"] - mean, SITE_SHIFT[k] + SITE_SCALE[k] * (s["planted_alps_L"] - mean))
    assert assign_sites(clin, 0, seed=7) is clin and assign_sites(clin, 1, seed=7) is clin
    again = assign_sites(clin, 3, seed=7)
    assert again.equals(out)  # deterministic


def test_imbalance_confounds_sites_with_groups_and_is_validated():
    clin = clinical_table(7, n_mo=40, n_vm=40, n_hc=20)
    out = assign_sites(clin, 3, seed=1, imbalance=0.8)
    share = out.groupby("group", sort=False)["site"].agg(lambda s: s.value_counts(normalize=True).max())
    assert (share > 0.7).all()
    with pytest.raises(ValueError, match="imbalance"):
        assign_sites(clin, 2, seed=1, imbalance=2)


def test_the_cli_and_config_know_the_option():
    from alps.cli import build_parser

    assert "sites" in SIMULATE_OPTIONS and "site_imbalance" in SIMULATE_OPTIONS
    assert build_parser().parse_args(["simulate", "out", "--sites", "3"]).sites == 3
