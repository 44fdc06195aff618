"""Resampling between grids: images linearly, masks by nearest neighbour or label-aware.

A `Grid` is a shape plus a voxel-to-RAS affine. `grid_for_spacing` builds the grid with another voxel size
over the same field of view whose first voxel centre coincides with the original's, so grids whose spacings
divide each other are nested: resampling to 2x finer and back returns the original values exactly.
`resample` takes an optional 4x4 world transform (grid world point -> image world point, the ITK
convention), so a registered image reaches the model grid in one interpolation.

Example:
    >>> import numpy as np
    >>> from neurolesion.volume import Volume
    >>> v = Volume(np.random.default_rng(0).random((4, 5, 6)), np.eye(4))
    >>> fine = resample(v, grid_for_spacing(Grid.of(v), (0.5, 0.5, 0.5)))
    >>> fine.shape, bool(np.allclose(resample(fine, Grid.of(v)).array, v.array))
    ((7, 9, 11), True)
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from neurolesion.errors import InputError
from neurolesion.volume import Volume

Order = Literal["linear", "nearest", "label"]
_SPLINE_ORDER = {"linear": 1, "nearest": 0}
#: At most this many interpolation threads, however many CPUs there are.
_MAX_THREADS = 8


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid: spatial shape and 4x4 voxel-to-RAS affine (mm).

    Example:
        >>> Grid(np.eye(4), (2, 3, 4)).spacing
        (1.0, 1.0, 1.0)
    """

    affine: np.ndarray
    shape: tuple[int, int, int]

    @classmethod
    def of(cls, volume: Volume) -> Grid:
        """The grid a volume lives on."""
        return cls(volume.affine.copy(), volume.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each axis."""
        sx, sy, sz = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(sx), float(sy), float(sz))

    def same_as(self, other: Grid, atol: float = 1e-4) -> bool:
        """True when both grids have the same shape and affine (within `atol` mm)."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol))


def grid_for_spacing(grid: Grid, spacing: tuple[float, float, float]) -> Grid:
    """The grid with voxel size `spacing` covering `grid`'s voxel centres, axes and first centre unchanged.

    Args:
        grid: the original grid.
        spacing: the new voxel size (mm) along each array axis.

    Returns:
        A grid whose first voxel centre is the original's and whose last centre is at or just past the
        original's last centre.

    Raises:
        InputError: a non-positive spacing.

    Example:
        >>> grid_for_spacing(Grid(np.diag([0.5, 0.5, 4.0, 1.0]), (100, 100, 10)), (1.0, 1.0, 1.0)).shape
        (51, 51, 37)
    """
    new = np.asarray(spacing, dtype=np.float64)
    if new.shape != (3,) or np.any(new <= 0) or not np.all(np.isfinite(new)):
        raise InputError(f"target spacing {spacing!r}; expected three positive sizes in mm")
    old = np.asarray(grid.spacing)
    extent = (np.asarray(grid.shape) - 1) * old / new
    shape = np.ceil(np.round(extent, 6)).astype(int) + 1
    affine = grid.affine.copy()
    affine[:3, :3] = affine[:3, :3] * (new / old)
    return Grid(affine, (int(shape[0]), int(shape[1]), int(shape[2])))


def _voxel_map(volume: Volume, grid: Grid, transform: np.ndarray | None) -> np.ndarray:
    """4x4 matrix taking grid voxel indices to `volume` voxel indices (snapped to 1e-9 to keep exactness)."""
    world = np.eye(4) if transform is None else np.asarray(transform, dtype=np.float64)
    return np.round(np.linalg.inv(volume.affine) @ world @ grid.affine, 9)


def _threads() -> int:
    """Worker threads for interpolation: ``OMP_NUM_THREADS`` when set, else the CPUs this process may use."""
    try:
        wanted = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        wanted = 0
    return max(1, wanted or len(os.sched_getaffinity(0)))


def _interpolate(
    data: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], order: int, extend_edges: bool
) -> np.ndarray:
    """`ndimage.affine_transform` of one channel, in slabs along the first output axis on several threads.

    scipy releases the GIL while it interpolates, so the slabs run in parallel; each slab's offset is the
    whole map's at its first row, which gives the same values as one call (to float rounding of the offset).
    """
    out = np.empty(shape, dtype=data.dtype)
    mode = "nearest" if extend_edges else "constant"

    def slab(bounds: tuple[int, int]) -> None:
        lo, hi = bounds
        ndimage.affine_transform(
            data,
            matrix[:3, :3],
            offset=matrix[:3, 3] + matrix[:3, 0] * lo,
            output_shape=(hi - lo, *shape[1:]),
            output=out[lo:hi],
            order=order,
            mode=mode,
            cval=0.0,
            prefilter=False,
        )

    n = min(_threads(), max(1, shape[0] // 16), _MAX_THREADS)
    edges = np.linspace(0, shape[0], n + 1).astype(int)
    slabs = [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]
    if len(slabs) == 1:
        slab(slabs[0])
    else:
        with ThreadPoolExecutor(len(slabs)) as pool:
            list(pool.map(slab, slabs))
    return out


def _resample_labels(data: np.ndarray, matrix: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Label-aware resampling: every label's indicator linearly, each voxel takes the strongest label.

    Work is limited to each label's bounding box mapped onto the target grid.
    """
    out = np.zeros(shape, dtype=np.float32)
    best = np.full(shape, 0.5, dtype=np.float32)  # a label must cover more than half a voxel
    inverse = np.linalg.inv(matrix)
    labels = np.unique(data)
    labels = labels[labels != 0]
    ranks = np.where(data != 0, np.searchsorted(labels, data) + 1, 0)
    for label, box in zip(labels, ndimage.find_objects(ranks), strict=True):
        if box is None:
            continue
        lo = np.array([max(s.start - 1, 0) for s in box])
        hi = np.array([min(s.stop + 1, n) for s, n in zip(box, data.shape, strict=True)])
        corners = np.array(np.meshgrid(*zip(lo - 1, hi, strict=True), indexing="ij")).reshape(3, -1)
        mapped = inverse[:3, :3] @ corners + inverse[:3, 3:4]
        start = np.clip(np.floor(mapped.min(axis=1)).astype(int), 0, shape)
        stop = np.clip(np.ceil(mapped.max(axis=1)).astype(int) + 1, 0, shape)
        if np.any(stop <= start):
            continue
        sub = matrix.copy()
        sub[:3, 3] = matrix[:3, :3] @ start + matrix[:3, 3] - lo
        region = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        weight = _interpolate((data[crop] == label).astype(np.float32), sub, tuple(stop - start), 1, False)
        win = weight > best[region]
        best[region][win] = weight[win]
        out[region][win] = label
    return out


def resample(
    volume: Volume,
    grid: Grid,
    *,
    order: Order = "linear",
    transform: np.ndarray | None = None,
    extend_edges: bool = False,
) -> Volume:
    """Resample every channel of `volume` onto `grid`.

    Args:
        volume: the image (or mask) to resample.
        grid: the target grid.
        order: "linear" for images and probabilities, "nearest" for masks and label maps, "label" for a
            label-aware resampling of label maps (each label's indicator interpolated linearly; smooth,
            labels never mixed into new values).
        transform: optional 4x4 world matrix taking a point of `grid`'s world to `volume`'s world (the ITK
            convention of a registration result); identity when None.
        extend_edges: sample beyond the image's outermost voxel centres by repeating the edge (use when
            `grid` covers the same field of view); otherwise such points are 0.

    Returns:
        A Volume on `grid` (same name and meta).

    Example:
        >>> v = Volume(np.zeros((4, 4, 4)), np.eye(4))
        >>> resample(v, Grid(np.diag([2.0, 2.0, 2.0, 1.0]), (2, 2, 2)), order="nearest").shape
        (2, 2, 2)
    """
    if (
        grid.shape == volume.shape
        and transform is None
        and np.allclose(grid.affine, volume.affine, atol=1e-9)
    ):
        return Volume(volume.array.copy(), grid.affine, volume.name, volume.meta)
    matrix = _voxel_map(volume, grid, transform)
    if order == "label":
        channels = [_resample_labels(channel, matrix, grid.shape) for channel in volume.array]
    else:
        spline = _SPLINE_ORDER[order]
        channels = [_interpolate(ch, matrix, grid.shape, spline, extend_edges) for ch in volume.array]
    return Volume(np.stack(channels), grid.affine, volume.name, volume.meta)
