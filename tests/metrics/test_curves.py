"""Lesion-wise PR / FROC curves and bootstrap bands."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from neurolesion.metrics.curves import FROC_RATES, lesion_curves
from neurolesion.metrics.lesionwise import LesionMatch


def _case(confidence: list[float], hit: list[bool], n_truth: int) -> LesionMatch:
    """A case whose hit predictions are matched to the first true lesions."""
    hits = [i for i, h in enumerate(hit) if h]
    pairs = np.array([[p + 1, t + 1] for t, p in enumerate(hits)], dtype=np.int64).reshape(-1, 2)
    return LesionMatch(
        "overlap", pairs, np.ones(len(hits)), np.ones(len(hit)), np.ones(n_truth), np.asarray(confidence)
    )


def test_average_precision_matches_sklearn_when_all_found() -> None:
    rng = np.random.default_rng(0)
    cases, scores, labels = [], [], []
    for _ in range(10):
        conf = rng.random(6)
        hit = rng.random(6) < 0.5
        cases.append(_case(conf.tolist(), hit.tolist(), int(hit.sum())))
        scores += conf.tolist()
        labels += hit.tolist()
    c = lesion_curves(cases, n_boot=0)
    assert c.average_precision == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
    assert c.recall[-1] == 1.0


def test_hand_made_froc_and_missed_lesions() -> None:
    cases = [_case([0.9, 0.8, 0.3], [True, False, True], 3), _case([0.7], [False], 1)]
    c = lesion_curves(cases, n_boot=0)
    assert c.thresholds.tolist() == [0.9, 0.8, 0.7, 0.3]
    assert c.recall.tolist() == [0.25, 0.25, 0.25, 0.5]
    assert c.fp_per_case.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert c.average_precision == pytest.approx(0.25 * 1.0 + 0.25 * 0.5)
    assert c.sensitivity_at([0.0, 1.0]).tolist() == [0.25, 0.5]
    assert c.cpm == pytest.approx(np.mean([0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5]))
    assert len(FROC_RATES) == 7


def test_ties_collapse_to_one_point() -> None:
    c = lesion_curves([_case([1.0, 1.0, 1.0], [True, True, False], 2)], n_boot=0)
    assert c.thresholds.tolist() == [1.0]
    assert c.precision.tolist() == pytest.approx([2 / 3])


def test_bootstrap_bands_contain_the_curve() -> None:
    rng = np.random.default_rng(1)
    cases = []
    for _ in range(30):
        hit = rng.random(5) < 0.6
        conf = np.where(hit, rng.uniform(0.4, 1.0, 5), rng.uniform(0.0, 0.8, 5))
        cases.append(_case(conf.tolist(), hit.tolist(), int(hit.sum()) + 1))
    c = lesion_curves(cases, n_boot=100, boot_fraction=0.8, seed=3)
    assert c.precision_band.shape == (2, c.recall_grid.size)
    assert c.sensitivity_band.shape == (2, c.fp_grid.size)
    reached = ~np.isnan(c.precision_band[0])
    assert reached[0] and not reached[-1]  # recall 1 is never reached: a lesion per case is always missed
    assert np.all(c.precision_band[0][reached] <= c.precision_band[1][reached])
    assert c.ap_ci[0] <= c.average_precision <= c.ap_ci[1]
    again = lesion_curves(cases, n_boot=100, boot_fraction=0.8, seed=3)
    assert np.array_equal(again.precision_band, c.precision_band, equal_nan=True)


def test_no_cases_no_truth() -> None:
    c = lesion_curves([], n_boot=10)
    assert np.isnan(c.average_precision) and np.isnan(c.cpm)
    assert np.isnan(c.precision_band).all()
