"""Every case a new head: atrophy, ventricle enlargement, a smooth non-linear warp and a random affine.

All label maps (tissues, regions, lobes, sides) move together with one nearest-neighbour look-up, so the
anatomy stays consistent. The grid (shape and affine) stays the working grid; the head moves inside it
(random position and size), which also gives a random field of view when it leaves the box.

Example:
    >>> from neurolesion.anatomy.template import load_anatomy  # doctest: +SKIP
    >>> head = random_head(load_anatomy(), np.random.default_rng(0), HeadConfig())  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from neurolesion.anatomy.labels import Lobe, Region, Tissue
from neurolesion.anatomy.template import Anatomy
from neurolesion.synth.head import Head


@dataclass(frozen=True)
class HeadConfig:
    """Ranges of the random head.

    Attributes:
        rotation_deg: largest rotation about each axis.
        scaling: (low, high) per-axis scaling on top of the head size.
        head_size: (low, high) global scaling.
        shift_mm: largest translation of the head in the grid along each axis.
        warp_mm: standard deviation of the smooth non-linear displacement.
        warp_nodes: control points per axis of the non-linear displacement.
        max_ventricle_growth_mm: ventricle enlargement of the oldest head.
        max_cortical_atrophy: fraction of the cortical surface thinned by one voxel in the oldest head.
    """

    rotation_deg: float = 12.0
    scaling: tuple[float, float] = (0.93, 1.07)
    head_size: tuple[float, float] = (0.9, 1.08)
    shift_mm: float = 8.0
    warp_mm: float = 2.5
    warp_nodes: int = 6
    max_ventricle_growth_mm: float = 5.0
    max_cortical_atrophy: float = 0.7


def random_head(
    anat: Anatomy, rng: np.random.Generator, config: HeadConfig, age_factor: float | None = None
) -> Head:
    """A new random head from the template anatomy.

    Args:
        anat: the template anatomy (any grid spacing).
        rng: random generator.
        config: ranges.
        age_factor: 0 (young) .. 1 (old); drawn uniformly when None.

    Returns:
        A Head on the working grid of `anat`.
    """
    age = float(rng.uniform(0, 1)) if age_factor is None else float(age_factor)
    labels, regions, lobes = anat.labels.copy(), anat.regions.copy(), anat.lobes.copy()
    spacing = float(np.mean(anat.spacing))
    enlarge_ventricles(labels, rng, age * config.max_ventricle_growth_mm / spacing)
    thin_cortex(labels, rng, age * config.max_cortical_atrophy)
    fluid = np.isin(labels, [Tissue.VENTRICLE, Tissue.CSF])
    regions[fluid] = Region.NONE
    lobes[fluid] = Lobe.NONE
    packed = (
        labels.astype(np.uint32)
        | (regions.astype(np.uint32) << 8)
        | (lobes.astype(np.uint32) << 16)
        | (anat.sides.astype(np.uint32) << 24)
    )
    coords = warp_coordinates(anat.shape, anat.affine, rng, config)
    moved = ndimage.map_coordinates(packed, coords, order=0, mode="constant", cval=0, output=np.uint32)
    moved = moved.reshape(anat.shape)
    return Head(
        labels=(moved & 0xFF).astype(np.uint8),
        regions=((moved >> 8) & 0xFF).astype(np.uint8),
        lobes=((moved >> 16) & 0xFF).astype(np.uint8),
        sides=((moved >> 24) & 0xFF).astype(np.uint8),
        affine=anat.affine.copy(),
        age_factor=age,
    )


def random_affine(rng: np.random.Generator, config: HeadConfig) -> np.ndarray:
    """4x4 mm-to-mm transform: rotation, per-axis scaling times head size, translation (about the origin).

    Example:
        >>> a = random_affine(np.random.default_rng(0), HeadConfig())
        >>> a.shape, bool(abs(np.linalg.det(a[:3, :3]) - 1) < 0.5)
        ((4, 4), True)
    """
    rot = Rotation.from_euler("xyz", rng.uniform(-config.rotation_deg, config.rotation_deg, 3), degrees=True)
    scale = rng.uniform(*config.scaling, 3) * rng.uniform(*config.head_size)
    out = np.eye(4)
    out[:3, :3] = rot.as_matrix() @ np.diag(scale)
    out[:3, 3] = rng.uniform(-config.shift_mm, config.shift_mm, 3)
    return out


def warp_coordinates(
    shape: tuple[int, int, int], affine: np.ndarray, rng: np.random.Generator, config: HeadConfig
) -> np.ndarray:
    """(3, N) source voxel coordinates of every output voxel for a random affine plus smooth warp.

    The head's centre (the grid's centre) is the fixed point of the affine.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    fwd = random_affine(rng, config)
    inv = np.linalg.inv(fwd)
    centre = affine[:3, :3] @ (np.array(shape) / 2.0) + affine[:3, 3]
    # source_mm = inv(fwd) (out_mm - centre) + centre, then to voxels
    vox_to_mm = affine
    mm_to_vox = np.linalg.inv(affine)
    m = mm_to_vox[:3, :3] @ inv[:3, :3] @ vox_to_mm[:3, :3]
    t = (
        mm_to_vox[:3, :3] @ (inv[:3, :3] @ (vox_to_mm[:3, 3] - centre) + inv[:3, 3] + centre)
        + mm_to_vox[:3, 3]
    )
    idx = np.indices(shape, dtype=np.float32).reshape(3, -1)
    coords = m.astype(np.float32) @ idx + t.astype(np.float32)[:, None]
    n = config.warp_nodes
    for axis in range(3):
        coarse = rng.normal(0.0, config.warp_mm / spacing[axis], (n, n, n)).astype(np.float32)
        coords[axis] += upsample(coarse, shape).reshape(-1)
    return coords


def interpolation_matrix(n_in: int, n_out: int, order: int = 3) -> np.ndarray:
    """(n_out, n_in) float32 matrix that resamples a 1D signal of n_in nodes onto n_out points (spline order).

    Resampling a 3D array is then three small matrix products (`upsample`), far cheaper than ndimage.zoom.

    Example:
        >>> interpolation_matrix(2, 4, order=1).sum(axis=1)
        array([1., 1., 1., 1.], dtype=float32)
    """
    eye = np.eye(n_in, dtype=np.float64)
    cols = [
        ndimage.zoom(eye[i], n_out / n_in, order=order, mode="nearest", grid_mode=True)[:n_out]
        for i in range(n_in)
    ]
    return np.stack(cols, axis=1).astype(np.float32)


def upsample(coarse: np.ndarray, shape: tuple[int, ...], order: int = 3) -> np.ndarray:
    """Separable spline resampling of a small 3D array onto `shape` (matrix products per axis).

    Example:
        >>> upsample(np.ones((3, 3, 3), np.float32), (5, 6, 7)).shape
        (5, 6, 7)
    """
    out = coarse.astype(np.float32)
    for axis, n in enumerate(shape):
        w = interpolation_matrix(out.shape[axis], n, order)
        out = np.moveaxis(np.tensordot(w, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return np.ascontiguousarray(out)


def smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, nodes: int = 5) -> np.ndarray:
    """Smooth random field in [0, 1] of `shape` (a `nodes`^3 uniform grid, spline-interpolated).

    Example:
        >>> f = smooth_noise((8, 8, 8), np.random.default_rng(0))
        >>> f.shape, bool(f.min() >= 0 and f.max() <= 1)
        ((8, 8, 8), True)
    """
    coarse = rng.uniform(0, 1, (nodes,) * len(shape)).astype(np.float32)
    return np.clip(upsample(coarse, shape, order=1), 0.0, 1.0)


def enlarge_ventricles(labels: np.ndarray, rng: np.random.Generator, growth_vox: float) -> None:
    """Grow the ventricles into surrounding white matter and deep grey matter by up to `growth_vox` voxels.

    The growth varies smoothly in space (a random field), so ventricles enlarge unevenly, as they do.
    """
    if growth_vox < 0.5:
        return
    vent = labels == Tissue.VENTRICLE
    if not vent.any():
        return
    pad = int(np.ceil(growth_vox)) + 2
    lo = np.maximum(np.argwhere(vent).min(axis=0) - pad, 0)
    hi = np.minimum(np.argwhere(vent).max(axis=0) + pad + 1, labels.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub = labels[box]
    dist = ndimage.distance_transform_edt(sub != Tissue.VENTRICLE)
    reach = growth_vox * (0.4 + 0.6 * smooth_noise(sub.shape, rng, nodes=4))
    grow = (dist <= reach) & np.isin(sub, [Tissue.WM, Tissue.CAUDATE, Tissue.THALAMUS, Tissue.CHOROID_PLEXUS])
    sub[grow] = Tissue.VENTRICLE


def thin_cortex(labels: np.ndarray, rng: np.random.Generator, fraction: float) -> None:
    """Turn the outer voxel of the cortex into CSF over a smooth random `fraction` of its surface."""
    if fraction <= 0:
        return
    csf = labels == Tissue.CSF
    edge = (labels == Tissue.CORTICAL_GM) & ndimage.binary_dilation(csf)
    where = smooth_noise(labels.shape, rng, nodes=6) < fraction
    labels[edge & where] = Tissue.CSF
