"""Surface distances against MedPy and DeepMind's surface-distance, with anisotropic spacing."""

from __future__ import annotations

import numpy as np
import pytest
import surface_distance as sd
from medpy.metric import binary as mp

from neurolesion.metrics.surface import surface_metrics

from .conftest import SPACING

DIAGONAL = float(np.linalg.norm(SPACING))


def test_matches_medpy_exactly(mask_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = mask_pair
    m = surface_metrics(pred, truth, SPACING)
    assert m["hd95_mm"] == pytest.approx(mp.hd95(pred, truth, SPACING), abs=1e-6)
    assert m["hd_mm"] == pytest.approx(mp.hd(pred, truth, SPACING), abs=1e-6)
    assert m["assd_mm"] == pytest.approx(mp.assd(pred, truth, SPACING), abs=1e-6)


def test_close_to_deepmind(mask_pair: tuple[np.ndarray, np.ndarray]) -> None:
    """DeepMind weights surface elements by area; the issue allows one voxel diagonal of difference."""
    pred, truth = mask_pair
    m = surface_metrics(pred, truth, SPACING, tolerance_mm=2.0)
    dists = sd.compute_surface_distances(truth, pred, SPACING)
    assert abs(m["hd95_mm"] - sd.compute_robust_hausdorff(dists, 95)) <= DIAGONAL
    assert abs(m["hd_mm"] - sd.compute_robust_hausdorff(dists, 100)) <= DIAGONAL
    ref_sdice = sd.compute_surface_dice_at_tolerance(dists, 2.0)
    assert abs(m["surface_dice"] - ref_sdice) < 0.1


def test_hand_made_shift_along_thick_axis() -> None:
    a = np.zeros((12, 12, 12), bool)
    a[3:7, 3:7, 3:7] = True
    b = np.roll(a, 2, axis=2)  # two slices of 2.5 mm
    m = surface_metrics(a, b, SPACING, tolerance_mm=1.0)
    assert m["hd_mm"] == pytest.approx(5.0)
    assert 0.0 < m["surface_dice"] < 1.0
    assert surface_metrics(a, a, SPACING)["surface_dice"] == 1.0


def test_empty_conventions() -> None:
    empty = np.zeros((8, 8, 8), bool)
    some = empty.copy()
    some[2:4, 2:4, 2:4] = True
    assert surface_metrics(empty, empty) == {
        "hd95_mm": 0.0,
        "hd_mm": 0.0,
        "assd_mm": 0.0,
        "surface_dice": 1.0,
    }
    one = surface_metrics(some, empty)
    assert one["hd95_mm"] == one["hd_mm"] == one["assd_mm"] == np.inf and one["surface_dice"] == 0.0
    assert surface_metrics(empty, some) == one


def test_mask_on_array_edge() -> None:
    a = np.zeros((6, 6, 6), bool)
    a[:3] = True
    b = np.zeros_like(a)
    b[:4] = True
    assert surface_metrics(a, b)["hd_mm"] == pytest.approx(mp.hd(a, b))
