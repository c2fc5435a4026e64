"""A small BIDS dataset with planted susceptibility distortion, in the three layouts that carry a
field: two full DWI series with opposite phase encoding, one DWI with a reverse-PE b = 0 image in
``fmap/``, and one DWI with a GRE phase-difference field map.

Every subject is the same simulated head (:func:`alps.simulation.distortion.simulate_pepolar_pair`:
3 mm grid, a few directions, the planted frontal/temporal field) acquired P→A (``PhaseEncodingDirection``
``j`` on the LAS grid) and, where the layout has it, A→P (``j-``); the sidecars carry
``PhaseEncodingDirection`` and ``TotalReadoutTime`` as dcm2niix writes them. Layouts
(:data:`LAYOUTS`):

``dwi-pair``
    ``dwi/sub-X_dir-PA_dwi`` and ``dwi/sub-X_dir-AP_dwi``: both full series.
``fmap-epi``
    ``dwi/sub-X_dir-PA_dwi`` and ``fmap/sub-X_dir-AP_epi`` (the mean b = 0 of the A→P series,
    3-D) with ``IntendedFor`` naming the DWI.
``phasediff``
    ``dwi/sub-X_dwi`` and ``fmap/sub-X_phasediff`` + ``_magnitude1``/``_magnitude2``: a dual-echo
    GRE of the same field (echo times ``EchoTime1``/``EchoTime2`` in the sidecar; each echo
    ``m e^{2πi f TE} + complex Gaussian noise`` with ``m`` the undistorted b = 0, the phase
    difference stored as Siemens integers, −4096…4096 for −π…π), ``IntendedFor`` naming the DWI.

``sidecar_changes`` edits a subject's DWI sidecar(s) (a value ``None`` removes the key), to make
the broken inputs a pipeline must refuse with an error naming the file (no
``TotalReadoutTime``, a readout time contradicting ``EffectiveEchoSpacing``, no polarity).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .. import __version__
from ..io.gradients import write_bvals_bvecs
from .bids import write_json, write_nifti_gz

__all__ = ["LAYOUTS", "ECHO_TIMES", "SimulatedFieldScan", "write_distortion_dataset"]

#: the layouts of :func:`write_distortion_dataset` (module docstring).
LAYOUTS = ("dwi-pair", "fmap-epi", "phasediff")
#: echo times (s) of the simulated GRE field map (Siemens' usual 4.92 / 7.38 ms at 3 T).
ECHO_TIMES = (0.00492, 0.00738)


@dataclass(frozen=True)
class SimulatedFieldScan:
    """The planted truth of one subject: its ``layout``, the DWI file(s) written (P→A first), the
    planted field (Hz) on their grid, the brain mask and the oracle ALPS of the head."""

    participant_id: str
    layout: str
    dwi: tuple
    field_hz: np.ndarray
    affine: np.ndarray
    mask: np.ndarray
    oracle: dict
    readout_s: float


def _sidecar(direction: str, readout_s: float, changes: dict | None) -> dict:
    out = {"Manufacturer": "alps simulation", "SoftwareVersions": f"alps {__version__}",
           "MagneticFieldStrength": 3, "PhaseEncodingDirection": direction, "TotalReadoutTime": readout_s}
    for k, v in (changes or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _write_dwi(folder: Path, stem: str, img, bvals, bvecs, sidecar: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_bvals_bvecs(bvals, bvecs, folder / f"{stem}.bval", folder / f"{stem}.bvec")
    write_json(folder / f"{stem}.json", sidecar)
    write_nifti_gz(img, folder / f"{stem}.nii.gz")
    return folder / f"{stem}.nii.gz"


def _gre(field_hz, magnitude, sigma, rng):
    """Dual-echo GRE of the field: (phasediff as Siemens int16, magnitude1, magnitude2)."""
    echoes = []
    for k, te in enumerate(ECHO_TIMES):
        m = np.asarray(magnitude, float) * (1.0 - 0.1 * k)  # T2* decay between the echoes
        noise = rng.standard_normal(m.shape) + 1j * rng.standard_normal(m.shape)
        echoes.append(m * np.exp(2j * np.pi * np.asarray(field_hz, float) * te) + sigma * noise)
    dphi = np.angle(echoes[1] * np.conj(echoes[0]))
    phase = np.clip(np.rint(dphi / np.pi * 4096.0), -4096, 4096).astype(np.int16)
    return phase, np.abs(echoes[0]).astype(np.float32), np.abs(echoes[1]).astype(np.float32)


def write_distortion_dataset(root, subjects: dict | None = None, *, seed: int = 1, n_dirs: int = 12,
                             bval: float = 1000.0, snr: float = 30.0, voxel_mm: float = 3.0,
                             readout_s: float = 0.05, sidecar_changes: dict | None = None) -> dict:
    """Write the dataset (module docstring) under ``root``; returns ``{participant_id:
    SimulatedFieldScan}``.

    Parameters
    ----------
    root : path-like
        The BIDS root (created; ``dataset_description.json`` written).
    subjects : dict, optional
        ``{label: layout}`` (default: one subject per layout, ``pair``, ``epi``, ``gre``).
    seed : int
        Noise seed of the simulated pair and the GRE.
    n_dirs, bval, snr, voxel_mm, readout_s
        The acquisition: 1 b = 0 + ``n_dirs`` directions at ``bval``, b = 0 WM SNR, voxel size and
        total readout time (s) of both phase encodings.
    sidecar_changes : dict, optional
        ``{label: {key: value or None}}`` applied to that subject's DWI sidecar(s).
    """
    from .distortion import simulate_pepolar_pair
    from .phantom import make_template_fields
    from .pose import Pose
    from .signal import default_scheme

    root = Path(root)
    subjects = dict(subjects or {"pair": "dwi-pair", "epi": "fmap-epi", "gre": "phasediff"})
    bad = sorted(set(subjects.values()) - set(LAYOUTS))
    if bad:
        raise ValueError(f"unknown layout(s) {bad}; choose from {list(LAYOUTS)}")
    changes = dict(sidecar_changes or {})
    fields = make_template_fields()
    scheme = default_scheme(seed=3, n_b0=1, n_dirs=n_dirs, bval=bval)
    pair = simulate_pepolar_pair(fields, Pose((3.0, -4.0, 5.0), (2.0, -3.0, 1.0)), {"alps_L": 1.5, "alps_R": 1.45},
                                 seed=seed, snr=snr, scheme=scheme, voxel_mm=voxel_mm, readout_s=readout_s)
    pa, ap = pair.images["j"], pair.images["j-"]
    b0 = pair.bvals <= 50
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "dataset_description.json", {"Name": "alps simulated distortion", "BIDSVersion": "1.9.0",
                                                   "DatasetType": "raw"})
    rng = np.random.default_rng([seed, 25])
    out = {}
    for label, layout in subjects.items():
        pid = f"sub-{label}"
        dwi_dir, fmap_dir = root / pid / "dwi", root / pid / "fmap"
        change = changes.get(label)
        files = []
        if layout == "phasediff":
            stem = f"{pid}_dwi"
        else:
            stem = f"{pid}_dir-PA_dwi"
        files.append(_write_dwi(dwi_dir, stem, pa, pair.bvals, pair.bvecs, _sidecar("j", readout_s, change)))
        intended = [f"dwi/{stem}.nii.gz"]
        if layout == "dwi-pair":
            files.append(_write_dwi(dwi_dir, f"{pid}_dir-AP_dwi", ap, pair.bvals, pair.bvecs,
                                    _sidecar("j-", readout_s, change)))
        elif layout == "fmap-epi":
            fmap_dir.mkdir(parents=True, exist_ok=True)
            epi = np.asarray(ap.dataobj, np.float32)[..., b0].mean(axis=-1)
            write_nifti_gz(nib.Nifti1Image(epi, ap.affine), fmap_dir / f"{pid}_dir-AP_epi.nii.gz")
            write_json(fmap_dir / f"{pid}_dir-AP_epi.json",
                       {"PhaseEncodingDirection": "j-", "TotalReadoutTime": readout_s, "IntendedFor": intended})
        else:
            fmap_dir.mkdir(parents=True, exist_ok=True)
            mag = pair.truth[..., b0].mean(axis=-1)
            phase, m1, m2 = _gre(pair.field_hz, mag, pair.extras["sigma"], rng)
            for name, arr in (("phasediff", phase), ("magnitude1", m1), ("magnitude2", m2)):
                write_nifti_gz(nib.Nifti1Image(arr, pa.affine), fmap_dir / f"{pid}_{name}.nii.gz")
            write_json(fmap_dir / f"{pid}_phasediff.json",
                       {"EchoTime1": ECHO_TIMES[0], "EchoTime2": ECHO_TIMES[1], "IntendedFor": intended})
        out[pid] = SimulatedFieldScan(pid, layout, tuple(files), pair.field_hz, np.asarray(pa.affine), pair.mask,
                                      dict(pair.extras["oracle"]), float(readout_s))
    return out
