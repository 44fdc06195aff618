"""Shared fixtures: small synthetic volumes, and the real data beside the repository when present."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip with the reason when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (it lives beside the repository, not in it)")
    return SHARED_DATA


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write `data` as NIfTI (identity affine by default) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))
    return path


@pytest.fixture
def head_like() -> np.ndarray:
    """A 24x28x20 image with a bright ellipsoid 'brain' in noise (random but seeded)."""
    rng = np.random.default_rng(0)
    x, y, z = np.ogrid[:24, :28, :20]
    inside = ((x - 12) / 9) ** 2 + ((y - 14) / 11) ** 2 + ((z - 10) / 8) ** 2 < 1
    return (inside * 100.0 + rng.normal(10, 2, (24, 28, 20))).astype(np.float32)
