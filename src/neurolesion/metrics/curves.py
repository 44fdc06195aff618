"""Lesion-wise precision-recall and FROC curves, with bootstrap confidence bands over cases.

Each predicted lesion's confidence is its maximum probability (`LesionMatch.pred_confidence`). The
matching is done once per case (at the probability threshold that defined the lesions); sweeping a
confidence threshold then keeps the predicted lesions at or above it, so a matched lesion counts as a
true positive and an unmatched one as a false positive. Recall (sensitivity) is over all true lesions
of all cases, false positives are per case.

Average precision is the step-wise sum Σ (R_k − R_{k−1}) P_k over the operating points (the
scikit-learn definition). The FROC summary `cpm` is the mean sensitivity at 1/8, 1/4, 1/2, 1, 2, 4 and
8 false positives per case (the competition performance metric of LUNA16 and ANODE09).

Example:
    >>> from neurolesion.metrics.lesionwise import LesionMatch
    >>> m = LesionMatch("overlap", np.array([[1, 1]]), np.array([0.9]), np.ones(2), np.ones(1),
    ...                 np.array([0.9, 0.4]))
    >>> c = lesion_curves([m], n_boot=0)
    >>> c.average_precision, c.fp_per_case.tolist()
    (1.0, [0.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurolesion.metrics.lesionwise import LesionMatch

FROC_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class LesionCurves:
    """Operating points (one per distinct confidence, highest first) and their bootstrap bands.

    Attributes:
        thresholds: confidence thresholds, descending.
        precision: lesion-wise precision at each threshold.
        recall: lesion-wise recall (sensitivity) at each threshold.
        fp_per_case: false positives per case at each threshold.
        average_precision: step-wise average precision (nan without true lesions).
        cpm: mean sensitivity at `FROC_RATES` false positives per case.
        recall_grid: recall values of `precision_band`.
        precision_band: (2, len(recall_grid)) lower and upper interpolated precision, over the draws
            whose curve reaches that recall (nan where none does).
        fp_grid: false-positive rates of `sensitivity_band`.
        sensitivity_band: (2, len(fp_grid)) lower and upper sensitivity.
        ap_ci: (lower, upper) bootstrap interval of the average precision.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    fp_per_case: np.ndarray
    average_precision: float
    cpm: float
    recall_grid: np.ndarray
    precision_band: np.ndarray
    fp_grid: np.ndarray
    sensitivity_band: np.ndarray
    ap_ci: tuple[float, float]

    def sensitivity_at(self, fp_rates: Sequence[float] = FROC_RATES) -> np.ndarray:
        """Best sensitivity with at most each given number of false positives per case."""
        return _sensitivity_at(self.recall, self.fp_per_case, fp_rates)


def _points(
    confidence: np.ndarray, hit: np.ndarray, n_truth: int, n_cases: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-confidence, kind="stable")
    conf, tp = confidence[order], np.cumsum(hit[order])
    fp = np.arange(1, conf.size + 1) - tp
    last = np.flatnonzero(np.r_[conf[1:] != conf[:-1], conf.size > 0])
    tp, fp = tp[last].astype(np.float64), fp[last].astype(np.float64)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(n_truth, 1)
    return conf[last], precision, recall, fp / max(n_cases, 1)


def _average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _sensitivity_at(
    recall: np.ndarray, fp_per_case: np.ndarray, fp_rates: Sequence[float] | np.ndarray
) -> np.ndarray:
    return np.array([recall[fp_per_case <= f].max(initial=0.0) for f in fp_rates])


def _interpolated_precision(precision: np.ndarray, recall: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Highest precision at a recall of at least each grid value (nan beyond the curve's last recall)."""
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, grid, side="left")
    return np.where(idx < recall.size, envelope[np.minimum(idx, recall.size - 1)], np.nan)


def _nan_percentile(draws: np.ndarray, q: list[float]) -> np.ndarray:
    """Percentiles over draws (axis 0) ignoring nan; nan where every draw is nan."""
    out = np.full((len(q), draws.shape[1]), np.nan)
    seen = ~np.all(np.isnan(draws), axis=0)
    out[:, seen] = np.nanpercentile(draws[:, seen], q, axis=0)
    return out


def _pool(matches: Sequence[LesionMatch]) -> tuple[np.ndarray, np.ndarray, int]:
    conf = np.concatenate([m.pred_confidence for m in matches]) if matches else np.zeros(0)
    hit = np.concatenate([m.pred_matched for m in matches]) if matches else np.zeros(0, bool)
    return conf, hit, sum(m.n_truth for m in matches)


def lesion_curves(
    matches: Sequence[LesionMatch],
    n_boot: int = 100,
    boot_fraction: float = 0.8,
    level: float = 0.95,
    seed: int = 0,
) -> LesionCurves:
    """PR and FROC curves of a set of cases, with bootstrap bands from resampled cases.

    Args:
        matches: one `LesionMatch` per case.
        n_boot: bootstrap draws (0: no bands; they are then nan).
        boot_fraction: fraction of the cases drawn, without replacement, in each draw.
        level: confidence level of the bands.
        seed: random seed of the draws.

    Returns:
        The `LesionCurves`.

    Example:
        >>> lesion_curves([], n_boot=0).average_precision
        nan
    """
    conf, hit, n_truth = _pool(matches)
    thr, prec, rec, fppc = _points(conf, hit, n_truth, len(matches))
    recall_grid = np.linspace(0.0, 1.0, 101)
    fp_grid = np.geomspace(FROC_RATES[0], FROC_RATES[-1], 25)
    bands_p, bands_s, aps = [], [], []
    rng = np.random.default_rng(seed)
    k = max(1, round(boot_fraction * len(matches)))
    for _ in range(n_boot if matches else 0):
        draw = [matches[i] for i in rng.choice(len(matches), size=k, replace=False)]
        c, h, n = _pool(draw)
        _, p, r, f = _points(c, h, n, k)
        if n == 0:
            continue
        bands_p.append(_interpolated_precision(p, r, recall_grid))
        bands_s.append(_sensitivity_at(r, f, fp_grid))
        aps.append(_average_precision(p, r))
    q = [50 * (1 - level), 50 * (1 + level)]
    nan_band = np.full((2, recall_grid.size), np.nan)
    return LesionCurves(
        thresholds=thr,
        precision=prec,
        recall=rec,
        fp_per_case=fppc,
        average_precision=_average_precision(prec, rec) if n_truth else float("nan"),
        cpm=float(_sensitivity_at(rec, fppc, FROC_RATES).mean()) if n_truth else float("nan"),
        recall_grid=recall_grid,
        precision_band=_nan_percentile(np.array(bands_p), q) if bands_p else nan_band,
        fp_grid=fp_grid,
        sensitivity_band=np.percentile(bands_s, q, axis=0) if bands_s else nan_band[:, : fp_grid.size],
        ap_ci=(float(np.percentile(aps, q[0])), float(np.percentile(aps, q[1]))) if aps else (np.nan, np.nan),
    )
