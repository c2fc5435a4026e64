"""Candidate for the systematic between-acquisition spread: a second, local linear registration
stage whose metric sees only the periventricular white matter around the ALPS ROIs.

    .venv/bin/python benchmarks/local_registration.py DERIV_DIR OUT_CSV

``DERIV_DIR``: derivatives of ``benchmarks/tilt_reliability.py`` (``alps run`` of the two tilt
sets, default parameters). For every scan the stored global registration (rigid + similarity to
the MNI WM map) is refined by one more ANTs stage started from it — ``Similarity`` or ``Affine``
— with the metric (GC, as the default) evaluated only on a template box around the ROIs:
``box`` (MNI x −50..50, y −40..10, z 10..45 mm) or ``wide`` (x −70..70, y −60..30, z 0..60 mm). The index is then re-measured with the same
ROIs (trilinear 2.5 mm spheres) and its SEs recomputed for the new ROI weights; per head and
index the CSV has spread, noise-only spread and Cochran's Q p (``alps.stats.reliability``), with
the default registration as variant ``global``. A variant is *chosen* on one head (smallest
summed Q over the three indices) and *reported* on the other; see the printed lines.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alps.imaging import dti, measure  # noqa: E402
from alps.imaging import registration as R  # noqa: E402
from alps.imaging.ants import lps_to_ras, nib_to_ants, read_ants_affine, run_linear  # noqa: E402
from alps.io.bids import discover  # noqa: E402
from alps.pipeline.contract import Preprocessed  # noqa: E402
from alps.pipeline.layout import read_json, scan_layout  # noqa: E402
from alps.pipeline.uncertainty import scan_se  # noqa: E402
from alps.stats.reliability import consistency  # noqa: E402

STAGES = {
    "similarity": (("Similarity", ((50, 2, 1), (20, 1, 0))),),
    "affine": (("Affine", ((50, 2, 1), (20, 1, 0))),),
}


#: template boxes (MNI mm, lo and hi corners) the local stage's metric sees.
BOXES = {"box": ((-50, -40, 10), (50, 10, 45)), "wide": ((-70, -60, 0), (70, 30, 60))}


def local_fixed(kind: str) -> nib.Nifti1Image:
    """The template WM map cropped to ``BOXES[kind]``: the local stage's fixed image. (A fixed
    mask, ANTs ``--masks``, restricted to such a region left the initial transform unchanged
    with antspyx 0.6.3; cropping the fixed image restricts the metric's domain the same way.)"""
    fx = R.fixed_image(2)
    inv = np.linalg.inv(fx.affine)
    lo_mm, hi_mm = BOXES[kind]
    a = np.round(inv[:3, :3] @ np.array(lo_mm, float) + inv[:3, 3]).astype(int)
    b = np.round(inv[:3, :3] @ np.array(hi_mm, float) + inv[:3, 3]).astype(int)
    lo, hi = np.maximum(np.minimum(a, b), 0), np.minimum(np.maximum(a, b) + 1, fx.shape[:3])
    return fx.slicer[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]


def moving_fa(lay, erode_mm=4.0):
    """The scan's FA as the default registration sees it (eroded brain mask)."""
    from scipy import ndimage as ndi

    fa_img = nib.load(str(lay.fa))
    mask = np.asarray(nib.load(str(lay.mask)).dataobj) > 0
    vox = float(np.linalg.norm(fa_img.affine[:3, :3], axis=0).mean())
    n = int(round(erode_mm / vox))
    er = ndi.binary_erosion(mask, iterations=n) if n > 0 else mask
    if er.sum() > 0.3 * mask.sum():
        mask = er
    return nib.Nifti1Image(np.where(mask, fa_img.get_fdata(), 0).astype(np.float32), fa_img.affine)


def refine(lay, reg0, stages, fixed_img, work: Path) -> R.Registration:
    fixed = nib_to_ants(fixed_img)
    moving = nib_to_ants(moving_fa(lay))
    init = [f for f in reg0.forward_transforms if f.endswith(".mat")][0]
    out = run_linear(fixed, moving, str(work / f"{lay.key}_"), stages=stages, metric="GC", sampling=1.0,
                     seed=20260505, init=init, strategy="regular")
    t2s = lps_to_ras(read_ants_affine(out))
    return R.Registration(kind="affine", template_to_subject=t2s, forward_transforms=[out], inverse_transforms=[out],
                          inverse_invert=[True])


def measure_scan(item, lay, pre, reg):
    tensor, aff = dti.load_tensor_image(lay.tensor)
    w = measure.roi_weights("spheres", tensor.shape[:3], aff, reg)
    v = measure.measure(tensor, aff, reg, w)
    se = scan_se(pre, w, registration=reg, n_boot=200, seed=20260505, se_max=0.05)
    return {"participant_id": item.participant_id, "session_id": item.session_id, "status": "ok",
            **{k: v[k] for k in ("alps", "alps_L", "alps_R")},
            **{k: se[k] for k in ("alps_se", "alps_L_se", "alps_R_se")}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("deriv_dir")
    ap.add_argument("out_csv")
    args = ap.parse_args(argv)
    deriv = Path(args.deriv_dir)
    bids = Path(read_json(deriv / "dataset_description.json")["SourceDatasets"][0]["URL"].removeprefix("file://"))
    items = [i for i in discover(bids) if read_json(scan_layout(deriv, i).preprocess_json)]
    variants = {"global": None, **{f"{m}_{s}": (STAGES[s], local_fixed(m)) for m in BOXES for s in STAGES}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="alps-localreg-") as tmp:
        for name, spec in variants.items():
            scans = []
            for item in items:
                lay = scan_layout(deriv, item)
                pre = Preprocessed.load(item, deriv)
                reg = pre.registration
                if spec is not None:
                    work = Path(tmp) / name
                    work.mkdir(exist_ok=True)
                    reg = refine(lay, reg, spec[0], spec[1], work)
                scans.append(measure_scan(item, lay, pre, reg))
            c = consistency(pd.DataFrame(scans), n_sim=100_000)
            c.insert(0, "variant", name)
            rows.append(c)
            print(name, c[["participant_id", "index", "spread", "noise_spread", "q_p"]].round(3).to_string(index=False),
                  flush=True)
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(args.out_csv, index=False)
    heads = sorted(table["participant_id"].unique())
    for choose in heads:
        score = table[table["participant_id"] == choose].groupby("variant")["cochran_q"].sum()
        best = score.idxmin()
        for other in heads:
            if other == choose:
                continue
            o = table[(table["participant_id"] == other) & (table["variant"].isin(["global", best]))]
            print(f"chosen on {choose}: {best} (summed Q {score[best]:.1f} vs global {score['global']:.1f}); "
                  f"on {other}: " + "; ".join(f"{r['variant']} {r['index']} spread {r['spread']:.3f} "
                                             f"(noise {r['noise_spread']:.3f}, Q p {r['q_p']:.3g})"
                                             for _, r in o.iterrows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
