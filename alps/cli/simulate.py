"""``alps simulate OUT_DIR``: the simulated BIDS cohort with planted ALPS (:mod:`alps.simulation`)."""
from __future__ import annotations

from pathlib import Path

from .. import simulation
from ..simulation.cohort import SIMULATE_OPTIONS

HELP = "Generate the simulated BIDS DWI cohort with planted ALPS truth."

#: options of the command line (the others are config-only: max_translation, max_scale, n_b0, ...).
_CLI_KEYS = ("seed", "n_mo", "n_vm", "n_hc", "max_rotation", "snr", "n_jobs", "orientation", "oblique", "sites")


def add_arguments(parser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="BIDS root to write")
    parser.add_argument("--seed", type=int, default=None, help="master seed (default: the profile's)")
    parser.add_argument("--n-mo", type=int, default=None, help="number of MO patients (default: the profile's)")
    parser.add_argument("--n-vm", type=int, default=None, help="number of VM patients (default: the profile's)")
    parser.add_argument("--n-hc", type=int, default=None, help="number of healthy controls (default: the profile's)")
    parser.add_argument("--max-rotation", type=float, default=None, metavar="DEG",
                        help="max head rotation about each axis, degrees (default: the profile's, else 10)")
    parser.add_argument("--snr", type=float, default=None, help="b0 white-matter SNR (default: the profile's, else 25)")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel subjects (default: the profile's, else 1)")
    parser.add_argument("--profile", default="default",
                        help="configuration profile supplying defaults (a name in config/, i.e. "
                        "config/<NAME>.yaml, or the path of a YAML file; default: default)")
    parser.add_argument("--orientation", choices=("LAS", "RAS", "mixed"), default=None,
                        help="native image storage orientation (default LAS)")
    parser.add_argument("--oblique", action="store_true", default=None,
                        help="put the head pose into an oblique affine (default: off)")
    parser.add_argument("--sites", type=int, default=None, metavar="N",
                        help="scan the subjects at N sites with planted additive and multiplicative site effects "
                             "(participants.tsv gains 'site'; default: one site)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (default: show it)")


def cli(args) -> int:
    from .. import config, paths

    try:
        kwargs = config.section(args.profile, "simulate")
    except (FileNotFoundError, ValueError) as exc:
        print(f"alps simulate: {exc}")
        return 2
    unknown = sorted(set(kwargs) - set(SIMULATE_OPTIONS))
    if unknown:
        print(f"alps simulate: {paths.config_file(args.profile)} [simulate]: unknown key(s) {unknown}; "
              f"allowed: {', '.join(SIMULATE_OPTIONS)}")
        return 2
    for key in _CLI_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            kwargs[key] = value
    gt = simulation.simulate_cohort(args.out_dir, progress=not args.no_progress, **kwargs)
    print(f"wrote {len(gt)} participants to {args.out_dir}; ground truth in "
          f"{Path(args.out_dir) / 'derivatives' / 'simulation' / 'ground_truth.tsv'}")
    return 0
