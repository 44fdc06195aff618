"""Voxel overlap metrics against MedPy and hand counts."""

from __future__ import annotations

import numpy as np
import pytest
from medpy.metric import binary as mp

from neurolesion.metrics.overlap import (
    confusion,
    dice,
    iou,
    overlap_metrics,
    per_label,
    precision,
    recall,
    specificity,
    volume_difference,
)

from .conftest import SPACING


def test_matches_medpy(mask_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = mask_pair
    m = overlap_metrics(pred, truth, SPACING)
    assert m["dice"] == pytest.approx(mp.dc(pred, truth), abs=1e-6)
    assert m["iou"] == pytest.approx(mp.jc(pred, truth), abs=1e-6)
    assert m["precision"] == pytest.approx(mp.precision(pred, truth), abs=1e-6)
    assert m["recall"] == pytest.approx(mp.recall(pred, truth), abs=1e-6)
    assert m["specificity"] == pytest.approx(mp.specificity(pred, truth), abs=1e-6)
    assert m["dice"] == dice(pred, truth) and m["iou"] == iou(pred, truth)


def test_hand_counts() -> None:
    pred = np.zeros((4, 4, 4), bool)
    truth = np.zeros((4, 4, 4), bool)
    pred[0, :, :2] = True  # 8 voxels
    truth[0, :, 1:] = True  # 12 voxels, 4 shared
    assert confusion(pred, truth) == (4, 4, 8, 48)
    assert dice(pred, truth) == pytest.approx(8 / 20)
    assert precision(pred, truth) == 0.5 and recall(pred, truth) == pytest.approx(1 / 3)
    assert specificity(pred, truth) == pytest.approx(48 / 52)
    diff_ml, rel = volume_difference(pred, truth, (1.0, 1.0, 2.0))
    assert diff_ml == pytest.approx(-0.008) and rel == pytest.approx(-1 / 3)


def test_empty_conventions() -> None:
    empty = np.zeros((3, 3, 3))
    full = np.ones((3, 3, 3))
    both = overlap_metrics(empty, empty)
    assert all(both[k] == 1.0 for k in ("dice", "iou", "precision", "recall", "specificity"))
    assert both["volume_diff_rel"] == 0.0
    one = overlap_metrics(empty, full)
    assert one["dice"] == one["precision"] == one["recall"] == 0.0
    assert overlap_metrics(full, empty)["volume_diff_rel"] == np.inf


def test_per_label_multilabel_map() -> None:
    truth = np.zeros((6, 6, 6), int)
    truth[:2] = 1
    truth[3:] = 2
    pred = truth.copy()
    pred[5] = 1
    scores = per_label(pred, truth, SPACING)
    assert set(scores) == {1, 2}
    assert scores[1]["dice"] == pytest.approx(mp.dc(pred == 1, truth == 1))
    assert scores[2]["recall"] == pytest.approx(2 / 3)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="differs"):
        dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
