"""Multi-shell planted-truth figures: the ALPS index of each tensor model against planted
non-Gaussian truth, on the ROI phantom and end to end through the pipeline; writes a CSV.

Usage::

    .venv/bin/python benchmarks/bench_multishell.py OUT.csv [--snr 30] [--n-voxels 200] [--seed 0]
        [--no-pipeline] [--work DIR]

Part 1 (``level=phantom``, seconds): :func:`alps.validation.multishell.multishell_bias` for the
scenarios ``gaussian``, ``kurtosis`` (K = 0.6) and ``free_water`` (f = 0.2) with shells
b = 1000/2000/3000, noise-free and at ``--snr`` (``--n-voxels`` per ROI): each model as the
pipeline fits it by default (its shells, ``alps.imaging.shells.MODEL_MAX_BVAL``; ``fwdti`` is
refused there, an empty ``bvals_used``) and on every shell (``*_all_shells``, what ``--max-bval
3000`` fits, flagged ``high_b``).

Part 1b (``level=range``): the validity sweep behind those defaults — every model on every shell
set of :data:`RANGE_SHELLS` with kurtosis K = 0.6 (and free water f = 0.2 without kurtosis),
noise-free: the relative bias against the Gaussian tensor's index (``rel_bias``) and against the
b = 1000 protocol's (``rel_bias_b1000``).

Part 2 (``level=pipeline``, minutes): one simulated head (alps.simulation, b = 1000 and 2000,
20 directions each, K = 0.6, noise-free) through ``run_cohort`` with the default (b0 + shells
<= 1500), an all-shell DTI fit (max_bval 3000), ``dki`` and — on a second head with free water
f = 0.2 and no kurtosis — the default, all-shell and ``fwdti`` on both shells (max_bval 3000:
above its default range, which would leave one shell and refuse the scan). Planted truths: the simulator's
oracle (template-space index of the tissue tensor ``D``) and, with kurtosis, the index of the
apparent tensor of the b = 1000 protocol (``alps.simulation.signal.apparent_oracle``).

Columns: ``level, scenario, kurtosis, free_water, snr, method, bvals_used, alps, alps_planted,
alps_planted_b1000, bias, bias_b1000, rel_bias, rel_bias_b1000``.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["level", "scenario", "kurtosis", "free_water", "snr", "method", "bvals_used", "alps", "alps_planted",
           "alps_planted_b1000", "bias", "bias_b1000", "rel_bias", "rel_bias_b1000"]


#: shell sets of the validity sweep (part 1b).
RANGE_SHELLS = ((1000,), (1500,), (2000,), (2500,), (500, 1000), (500, 1500), (1000, 1500), (1000, 2000),
                (1000, 2000, 3000))


def phantom_rows(snr, n_voxels, seed) -> pd.DataFrame:
    from alps.validation.multishell import METHODS, SCENARIOS, multishell_bias

    out = []
    for scenario in SCENARIOS:
        for s in (None, snr):
            out.append(multishell_bias(scenario=scenario, snr=s, n_voxels=n_voxels if s else 2, seed=seed,
                                       methods=tuple(METHODS)))
    df = pd.concat(out, ignore_index=True)
    df.insert(0, "level", "phantom")
    return df


def range_rows(seed) -> pd.DataFrame:
    from alps.validation.multishell import METHODS, multishell_bias

    out = []
    for shells in RANGE_SHELLS:
        for scenario in ("kurtosis", "free_water"):
            out.append(multishell_bias(scenario=scenario, shell_values=shells, n_voxels=2, seed=seed,
                                       methods=tuple(METHODS)))
    df = pd.concat(out, ignore_index=True)
    df = df[df["bvals_used"] != ""].drop_duplicates(["scenario", "bvals_used", "method"])
    df.insert(0, "level", "range")
    return df


def pipeline_rows(work: Path, seed) -> pd.DataFrame:
    from alps import pipeline as P
    from alps.io.gradients import scheme, write_bvals_bvecs
    from alps.simulation import Pose, make_template_fields, simulate_subject, write_nifti_gz
    from alps.simulation.signal import apparent_oracle
    from alps.validation.multishell import with_bias

    fields = make_template_fields()
    b1, g1 = scheme(n_b0=4, n_dirs=20, bval=1000, seed=seed)
    b2, g2 = scheme(n_b0=1, n_dirs=20, bval=2000, seed=seed + 1)
    b, g = np.r_[b1, b2[1:]], np.r_[g1, g2[1:]]
    rows = []
    cases = {"kurtosis": (0.6, 0.0, {"dti_default": {}, "dti_all_shells": {"max_bval": 3000.0},
                                      "dki": {"tensor_model": "dki"}}),
             "free_water": (0.0, 0.2, {"dti_default": {}, "dti_all_shells": {"max_bval": 3000.0},
                                        "fwdti_all_shells": {"tensor_model": "fwdti", "max_bval": 3000.0}})}
    for scenario, (k, f, methods) in cases.items():
        img, bvals, bvecs, ex = simulate_subject(fields, Pose((4.0, 0.0, 0.0)), {"alps_L": 1.4, "alps_R": 1.6},
                                                 snr=None, seed=seed, scheme=(b, g), kurtosis=k, free_water=f,
                                                 dtype="float32")
        bids = work / scenario / "bids"
        d = bids / "sub-01" / "dwi"
        d.mkdir(parents=True, exist_ok=True)
        write_nifti_gz(img, d / "sub-01_dwi.nii.gz")
        write_bvals_bvecs(bvals, bvecs, d / "sub-01_dwi.bval", d / "sub-01_dwi.bvec")
        planted = ex["oracle"]["alps"]
        planted_b1000 = apparent_oracle(fields, ex["planted"], bval=1000, kurtosis=k)["alps"] if f == 0 else np.nan
        for method, kw in methods.items():
            r = P.run_cohort(bids, work / scenario / f"out-{method}", progress=False, qc_png=False, **kw).iloc[0]
            if r["status"] != "ok":
                raise RuntimeError(f"{scenario}/{method}: {r['error']}")
            rows.append({"level": "pipeline", "scenario": scenario, "kurtosis": k, "free_water": f, "snr": np.inf,
                         "method": method, "bvals_used": r["bvals_used"], "alps": r["alps"],
                         "alps_planted": planted, "alps_planted_b1000": planted_b1000})
    return with_bias(pd.DataFrame(rows))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_csv", help="CSV file to write")
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--n-voxels", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-pipeline", action="store_true", help="phantom level only (seconds)")
    ap.add_argument("--work", default=None, help="work directory of the pipeline level (default: a temporary one)")
    args = ap.parse_args(argv)

    from alps import atomic

    parts = [phantom_rows(args.snr, args.n_voxels, args.seed), range_rows(args.seed)]
    if not args.no_pipeline:
        if args.work:
            parts.append(pipeline_rows(Path(args.work), args.seed))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                parts.append(pipeline_rows(Path(tmp), args.seed))
    df = pd.concat(parts, ignore_index=True)[COLUMNS]
    Path(args.out_csv).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_table(args.out_csv, df, float_format="%.6g")
    with pd.option_context("display.width", 200):
        print(df.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
