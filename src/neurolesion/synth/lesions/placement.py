"""Placement helpers shared by the lesion generators: crops, candidate sites, painting, records, mass effect.

The painting rule that keeps the truth exact: a generator only writes onto voxels whose code is one of the
anatomy codes it allows (all < 32, so it never overwrites another generator's lesion), and its instance map
is exactly the set of voxels it wrote with its instance codes.

Example:
    >>> import numpy as np
    >>> sl = crop((10, 10, 10), 3.0, (2.0, 2.0, 2.0), (64, 64, 64))
    >>> [(s.start, s.stop) for s in sl]
    [(8, 13), (8, 13), (8, 13)]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import BRAIN_TISSUES, Lobe, Region, Side, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions.base import LesionRecord
from neurolesion.synth.lesions.shapes import Vec3, mm_grid

P = TypeVar("P")

#: Codes inside the skull that mass effect may move (brain, CSF, vessels); lesions (>= 32) never move.
INTRACRANIAL: frozenset[int] = BRAIN_TISSUES | {Tissue.CSF, Tissue.VESSEL}


def crop(centre: Vec3, half_mm: float, spacing: Vec3, shape: Sequence[int]) -> tuple:
    """Slices of a box of half-size `half_mm` around `centre` (voxels), clipped to the volume.

    Returns:
        tuple of three slices.
    """
    out = []
    for c, s, n in zip(centre, spacing, shape, strict=True):
        h = int(np.ceil(half_mm / s))
        ci = int(np.rint(c))
        out.append(slice(max(ci - h, 0), min(ci + h + 1, n)))
    return tuple(out)


def local(centre: Vec3, slices: tuple) -> tuple[float, float, float]:
    """`centre` in the coordinates of the crop `slices`."""
    return (centre[0] - slices[0].start, centre[1] - slices[1].start, centre[2] - slices[2].start)


def sample_sites(
    rng: np.random.Generator, mask: np.ndarray, n: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Draw `n` voxel indices (with replacement) from a boolean mask, optionally weighted.

    Returns:
        (n, 3) int array; empty (0, 3) when the mask is empty.
    """
    flat = np.flatnonzero(mask)
    if flat.size == 0 or n <= 0:
        return np.zeros((0, 3), dtype=int)
    p = None
    if weights is not None:
        w = weights.ravel()[flat].astype(float)
        p = w / w.sum() if w.sum() > 0 else None
    pick = rng.choice(flat, size=n, p=p)
    return np.stack(np.unravel_index(pick, mask.shape), axis=1)


class Sites:
    """The candidate voxels of a mask, indexed once so that drawing one site is cheap.

    Example:
        >>> m = np.zeros((4, 4, 4), bool); m[1, 2, 3] = True
        >>> Sites(m).draw(np.random.default_rng(0)).tolist()
        [1, 2, 3]
    """

    def __init__(self, mask: np.ndarray) -> None:
        self.flat = np.flatnonzero(mask)
        self.shape = mask.shape

    @property
    def size(self) -> int:
        """Number of candidate voxels."""
        return int(self.flat.size)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One candidate voxel, uniformly: (3,) int array (the mask must not be empty)."""
        return np.asarray(np.unravel_index(int(rng.choice(self.flat)), self.shape))


def allowed(labels: np.ndarray, codes: Collection[int]) -> np.ndarray:
    """Voxels whose code is one of `codes` (normal anatomy; lesion codes are never in `codes`)."""
    return np.isin(labels, np.fromiter(codes, dtype=np.int64))


def touches_lesion(labels_crop: np.ndarray, footprint: np.ndarray, margin_vox: int = 1) -> bool:
    """True when the footprint, grown by `margin_vox`, meets any lesion code (>= 32) already painted."""
    grown = ndimage.binary_dilation(footprint, iterations=margin_vox) if margin_vox > 0 else footprint
    return bool(np.any(labels_crop[grown] >= 32))


def majority(values: np.ndarray) -> int:
    """The most frequent code in a 1-D integer array (0 when empty)."""
    if values.size == 0:
        return 0
    return int(np.argmax(np.bincount(values.astype(np.int64).ravel())))


def located(codes_crop: np.ndarray, mask: np.ndarray, near: np.ndarray) -> int:
    """The most frequent non-zero code under `mask`, else under `near` (a larger mask), else 0."""
    for m in (mask, near):
        values = codes_crop[m]
        values = values[values > 0]
        if values.size:
            return majority(values)
    return 0


def make_record(
    head: Head,
    slices: tuple,
    mask: np.ndarray,
    id_: int,
    type_: str,
    subtype: str,
    **extra: object,
) -> LesionRecord:
    """A record for the instance `mask` (crop `slices` of the head): centroid, volume and location.

    The region, lobe and side are the most frequent non-zero codes of `head.regions`, `head.lobes` and
    `head.sides` under the mask (for an extra-axial lesion lying in CSF: in a 3-voxel margin around it), as
    lower-case names.
    """
    idx = np.argwhere(mask)
    offset = np.array([s.start for s in slices])
    centre = idx.mean(axis=0) + offset
    voxel_ml = float(np.prod(head.spacing)) / 1000.0
    near = ndimage.binary_dilation(mask, iterations=3)
    region = Region(located(head.regions[slices], mask, near)).name.lower()
    lobe = Lobe(located(head.lobes[slices], mask, near)).name.lower()
    side = Side(located(head.sides[slices], mask, near)).name.lower()
    return LesionRecord(
        id=id_,
        type=type_,
        subtype=subtype,
        centre_vox=(float(centre[0]), float(centre[1]), float(centre[2])),
        volume_ml=float(idx.shape[0] * voxel_ml),
        region=region,
        extra={"lobe": lobe, "side": side, **extra},
    )


def push_radially(head: Head, centre: Vec3, radius_mm: float, reach_mm: float) -> None:
    """Mass effect: push the tissue around `centre` outward, as a growing ball of `radius_mm` would.

    A voxel at distance d (radius_mm <= d <= reach_mm) takes the label of the voxel at distance
    s(d) = reach * (d - r) / (reach - r) on the same ray (nearest neighbour), so tissue once within reach is
    compressed into the shell between r and reach; voxels inside r take the centre's label (the caller
    paints the lesion there). `labels`, `regions`, `lobes` and `sides` move together. Only intracranial
    anatomy moves: voxels with a lesion code (>= 32) or outside `INTRACRANIAL` (skull, scalp, air) neither
    move nor are overwritten, so other generators' truth stays exact.

    Args:
        head: the head, modified in place.
        centre: centre in voxel coordinates.
        radius_mm: radius of the pushing mass.
        reach_mm: distance at which the displacement fades to zero (> radius_mm).
    """
    sp = np.asarray(head.spacing)
    sl = crop(centre, reach_mm, sp, head.labels.shape)
    c = np.asarray(local(centre, sl))
    lab = head.labels[sl]
    off = mm_grid(lab.shape, c, sp)
    d = np.linalg.norm(off, axis=-1)
    src_d = np.clip(reach_mm * (d - radius_mm) / max(reach_mm - radius_mm, 1e-6), 0.0, None)
    scale = np.where(d > 0, src_d / np.maximum(d, 1e-6), 0.0)
    src = c + off * scale[..., None] / sp
    src = np.clip(np.rint(src).astype(int), 0, np.asarray(lab.shape) - 1)
    movable = allowed(lab, INTRACRANIAL)
    src_ok = movable[src[..., 0], src[..., 1], src[..., 2]]
    move = movable & src_ok & (d <= reach_mm)
    s0, s1, s2 = src[..., 0][move], src[..., 1][move], src[..., 2][move]
    for vol in (head.labels, head.regions, head.lobes, head.sides):
        part = vol[sl]
        part[move] = part[s0, s1, s2]


def bbox(mask: np.ndarray, margin_vox: int = 0) -> tuple:
    """Slices of the bounding box of a non-empty mask, grown by `margin_vox` and clipped."""
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - margin_vox, 0)
    hi = np.minimum(idx.max(0) + margin_vox + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def fits(labels_crop: np.ndarray, footprint: np.ndarray, under: Collection[int], min_inside: float) -> bool:
    """True when at least `min_inside` of `footprint` lies on codes in `under` and it touches no lesion."""
    n = int(footprint.sum())
    if n == 0:
        return False
    inside = int(allowed(labels_crop[footprint], under).sum())
    return inside >= min_inside * n and not touches_lesion(labels_crop, footprint)


def paint_layers(
    labels_crop: np.ndarray, layers: Sequence[tuple[int, np.ndarray]], under: Collection[int]
) -> list[np.ndarray]:
    """Paint `(code, mask)` layers in order onto a crop view, each only on codes in `under` not yet painted.

    Args:
        labels_crop: a view into `head.labels` (modified in place).
        layers: (code, bool mask) pairs, highest priority first.
        under: anatomy codes that may be painted over.

    Returns:
        The mask actually painted for each layer.
    """
    free = allowed(labels_crop, under)
    out = []
    for code, mask in layers:
        m = mask & free
        labels_crop[m] = code
        free &= ~m
        out.append(m)
    return out


def next_to(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Voxels of `a` with a face neighbour in `b` (by slicing: cheap on whole volumes)."""
    out = np.zeros_like(a)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] |= b[tuple(hi)]
        out[tuple(hi)] |= b[tuple(lo)]
    return out & a


def path_crop(points_vox: np.ndarray, margin_mm: float, spacing: Vec3, shape: Sequence[int]) -> tuple:
    """Slices of the bounding box of a path (voxel coordinates) grown by `margin_mm`, clipped."""
    m = np.ceil(margin_mm / np.asarray(spacing)) + 1
    lo = np.clip(np.floor(points_vox.min(0) - m), 0, None).astype(int)
    hi = np.minimum(np.ceil(points_vox.max(0) + m + 1), shape).astype(int)
    return tuple(slice(int(a), int(max(a, b))) for a, b in zip(lo, hi, strict=True))


def draw_count(
    count: int | None, p_none: float, mean: float, max_count: int, rng: np.random.Generator
) -> int:
    """A lesion count: `count` when given, else 0 with probability `p_none`, else geometric (>= 1) of
    mean `mean`, at most `max_count`."""
    if count is not None:
        return count
    if rng.random() < p_none:
        return 0
    return int(min(max_count, rng.geometric(1.0 / mean)))


def grid_direction(head: Head, ras: Vec3) -> np.ndarray:
    """A RAS direction (e.g. superior = (0, 0, 1)) expressed in the grid's mm frame (voxel axes x spacing).

    Returns:
        unit 3-vector, so that a path `site * spacing + t * direction` runs along `ras` in the head.
    """
    vox = np.linalg.solve(head.affine[:3, :3], np.asarray(ras, dtype=float))
    mm = vox * np.asarray(head.spacing)
    return np.asarray(mm / np.linalg.norm(mm))


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list | tuple) else value


def validate(params: Any) -> None:
    """Check a generator's frozen parameter dataclass by field-name conventions; turn lists into tuples.

    Conventions: `*_probability` holds probabilities (a number or a tuple of numbers in 0..1); `*_probs`
    holds non-negative weights with a positive sum (or a tuple of such rows); any other pair of numbers is
    a (min, max) range with 0 <= min <= max (0 < min for `*_mm` sizes), alone or in a tuple of ranges.
    Lists (as loaded from YAML) are stored as tuples.

    Args:
        params: a dataclass instance (called from its `__post_init__`).

    Raises:
        ValueError: naming the class, the field, the value and what was expected.
    """
    owner = type(params).__name__
    for f in fields(params):
        value = _tupled(getattr(params, f.name))
        object.__setattr__(params, f.name, value)
        where = f"{owner}.{f.name}={value!r}"
        if f.name.endswith("_probability"):
            values = np.atleast_1d(np.asarray(value, dtype=float))
            if values.size == 0 or values.min() < 0 or values.max() > 1:
                raise ValueError(f"{where}; expected probabilities in 0..1")
        elif f.name.endswith("_probs"):
            rows = np.atleast_2d(np.asarray(value, dtype=float))
            if rows.size == 0 or rows.min() < 0 or (rows.sum(axis=1) <= 0).any():
                raise ValueError(f"{where}; expected non-negative weights with a positive sum")
        elif (
            isinstance(value, tuple)
            and value
            and all(_is_pair(v) for v in (value if _is_nested(value) else [value]))
        ):
            positive = f.name.endswith("_mm")
            for lo, hi in value if _is_nested(value) else [value]:
                if not (0 < lo if positive else 0 <= lo) or lo > hi:
                    raise ValueError(
                        f"{where}; expected (min, max) ranges with {'0 <' if positive else '0 <='} min <= max"
                    )


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value)


def _is_nested(value: tuple) -> bool:
    return all(isinstance(v, tuple) for v in value)


def pons(head: Head, stem: np.ndarray) -> np.ndarray:
    """The pons part of a brainstem mask (medulla to midbrain): the slab between 38 % and 70 % of its height.

    Args:
        head: the head (for the superior direction of its grid).
        stem: bool brainstem mask.

    Returns:
        bool mask (empty when `stem` is).
    """
    idx = np.argwhere(stem)
    out = np.zeros_like(stem)
    if idx.size == 0:
        return out
    height = (idx * np.asarray(head.spacing)) @ grid_direction(head, (0.0, 0.0, 1.0))
    lo, hi = np.percentile(height, [38, 70])
    keep = idx[(height >= lo) & (height <= hi)]
    out[keep[:, 0], keep[:, 1], keep[:, 2]] = True
    return out


def params_from(cls: type[P], overrides: Mapping[str, object]) -> P:
    """Build a generator's parameter dataclass from keyword overrides, rejecting unknown names.

    Raises:
        ValueError: an unknown parameter name (the valid names are listed) or a bad value.
    """
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown parameter(s) {unknown}; expected some of {sorted(names)}")
    return cls(**overrides)
