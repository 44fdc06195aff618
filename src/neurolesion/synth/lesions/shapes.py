"""Shape primitives shared by the lesion generators, all working on small crops in millimetres.

Every function takes the voxel `spacing` (mm) so that sizes stay physical on 1 mm or 2 mm grids, and
returns arrays the size of a crop, never of the whole head.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = ellipsoid((9, 9, 9), (4, 4, 4), (3.0, 3.0, 3.0), (1.0, 1.0, 1.0))
    >>> int(m.sum())
    123
    >>> blob = lobulated_blob((15, 15, 15), (7, 7, 7), (5.0, 4.0, 4.0), (1.0, 1.0, 1.0), rng)
    >>> bool(blob[7, 7, 7])
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

#: A 3-vector: a tuple or a numpy array.
Vec3 = Sequence[float] | np.ndarray


def mm_grid(shape: Sequence[int], centre: Vec3, spacing: Vec3) -> np.ndarray:
    """Voxel-centre offsets from `centre` (voxel coordinates), in mm.

    Args:
        shape: crop shape (X, Y, Z).
        centre: reference point in crop voxel coordinates.
        spacing: voxel size in mm.

    Returns:
        (X, Y, Z, 3) float32 offsets in mm.
    """
    axes = [(np.arange(n, dtype=np.float32) - c) * s for n, c, s in zip(shape, centre, spacing, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def rotation_towards(axis: Vec3) -> np.ndarray:
    """A rotation whose third column is the unit vector along `axis` (first two columns complete it)."""
    z = np.asarray(axis, dtype=float)
    z = z / np.linalg.norm(z)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def ellipsoid_radius(
    shape: Sequence[int], centre: Vec3, radii_mm: Vec3, spacing: Vec3, rotation: np.ndarray | None = None
) -> np.ndarray:
    """Normalised ellipsoidal radius (1 on the surface, < 1 inside) on a crop.

    Args:
        shape: crop shape.
        centre: ellipsoid centre in crop voxel coordinates.
        radii_mm: semi-axes in mm, along the columns of `rotation` (identity: along the voxel axes).
        spacing: voxel size in mm.
        rotation: 3x3 rotation whose columns are the ellipsoid axes.

    Returns:
        (X, Y, Z) float32 array.
    """
    off = mm_grid(shape, centre, spacing)
    if rotation is not None:
        off = off @ np.asarray(rotation, dtype=np.float32)
    scaled = off / np.asarray(radii_mm, dtype=np.float32)
    return np.sqrt(np.sum(scaled * scaled, axis=-1))


def ellipsoid(
    shape: Sequence[int], centre: Vec3, radii_mm: Vec3, spacing: Vec3, rotation: np.ndarray | None = None
) -> np.ndarray:
    """Boolean ellipsoid on a crop (see `ellipsoid_radius`)."""
    return ellipsoid_radius(shape, centre, radii_mm, spacing, rotation) <= 1.0


def smooth_field(
    shape: Sequence[int], correlation_mm: float, spacing: Vec3, rng: np.random.Generator
) -> np.ndarray:
    """A smooth Gaussian random field with zero mean and unit standard deviation.

    White noise is drawn on a grid coarser by about the correlation length, smoothed, and upsampled
    linearly, so that large fields cost little.

    Args:
        shape: output shape.
        correlation_mm: correlation length in mm (about the size of the field's blobs).
        spacing: voxel size in mm.
        rng: random generator.

    Returns:
        (X, Y, Z) float32 field.
    """
    step = np.maximum(1, np.floor(correlation_mm / 2.0 / np.asarray(spacing))).astype(int)
    coarse_shape = [int(np.ceil(n / s)) + 3 for n, s in zip(shape, step, strict=True)]
    noise = ndimage.gaussian_filter(rng.standard_normal(coarse_shape).astype(np.float32), 1.0, mode="wrap")
    coords = [np.arange(n, dtype=np.float32) / s + 1.0 for n, s in zip(shape, step, strict=True)]
    field = noise
    for axis, c in enumerate(coords):
        lo = np.floor(c).astype(int)
        w = (c - lo).reshape([-1 if a == axis else 1 for a in range(3)])
        field = np.take(field, lo, axis=axis) * (1 - w) + np.take(field, lo + 1, axis=axis) * w
    field = field - field.mean()
    sd = field.std()
    return (field / sd if sd > 0 else field).astype(np.float32)


def lobulated_blob(
    shape: Sequence[int],
    centre: Vec3,
    radii_mm: Vec3,
    spacing: Vec3,
    rng: np.random.Generator,
    lobulation: float = 0.25,
    rotation: np.ndarray | None = None,
) -> np.ndarray:
    """An ellipsoid whose surface is perturbed by a smooth random field (irregular, lobulated outline).

    Args:
        shape: crop shape (leave a margin of about `lobulation` times the radius).
        centre: centre in crop voxel coordinates; the centre voxel is always inside.
        radii_mm: semi-axes in mm.
        spacing: voxel size in mm.
        rng: random generator.
        lobulation: relative amplitude of the surface perturbation (0: plain ellipsoid).
        rotation: orientation of the axes (random when None).

    Returns:
        (X, Y, Z) bool mask.
    """
    rot = random_rotation(rng) if rotation is None else rotation
    rho = ellipsoid_radius(shape, centre, radii_mm, spacing, rot)
    corr = max(float(min(radii_mm)), float(max(spacing)))
    mask = rho <= 1.0 + lobulation * smooth_field(shape, corr, spacing, rng)
    mask[tuple(int(np.rint(c)) for c in centre)] = True
    return largest_component(mask)


def sphere_cluster(
    shape: Sequence[int],
    centre: Vec3,
    radius_mm: float,
    spacing: Vec3,
    rng: np.random.Generator,
    n_lobules: int,
) -> tuple[np.ndarray, np.ndarray]:
    """A mulberry ("popcorn") shape: the union of `n_lobules` balls around a central one.

    Args:
        shape: crop shape (about 2.4 * radius_mm across: lobules reach 1.15 * radius_mm).
        centre: centre in crop voxel coordinates.
        radius_mm: overall radius in mm.
        spacing: voxel size in mm.
        rng: random generator.
        n_lobules: number of peripheral lobules.

    Returns:
        (mask, lobule_index): bool mask, and int16 index of the lobule each voxel belongs to (0 outside,
        1 the central lobule, 2.. the peripheral ones; a voxel in several takes the nearest centre).
    """
    off = mm_grid(shape, centre, spacing)
    dirs = rng.standard_normal((n_lobules, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dist = rng.uniform(0.4, 0.7, n_lobules)[:, None] * radius_mm
    centres = np.vstack([np.zeros(3), dirs * dist]).astype(np.float32)
    radii = np.concatenate([[0.5 * radius_mm], rng.uniform(0.3, 0.45, n_lobules) * radius_mm])
    radii = np.maximum(radii, 0.5 * max(spacing)).astype(np.float32)
    d = np.linalg.norm(off[..., None, :] - centres, axis=-1) / radii
    nearest = np.argmin(d, axis=-1)
    mask = np.min(d, axis=-1) <= 1.0
    mask[tuple(int(np.rint(c)) for c in centre)] = True
    index = np.where(mask, nearest + 1, 0).astype(np.int16)
    return mask, index


def smooth_path(
    start_mm: Vec3, direction: Vec3, length_mm: float, rng: np.random.Generator, curvature: float = 0.15
) -> np.ndarray:
    """A gently curving path (points every 0.5 mm) starting at `start_mm` along `direction`.

    Args:
        start_mm: first point (mm, any frame).
        direction: initial direction (any length).
        length_mm: path length in mm.
        rng: random generator.
        curvature: standard deviation of the direction change per mm (radians, roughly).

    Returns:
        (N, 3) float array of points in mm.
    """
    n = max(2, int(np.ceil(length_mm / 0.5)) + 1)
    d = np.asarray(direction, dtype=float)
    d /= np.linalg.norm(d)
    turns = np.cumsum(rng.standard_normal((n, 3)) * curvature * np.sqrt(0.5), axis=0)
    turns = ndimage.gaussian_filter1d(turns, sigma=4.0, axis=0)
    steps = d + turns
    steps /= np.linalg.norm(steps, axis=1, keepdims=True)
    pts = np.asarray(start_mm, dtype=float) + np.vstack([np.zeros(3), np.cumsum(steps[:-1] * 0.5, axis=0)])
    return pts


def tube(shape: Sequence[int], points_vox: np.ndarray, radius_mm: float, spacing: Vec3) -> np.ndarray:
    """Voxels whose centre lies within `radius_mm` of a path; the voxels the path crosses always count.

    Args:
        shape: crop shape.
        points_vox: (N, 3) path in crop voxel coordinates, sampled densely (<= half a voxel apart).
        radius_mm: tube radius in mm.
        spacing: voxel size in mm.

    Returns:
        (X, Y, Z) bool mask.
    """
    sp = np.asarray(spacing, dtype=float)
    mask = np.zeros(tuple(shape), dtype=bool)
    if len(points_vox) == 0:
        return mask
    lo = np.maximum(np.floor(points_vox.min(0) - radius_mm / sp - 1), 0).astype(int)
    hi = np.minimum(np.ceil(points_vox.max(0) + radius_mm / sp + 2), shape).astype(int)
    if np.any(hi <= lo):
        return mask
    sub = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"), -1)
    dist, _ = cKDTree(points_vox * sp).query(grid.reshape(-1, 3) * sp, distance_upper_bound=radius_mm + 1e-6)
    mask[sub] = np.isfinite(dist).reshape(grid.shape[:3])
    inside = np.all((points_vox >= -0.5) & (points_vox < np.asarray(shape) - 0.5), axis=1)
    idx = np.round(points_vox[inside]).astype(int)
    mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return mask


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean mask (the mask itself when empty)."""
    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return np.asarray(lab == int(np.argmax(sizes)))


def shell(mask: np.ndarray, thickness_mm: float, spacing: Vec3) -> np.ndarray:
    """Voxels outside `mask` within `thickness_mm` of it (at least one voxel thick).

    Args:
        mask: bool crop (leave a margin of `thickness_mm` around the object).
        thickness_mm: shell thickness in mm.
        spacing: voxel size in mm.

    Returns:
        bool mask of the shell.
    """
    dist = ndimage.distance_transform_edt(~mask, sampling=spacing)
    return np.asarray((dist > 0) & (dist <= max(thickness_mm, float(min(spacing)) + 1e-3)))


def boundaries(index: np.ndarray) -> np.ndarray:
    """Voxels with a face neighbour of another non-zero index (the septa between lobules of a cluster).

    Args:
        index: integer label crop (0 outside).

    Returns:
        bool mask.
    """
    out = np.zeros(index.shape, dtype=bool)
    for axis in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        lo, hi = index[tuple(a)], index[tuple(b)]
        differ = (lo != hi) & (lo > 0) & (hi > 0)
        out[tuple(a)] |= differ
        out[tuple(b)] |= differ
    return out
