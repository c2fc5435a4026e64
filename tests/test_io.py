"""Input discovery and validation (alps.io): every bad input gives a clear error naming the file."""
from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from alps import atomic
from alps import io as aio
from alps.io.gradients import GradientError, write_bvals_bvecs


def _scheme(n_dirs=7):
    rng = np.random.default_rng(0)
    g = rng.normal(size=(n_dirs, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    bvals = np.r_[0.0, np.full(n_dirs, 1000.0)]
    bvecs = np.vstack([np.zeros(3), g])
    return bvals, bvecs


def _write(tmp_path, name="sub-01_dwi", data=None, affine=None, bvals=None, bvecs=None):
    b, g = _scheme()
    bvals = b if bvals is None else bvals
    bvecs = g if bvecs is None else bvecs
    if data is None:
        data = np.random.default_rng(1).uniform(50, 100, (6, 6, 5, len(bvals))).astype(np.float32)
    affine = np.diag([-2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    write_bvals_bvecs(bvals, bvecs, tmp_path / f"{name}.bval", tmp_path / f"{name}.bvec")
    return path


def test_load_valid(tmp_path):
    p = _write(tmp_path)
    dwi = aio.load_dwi(p)
    assert dwi.data.shape == (6, 6, 5, 8)
    assert dwi.b0_mask.sum() == 1
    assert np.allclose(dwi.zooms, (2, 2, 2))


@pytest.mark.parametrize("case, exc, text", [
    ("count_mismatch", GradientError, "b-values but the image has"),
    ("no_b0", GradientError, "no b=0"),
    ("non_unit", GradientError, "unit length"),
    ("image_3d", aio.InputError, "3D image"),
    ("nan", aio.InputError, "NaN/Inf"),
    ("inf", aio.InputError, "NaN/Inf"),
    ("sheared", aio.InputError, "sheared"),
    ("zero_volume", aio.InputError, "entirely zero"),
])
def test_invalid_inputs(tmp_path, case, exc, text):
    b, g = _scheme()
    kw = {}
    if case == "count_mismatch":
        kw = dict(bvals=np.r_[b, 1000.0], bvecs=np.vstack([g, g[1]]),
                  data=np.ones((6, 6, 5, len(b)), np.float32))
    elif case == "no_b0":
        kw = dict(bvals=np.full(len(b), 1000.0), bvecs=np.vstack([g[1], g[1:]]))
    elif case == "non_unit":
        g2 = g.copy()
        g2[3] *= 1.5
        kw = dict(bvecs=g2)
    elif case == "image_3d":
        kw = dict(data=np.ones((6, 6, 5), np.float32))
    elif case in ("nan", "inf"):
        d = np.ones((6, 6, 5, 8), np.float32)
        d[1, 1, 1, 2] = np.nan if case == "nan" else np.inf
        kw = dict(data=d)
    elif case == "sheared":
        a = np.diag([2.0, 2.0, 2.0, 1.0])
        a[0, 1] = 0.5
        kw = dict(affine=a)
    elif case == "zero_volume":
        d = np.ones((6, 6, 5, 8), np.float32)
        d[..., 4] = 0
        kw = dict(data=d)
    p = _write(tmp_path, **kw)
    with pytest.raises(exc) as info:
        aio.load_dwi(p)
    assert text in str(info.value)
    # errors name the offending file
    assert p.name in str(info.value) or ".bval" in str(info.value) or ".bvec" in str(info.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(aio.InputError, match="not found"):
        aio.load_dwi(tmp_path / "missing_dwi.nii.gz")
    empty = tmp_path / "empty_dwi.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(aio.InputError, match="empty"):
        aio.load_dwi(empty)
    corrupt = tmp_path / "corrupt_dwi.nii.gz"
    corrupt.write_bytes(b"this is not a nifti file at all" * 20)
    with pytest.raises(aio.InputError, match="corrupt_dwi.nii.gz"):
        aio.load_dwi(corrupt)
    # truncated gzip: keep the header, cut the data
    good = _write(tmp_path, name="trunc_dwi")
    raw = gzip.decompress(good.read_bytes())
    good.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    with pytest.raises(aio.InputError, match="trunc_dwi.nii.gz"):
        aio.load_dwi(good)
    # missing gradient file
    p = _write(tmp_path, name="nobvec_dwi")
    (tmp_path / "nobvec_dwi.bvec").unlink()
    with pytest.raises(GradientError, match="nobvec_dwi.bvec"):
        aio.load_dwi(p)


def test_singular_affine():
    # nibabel refuses to save a singular affine, so the check is exercised directly
    with pytest.raises(aio.InputError, match="x.nii.gz: image affine is not invertible"):
        aio.check_affine(np.diag([2.0, 2.0, 0.0, 1.0]), "x.nii.gz")


def test_check_affine_accepts_oblique():
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_euler("xyz", [20, -10, 30], degrees=True).as_matrix()
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([-2.0, 2.0, 3.0])
    assert np.allclose(aio.check_affine(aff), aff)


def _bids(tmp_path):
    root = tmp_path / "bids"
    for sub in ("01", "02"):
        d = root / f"sub-{sub}" / "dwi"
        d.mkdir(parents=True)
        _write(d, name=f"sub-{sub}_dwi")
    d = root / "sub-03" / "ses-1" / "dwi"
    d.mkdir(parents=True)
    _write(d, name="sub-03_ses-1_dwi")
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.9.0"}))
    return root


def test_discover_bids(tmp_path):
    root = _bids(tmp_path)
    items = aio.discover(root)
    assert [i.key for i in items] == ["sub-01", "sub-02", "sub-03_ses-1"]
    sel = aio.discover(root, participant_label=["02", "sub-03"])
    assert [i.participant_id for i in sel] == ["sub-02", "sub-03"]
    with pytest.raises(aio.InputError, match="99"):
        aio.discover(root, participant_label="99")
    with pytest.raises(aio.InputError, match="no BIDS diffusion"):
        aio.discover(tmp_path / "bids" / "sub-01" / "dwi" / "..")  # a folder without sub-*/dwi


def test_discover_single_file(tmp_path):
    p = _write(tmp_path, name="2201_WIP_DTI")
    items = aio.discover(p)
    assert len(items) == 1 and items[0].participant_id == "sub-2201WIPDTI"
    assert items[0].bval.name == "2201_WIP_DTI.bval"
    other = tmp_path / "x.bval"
    other.write_text("0")
    items = aio.discover(p, bval=other, bvec=tmp_path / "2201_WIP_DTI.bvec")
    assert items[0].bval == other
    with pytest.raises(aio.InputError, match="not found"):
        aio.discover(tmp_path / "nope.nii.gz")


def test_atomic_writes(tmp_path):
    target = tmp_path / "a" / "b.json"
    atomic.write_json(target, {"x": np.float64(1.5), "y": np.arange(2)})
    assert json.loads(target.read_text()) == {"x": 1.5, "y": [0, 1]}
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    atomic.save_nifti(tmp_path / "c.nii.gz", img)
    assert nib.load(tmp_path / "c.nii.gz").shape == (2, 2, 2)
    h = aio.sha256(tmp_path / "c.nii.gz")
    assert len(h) == 64
