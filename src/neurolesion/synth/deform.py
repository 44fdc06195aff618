"""Every case a new head: atrophy, ventricle enlargement, left-right asymmetry, a smooth non-linear warp and
a random affine.

The template is one symmetric brain; each head gets its own hemispheric asymmetry (`Asymmetry`): a torque
(one hemisphere shifted forward of the other, the frontal and occipital petalia), one hemisphere wider than
the other, and ventricles that enlarge more on one side. All label maps (tissues, regions, lobes, sides) move together with one nearest-neighbour look-up, so the
anatomy stays consistent. The grid (shape and affine) stays the working grid; the head moves inside it
(random position and size), which also gives a random field of view when it leaves the box.

Example:
    >>> from neurolesion.anatomy.template import load_anatomy  # doctest: +SKIP
    >>> head = random_head(load_anatomy(), np.random.default_rng(0), HeadConfig())  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from neurolesion.anatomy.labels import Lobe, Region, Tissue
from neurolesion.anatomy.template import Anatomy
from neurolesion.errors import InputError
from neurolesion.synth.head import Head

#: Width (mm) of the smooth left-right transition of the hemispheric displacements across the midline.
MIDLINE_WIDTH_MM: float = 4.0


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
        petalia_mm: (low, high) shift of the right hemisphere forward of the left (mm; the usual right frontal
            and left occipital petalia are positive, a reversed torque negative).
        hemisphere_scale: largest relative width difference of one hemisphere (right wider when positive).
        ventricle_asymmetry: largest relative difference of ventricle growth between the sides.

    Raises:
        InputError: a value out of range (names the field, the value and the expected range).
    """

    rotation_deg: float = 12.0
    scaling: tuple[float, float] = (0.93, 1.07)
    head_size: tuple[float, float] = (0.9, 1.08)
    shift_mm: float = 8.0
    warp_mm: float = 2.5
    warp_nodes: int = 6
    max_ventricle_growth_mm: float = 5.0
    max_cortical_atrophy: float = 0.7
    petalia_mm: tuple[float, float] = (-2.0, 4.0)
    hemisphere_scale: float = 0.03
    ventricle_asymmetry: float = 0.3

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, bool, str], ...] = (
            ("rotation_deg", 0 <= self.rotation_deg <= 180, "0-180 degrees"),
            ("scaling", 0 < self.scaling[0] <= self.scaling[1], "0 < low <= high"),
            ("head_size", 0 < self.head_size[0] <= self.head_size[1], "0 < low <= high"),
            ("shift_mm", self.shift_mm >= 0, ">= 0"),
            ("warp_mm", self.warp_mm >= 0, ">= 0"),
            ("warp_nodes", self.warp_nodes >= 2, ">= 2"),
            ("max_ventricle_growth_mm", self.max_ventricle_growth_mm >= 0, ">= 0"),
            ("max_cortical_atrophy", 0 <= self.max_cortical_atrophy <= 1, "0-1"),
            ("petalia_mm", -10 <= self.petalia_mm[0] <= self.petalia_mm[1] <= 10, "-10 <= low <= high <= 10"),
            ("hemisphere_scale", 0 <= self.hemisphere_scale <= 0.2, "0-0.2"),
            ("ventricle_asymmetry", 0 <= self.ventricle_asymmetry <= 0.9, "0-0.9"),
        )
        check_ranges("head config", self, checks)


def check_ranges(where: str, config: object, checks: tuple[tuple[str, bool, str], ...]) -> None:
    """Raise for the first failed (field name, passed, expected) check of a config dataclass.

    Raises:
        InputError: ``"<where>: <field> <value>; expected <expected>"``.

    Example:
        >>> check_ranges("head config", HeadConfig(), (("warp_mm", True, ">= 0"),))
    """
    for name, ok, expected in checks:
        if not ok:
            raise InputError(f"{where}: {name} {getattr(config, name)}; expected {expected}")


@dataclass(frozen=True)
class Asymmetry:
    """The left-right asymmetry of one head (all zero: as symmetric as the template).

    Attributes:
        petalia_mm: shift of the right hemisphere forward of the left, mm.
        hemisphere_scale: the right hemisphere is wider by this fraction, the left narrower by it.
        ventricle: the left ventricles grow by (1 + this) times the drawn enlargement, the right by (1 - this).
    """

    petalia_mm: float = 0.0
    hemisphere_scale: float = 0.0
    ventricle: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def random_asymmetry(rng: np.random.Generator, config: HeadConfig) -> Asymmetry:
    """Draw a head's asymmetry uniformly within the ranges of `config`.

    Example:
        >>> a = random_asymmetry(np.random.default_rng(0), HeadConfig())
        >>> bool(-2.0 <= a.petalia_mm <= 4.0 and abs(a.hemisphere_scale) <= 0.03)
        True
    """
    return Asymmetry(
        petalia_mm=float(rng.uniform(*config.petalia_mm)),
        hemisphere_scale=float(rng.uniform(-config.hemisphere_scale, config.hemisphere_scale)),
        ventricle=float(rng.uniform(-config.ventricle_asymmetry, config.ventricle_asymmetry)),
    )


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

    The asymmetry is drawn from a child generator (`rng.spawn`), which leaves `rng`'s own stream untouched:
    with zero asymmetry ranges every other draw of a seed is what it was before asymmetry existed.
    """
    asym = random_asymmetry(rng.spawn(1)[0], config)
    age = float(rng.uniform(0, 1)) if age_factor is None else float(age_factor)
    labels, regions, lobes = anat.labels.copy(), anat.regions.copy(), anat.lobes.copy()
    spacing = float(np.mean(anat.spacing))
    enlarge_ventricles(
        labels,
        rng,
        age * config.max_ventricle_growth_mm / spacing,
        lateral=asym.ventricle,
        affine=anat.affine,
    )
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
    coords = warp_coordinates(anat.shape, anat.affine, rng, config, asym)
    moved = ndimage.map_coordinates(packed, coords, order=0, mode="constant", cval=0, output=np.uint32)
    moved = moved.reshape(anat.shape)
    return Head(
        labels=(moved & 0xFF).astype(np.uint8),
        regions=((moved >> 8) & 0xFF).astype(np.uint8),
        lobes=((moved >> 16) & 0xFF).astype(np.uint8),
        sides=((moved >> 24) & 0xFF).astype(np.uint8),
        affine=anat.affine.copy(),
        age_factor=age,
        asymmetry=asym.as_dict(),
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
    shape: tuple[int, int, int],
    affine: np.ndarray,
    rng: np.random.Generator,
    config: HeadConfig,
    asymmetry: Asymmetry | None = None,
) -> np.ndarray:
    """(3, N) source voxel coordinates of every output voxel for a random affine plus smooth warp.

    The head's centre (the grid's centre) is the fixed point of the affine. `asymmetry` deforms the
    template itself (about its midline, x = 0 mm), before the affine and warp.
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
    if asymmetry is not None:
        displace_hemispheres(coords, affine, asymmetry)
    return coords


def displace_hemispheres(coords: np.ndarray, affine: np.ndarray, asym: Asymmetry) -> None:
    """Move (3, N) template voxel coordinates in place so that the sampled head gets `asym`.

    A coordinate is where an output voxel reads the template; reading from ``q + d`` moves the content
    at ``q`` by ``-d``. The right hemisphere (x > 0 mm) moves forward by petalia/2 and the left back by as much
    (torque), and x grows by ``hemisphere_scale * |x|`` on the right (shrinks on the left), both switching
    smoothly across the midline (tanh over `MIDLINE_WIDTH_MM`).

    Example:
        >>> c = np.array([[40.0, -40.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
        >>> displace_hemispheres(c, np.eye(4), Asymmetry(petalia_mm=4.0))
        >>> np.round(c[1], 2)
        array([-2.,  2.], dtype=float32)
    """
    if asym.petalia_mm == 0 and asym.hemisphere_scale == 0:
        return
    x_mm = affine[0, :3].astype(np.float32) @ coords + np.float32(affine[0, 3])
    side = np.tanh(x_mm / np.float32(MIDLINE_WIDTH_MM))
    x_mm *= side  # |x|, smooth at the midline
    to_vox = np.linalg.inv(affine[:3, :3])
    for axis in range(3):  # right wider: read nearer the midline; right forward: read further back
        gain_x = np.float32(-asym.hemisphere_scale * to_vox[axis, 0])
        gain_y = np.float32(-0.5 * asym.petalia_mm * to_vox[axis, 1])
        if gain_x != 0:
            coords[axis] += gain_x * x_mm
        if gain_y != 0:
            coords[axis] += gain_y * side


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


def enlarge_ventricles(
    labels: np.ndarray,
    rng: np.random.Generator,
    growth_vox: float,
    lateral: float = 0.0,
    affine: np.ndarray | None = None,
) -> None:
    """Grow the ventricles into surrounding white matter and deep grey matter by up to `growth_vox` voxels.

    The growth varies smoothly in space (a random field), so ventricles enlarge unevenly, as they do.

    Args:
        labels: tissue codes, changed in place.
        rng: random generator.
        growth_vox: largest growth, voxels.
        lateral: the left side grows (1 + lateral) times, the right (1 - lateral) times (needs `affine`).
        affine: voxel-to-RAS matrix of `labels` (its x = 0 mm is the midline).
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
    if lateral != 0 and affine is not None:
        idx = np.indices(sub.shape, dtype=np.float32).reshape(3, -1) + lo.astype(np.float32)[:, None]
        x_mm = (affine[0, :3].astype(np.float32) @ idx + np.float32(affine[0, 3])).reshape(sub.shape)
        reach *= 1.0 - lateral * np.tanh(x_mm / np.float32(MIDLINE_WIDTH_MM))
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
