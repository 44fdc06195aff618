"""Fixtures for the metrics tests: random blob masks and lesion volumes with anisotropic spacing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

SPACING = (0.7, 1.1, 2.5)


def blobs(shape: tuple[int, int, int], seed: int, level: float = 0.56, sigma: float = 1.5) -> np.ndarray:
    """A random binary mask of smooth blobs."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), sigma) > level


def balls(shape: tuple[int, int, int], centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Instance-label map with one ball per centre (ids 1..n, later balls win overlaps)."""
    grid = np.indices(shape)
    out = np.zeros(shape, np.int32)
    for i, (c, r) in enumerate(zip(centres, radii, strict=True), start=1):
        out[((grid - np.asarray(c)[:, None, None, None]) ** 2).sum(0) <= r * r] = i
    return out


@pytest.fixture(params=[0, 1, 2])
def mask_pair(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    """A random prediction and truth: independent blobs plus a shifted copy of the truth."""
    seed = int(request.param)
    truth = blobs((36, 40, 24), seed)
    pred = blobs((36, 40, 24), seed + 100) | np.roll(truth, 1, axis=0)
    return pred, truth
