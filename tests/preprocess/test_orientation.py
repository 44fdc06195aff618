"""Reorientation: exact, world positions kept, left stays left."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.preprocess.orientation import axcodes, reorient
from neurolesion.volume import Volume


def _phantom(perm: tuple[int, ...], flips: tuple[int, ...]) -> tuple[Volume, np.ndarray]:
    """An asymmetric 6x7x8 phantom whose array axes point along `perm` world axes with `flips` signs.

    Returns the volume and the world coordinate of a voxel marked on the patient's left (x < 0).
    """
    shape = (6, 7, 8)
    rotation = np.zeros((3, 3))
    for axis, (world, sign) in enumerate(zip(perm, flips, strict=True)):
        rotation[world, axis] = sign * (axis + 1.0)  # different spacings per axis
    affine = np.eye(4)
    affine[:3, :3] = rotation
    centre = (np.asarray(shape) - 1) / 2
    affine[:3, 3] = -rotation @ centre
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    # mark the voxel whose world x is most negative (patient's left in RAS)
    index = np.array([0 if flips[a] > 0 else shape[a] - 1 for a in range(3)])
    index = np.where(np.asarray(perm) == 0, index, 1)
    array[tuple(index)] = -100.0
    world = affine[:3, :3] @ index + affine[:3, 3]
    return Volume(array, affine, "phantom"), world


@pytest.mark.parametrize(
    ("perm", "flips"),
    list(itertools.product(itertools.permutations(range(3)), itertools.product((1, -1), repeat=3))),
)
def test_reorient_keeps_world_position_and_side(perm: tuple[int, ...], flips: tuple[int, ...]) -> None:
    volume, world = _phantom(perm, flips)
    ras = reorient(volume, "RAS")
    assert axcodes(ras) == ("R", "A", "S")
    assert np.all(np.diag(ras.affine)[:3] > 0)
    marked = np.argwhere(ras.data == -100.0)[0]
    assert np.allclose(ras.affine[:3, :3] @ marked + ras.affine[:3, 3], world)
    assert world[0] < 0  # left of the midline, in both grids
    assert marked[0] < ras.shape[0] / 2  # first RAS axis runs left -> right: marked voxel in the left half
    back = reorient(ras, axcodes(volume))
    assert np.array_equal(back.array, volume.array)
    assert np.allclose(back.affine, volume.affine, atol=1e-12)


def test_reorient_multichannel_and_identity() -> None:
    array = np.random.default_rng(1).random((2, 3, 4, 5)).astype(np.float32)
    volume = Volume(array, np.diag([-1.0, -1.0, 1.0, 1.0]))
    ras = reorient(volume)
    assert np.array_equal(ras.array, array[:, ::-1, ::-1, :])
    assert reorient(ras) is ras


def test_reorient_rejects_bad_codes() -> None:
    with pytest.raises(InputError, match="orientation"):
        reorient(Volume(np.zeros((2, 2, 2)), np.eye(4)), "RRS")
