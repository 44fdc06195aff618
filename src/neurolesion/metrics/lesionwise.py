"""Lesion-wise detection: connected components matched one-to-one between prediction and truth.

Lesions are the connected components of a binary mask (`cc3d`, 6/18/26-connectivity), or the ids of a
label map whose values are instance ids, or the components of a probability map above a threshold.
A predicted lesion *hits* a true lesion under one of three rules:

- ``"overlap"``: they share at least one voxel (pair Dice > 0);
- ``"centroid"``: their centroids are at most `distance_mm` apart (5 mm by default, the VALDO rule);
- ``"coverage"``: the predicted lesion covers at least `coverage` (50 %) of the true lesion's voxels.

Each lesion is used at most once: among the hitting pairs, the assignment that maximises the number of
matches, then the summed pair quality (Dice, coverage or closeness), is found with
`scipy.optimize.linear_sum_assignment` in each connected group of candidate pairs. A split prediction
therefore counts one true positive and one false positive. Lesion size is the diameter of the sphere
of the same volume (mm). Empty cases follow `overlap.ratio`: no lesions on either side gives precision,
recall and F1 of 1.0.

Example:
    >>> t = np.zeros((20, 20, 20), bool); t[2:5, 2:5, 2:5] = True; t[12:15, 12:15, 12:15] = True
    >>> p = np.zeros_like(t); p[3:6, 2:5, 2:5] = True
    >>> m = match_lesions(p, t, rule="overlap")
    >>> m.tp, m.fp, m.fn, m.f1
    (1, 0, 1, 0.6666666666666666)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, cast

import cc3d
import numpy as np
from scipy import ndimage, sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from neurolesion.metrics.overlap import ratio

HitRule = Literal["overlap", "centroid", "coverage"]
HIT_RULES: tuple[str, ...] = ("overlap", "centroid", "coverage")
SIZE_EDGES_MM: tuple[float, ...] = (3.0, 10.0)


def is_probability(x: np.ndarray) -> bool:
    """True for a floating-point array with non-integer values (a probability map, not labels).

    Example:
        >>> is_probability(np.array([0.0, 0.3])), is_probability(np.array([0.0, 2.0]))
        (True, False)
    """
    a = np.asarray(x)
    if a.dtype.kind != "f":
        return False
    nonzero = a[a != 0]
    return bool(np.any(nonzero != np.round(nonzero)))


def label_lesions(
    x: np.ndarray, connectivity: int = 26, threshold: float = 0.5, instances: bool | None = None
) -> tuple[np.ndarray, int]:
    """Lesion labels 1..n of a mask, instance-label map or probability map.

    Args:
        x: 3D binary mask, label map (each lesion its own id) or probability map.
        connectivity: 6, 18 or 26 (for masks and probability maps).
        threshold: a probability map's lesions are the components of `x >= threshold`.
        instances: treat the values as instance ids (True) or as a mask to split into components
            (False); by default ids are used when the values are integers above 1.

    Returns:
        (unsigned-integer labels with consecutive ids 1..n, n).

    Raises:
        ValueError: `connectivity` is not 6, 18 or 26, or `x` is not 3D.

    Example:
        >>> m = np.zeros((5, 5, 5)); m[0, 0, 0] = m[2, 2, 2] = m[3, 3, 3] = 1
        >>> label_lesions(m, connectivity=26)[1], label_lesions(m, connectivity=6)[1]
        (2, 3)
    """
    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26; got {connectivity}")
    a = np.asarray(x)
    if a.ndim != 3:
        raise ValueError(f"expected a 3D array; got shape {a.shape}")
    if is_probability(a):
        mask = a >= threshold
    else:
        if instances is None:
            instances = a.size > 0 and float(a.max()) > 1
        if instances:
            ids = np.rint(a).astype(np.int64)
            present = np.unique(ids[ids > 0])
            lut = np.zeros(int(ids.max(initial=0)) + 1, dtype=np.uint32)
            lut[present] = np.arange(1, present.size + 1, dtype=np.uint32)
            return lut[np.clip(ids, 0, None)], int(present.size)
        mask = a != 0
    conn = cast(Literal[6, 18, 26], connectivity)
    labels, n = cc3d.connected_components(mask, connectivity=conn, return_N=True)
    return labels, int(n)


@dataclass(frozen=True)
class LesionMatch:
    """One case's lesion matching.

    Attributes:
        rule: the hit rule used.
        pairs: (k, 2) matched (predicted id, true id), ids 1-based as in the label maps.
        pair_dice: (k,) voxel Dice of each matched pair (0 when a centroid match does not overlap).
        pred_volume_mm3: (n_pred,) volume of each predicted lesion.
        truth_volume_mm3: (n_truth,) volume of each true lesion.
        pred_confidence: (n_pred,) maximum probability inside each predicted lesion (1.0 without one).
    """

    rule: str
    pairs: np.ndarray
    pair_dice: np.ndarray
    pred_volume_mm3: np.ndarray
    truth_volume_mm3: np.ndarray
    pred_confidence: np.ndarray

    @property
    def n_pred(self) -> int:
        """Number of predicted lesions."""
        return int(self.pred_volume_mm3.size)

    @property
    def n_truth(self) -> int:
        """Number of true lesions."""
        return int(self.truth_volume_mm3.size)

    @property
    def tp(self) -> int:
        """Matched pairs."""
        return int(self.pairs.shape[0])

    @property
    def fp(self) -> int:
        """Predicted lesions without a match."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """True lesions without a match."""
        return self.n_truth - self.tp

    @property
    def precision(self) -> float:
        """Lesion-wise precision TP / (TP + FP)."""
        return ratio(self.tp, self.n_pred, self.n_pred + self.n_truth == 0)

    @property
    def recall(self) -> float:
        """Lesion-wise recall (sensitivity) TP / (TP + FN)."""
        return ratio(self.tp, self.n_truth, self.n_pred + self.n_truth == 0)

    @property
    def f1(self) -> float:
        """Lesion-wise F1 2TP / (2TP + FP + FN)."""
        return ratio(2 * self.tp, self.n_pred + self.n_truth, self.n_pred + self.n_truth == 0)

    @property
    def count_difference(self) -> int:
        """Predicted minus true lesion count."""
        return self.n_pred - self.n_truth

    @property
    def pred_matched(self) -> np.ndarray:
        """(n_pred,) bool: the predicted lesion is a true positive."""
        hit = np.zeros(self.n_pred, dtype=bool)
        hit[self.pairs[:, 0] - 1] = True
        return hit

    @property
    def truth_dice(self) -> np.ndarray:
        """(n_truth,) per-lesion Dice of each true lesion with its match (0 when missed)."""
        d = np.zeros(self.n_truth)
        d[self.pairs[:, 1] - 1] = self.pair_dice
        return d

    @property
    def truth_diameter_mm(self) -> np.ndarray:
        """(n_truth,) equivalent-sphere diameter of each true lesion."""
        return np.cbrt(6.0 * self.truth_volume_mm3 / np.pi)

    def detected_by_size(self, edges_mm: Sequence[float] = SIZE_EDGES_MM) -> dict[str, tuple[int, int]]:
        """(detected, total) true lesions per diameter bin, e.g. "<3 mm", "3-10 mm", ">10 mm".

        Example:
            >>> m = LesionMatch("overlap", np.array([[1, 1]]), np.array([0.8]), np.array([10.0]),
            ...                 np.array([10.0, 5000.0]), np.array([1.0]))
            >>> m.detected_by_size()
            {'<3 mm': (1, 1), '3-10 mm': (0, 0), '>10 mm': (0, 1)}
        """
        names = size_bin_names(edges_mm)
        which = np.digitize(self.truth_diameter_mm, edges_mm)
        hit = np.zeros(self.n_truth, dtype=bool)
        hit[self.pairs[:, 1] - 1] = True
        return {
            name: (int(np.count_nonzero(hit & (which == i))), int(np.count_nonzero(which == i)))
            for i, name in enumerate(names)
        }

    def as_dict(self) -> dict[str, float]:
        """Scalar summary for a per-case table (keys prefixed `lesion_`)."""
        return {
            "lesion_n_pred": self.n_pred,
            "lesion_n_truth": self.n_truth,
            "lesion_tp": self.tp,
            "lesion_fp": self.fp,
            "lesion_fn": self.fn,
            "lesion_precision": self.precision,
            "lesion_recall": self.recall,
            "lesion_f1": self.f1,
            "lesion_count_diff": self.count_difference,
            "lesion_mean_dice": float(self.truth_dice.mean()) if self.n_truth else float("nan"),
        }


def size_bin_names(edges_mm: Sequence[float] = SIZE_EDGES_MM) -> list[str]:
    """Names of the diameter bins cut at `edges_mm`.

    Example:
        >>> size_bin_names((3.0, 10.0))
        ['<3 mm', '3-10 mm', '>10 mm']
    """
    e = [f"{v:g}" for v in edges_mm]
    return [f"<{e[0]} mm"] + [f"{a}-{b} mm" for a, b in pairwise(e)] + [f">{e[-1]} mm"]


def _centroids(labels: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) centroids in voxel coordinates of labels 1..n, from the foreground voxels only."""
    flat = np.flatnonzero(labels)
    ids = labels.ravel()[flat].astype(np.int64)
    counts = np.bincount(ids, minlength=n + 1)[1:]
    coords = np.unravel_index(flat, labels.shape)
    sums = np.stack([np.bincount(ids, weights=c, minlength=n + 1)[1:] for c in coords], axis=1)
    return sums / np.maximum(counts, 1)[:, None]


def _near_pairs(
    pred: np.ndarray, truth: np.ndarray, n_pred: int, n_truth: int, spacing: np.ndarray, distance_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred index, truth index, centroid distance in mm) of every pair at most `distance_mm` apart."""
    if n_pred == 0 or n_truth == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    cen_p, cen_t = _centroids(pred, n_pred) * spacing, _centroids(truth, n_truth) * spacing
    near = cKDTree(cen_p).query_ball_tree(cKDTree(cen_t), r=distance_mm)
    ip = np.array([i for i, js in enumerate(near) for _ in js], dtype=np.int64)
    it = np.array([j for js in near for j in js], dtype=np.int64)
    return ip, it, np.linalg.norm(cen_p[ip] - cen_t[it], axis=1) if ip.size else np.zeros(0)


def _candidates(
    pred: np.ndarray,
    truth: np.ndarray,
    n_pred: int,
    n_truth: int,
    spacing: np.ndarray,
    rule: str,
    distance_mm: float,
    coverage: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (0-based pred, truth), their quality and Dice, and lesion voxel counts."""
    size_p = np.bincount(pred[pred > 0], minlength=n_pred + 1)[1:].astype(np.float64)
    size_t = np.bincount(truth[truth > 0], minlength=n_truth + 1)[1:].astype(np.float64)
    both = (pred > 0) & (truth > 0)
    keys, counts = np.unique(pred[both].astype(np.int64) * (n_truth + 1) + truth[both], return_counts=True)
    ip, it = keys // (n_truth + 1) - 1, keys % (n_truth + 1) - 1
    inter = counts.astype(np.float64)
    if rule == "centroid":
        overlap = sparse.csr_matrix((inter, (ip, it)), shape=(n_pred, n_truth))
        ip, it, dist = _near_pairs(pred, truth, n_pred, n_truth, spacing, distance_mm)
        inter = np.asarray(overlap[ip, it]).ravel() if ip.size else np.zeros(0)
        quality = 1.0 - dist / distance_mm if distance_mm > 0 else np.ones_like(dist)
    elif rule == "coverage":
        quality = inter / size_t[it]
        keep = quality >= coverage
        ip, it, inter, quality = ip[keep], it[keep], inter[keep], quality[keep]
    dice = 2 * inter / (size_p[ip] + size_t[it])
    return ip, it, (dice if rule == "overlap" else quality), dice, size_p, size_t


def _assign(ip: np.ndarray, it: np.ndarray, quality: np.ndarray, n_pred: int, n_truth: int) -> np.ndarray:
    """Indices into the candidate list of a one-to-one assignment (most matches, then best quality)."""
    if ip.size == 0:
        return np.zeros(0, dtype=np.int64)
    graph = sparse.coo_matrix((np.ones(ip.size), (ip, n_pred + it)), shape=(n_pred + n_truth,) * 2)
    _, group = connected_components(graph, directed=False)
    chosen: list[int] = []
    order = np.argsort(group[ip], kind="stable")
    bounds = np.flatnonzero(np.diff(group[ip][order])) + 1
    for block in np.split(order, bounds):
        if block.size == 1:
            chosen.append(int(block[0]))
            continue
        rows, r_inv = np.unique(ip[block], return_inverse=True)
        cols, c_inv = np.unique(it[block], return_inverse=True)
        weight = np.zeros((rows.size, cols.size))
        bonus = float(block.size + 1)
        weight[r_inv, c_inv] = bonus + quality[block]
        index = np.full((rows.size, cols.size), -1, dtype=np.int64)
        index[r_inv, c_inv] = block
        r, c = linear_sum_assignment(weight, maximize=True)
        chosen.extend(int(index[a, b]) for a, b in zip(r, c, strict=True) if index[a, b] >= 0)
    return np.sort(np.asarray(chosen, dtype=np.int64))


def match_lesions(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    rule: HitRule = "centroid",
    distance_mm: float = 5.0,
    coverage: float = 0.5,
    connectivity: int = 26,
    prob: np.ndarray | None = None,
    threshold: float = 0.5,
) -> LesionMatch:
    """Match predicted lesions to true lesions one-to-one.

    Args:
        pred: binary mask, instance-label map or probability map (lesions = components above
            `threshold`, confidence = maximum probability inside each).
        truth: binary mask or instance-label map of the same shape.
        spacing: voxel size in mm along each array axis.
        rule: "overlap", "centroid" or "coverage" (see the module).
        distance_mm: centroid rule distance.
        coverage: coverage rule fraction of the true lesion.
        connectivity: 6, 18 or 26 for splitting masks into lesions.
        prob: probability map giving each predicted lesion's confidence (its maximum inside it).
        threshold: probability threshold when `pred` is a probability map.

    Returns:
        The `LesionMatch`.

    Raises:
        ValueError: unknown rule or connectivity, or the shapes differ.

    Example:
        >>> t = np.zeros((30, 30, 30), bool); t[10:14, 10:14, 10:14] = True
        >>> p = np.roll(t, 6, axis=0)
        >>> match_lesions(p, t, rule="centroid", distance_mm=5.0).tp
        0
        >>> match_lesions(p, t, spacing=(0.5, 1, 1), rule="centroid", distance_mm=5.0).tp
        1
    """
    if rule not in HIT_RULES:
        raise ValueError(f"hit rule must be one of {HIT_RULES}; got {rule!r}")
    p_arr, t_arr = np.asarray(pred), np.asarray(truth)
    if p_arr.shape != t_arr.shape:
        raise ValueError(f"prediction shape {p_arr.shape} differs from truth shape {t_arr.shape}")
    if prob is None and is_probability(p_arr):
        prob = p_arr
    p_lab, n_p = label_lesions(p_arr, connectivity, threshold)
    t_lab, n_t = label_lesions(t_arr, connectivity, threshold)
    scale = np.asarray(spacing, dtype=np.float64)
    ip, it, quality, dice, size_p, size_t = _candidates(
        p_lab, t_lab, n_p, n_t, scale, rule, distance_mm, coverage
    )
    keep = _assign(ip, it, quality, n_p, n_t)
    confidence: np.ndarray
    if prob is None or n_p == 0:
        confidence = np.ones(n_p)
    else:
        inside = p_lab > 0
        confidence = np.asarray(
            ndimage.maximum(np.asarray(prob)[inside], p_lab[inside], np.arange(1, n_p + 1)), dtype=np.float64
        )
    return LesionMatch(
        rule=rule,
        pairs=np.stack([ip[keep] + 1, it[keep] + 1], axis=1).astype(np.int64),
        pair_dice=dice[keep],
        pred_volume_mm3=size_p * float(np.prod(scale)),
        truth_volume_mm3=size_t * float(np.prod(scale)),
        pred_confidence=confidence,
    )
