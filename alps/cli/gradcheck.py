"""``alps gradcheck DWI``: is the gradient table flipped or axis-swapped?
(:mod:`alps.imaging.gradcheck`; exit 1 when flagged)."""
from __future__ import annotations

from .. import atomic
from ..imaging.gradcheck import METHODS, check_dwi_files, correct_bvecs
from ..io import GradientError, InputError, gradient_files_for
from ..io.gradients import read_bvals_bvecs, write_bvals_bvecs

HELP = ("Check a DWI's gradient table for flipped or swapped axes (fibre coherence, "
        "Jeurissen et al. 2014).")


def add_arguments(parser) -> None:
    """``alps gradcheck DWI [--bval F --bvec F] [--method streamline|coherence] [--write-corrected F]``."""
    parser.add_argument("dwi", help="4D DWI NIfTI (.nii or .nii.gz)")
    parser.add_argument("--bval", help="FSL .bval (default: beside the image)")
    parser.add_argument("--bvec", help="FSL .bvec (default: beside the image)")
    parser.add_argument("--method", choices=METHODS, default="streamline",
                        help="score of a candidate table: streamline (mean length of short tensor "
                        "streamlines, default) or coherence (one-step fibre continuity)")
    parser.add_argument("--write-corrected", metavar="BVEC_OUT",
                        help="write the b-vectors corrected by the best candidate (FSL convention; "
                        "default: not written)")
    parser.add_argument("--table", metavar="CSV", help="write the per-candidate score table; its score column is "
                        "named after the method: streamline_length_mm (mean streamline length, mm) or coherence "
                        "(default: not written)")


def cli(args) -> int:
    dflt_bval, dflt_bvec = gradient_files_for(args.dwi)
    bval = args.bval or dflt_bval
    bvec = args.bvec or dflt_bvec
    try:
        res = check_dwi_files(args.dwi, bval, bvec, method=args.method)
    except (InputError, GradientError, ValueError) as exc:
        print(f"alps gradcheck: {exc}")
        return 2
    table = res["table"]
    print(table.head(6).to_string(index=False))
    verdict = ("gradient table looks right (identity is best)" if res["identity_is_best"] else
               f"best candidate is '{res['best']}' (FSL columns), margin {res['margin']:.2f}"
               + (" -> FLAGGED: the table is probably flipped/swapped" if res["flag"] else
                  " (below the flag threshold; not flagged)"))
    print(f"{args.dwi}: {verdict}")
    if args.table:
        atomic.write_text(args.table, table.to_csv(index=False))
    if args.write_corrected:
        _, bvecs = read_bvals_bvecs(bval, bvec)
        write_bvals_bvecs(None, correct_bvecs(bvecs, res["best"]), None, args.write_corrected)
        print(f"corrected b-vectors written to {args.write_corrected} (use them with {bval})")
    return 1 if res["flag"] else 0
