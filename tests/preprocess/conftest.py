"""Small synthetic heads for the pre-processing tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from neurolesion.volume import Volume


def make_head(shape: tuple[int, int, int] = (40, 44, 36), spacing: float = 2.0, seed: int = 0) -> Volume:
    """An asymmetric head phantom: skull ring, brain with smooth random structure, a bright left blob.

    The grid is RAS, centred on the world origin; the brain is `meta["brain"]` (bool array).
    """
    rng = np.random.default_rng(seed)
    idx = np.indices(shape, dtype=np.float64)
    centre = (np.asarray(shape) - 1)[:, None, None, None] / 2
    radius = np.asarray(shape)[:, None, None, None] * 0.42
    r = np.sqrt((((idx - centre) / radius) ** 2).sum(axis=0))
    brain = r < 0.8
    texture = ndimage.gaussian_filter(rng.random(shape), 2.0)
    texture = (texture - texture.min()) / np.ptp(texture)
    image = np.where(brain, 60 + 60 * texture, 0.0)
    image[(r >= 0.85) & (r < 1.0)] = 150.0  # scalp / skull
    blob = np.sqrt(
        (idx[0] - shape[0] * 0.3) ** 2 + (idx[1] - shape[1] * 0.6) ** 2 + (idx[2] - shape[2] * 0.55) ** 2
    )
    image[blob < 4] = 200.0
    image += rng.normal(0, 2, shape)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (np.asarray(shape) - 1) / 2
    return Volume(np.clip(image, 0, None), affine, "head.nii.gz", {"brain": brain})


@pytest.fixture
def head() -> Volume:
    return make_head()
