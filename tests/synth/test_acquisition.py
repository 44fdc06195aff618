"""Acquisition: clinical protocols, grids that contain the head, exact nearest-neighbour labels, noise."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.synth.acquisition import (
    PRESETS,
    Acquisition,
    AcquisitionConfig,
    add_complex_noise,
    box_affine,
    degrade,
    gather,
    grid_coordinates,
    native_grid,
    nearest_index,
    noise_sigma,
    random_acquisition,
    resample,
    resize,
)


@pytest.mark.parametrize("seq", sorted(PRESETS))
def test_protocols_come_from_clinical_presets(seq: str) -> None:
    rng = np.random.default_rng(0)
    thick = {round(p[1], 2) for p in PRESETS[seq]}
    for _ in range(10):
        acq = random_acquisition(seq, rng, AcquisitionConfig())
        assert acq.spacing[0] == acq.spacing[1]
        assert any(0.89 * t <= acq.spacing[2] <= 1.11 * t for t in thick)
        assert acq.plane in ("axial", "sagittal", "coronal")


def test_native_grid_contains_the_head_and_slices_along_the_plane() -> None:
    rng = np.random.default_rng(1)
    pts = rng.uniform(-70, 70, (3, 500))
    acq = Acquisition("flair", (1.0, 1.0, 5.0), "axial", (0.0, 0.0, 0.0), 20.0, 0.1, 0.0)
    cfg = AcquisitionConfig(fov_margin_mm=(0.0, 0.0))
    shape, affine = native_grid(acq, pts, rng, cfg)
    vox = np.linalg.inv(affine) @ np.vstack([pts, np.ones(500)])
    assert (vox[:3].min(axis=1) > -1).all() and (vox[:3].max(axis=1) < np.array(shape) + 1).all()
    assert np.allclose(np.abs(affine[:3, 2]), [0, 0, 5.0])  # slice axis along S-I for axial


def test_nearest_labels_are_exact_codes() -> None:
    labels = np.random.default_rng(2).integers(0, 50, (10, 12, 14)).astype(np.int32)
    src = np.eye(4)
    coords = grid_coordinates(labels.shape, src, src)
    assert np.array_equal(gather(labels, nearest_index(coords, labels.shape), labels.shape), labels)
    shifted = src.copy()
    shifted[:3, 3] = [20, 0, 0]  # outside the source: zeros
    coords = grid_coordinates((3, 3, 3), shifted, src)
    assert not gather(labels, nearest_index(coords, labels.shape), (3, 3, 3)).any()


def test_resample_identity_and_resize_box() -> None:
    img = np.random.default_rng(3).random((6, 7, 8)).astype(np.float32)
    coords = grid_coordinates(img.shape, np.eye(4), np.eye(4))
    assert np.allclose(resample(img, coords, img.shape), img, atol=1e-5)
    small = resize(img, (3, 7, 4), order=1)
    assert small.shape == (3, 7, 4)
    aff = box_affine(np.eye(4), (6, 7, 8), (3, 7, 4))
    assert np.allclose(np.diag(aff)[:3], [2, 1, 2]) and np.allclose(aff[:3, 3], [0.5, 0, 0.5])


def test_degrade_blurs_along_the_slice_axis_only() -> None:
    img = np.zeros((16, 16, 16), np.float32)
    img[8, 8, 8] = 1.0
    acq = Acquisition("t2", (1.0, 1.0, 5.0), "axial", (0.0, 0.0, 0.0), 20.0, 0.0, 0.0)
    out = degrade(img, acq, (1.0, 1.0, 1.0), np.random.default_rng(0))
    assert out[8, 8, 10] > 5 * out[8, 10, 8]


def test_rician_noise_level() -> None:
    img = np.full((32, 32, 32), 100.0, np.float32)
    sigma = noise_sigma(img, None, 20.0)
    noisy = np.abs(add_complex_noise(img, sigma, np.random.default_rng(0)))
    assert sigma == pytest.approx(5.0)
    assert noisy.std() == pytest.approx(5.0, rel=0.05)
    background = np.abs(add_complex_noise(np.zeros((32, 32, 32)), 5.0, np.random.default_rng(0)))
    assert background.mean() == pytest.approx(5.0 * np.sqrt(np.pi / 2), rel=0.05)  # Rayleigh mean
