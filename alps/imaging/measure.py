"""ROI mapping and the ALPS index in template axes and in scanner (voxel) axes.

Design choice: ROIs go to the subject, tensors stay native
---------------------------------------------------------
The tensor field is **never resampled**: interpolating tensors across a registration blurs
them and needs its own reorientation. Instead the template ROIs are mapped into the subject's
native grid through the registration, and each native voxel gets a **weight**:

* spheres (default) — ``roi_weighting='trilinear'``: the sphere is sampled on a regular lattice
  in template space (``lattice_mm``, default 0.5 mm), every sample is mapped to the native grid
  and shares unit weight among its 8 neighbouring voxels by trilinear interpolation. The
  ROI-mean tensor is then **exactly** the mean over the sphere of the trilinearly interpolated
  native tensor field — what the atlas-based ALPS pipelines compute when they resample the
  diffusivity maps to MNI space (FSL ``flirt``/``applywarp``, trilinear by default) and average
  inside the sphere — without resampling the whole field. On 3 mm data a 2.5 mm sphere covers
  only 2–3 voxels; the interpolation kernel spreads the estimate over their neighbours, which
  lowers its noise (wild-bootstrap SD of the mean index on the real 3 mm Toshiba scans 0.041 with
  ``'partial'`` → 0.030, :mod:`alps.imaging.noise`, ``benchmarks/real_data.py --reuse DIR --bootstrap
  500``) and makes it vary smoothly with the grid's position and tilt;
* ``roi_weighting='partial'``: the fraction of the voxel's volume whose points map
  (subject → template) inside the template sphere, estimated with ``n³`` sub-voxel samples
  (``supersample``, default 4) — the exact pre-image of the sphere, no interpolation kernel;
* ``roi_weighting='centre'``: the classic binary mask (voxel centre inside);
* JHU labels (``roi='jhu'``, :mod:`alps.imaging.atlas`) — with ``'trilinear'`` (default) every label
  voxel of the 1..4 label image built in template space is sampled on the same ``lattice_mm``
  sub-lattice and mapped like the sphere samples (:func:`trilinear_label_weights`), so the ROI
  mean is the mean of the interpolated native field over the label's template volume; with
  ``'centre'`` the label image is warped to the native grid with nearest-neighbour
  interpolation (binary weights: each native voxel in or out, which on 3 mm data makes the
  ROI jump with sub-millimetre changes of the registration).

Weights are in voxel-volume units: their sum (``wsum_*``) is the ROI volume in native voxels.

The ROI-mean tensor is the weighted mean of the native tensors (linear, so rotating the mean
equals averaging the rotated tensors).

Frames
------
* **template axes** (the default ``alps*`` columns): ``D_t = Q · D_world · Qᵀ`` with
  ``D_world = voxel_to_world(D_vox, affine)`` and ``Q`` the rotation (polar factor) of the
  subject → template affine (for SyN, of its affine part). Head tilt and oblique slabs do not
  bias it.
* **scanner axes** (``alps_scanner*``): the tensor as fitted, in the image's voxel axes
  (``Dxx`` = voxel axis i, ``Dyy`` = j, ``Dzz`` = k) — what FSL ``dtifit`` gives and what the
  original method reads off; for an axial RAS/LAS image these are the scanner x/y/z.

Both use the same ROI weights.
"""
from __future__ import annotations

import numpy as np

from . import tensor as T
from .index import alps_from_roi_tensors
from .roi import ROI_NAMES, default_spheres

#: label value of each ROI in the ``desc-alpsrois_dseg`` image.
ROI_LABELS = {name: i + 1 for i, name in enumerate(ROI_NAMES)}

#: expected principal direction (template axis index) per fibre: projection → z, association → y.
EXPECTED_AXIS = {"proj": 2, "assoc": 1}


def _voxel_points(ijk, affine, n: int):
    """World coordinates of ``n³`` sub-voxel samples of each voxel in ``ijk`` (M, 3)."""
    offs = (np.arange(n) + 0.5) / n - 0.5
    sub = np.stack(np.meshgrid(offs, offs, offs, indexing="ij"), -1).reshape(-1, 3)  # (n³, 3)
    pts = ijk[:, None, :].astype(float) + sub[None]  # (M, n³, 3)
    aff = np.asarray(affine, float)
    return pts @ aff[:3, :3].T + aff[:3, 3]


#: ROI weightings of :func:`sphere_weights`.
WEIGHTINGS = ("trilinear", "partial", "centre")


def sphere_lattice(center_mm, radius_mm, lattice_mm: float = 0.5) -> np.ndarray:
    """Points of a cubic lattice (spacing ``lattice_mm``, one point at the centre) inside a sphere,
    (N, 3) template mm; each stands for a ``lattice_mm³`` cell."""
    if not lattice_mm > 0:
        raise ValueError(f"lattice spacing must be positive, got {lattice_mm!r} mm")
    n = int(np.floor(radius_mm / lattice_mm))
    g = np.arange(-n, n + 1) * float(lattice_mm)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    pts = pts[(pts ** 2).sum(-1) <= radius_mm ** 2 + 1e-9]
    return pts + np.asarray(center_mm, float)


def trilinear_weights(points_ijk, shape) -> np.ndarray:
    """Native-grid weights that give, for any field ``f``, ``Σ w·f = Σ_p f(p)`` with ``f(p)``
    the trilinear interpolation of ``f`` at each point ``p`` (voxel coordinates, (N, 3)).

    Points within half a voxel outside the outermost voxel centres (still inside the image's
    field of view) take the value of the edge (coordinates clamped); points farther out raise
    ``ValueError``.
    """
    ijk = np.asarray(points_ijk, float).reshape(-1, 3)
    dims = np.asarray(tuple(shape[:3]), int)
    if np.any(ijk < -0.5) or np.any(ijk > dims - 0.5):
        raise ValueError("sample points fall outside the image field of view")
    ijk = np.clip(ijk, 0, dims - 1)
    base = np.minimum(np.floor(ijk).astype(int), np.maximum(dims - 2, 0))
    frac = ijk - base
    w = np.zeros(tuple(dims), np.float64)
    for corner in np.ndindex(2, 2, 2):
        c = np.asarray(corner)
        idx = np.minimum(base + c, dims - 1)
        np.add.at(w, tuple(idx.T), np.prod(np.where(c, frac, 1.0 - frac), axis=1))
    return w


def trilinear_sphere_weights(shape, affine, registration, sphere, *, lattice_mm: float = 0.5) -> np.ndarray:
    """Weights (voxel-volume units) of one template sphere sampled on a lattice and mapped to the
    native grid with trilinear interpolation (``roi_weighting='trilinear'``)."""
    pts = sphere_lattice(sphere.center_mm, sphere.radius_mm, lattice_mm)
    # each lattice point stands for lattice_mm³ of template
    return _points_weights(pts, shape, affine, registration, lattice_mm ** 3,
                           f"{sphere.name}: template sphere at {sphere.center_mm} mm")


def _points_weights(pts_template, shape, affine, registration, point_volume_mm3, what):
    """Trilinear native weights of template points, each standing for ``point_volume_mm3``."""
    sub = registration.points_to_subject(pts_template)
    inv = np.linalg.inv(np.asarray(affine, float))
    ijk = sub @ inv[:3, :3].T + inv[:3, 3]
    try:
        w = trilinear_weights(ijk, shape)
    except ValueError:
        raise ValueError(f"ROI {what} maps outside the image field of view "
                         f"(native centre {np.round(sub.mean(0), 1).tolist()} mm)") from None
    # a template point of volume v stands for v·|det J| mm³ of subject
    jac = abs(np.linalg.det(registration.template_to_subject[:3, :3]))
    vox = abs(np.linalg.det(np.asarray(affine, float)[:3, :3]))
    return (w * (point_volume_mm3 * jac / vox)).astype(np.float32)


def trilinear_label_weights(shape, affine, registration, labels_img, *, lattice_mm: float = 0.5
                            ) -> dict[str, np.ndarray]:
    """Native-grid weights of the ALPS label image (1..4, template space) by trilinear sampling.

    Every label voxel is split into ``n³`` sub-voxel points (``n = round(voxel / lattice_mm)``,
    at least 1) at the centres of its sub-cells; the points are mapped to the native grid and
    share their volume among their 8 neighbours (:func:`trilinear_weights`). For any native
    field ``f``, ``Σ w·f / Σ w`` is then the mean over the label's template volume of the
    trilinearly interpolated ``f`` (exact for fields linear in native coordinates).

    Returns ``{roi name: weights}`` in voxel-volume units; raises ``ValueError`` when a label is
    empty or maps outside the field of view.
    """
    lab = np.rint(np.asarray(labels_img.dataobj, float)).astype(int)
    aff_t = np.asarray(labels_img.affine, float)
    vox_t = np.linalg.norm(aff_t[:3, :3], axis=0)
    n = np.maximum(np.rint(vox_t / float(lattice_mm)).astype(int), 1)
    sub_offsets = np.stack(np.meshgrid(*[(np.arange(k) + 0.5) / k - 0.5 for k in n], indexing="ij"),
                           -1).reshape(-1, 3)  # voxel units, centred on the voxel centre
    point_volume = abs(np.linalg.det(aff_t[:3, :3])) / len(sub_offsets)
    out = {}
    for name, value in ROI_LABELS.items():
        ijk = np.argwhere(lab == value)
        if len(ijk) == 0:
            raise ValueError(f"ROI {name}: label {value} is empty in the template label image")
        pts_vox = (ijk[:, None, :] + sub_offsets[None]).reshape(-1, 3)
        pts = pts_vox @ aff_t[:3, :3].T + aff_t[:3, 3]
        out[name] = _points_weights(pts, shape, affine, registration, point_volume, f"{name} (label {value})")
    return out


def sphere_weights(shape, affine, registration, spheres, *, weighting: str = "trilinear",
                   supersample: int = 4, lattice_mm: float = 0.5) -> dict[str, np.ndarray]:
    """Native-grid weights of template-space spheres (see module docstring).

    Parameters
    ----------
    shape, affine : the native grid
    registration : :class:`alps.imaging.registration.Registration` (maps points both ways)
    spheres : list of :class:`alps.imaging.roi.SphereROI` in template mm
    weighting : 'trilinear' (default), 'partial' (volume fraction) or 'centre' (binary, voxel
        centre inside)
    supersample : sub-voxel samples per axis for 'partial'
    lattice_mm : template-space sample spacing for 'trilinear'

    Raises
    ------
    ValueError if a sphere maps outside the native field of view or gets zero weight.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"roi weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "trilinear":
        return {s.name: trilinear_sphere_weights(shape, affine, registration, s, lattice_mm=lattice_mm)
                for s in spheres}
    shape = tuple(shape[:3])
    aff = np.asarray(affine, float)
    inv = np.linalg.inv(aff)
    vox = np.linalg.norm(aff[:3, :3], axis=0)
    out = {}
    for s in spheres:
        c_sub = registration.points_to_subject(np.asarray(s.center_mm, float)[None])[0]
        # generous native search box: radius scaled by the affine's largest stretch + 1 voxel
        lin = registration.template_to_subject[:3, :3]
        stretch = float(np.linalg.svd(lin, compute_uv=False).max())
        reach = s.radius_mm * stretch * 1.5 + vox.max() * 1.5
        c_ijk = inv[:3, :3] @ c_sub + inv[:3, 3]
        half = np.ceil(reach / vox).astype(int)
        lo = np.maximum(np.floor(c_ijk).astype(int) - half, 0)
        hi = np.minimum(np.ceil(c_ijk).astype(int) + half + 1, shape)
        if np.any(hi <= lo):
            raise ValueError(f"ROI {s.name}: template sphere at {s.center_mm} mm maps outside the image "
                             f"field of view (native centre {np.round(c_sub, 1).tolist()} mm)")
        grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
        n = supersample if weighting == "partial" else 1
        pts = _voxel_points(grid, aff, n)  # (M, n³, 3) world
        tpts = registration.points_to_template(pts.reshape(-1, 3)).reshape(pts.shape)
        inside = ((tpts - np.asarray(s.center_mm)) ** 2).sum(-1) <= s.radius_mm ** 2 + 1e-9
        w = inside.mean(axis=1)
        full = np.zeros(shape, np.float32)
        full[tuple(grid.T)] = w
        if not (full > 0).any():
            raise ValueError(f"ROI {s.name}: sphere at {s.center_mm} mm (radius {s.radius_mm} mm) "
                             "contains no native voxel")
        out[s.name] = full
    return out


def filter_weights(weights, *, fa=None, fa_min: float | None = None, v1_template=None,
                   purity_min: float | None = None) -> dict[str, np.ndarray]:
    """Optional ROI filters: drop voxels with FA < ``fa_min``; with ``purity_min``, keep only
    voxels whose template-axis principal eigenvector has ``|component| ≥ purity_min`` along the
    expected axis (z for projection, y for association fibres)."""
    out = {}
    for name, w in weights.items():
        w = w.copy()
        if fa_min is not None and fa is not None:
            w[fa < fa_min] = 0
        if purity_min is not None and v1_template is not None:
            ax = EXPECTED_AXIS[name.split("_")[0]]
            w[np.abs(v1_template[..., ax]) < purity_min] = 0
        if not (w > 0).any():
            raise ValueError(f"ROI {name}: no voxel left after the FA/purity filters")
        out[name] = w
    return out


def weighted_mean(values, w):
    w = np.asarray(w, float)
    sel = w > 0
    ww = w[sel]
    v = np.asarray(values)[sel]
    return np.tensordot(ww, v, axes=(0, 0)) / ww.sum()


def dseg_from_weights(weights, shape) -> np.ndarray:
    """Label image (uint8, 1..4 = proj_L, proj_R, assoc_L, assoc_R): each voxel with a non-zero
    weight gets the label of its largest weight."""
    names = list(ROI_NAMES)
    stack = np.stack([np.asarray(weights[n], float) for n in names], -1)
    lab = np.zeros(tuple(shape[:3]), np.uint8)
    anyw = stack.max(-1) > 0
    lab[anyw] = (np.argmax(stack, -1) + 1)[anyw].astype(np.uint8)
    return lab


def measure(tensor_vox, affine, registration, weights, *, fa=None, md=None) -> dict:
    """ALPS in template and scanner axes plus per-ROI summaries.

    Parameters
    ----------
    tensor_vox : (X, Y, Z, 3, 3) tensor in voxel axes (mm²/s)
    affine : 4x4 native affine
    registration : provides ``rotation`` (subject → template polar factor)
    weights : dict ROI name → (X, Y, Z) weights
    fa, md : optional maps for per-ROI means

    Returns
    -------
    dict with ``alps_L, alps_R, alps`` and ``dxx_proj_L ...`` (template axes),
    ``alps_scanner_L, alps_scanner_R, alps_scanner`` and ``dxx_scanner_proj_L ...`` (voxel
    axes), ``fa_*, md_*, nvox_*, wsum_*`` (sum of weights = ROI volume in voxels),
    ``purity_*`` (weighted fraction of ROI voxels whose template-axis principal eigenvector is
    along the expected axis).
    """
    rot_v2w = T.polar_rotation(np.asarray(affine)[:3, :3])
    q = registration.rotation @ rot_v2w  # voxel axes -> template axes
    mean_vox, mean_tpl = {}, {}
    row: dict = {}
    for name in ROI_NAMES:
        w = weights[name]
        sel = w > 0
        d_vox = tensor_vox[sel]
        ww = w[sel].astype(float)
        m_vox = np.tensordot(ww, d_vox, axes=(0, 0)) / ww.sum()
        mean_vox[name] = m_vox
        mean_tpl[name] = T.rotate(m_vox, q)
        d_tpl = T.rotate(d_vox, q)
        _, evecs = T.eig(d_tpl)
        v1 = evecs[..., :, 0]
        ax = EXPECTED_AXIS[name.split("_")[0]]
        along = np.argmax(np.abs(v1), axis=-1) == ax
        row[f"purity_{name}"] = float((ww * along).sum() / ww.sum())
        row[f"nvox_{name}"] = int(sel.sum())
        row[f"wsum_{name}"] = float(ww.sum())
        if fa is not None:
            row[f"fa_{name}"] = float((ww * fa[sel]).sum() / ww.sum())
        if md is not None:
            row[f"md_{name}"] = float((ww * md[sel]).sum() / ww.sum())
    tpl = alps_from_roi_tensors(mean_tpl)
    scn = alps_from_roi_tensors(mean_vox)
    out = {}
    out.update({k: tpl[k] for k in ("alps_L", "alps_R", "alps")})
    out.update({f"alps_scanner_{h}": scn[f"alps_{h}"] for h in ("L", "R")})
    out["alps_scanner"] = scn["alps"]
    out.update({k: v for k, v in tpl.items() if k.startswith("d")})
    # the same diffusivities in scanner axes: dxx_scanner_proj_L ... (alps.pipeline.columns)
    out.update({f"d{a}{a}_scanner_{roi}": scn[f"d{a}{a}_{roi}"]
                for roi in ROI_NAMES for a in "xyz"})
    out.update(row)
    return out


def template_rois(kind: str = "spheres", *, radius_mm: float = 2.5, atlas_path=None):
    """The ROI definition in template space: a list of spheres, or a JHU label image."""
    if kind == "spheres":
        return default_spheres(radius_mm=radius_mm)
    if kind == "jhu":
        from .atlas import jhu_alps_labels

        return jhu_alps_labels(atlas_path)
    raise ValueError(f"unknown ROI kind {kind!r}; choose 'spheres' or 'jhu'")


def roi_weights(kind, shape, affine, registration, *, radius_mm=2.5, weighting="trilinear",
                supersample=4, lattice_mm=0.5, atlas_path=None, centers_mm=None) -> dict[str, np.ndarray]:
    """Native-grid ROI weights for ``kind`` 'spheres' or 'jhu' (see :func:`sphere_weights`; for
    'jhu', ``weighting`` is 'trilinear' (:func:`trilinear_label_weights`) or 'centre'
    (nearest-neighbour label warp)); ``centers_mm``: sphere centres other than the default ones
    (e.g. of :func:`alps.imaging.placement.place_rois`)."""
    if kind == "spheres":
        return sphere_weights(shape, affine, registration, default_spheres(radius_mm=radius_mm, centers_mm=centers_mm),
                              weighting=weighting, supersample=supersample, lattice_mm=lattice_mm)
    if kind == "jhu":
        import nibabel as nib

        if weighting not in ("trilinear", "centre"):
            raise ValueError(f"JHU label ROIs take roi weighting 'trilinear' or 'centre', got {weighting!r}")
        labels = template_rois("jhu", atlas_path=atlas_path)
        if weighting == "trilinear":
            return trilinear_label_weights(shape, affine, registration, labels, lattice_mm=lattice_mm)
        ref = nib.Nifti1Image(np.zeros(tuple(shape[:3]), np.float32), affine)
        native = np.rint(registration.to_subject(labels, ref, interpolator="nearestNeighbor").get_fdata())
        out = {}
        for name, lab in ROI_LABELS.items():
            w = (native == lab).astype(np.float32)
            if not w.any():
                raise ValueError(f"ROI {name}: JHU label maps to no native voxel")
            out[name] = w
        return out
    raise ValueError(f"unknown ROI kind {kind!r}; choose 'spheres' or 'jhu'")
