"""Resampling: exact round trips on nested grids, label maps preserved, world transforms applied."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.preprocess.resample import Grid, grid_for_spacing, resample
from neurolesion.volume import Volume


@pytest.fixture
def oblique_volume() -> Volume:
    rng = np.random.default_rng(0)
    c, s = np.cos(0.2), np.sin(0.2)
    affine = np.array([[-c, s, 0, 10.0], [s, c, 0, -20.0], [0, 0, 1, 5.0], [0, 0, 0, 1]])
    affine[:3, :3] = affine[:3, :3] @ np.diag([0.9, 0.9, 3.0])
    return Volume(rng.random((12, 10, 6)).astype(np.float32), affine, "img")


def test_finer_and_back_is_exact(oblique_volume: Volume) -> None:
    native = Grid.of(oblique_volume)
    fine_grid = grid_for_spacing(native, (0.45, 0.45, 1.0))
    assert fine_grid.shape == (23, 19, 16)
    fine = resample(oblique_volume, fine_grid)
    assert np.allclose(fine.affine[:3, 3], oblique_volume.affine[:3, 3])  # first centres coincide
    back = resample(fine, native)
    assert back.same_grid(oblique_volume)
    np.testing.assert_allclose(back.array, oblique_volume.array, atol=1e-6)


def test_label_map_preserved(oblique_volume: Volume) -> None:
    labels = np.zeros(oblique_volume.shape, dtype=np.float32)
    labels[2:6, 3:7, 1:4] = 1
    labels[7:10, 2:5, 2:5] = 7
    labels[4, 8, 3] = 3
    volume = oblique_volume.with_array(labels)
    native = Grid.of(volume)
    fine_grid = grid_for_spacing(native, (0.45, 0.45, 1.5))
    for order in ("nearest", "label"):
        fine = resample(volume, fine_grid, order=order)
        assert set(np.unique(fine.array)) <= {0.0, 1.0, 3.0, 7.0}
        back = resample(fine, native, order=order)
        assert np.array_equal(back.array, volume.array), order


def test_label_aware_is_smoother_than_nearest() -> None:
    # a sphere downsampled 2x then upsampled: label-aware keeps the volume and no new values
    grid = np.indices((40, 40, 40)) - 19.5
    sphere = (np.sqrt((grid**2).sum(axis=0)) < 12).astype(np.float32) * 4
    volume = Volume(sphere, np.eye(4))
    coarse = resample(volume, grid_for_spacing(Grid.of(volume), (2.0, 2.0, 2.0)), order="label")
    assert set(np.unique(coarse.array)) == {0.0, 4.0}
    ratio = (coarse.array > 0).sum() * 8 / (sphere > 0).sum()
    assert 0.9 < ratio < 1.1


def test_world_transform_translates() -> None:
    array = np.zeros((10, 10, 10), dtype=np.float32)
    array[4, 5, 6] = 1
    volume = Volume(array, np.eye(4))
    shift = np.eye(4)
    shift[:3, 3] = [1.0, -2.0, 0.0]  # grid point p samples the image at p + shift
    moved = resample(volume, Grid.of(volume), transform=shift, order="nearest")
    assert tuple(np.argwhere(moved.data == 1)[0]) == (3, 7, 6)


def test_outside_is_zero_unless_edges_extended() -> None:
    volume = Volume(np.ones((4, 4, 4)), np.eye(4))
    bigger = Grid(np.eye(4), (6, 4, 4))
    assert resample(volume, bigger).data[5].max() == 0
    assert resample(volume, bigger, extend_edges=True).data[5].min() == 1


def test_bad_spacing() -> None:
    with pytest.raises(InputError, match="spacing"):
        grid_for_spacing(Grid(np.eye(4), (2, 2, 2)), (1.0, 0.0, 1.0))


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_threaded_slabs_match_one_call(monkeypatch: pytest.MonkeyPatch, threads: str) -> None:
    """Interpolation in slabs on several threads gives the values of one scipy call, slab seams included."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    data = rng.random((70, 40, 30)).astype(np.float32)
    v = Volume(data, np.diag([1.0, 1.2, 0.9, 1.0]))
    transform = np.eye(4)
    transform[:3, :3] = [[0.998, 0.05, 0.0], [-0.05, 0.998, 0.02], [0.0, -0.02, 1.0]]
    transform[:3, 3] = [0.37, -1.13, 0.71]
    grid = grid_for_spacing(Grid.of(v), (0.8, 1.0, 1.1))
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    out = resample(v, grid, transform=transform).array[0]
    matrix = np.round(np.linalg.inv(v.affine) @ transform @ grid.affine, 9)
    expected = ndimage.affine_transform(
        data, matrix[:3, :3], offset=matrix[:3, 3], output_shape=grid.shape, order=1, prefilter=False
    )
    assert out.shape == grid.shape == (88, 48, 25)
    assert np.allclose(out, expected, atol=1e-5)


def test_threaded_finer_and_back_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    v = Volume(np.random.default_rng(0).random((64, 20, 18)), np.diag([0.7, 1.1, 2.5, 1.0]))
    fine = resample(v, grid_for_spacing(Grid.of(v), (0.35, 0.55, 1.25)))
    assert np.array_equal(resample(fine, Grid.of(v)).array, v.array)


def test_threaded_resampling_keeps_left_on_the_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """An asymmetric phantom on a left-right flipped oblique grid, resampled in slabs onto an RAS 1 mm grid."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    affine = np.array(
        [[-0.9, 0.1, 0.0, 40.0], [0.1, 0.9, 0.0, -30.0], [0.0, 0.0, 2.5, -20.0], [0, 0, 0, 1.0]]
    )
    data = np.zeros((90, 70, 16), np.float32)
    data[70:76, 30:36, 7:9] = 1.0  # high array x = low world x: the patient's left (RAS)
    v = Volume(data, affine)
    marker = affine @ np.array([72.5, 32.5, 7.5, 1.0])
    assert marker[0] < 0  # on the left
    ras_affine = np.eye(4)
    ras_affine[:3, 3] = [-45.0, -30.0, -20.0]
    ras = Grid(ras_affine, (90, 70, 42))
    out = resample(v, ras).array[0]
    assert out.shape[0] // 16 >= 2  # really in slabs
    centre = np.array(np.nonzero(out > 0.5)).mean(axis=1)
    world = ras.affine @ np.array([*centre, 1.0])
    assert world[0] < 0
    np.testing.assert_allclose(world[:3], marker[:3], atol=1.0)
