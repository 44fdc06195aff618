"""Lesion-wise matching: panoptica cross-check, hit rules on hand-made lesions, inputs and size bins."""

from __future__ import annotations

import numpy as np
import pytest
from panoptica import (
    ConnectedComponentsInstanceApproximator,
    InputType,
    Metric,
    NaiveThresholdMatching,
    Panoptica_Evaluator,
)

from neurolesion.metrics.lesionwise import label_lesions, match_lesions, size_bin_names

from .conftest import SPACING, balls, blobs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlap_rule_matches_panoptica(seed: int) -> None:
    truth = blobs((40, 40, 30), seed).astype(np.uint8)
    pred = (blobs((40, 40, 30), seed + 50) | np.roll(truth, 1, axis=0)).astype(np.uint8)
    evaluator = Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(),
        instance_matcher=NaiveThresholdMatching(
            matching_metric=Metric.DSC, matching_threshold=0.0, strict_threshold=True
        ),
    )
    ref = evaluator.evaluate(pred, truth, verbose=False)["ungrouped"]
    m = match_lesions(pred, truth, SPACING, rule="overlap")
    assert (m.n_pred, m.n_truth) == (ref.n_pred_instances, ref.n_ref_instances)
    assert (m.tp, m.fp, m.fn) == (ref.tp, ref.fp, ref.fn)


def _two_lesions() -> np.ndarray:
    return balls((40, 40, 20), np.array([[10, 10, 8], [30, 30, 10]]), np.array([3, 4]))


def test_centroid_rule_uses_mm() -> None:
    truth = _two_lesions()
    pred = np.roll(truth, 2, axis=2)  # 2 slices x 2.5 mm = 5 mm along z
    assert match_lesions(pred, truth, SPACING, rule="centroid", distance_mm=5.0).tp == 2
    assert match_lesions(pred, truth, SPACING, rule="centroid", distance_mm=4.9).tp == 0
    assert match_lesions(pred, truth, (1.0, 1.0, 1.0), rule="centroid", distance_mm=2.0).tp == 2


def test_coverage_rule_needs_half_the_true_lesion() -> None:
    truth = np.zeros((20, 20, 20), np.uint8)
    truth[5:15, 5:9, 5:9] = 1
    pred = np.zeros_like(truth)
    pred[5:10, 5:9, 5:9] = 1  # covers exactly 50 %
    assert match_lesions(pred, truth, rule="coverage").tp == 1
    pred[9] = 0  # 40 %
    m = match_lesions(pred, truth, rule="coverage")
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    assert match_lesions(pred, truth, rule="overlap").tp == 1


def test_split_prediction_is_one_tp_one_fp_and_dice() -> None:
    truth = np.zeros((20, 20, 20), np.uint8)
    truth[4:12, 4:8, 4:8] = 1
    pred = np.zeros_like(truth)
    pred[4:7, 4:8, 4:8] = 1
    pred[9:12, 4:8, 4:8] = 1
    m = match_lesions(pred, truth, rule="overlap")
    assert (m.tp, m.fp, m.fn, m.count_difference) == (1, 1, 0, 1)
    assert m.precision == 0.5 and m.recall == 1.0 and m.f1 == pytest.approx(2 / 3)
    assert m.truth_dice[0] == pytest.approx(2 * 48 / (48 + 128))


def test_assignment_maximises_matches() -> None:
    """Pred A overlaps truth 1 most (greedy would take it) but also truth 2; pred B only truth 1."""
    truth = np.zeros((30, 10, 10), np.int32)
    truth[2:10, 2:6, 2:6] = 1
    truth[14:22, 2:6, 2:6] = 2
    pred = np.zeros_like(truth)
    pred[6:16, 2:6, 2:6] = 1
    pred[2:4, 2:6, 2:6] = 2
    m = match_lesions(pred, truth, rule="overlap")
    assert m.tp == 2 and m.fn == 0
    assert sorted(map(tuple, m.pairs.tolist())) == [(1, 2), (2, 1)]


def test_label_map_and_connectivity() -> None:
    diag = np.zeros((5, 5, 5), np.uint8)
    diag[1, 1, 1] = diag[2, 2, 2] = 1
    assert label_lesions(diag, 26)[1] == 1
    assert label_lesions(diag, 18)[1] == 2
    assert label_lesions(diag, 6)[1] == 2
    ids = np.zeros((5, 5, 5), np.float32)  # instance ids as NIfTI gives them: float, not touching
    ids[0, 0, :2] = 7
    ids[0, 0, 2:4] = 3
    ids[4, 4, 4] = 3  # disconnected part of lesion 3 stays lesion 3
    labels, n = label_lesions(ids)
    assert n == 2 and len(np.unique(labels[ids == 3])) == 1
    with pytest.raises(ValueError, match="connectivity"):
        label_lesions(diag, 8)


def test_probability_map_confidence() -> None:
    truth = _two_lesions()
    prob = np.where(truth == 1, 0.9, 0.0) + np.where(truth == 2, 0.6, 0.0)
    prob[0:3, 0:3, 0:3] = 0.7  # a false positive
    m = match_lesions(prob, truth > 0, SPACING, rule="overlap")
    assert (m.tp, m.fp) == (2, 1)
    assert sorted(np.round(m.pred_confidence, 3).tolist()) == [0.6, 0.7, 0.9]
    assert m.pred_matched.tolist() == [c != 0.7 for c in np.round(m.pred_confidence, 3)]
    binary = match_lesions(prob > 0.5, truth, SPACING, prob=prob)
    assert np.allclose(np.sort(binary.pred_confidence), [0.6, 0.7, 0.9])


def test_sensitivity_by_size() -> None:
    truth = balls((60, 60, 20), np.array([[10, 10, 10], [40, 40, 10], [20, 45, 10]]), np.array([0, 2, 6]))
    pred = (truth == 3).astype(np.uint8)
    m = match_lesions(pred, truth, (1.0, 1.0, 1.0), rule="overlap")
    by_size = m.detected_by_size((3.0, 10.0))
    assert list(by_size) == size_bin_names((3.0, 10.0)) == ["<3 mm", "3-10 mm", ">10 mm"]
    assert by_size == {"<3 mm": (0, 1), "3-10 mm": (0, 1), ">10 mm": (1, 1)}


def test_empty_cases() -> None:
    empty = np.zeros((8, 8, 8), np.uint8)
    none = match_lesions(empty, empty)
    assert (none.tp, none.fp, none.fn, none.precision, none.recall, none.f1) == (0, 0, 0, 1.0, 1.0, 1.0)
    some = empty.copy()
    some[2, 2, 2] = 1
    for rule in ("overlap", "centroid", "coverage"):
        missed = match_lesions(empty, some, rule=rule)
        assert (missed.fn, missed.recall, missed.f1) == (1, 0.0, 0.0)
        false = match_lesions(some, empty, rule=rule)
        assert (false.fp, false.precision) == (1, 0.0)
    with pytest.raises(ValueError, match="hit rule"):
        match_lesions(some, some, rule="iou")  # type: ignore[arg-type]
