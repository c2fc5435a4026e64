"""The susceptibility correction through the pipeline (``alps run`` defaults) on the Siemens XA30
pair, as a user's BIDS dataset would hold it.

    .venv/bin/python benchmarks/bench_sdc_pipeline.py OUT_CSV [--work DIR]

``../shared/data/real_dwi/siemens_prisma_xa30_pepolar`` is laid out as BIDS (links to the NIfTI
files; sidecars copied without the site's metadata): ``sub-pair`` with ``dwi/sub-pair_dir-PA_dwi`` and
``dwi/sub-pair_dir-AP_dwi`` (the two full series), and ``sub-grePA``/``sub-greAP`` with one series
each and the GRE field map in ``fmap/`` (``phasediff`` + ``magnitude1``/``2``, ``IntendedFor`` the
DWI). The
pipeline runs on it with its defaults (``sdc: auto`` corrects every scan; the pair with the
per-volume fields of its matched volumes) and with ``sdc: off``. Rows: per scan and run, ALPS ±
``alps_se``, the combined index of the pair (``alps_combined`` ± ``alps_combined_se``,
``alps_pair_z``), the field source and displacement columns, the stage times of ``timings.tsv``;
and the field the pipeline wrote for the pair (``desc-preproc_fieldmap``) against the field it
wrote from the GRE (correlation, RMS difference in Hz within the brain mask of the corrected PA
series).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alps import atomic  # noqa: E402

XA30 = REPO.parent / "shared" / "data" / "real_dwi" / "siemens_prisma_xa30_pepolar"
SERIES = {"PA": "10_DWI_dir80_PA", "AP": "17_DWI_dir80_AP"}
#: sidecar keys kept (no site, device or person metadata is carried into the benchmark's dataset).
KEEP = ("Manufacturer", "ManufacturersModelName", "MagneticFieldStrength", "SoftwareVersions", "EchoTime",
        "RepetitionTime", "PhaseEncodingDirection", "TotalReadoutTime", "EffectiveEchoSpacing", "ReconMatrixPE",
        "SliceEncodingDirection", "EchoTime1", "EchoTime2")


def _sidecar(src: Path, **extra) -> dict:
    meta = json.loads(src.read_text())
    return {**{k: meta[k] for k in KEEP if k in meta}, **extra}


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(src, dst)


def xa30_bids(root: Path) -> Path:
    """The XA30 session as a BIDS dataset under ``root`` (module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    atomic.write_json(root / "dataset_description.json", {"Name": "XA30 PEPOLAR (benchmark)", "BIDSVersion": "1.9.0"})
    for d, stem in SERIES.items():
        for sub, name in (("pair", f"sub-pair_dir-{d}_dwi"), (f"gre{d}", f"sub-gre{d}_dir-{d}_dwi")):
            folder = root / f"sub-{sub}" / "dwi"
            for ext in (".nii.gz", ".bval", ".bvec"):
                _link(XA30 / f"{stem}{ext}", folder / f"{name}{ext}")
            atomic.write_json(folder / f"{name}.json", _sidecar(XA30 / f"{stem}.json"))
        fmap = root / f"sub-gre{d}" / "fmap"
        for src, name in (("9_gre_field_mapping_e2_ph", "phasediff"), ("8_gre_field_mapping_e1", "magnitude1"),
                          ("8_gre_field_mapping_e2", "magnitude2")):
            _link(XA30 / f"{src}.nii.gz", fmap / f"sub-gre{d}_{name}.nii.gz")
        atomic.write_json(fmap / f"sub-gre{d}_phasediff.json",
                          _sidecar(XA30 / "9_gre_field_mapping_e2_ph.json",
                                   IntendedFor=[f"dwi/sub-gre{d}_dir-{d}_dwi.nii.gz"]))
    return root


def _field(out: Path, sub: str, d: str):
    from alps.pipeline.layout import ScanLayout

    lay = ScanLayout(out, f"sub-{sub}", None, (("dir", d),))
    return lay, np.asarray(nib.load(str(lay.fieldmap)).dataobj, float)


def run(out_csv: Path, *, work: Path) -> pd.DataFrame:
    from alps.pipeline import run_cohort

    bids = xa30_bids(work / "bids")
    rows = []
    tables = {}
    for label, params in (("default", {}), ("sdc_off", {"sdc": "off"})):
        out = work / f"derivatives_{label}"
        df = run_cohort(bids, out, progress=False, **params)
        tables[label] = df
        timings = pd.read_csv(out / "timings.tsv", sep="\t")
        for _, r in df.iterrows():
            scan = f"{r['participant_id']}_dir-{r['dir']}"
            base = {"run": label, "scan": scan}
            for c in ("status", "alps", "alps_se", "alps_L", "alps_R", "alps_combined", "alps_combined_se",
                      "alps_pair_z", "sdc_source", "sdc_displacement_p95_mm", "sdc_displacement_max_mm",
                      "sdc_min_jacobian", "sdc_rigid_mm", "sdc_rigid_deg", "sdc_volume_pairs",
                      "sdc_volume_field_rms_hz", "se_note", "qc_flags", "error"):
                if c in r.index:
                    rows.append(dict(base, quantity=c, value=r[c]))
        for _, r in timings.iterrows():
            scan = f"{r['participant_id']}_dir-{r['dir']}"
            for c in (c for c in timings.columns if c.startswith("time_")):
                rows.append({"run": label, "scan": scan, "quantity": c, "value": r[c]})
    # the pair's field against the GRE's, both as the pipeline wrote them (same grid: the PA series)
    lay, f_pair = _field(work / "derivatives_default", "pair", "PA")
    _, f_gre = _field(work / "derivatives_default", "grePA", "PA")
    mask = np.asarray(nib.load(str(lay.mask)).dataobj) > 0
    a, b = f_pair[mask], f_gre[mask]
    rows += [{"run": "default", "scan": "sub-pair_dir-PA vs sub-grePA_dir-PA", "quantity": q, "value": v}
             for q, v in (("field_corr", float(np.corrcoef(a, b)[0, 1])),
                          ("field_rms_diff_hz", float(np.sqrt(np.mean((a - b) ** 2)))),
                          ("field_rms_pair_hz", float(np.sqrt(np.mean(a ** 2)))),
                          ("field_rms_gre_hz", float(np.sqrt(np.mean(b ** 2)))),
                          ("brain_voxels", int(mask.sum())))]
    rows.append({"run": "", "scan": "", "quantity": "load_1min", "value": os.getloadavg()[0]})
    out = pd.DataFrame(rows)
    atomic.write_table(out_csv, out)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_csv", type=Path)
    p.add_argument("--work", type=Path, default=None)
    a = p.parse_args(argv)
    if not XA30.is_dir():
        print(f"{XA30} not found: benchmark skipped")
        return 0
    a.out_csv.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = run(a.out_csv, work=a.work or Path(tmp))
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(out.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
