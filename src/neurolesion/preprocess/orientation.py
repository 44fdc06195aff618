"""Exact reorientation (axis permutations and flips only, no interpolation).

`reorient(volume, "RAS")` permutes and flips the array so that its axes run towards Right, Anterior and
Superior; the world position of every voxel is unchanged, so `reorient(reorient(v, "RAS"), axcodes(v))`
returns `v` exactly.

Example:
    >>> import numpy as np
    >>> from neurolesion.volume import Volume
    >>> v = Volume(np.arange(24.0).reshape(2, 3, 4), np.diag([-1.0, 1.0, 1.0, 1.0]))
    >>> axcodes(v), axcodes(reorient(v, "RAS"))
    (('L', 'A', 'S'), ('R', 'A', 'S'))
"""

from __future__ import annotations

import nibabel.orientations as nio
import numpy as np

from neurolesion.errors import InputError
from neurolesion.volume import Volume

_WORLD_AXIS = {"L": 0, "R": 0, "P": 1, "A": 1, "I": 2, "S": 2}


def axcodes(volume: Volume) -> tuple[str, str, str]:
    """The anatomical direction each array axis points to, e.g. ('L', 'P', 'S').

    Example:
        >>> axcodes(Volume(np.zeros((2, 2, 2)), np.eye(4)))
        ('R', 'A', 'S')
    """
    codes = nio.aff2axcodes(volume.affine)
    return (str(codes[0]), str(codes[1]), str(codes[2]))


def reorient(volume: Volume, codes: str | tuple[str, ...] = "RAS") -> Volume:
    """Permute and flip the array axes to `codes` without moving any voxel in the world.

    Args:
        volume: image on any grid (all channels are reoriented together).
        codes: three target axis codes, one of each pair L/R, P/A, I/S (default "RAS").

    Returns:
        The same voxels in the new axis order, with the matching affine (exact: no interpolation).

    Raises:
        InputError: `codes` is not a valid orientation.

    Example:
        >>> v = Volume(np.zeros((2, 3, 4)), np.eye(4)[[1, 0, 2, 3]])
        >>> reorient(v).shape
        (3, 2, 4)
    """
    target = tuple(str(c).upper() for c in codes)
    if sorted(_WORLD_AXIS.get(c, -1) for c in target) != [0, 1, 2]:
        raise InputError(f"{volume.name or 'volume'}: orientation {codes!r} invalid; expected e.g. 'RAS'")
    target_ornt = nio.axcodes2ornt(target)
    transform = nio.ornt_transform(nio.io_orientation(volume.affine), target_ornt)
    if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
        return volume
    array = np.stack([nio.apply_orientation(channel, transform) for channel in volume.array])
    affine = volume.affine @ nio.inv_ornt_aff(transform, volume.shape)
    return Volume(np.ascontiguousarray(array), affine, volume.name, volume.meta)
