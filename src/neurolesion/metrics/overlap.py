"""Voxel overlap metrics: Dice, IoU, precision, recall, specificity and volume difference.

Every function takes two arrays of the same shape; non-zero means foreground. Multi-label maps are
scored label by label with `per_label`.

Empty masks (documented convention, the same for every ratio in this package): when both masks are
empty every ratio is 1.0 (nothing to find, nothing found); when only one is empty, a ratio whose
denominator is zero is 0.0. Volumes are in millilitres (1 ml = 1000 mm³).

Example:
    >>> a = np.zeros((4, 4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4, 4), bool); b[1:3] = True
    >>> dice(a, b), iou(a, b)
    (0.5, 0.3333333333333333)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Spacing = Sequence[float]


def _binary(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred)
    t = np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from truth shape {t.shape}")
    return p != 0, t != 0


def ratio(num: float, den: float, both_empty: bool) -> float:
    """`num / den` with the package's empty-mask convention.

    Args:
        num: numerator.
        den: denominator.
        both_empty: prediction and truth are both empty.

    Returns:
        1.0 when `both_empty`, 0.0 when `den` is zero otherwise, else `num / den`.

    Example:
        >>> ratio(0, 0, True), ratio(0, 0, False), ratio(1, 4, False)
        (1.0, 0.0, 0.25)
    """
    if both_empty:
        return 1.0
    return float(num) / float(den) if den else 0.0


def confusion(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """Voxel counts (TP, FP, FN, TN).

    Raises:
        ValueError: the shapes differ.

    Example:
        >>> confusion(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
        (1, 1, 1, 1)
    """
    p, t = _binary(pred, truth)
    tp = int(np.count_nonzero(p & t))
    n_p = int(np.count_nonzero(p))
    n_t = int(np.count_nonzero(t))
    return tp, n_p - tp, n_t - tp, int(p.size) - n_p - n_t + tp


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient 2|P∩T| / (|P| + |T|) (1.0 when both are empty).

    Example:
        >>> dice(np.array([1, 1, 0]), np.array([1, 0, 0]))
        0.6666666666666666
    """
    tp, fp, fn, _ = confusion(pred, truth)
    return ratio(2 * tp, 2 * tp + fp + fn, tp + fp + fn == 0)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union (Jaccard index), 1.0 when both are empty.

    Example:
        >>> iou(np.array([1, 1, 0]), np.array([1, 0, 0]))
        0.5
    """
    tp, fp, fn, _ = confusion(pred, truth)
    return ratio(tp, tp + fp + fn, tp + fp + fn == 0)


def precision(pred: np.ndarray, truth: np.ndarray) -> float:
    """Positive predictive value TP / (TP + FP).

    Example:
        >>> precision(np.array([1, 1, 0]), np.array([1, 0, 0]))
        0.5
    """
    tp, fp, fn, _ = confusion(pred, truth)
    return ratio(tp, tp + fp, tp + fp + fn == 0)


def recall(pred: np.ndarray, truth: np.ndarray) -> float:
    """Sensitivity TP / (TP + FN).

    Example:
        >>> recall(np.array([1, 0, 0]), np.array([1, 1, 0]))
        0.5
    """
    tp, fp, fn, _ = confusion(pred, truth)
    return ratio(tp, tp + fn, tp + fp + fn == 0)


def specificity(pred: np.ndarray, truth: np.ndarray) -> float:
    """TN / (TN + FP).

    Example:
        >>> specificity(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
        0.6666666666666666
    """
    tp, fp, fn, tn = confusion(pred, truth)
    return ratio(tn, tn + fp, tp + fp + fn == 0)


def volume_ml(mask: np.ndarray, spacing: Spacing = (1.0, 1.0, 1.0)) -> float:
    """Foreground volume in millilitres.

    Example:
        >>> volume_ml(np.ones((10, 10, 10)), (1.0, 1.0, 2.0))
        2.0
    """
    return float(np.count_nonzero(mask)) * float(np.prod(spacing)) / 1000.0


def volume_difference(
    pred: np.ndarray, truth: np.ndarray, spacing: Spacing = (1.0, 1.0, 1.0)
) -> tuple[float, float]:
    """Signed volume difference, predicted minus true.

    Returns:
        (difference in ml, relative difference (V_pred - V_true) / V_true); the relative difference is
        0.0 when both are empty and inf when only the truth is empty.

    Example:
        >>> volume_difference(np.ones((10, 10, 10)), np.ones((10, 10, 5)))
        (0.5, 1.0)
    """
    vp, vt = volume_ml(pred, spacing), volume_ml(truth, spacing)
    return vp - vt, _relative(vp, vt)


def _relative(vp: float, vt: float) -> float:
    if vt == 0:
        return 0.0 if vp == 0 else float("inf")
    return (vp - vt) / vt


def overlap_metrics(
    pred: np.ndarray, truth: np.ndarray, spacing: Spacing = (1.0, 1.0, 1.0)
) -> dict[str, float]:
    """All voxel metrics of one binary pair, from a single confusion count.

    Returns:
        dice, iou, precision, recall, specificity, volume_pred_ml, volume_truth_ml, volume_diff_ml,
        volume_diff_rel.

    Example:
        >>> m = overlap_metrics(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
        >>> m["dice"], m["volume_diff_ml"]
        (1.0, 0.0)
    """
    tp, fp, fn, tn = confusion(pred, truth)
    empty = tp + fp + fn == 0
    voxel_ml = float(np.prod(spacing)) / 1000.0
    vp, vt = (tp + fp) * voxel_ml, (tp + fn) * voxel_ml
    return {
        "dice": ratio(2 * tp, 2 * tp + fp + fn, empty),
        "iou": ratio(tp, tp + fp + fn, empty),
        "precision": ratio(tp, tp + fp, empty),
        "recall": ratio(tp, tp + fn, empty),
        "specificity": ratio(tn, tn + fp, empty),
        "volume_pred_ml": vp,
        "volume_truth_ml": vt,
        "volume_diff_ml": vp - vt,
        "volume_diff_rel": _relative(vp, vt),
    }


def per_label(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Spacing = (1.0, 1.0, 1.0),
    labels: Iterable[int] | None = None,
) -> dict[int, dict[str, float]]:
    """`overlap_metrics` for each label of two multi-label maps.

    Args:
        pred: integer label map.
        truth: integer label map of the same shape.
        spacing: voxel size in mm.
        labels: labels to score; default every non-zero label present in either map.

    Returns:
        {label: metrics}.

    Example:
        >>> p = np.array([0, 1, 2, 2]); t = np.array([0, 1, 1, 2])
        >>> {k: v["dice"] for k, v in per_label(p, t).items()}
        {1: 0.6666666666666666, 2: 0.6666666666666666}
    """
    p, t = np.asarray(pred), np.asarray(truth)
    if labels is None:
        labels = [int(v) for v in np.union1d(np.unique(p), np.unique(t)) if v != 0]
    return {int(lab): overlap_metrics(p == lab, t == lab, spacing) for lab in labels}
