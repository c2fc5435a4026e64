"""Does ComBat (alps.stats.harmonise) recover planted group effects on a multi-site cohort?

``PYTHONPATH=. python benchmarks/bench_harmonise.py OUT_DIR [--reps 50]``

Table-only cohorts (tests/design_fixtures.py, the design of config/design-no-clinical.yaml: SVD,
iNPH, HC; planted group effects -0.12 and -0.20 ALPS vs HC) scanned at 3 sites with planted additive
(0, +0.12, -0.10) and multiplicative (1, 1.6, 0.7) site effects; each group recruits 70 % of its
subjects at "its own" site. For every replicate the group effects (mean difference vs HC) are
estimated on the planted values before the site effects, on the measured values and on the
ComBat-harmonised values. Writes ``harmonise_recovery.csv`` (one row per replicate x group x
estimate), prints bias and RMSE against the planted effects and saves ``harmonise_recovery.png|pdf``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import design_fixtures as dfx  # noqa: E402

from alps import atomic  # noqa: E402
from alps.stats import harmonise  # noqa: E402
from alps.stats.design import from_profile  # noqa: E402

EFFECTS = {"SVD": -0.12, "iNPH": -0.20, "HC": 0.0}


def run(reps: int, *, n_per_group: int = 30, n_sites: int = 3, imbalance: float = 0.7) -> pd.DataFrame:
    design = from_profile("design-no-clinical")
    rows = []
    for seed in range(reps):
        df = dfx.make_design_cohort(design, n_per_group=n_per_group, effects=EFFECTS, seed=seed,
                                    n_sites=n_sites, imbalance=imbalance)
        h = harmonise(df, columns=["alps", "alps_L", "alps_R"], covariates=design.covariates).table
        h["alps_true"] = df["alps_true"].to_numpy()
        for col, what in (("alps_true", "planted, no site effects"), ("alps", "as measured"),
                          ("alps_harmonised", "ComBat-harmonised")):
            m = h.groupby("group")[col].mean()
            for g in ("SVD", "iNPH"):
                rows.append({"replicate": seed, "group": g, "estimate": what, "effect": m[g] - m["HC"],
                             "planted": EFFECTS[g]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--reps", type=int, default=50)
    a = ap.parse_args(argv)
    out = Path(a.out_dir)
    res = run(a.reps)
    atomic.write_table(out / "harmonise_recovery.csv", res)
    res["error"] = res["effect"] - res["planted"]
    summary = res.groupby(["group", "estimate"], sort=False)["error"].agg(
        bias="mean", rmse=lambda e: float(np.sqrt(np.mean(e ** 2)))).reset_index()
    print(summary.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))

    import matplotlib.pyplot as plt

    from alps.figures import style

    style.apply_style()
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH * 1.3, 2.6))
    kinds = list(dict.fromkeys(res["estimate"]))
    colors = [style.OKABE_ITO[c] for c in ("grey", "vermillion", "blue")]
    for gi, g in enumerate(("SVD", "iNPH")):
        for ki, k in enumerate(kinds):
            v = res[(res.group == g) & (res.estimate == k)]["effect"].to_numpy()
            x = gi * 4 + ki
            ax.boxplot([v], positions=[x], widths=0.6, showfliers=False, medianprops={"color": "black"})
            ax.scatter(x + np.random.default_rng(ki).uniform(-0.2, 0.2, len(v)), v, s=5, color=colors[ki], zorder=3,
                       label=k if gi == 0 else None)
        ax.hlines(EFFECTS[g], gi * 4 - 0.5, gi * 4 + 2.5, color="black", ls="--", lw=0.8,
                  label="planted effect" if gi == 0 else None)
    ax.set_xticks([1, 5])
    ax.set_xticklabels(["SVD vs HC", "iNPH vs HC"])
    ax.set_ylabel("Group effect on ALPS (mean difference)")
    ax.set_title(f"{a.reps} simulated 3-site cohorts", fontsize=8)
    ax.legend(frameon=False, fontsize=6, loc="lower left")
    style.save_figure(fig, out / "harmonise_recovery")
    print(f"wrote {out / 'harmonise_recovery.csv'} and harmonise_recovery.png/.pdf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
