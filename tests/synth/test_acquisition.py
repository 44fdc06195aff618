"""Acquisition: clinical protocols, grids that contain the head, exact nearest-neighbour labels, noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.synth.acquisition import (
    PRESETS,
    Acquisition,
    AcquisitionConfig,
    add_complex_noise,
    box_affine,
    degrade,
    gather,
    gibbs_ringing,
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


def step_volume() -> np.ndarray:
    """0 then 1 along axis 0 (an edge like brain/CSF), constant along axes 1 and 2."""
    img = np.zeros((64, 6, 6), np.float32)
    img[32:] = 1.0
    return img


def test_gibbs_ringing_overshoots_next_to_a_step_and_only_along_its_axes() -> None:
    img = step_volume()
    rung = gibbs_ringing(img, 0.7, (0, 1))
    assert rung.shape == img.shape and rung.dtype == img.dtype
    assert rung.max() > 1.05 and rung.min() < -0.05  # overshoot and undershoot beside the edge
    assert np.allclose(rung[:, 0, 0], rung[:, 5, 5], atol=1e-5)  # nothing rings along flat axes
    assert gibbs_ringing(img, 1.0, (0, 1)) is img
    assert np.allclose(gibbs_ringing(img, 0.7, (1, 2)), img, atol=1e-5)  # the edge is not along 1, 2
    z = gibbs_ringing(img.astype(np.complex64), 0.7, (0,))
    assert z.dtype == np.complex64 and np.allclose(z.real, rung, atol=1e-5)


def test_gibbs_ringing_survives_the_acquisition_blur() -> None:
    acq = Acquisition("t2", (2.0, 2.0, 2.0), "axial", (0.0, 0.0, 0.0), 20.0, 0.0, 0.0, gibbs_kept=0.7)
    blurred = degrade(step_volume(), acq, (1.0, 1.0, 1.0), np.random.default_rng(0))[::2]
    assert blurred.max() <= 1.0 + 1e-4  # a Gaussian profile alone never overshoots
    rung = gibbs_ringing(blurred, acq.gibbs_kept, acq.inplane_axes())
    assert rung.max() > 1.04  # the in-plane Gaussian is halved when it rings: a sinc profile instead


def test_gibbs_draws_are_seeded_and_leave_the_other_draws_alone() -> None:
    off = [
        random_acquisition("flair", np.random.default_rng(s), AcquisitionConfig(gibbs_p=0.0))
        for s in range(8)
    ]
    cfg = AcquisitionConfig(gibbs_p=1.0, gibbs_kept=(0.6, 0.9))
    on = [random_acquisition("flair", np.random.default_rng(s), cfg) for s in range(8)]
    again = [random_acquisition("flair", np.random.default_rng(s), cfg) for s in range(8)]
    assert all(a.gibbs_kept == 1.0 for a in off)
    assert all(0.6 <= a.gibbs_kept <= 0.9 for a in on) and on == again
    assert [(a.spacing, a.plane, a.snr) for a in on] == [(a.spacing, a.plane, a.snr) for a in off]
    assert "gibbs_kept" in on[0].as_dict()


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"gibbs_p": 1.5}, "gibbs_p"), ({"gibbs_kept": (0.9, 0.6)}, "gibbs_kept"), ({"snr": (0.0, 5.0)}, "snr")],
)
def test_acquisition_config_is_validated(kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(InputError, match=word):
        AcquisitionConfig(**kwargs)


def test_inplane_axes_follow_the_plane() -> None:
    for plane, axes in (("axial", (0, 1)), ("coronal", (0, 2)), ("sagittal", (1, 2))):
        acq = Acquisition("t1", (1.0, 1.0, 5.0), plane, (0.0, 0.0, 0.0), 20.0, 0.0, 0.0)
        assert acq.inplane_axes() == axes
