"""``alps paper --bids DIR --out DIR``: the whole notebook series on a lab's own data
(:mod:`alps.build.series`)."""
from __future__ import annotations

import yaml

from ..io.tables import SESSION_POLICIES

HELP = ("Run the whole analysis (notebooks 01-07 and the report) on a BIDS dataset into a folder you "
        "choose: derivatives, tables, figures, executed notebooks and report.html under --out.")


def add_arguments(parser) -> None:
    parser.add_argument("--bids", required=True, metavar="DIR",
                        help="BIDS dataset (sub-*/[ses-*/]dwi/*_dwi.nii[.gz] with .bval/.bvec); required, no default")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (created; relative paths are from the current folder); required, no default")
    parser.add_argument("--participants", default=None, metavar="TSV",
                        help="participants table: participant_id, group (the labels of the profile's design; MO/VM/HC "
                        "by default), age, sex (F/M) and the design's clinical columns (default: DIR/participants.tsv)")
    parser.add_argument("--profile", default="default",
                        help="configuration profile giving the pipeline's, the design's and the notebooks' "
                        "parameters: a name in config/ (config/<name>.yaml) or the path of a YAML file, "
                        "e.g. ./my_study.yaml; checked before anything runs (default: default)")
    parser.add_argument("--session", default=None, metavar="SES",
                        help="session to analyse in a multi-session dataset, e.g. ses-01 (default: none; "
                        "required when a participant has several)")
    parser.add_argument("--session-policy", default="strict", choices=SESSION_POLICIES,
                        help="participants without --session: strict (excluded, listed with the sessions "
                        "they have) or only-scan (their only scan is used) (default: strict)")
    parser.add_argument("--truth", default=None, metavar="TSV",
                        help="ground-truth ALPS table (default: DIR/derivatives/simulation/ground_truth.tsv "
                        "when present, i.e. a simulated cohort; else none)")
    parser.add_argument("--rotation-sweep", action="store_true",
                        help="also run the simulation-only rotation sweep (default: skipped, with a note)")
    parser.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                        help="notebook parameter for every notebook that declares it, VALUE parsed as YAML, "
                        "e.g. -p n_boot 1000 -p pipeline '{n_jobs: 4}' (default: the profile's)")


def cli(args) -> int:
    from ..build.series import SeriesFailed, run_series

    params = {k: yaml.safe_load(v) for k, v in args.p}
    try:
        report = run_series(args.bids, args.out, profile=args.profile, participants=args.participants,
                            truth_table=args.truth, session=args.session, session_policy=args.session_policy,
                            rotation_sweep=args.rotation_sweep, parameters=params)
    except SeriesFailed as exc:  # the report is written all the same, with the failures at its top
        for name, why in exc.failed.items():
            print(f"alps paper: {name} {why}")
        print(f"alps paper: done with failures (exit 1): open {exc.report}")
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"alps paper: {exc}")
        return 2
    except Exception as exc:  # a notebook failed: papermill's message names the cell
        print(f"alps paper: {type(exc).__name__}: {exc}")
        return 1
    print(f"alps paper: done: open {report}")
    return 0
