"""`Volume`: the one data contract between pipeline stages.

A Volume is a float32 array shaped (C, X, Y, Z) plus the 4x4 affine that maps voxel indices (i, j, k) to
scanner RAS+ millimetres, the NIfTI convention. Channels share one grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurolesion.errors import InputError


@dataclass(frozen=True, eq=False)
class Volume:
    """An image on a grid.

    Args:
        array: (C, X, Y, Z) values; converted to float32 (a 3D array gets C = 1).
        affine: 4x4 voxel-to-RAS+ (mm) matrix; must be finite and invertible.
        name: where the data came from (a file path), used in error messages.
        meta: free-form provenance (source series UIDs, detected sequence, ...).

    Raises:
        InputError: wrong dimensionality, non-finite or singular affine.

    Example:
        >>> v = Volume(np.zeros((4, 5, 6)), np.eye(4))
        >>> v.shape, v.channels, v.spacing
        ((4, 5, 6), 1, (1.0, 1.0, 1.0))
    """

    array: np.ndarray
    affine: np.ndarray
    name: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4:
            raise InputError(
                f"{self.name or 'volume'}: array has shape {arr.shape}; expected (X, Y, Z) or (C, X, Y, Z)"
            )
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-9:
            raise InputError(
                f"{self.name or 'volume'}: affine is not a finite invertible 4x4 matrix: {aff!r}"
            )
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "affine", aff)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape (X, Y, Z)."""
        x, y, z = self.array.shape[1:]
        return (int(x), int(y), int(z))

    @property
    def channels(self) -> int:
        """Number of channels C."""
        return int(self.array.shape[0])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        sx, sy, sz = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(sx), float(sy), float(sz))

    @property
    def data(self) -> np.ndarray:
        """The (X, Y, Z) array of a single-channel volume.

        Raises:
            ValueError: the volume has several channels.
        """
        if self.channels != 1:
            raise ValueError(f"{self.name or 'volume'} has {self.channels} channels; data needs exactly one")
        return self.array[0]

    def with_array(self, array: np.ndarray, **meta: Any) -> Volume:
        """A new Volume with `array` on the same grid (and `meta` merged in).

        Raises:
            ValueError: `array` has another spatial shape.
        """
        arr = np.asarray(array)
        spatial = arr.shape if arr.ndim == 3 else arr.shape[1:]
        if tuple(spatial) != self.shape:
            raise ValueError(f"array spatial shape {tuple(spatial)} differs from the grid {self.shape}")
        return Volume(arr, self.affine, self.name, {**self.meta, **meta})

    def same_grid(self, other: Volume, atol: float = 1e-3) -> bool:
        """True when `other` has the same spatial shape and affine (within `atol` mm)."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol))
