"""From a probability map to lesions: threshold, connected components, minimum size, the clinically-derived
false-positive reduction and per-lesion confidence.

The false-positive rule: a candidate is dropped when more than half of the voxels within ``margin_mm``
around it (its periphery, excluding the candidate) lie outside the brain parenchyma, as a neuroradiologist
discards a "microbleed" that is really a vessel or bone on the brain surface. Tasks whose lesions lie
against the surface by nature (``extra_axial``: meningiomas, schwannomas, cortical metastases, whose
surroundings are CSF, dura and bone) are judged by their own voxels instead: a candidate is kept when it
reaches into the brain mask and at least three quarters of its voxels inside that mask lie in the brain
tissue mask (the brain less its CSF, and so less the enhancing vessels among it, which are as dark on
FLAIR). Its voxels outside the brain mask are not held against it: an extraction mask cuts an extra-axial
tumour where it leaves the brain (a vestibular schwannoma in its bony canal, a meningioma through the skull
base).

Example:
    >>> prob = np.zeros((20, 20, 20), np.float32)
    >>> prob[5:8, 5:8, 5:8] = 0.9; prob[14, 14, 14] = 0.7
    >>> labels, conf = postprocess(prob, (1.0, 1.0, 1.0), min_size_mm3=5.0)
    >>> int(labels.max()), conf
    (1, {1: 0.9})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cc3d
import edt
import numpy as np
from scipy import ndimage

from neurolesion.errors import InputError


def periphery_outside_fraction(
    component: np.ndarray, parenchyma: np.ndarray, spacing: Sequence[float], margin_mm: float = 2.0
) -> float:
    """Fraction of the voxels within ``margin_mm`` around a component that are outside the parenchyma.

    Args:
        component: boolean (X, Y, Z) mask of one candidate (a crop is fine).
        parenchyma: boolean mask of the brain parenchyma on the same grid.
        spacing: voxel size, mm.
        margin_mm: width of the periphery.

    Returns:
        The fraction in [0, 1] (0 when the periphery is empty).
    """
    dist = edt.edt(~component, anisotropy=tuple(float(s) for s in spacing), black_border=False)
    ring = (dist > 0) & (dist <= margin_mm)
    n = int(ring.sum())
    return float((ring & ~parenchyma).sum()) / n if n else 0.0


#: Extra-axial rule: the smallest fraction of a candidate's voxels inside the brain mask (below: a candidate
#: that only grazes the mask from outside, scalp or bone marrow).
EXTRA_AXIAL_MIN_IN_BRAIN = 0.05
#: Extra-axial rule: the smallest fraction of a candidate's voxels inside the brain mask that must lie in the
#: tissue mask (below: mostly vessels, sinuses or choroid plexus among the CSF).
EXTRA_AXIAL_MIN_TISSUE = 0.75

#: The settings of an operating point (a model card's `postprocess` entry per task).
OPERATING_POINT_KEYS = ("threshold", "min_size_mm3", "min_confidence")


def check_operating_point(
    threshold: float = 0.5,
    min_size_mm3: float = 0.0,
    min_confidence: float = 0.0,
    where: str = "postprocess",
) -> None:
    """Refuse an operating point that cannot be meant: a voxel threshold outside (0, 1), a negative minimum
    size or a confidence floor outside [0, 1].

    Args:
        threshold: voxel probability threshold.
        min_size_mm3: smallest lesion kept.
        min_confidence: lowest lesion confidence kept.
        where: what holds the values, for the error (e.g. ``model card wmh-unet: postprocess[wmh]``).

    Raises:
        InputError: naming `where`, the value and the expected range.

    Example:
        >>> check_operating_point(threshold=0.4, min_confidence=0.9)
        >>> check_operating_point(threshold=1.5, where="--threshold")
        Traceback (most recent call last):
        ...
        neurolesion.errors.InputError: --threshold: threshold 1.5: expected a probability between 0 and 1 (exclusive)
    """
    if not 0.0 < threshold < 1.0:
        raise InputError(
            f"{where}: threshold {threshold:g}: expected a probability between 0 and 1 (exclusive)"
        )
    if not min_size_mm3 >= 0.0:
        raise InputError(f"{where}: min_size_mm3 {min_size_mm3:g}: expected a volume of 0 mm3 or more")
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"{where}: min_confidence {min_confidence:g}: expected a probability from 0 to 1")


def postprocess(
    prob: np.ndarray,
    spacing: Sequence[float],
    parenchyma_mask: np.ndarray | None = None,
    threshold: float = 0.5,
    min_size_mm3: float = 0.0,
    margin_mm: float = 2.0,
    max_outside: float = 0.5,
    min_confidence: float = 0.0,
    extra_axial: bool = False,
    tissue_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[int, float]]:
    """Turn one task's probability map into numbered lesions with confidences.

    Args:
        prob: (X, Y, Z) probabilities of one task.
        spacing: voxel size, mm.
        parenchyma_mask: brain parenchyma (X, Y, Z); when given, candidates whose ``margin_mm`` periphery
            is more than ``max_outside`` outside it are dropped.
        threshold: probability above which a voxel is lesion.
        min_size_mm3: smaller candidates are dropped.
        margin_mm: periphery width of the false-positive rule.
        max_outside: periphery fraction outside parenchyma above which a candidate is dropped.
        min_confidence: candidates whose maximum probability is lower are dropped.
        extra_axial: judge a candidate by its own voxels instead of its periphery
            (`neurolesion.registry.Task`). With ``tissue_mask``: dropped when less than
            `EXTRA_AXIAL_MIN_IN_BRAIN` of them lie inside ``parenchyma_mask`` (the brain mask) or less than
            `EXTRA_AXIAL_MIN_TISSUE` of those inside it lie in ``tissue_mask``; voxels outside the brain mask
            count for nothing. Without: dropped when more than ``max_outside`` of them lie outside
            ``parenchyma_mask``.
        tissue_mask: the brain less its CSF (X, Y, Z; `neurolesion.preprocess.prepare.Prepared.tissue`),
            for the extra-axial rule.

    Returns:
        ``(labels, confidences)``: int32 (X, Y, Z) with lesions numbered 1..N (26-connectivity), largest
        first; and ``{id: maximum probability}``.

    Raises:
        InputError: ``prob`` is not 3D, the mask does not match its shape, or an operating-point value is out
            of range (`check_operating_point`).
    """
    check_operating_point(threshold=threshold, min_size_mm3=min_size_mm3, min_confidence=min_confidence)
    if prob.ndim != 3:
        raise InputError(f"probability map shape {prob.shape}: expected one task (X, Y, Z)")
    if parenchyma_mask is not None and parenchyma_mask.shape != prob.shape:
        raise InputError(f"parenchyma mask shape {parenchyma_mask.shape}: expected {prob.shape} like the map")
    if tissue_mask is not None and tissue_mask.shape != prob.shape:
        raise InputError(f"tissue mask shape {tissue_mask.shape}: expected {prob.shape} like the map")
    voxel_mm3 = float(np.prod(spacing))
    cand = cc3d.connected_components(np.ascontiguousarray(prob > threshold), connectivity=26)
    stats = cc3d.statistics(cand)
    pad = int(np.ceil(margin_mm / min(spacing))) + 1
    brain = None if parenchyma_mask is None else parenchyma_mask.astype(bool)
    if extra_axial and tissue_mask is not None and brain is None:
        brain = tissue_mask.astype(bool)
        tissue_mask = None
    # extra-axial rule: each candidate's voxel counts inside the masks, all candidates in one pass
    n_labels = len(stats["voxel_counts"])
    inside = in_tissue = None
    if brain is not None and extra_axial:
        inside = np.bincount(cand[brain].astype(np.intp), minlength=n_labels)
        if tissue_mask is not None:
            in_tissue = np.bincount(
                cand[brain & tissue_mask.astype(bool)].astype(np.intp), minlength=n_labels
            )
    kept: list[tuple[int, int, float]] = []
    for lab in range(1, n_labels):
        size = int(stats["voxel_counts"][lab])
        box = stats["bounding_boxes"][lab]
        if size == 0 or size * voxel_mm3 < min_size_mm3:
            continue
        if in_tissue is not None and inside is not None:
            n_in = int(inside[lab])
            if (
                n_in == 0
                or n_in < EXTRA_AXIAL_MIN_IN_BRAIN * size
                or in_tissue[lab] < EXTRA_AXIAL_MIN_TISSUE * n_in
            ):
                continue
        elif inside is not None:
            if 1.0 - float(inside[lab]) / size > max_outside:
                continue
        elif brain is not None:
            sl = tuple(
                slice(max(0, s.start - pad), min(n, s.stop + pad))
                for s, n in zip(box, prob.shape, strict=True)
            )
            if periphery_outside_fraction(cand[sl] == lab, brain[sl], spacing, margin_mm) > max_outside:
                continue
        conf = float(prob[box][cand[box] == lab].max())
        if conf < min_confidence:
            continue
        kept.append((size, lab, conf))
    kept.sort(key=lambda t: (-t[0], t[1]))
    remap = np.zeros(n_labels, np.int32)
    confidences: dict[int, float] = {}
    for new, (_, lab, conf) in enumerate(kept, start=1):
        remap[lab] = new
        confidences[new] = round(conf, 4)
    return remap[cand], confidences


def lesion_confidences(labels: np.ndarray, prob: np.ndarray) -> dict[int, float]:
    """Each lesion's confidence: its maximum probability.

    Args:
        labels: (X, Y, Z) int lesion labels numbered 1..N.
        prob: the task's probabilities on the same grid.

    Returns:
        ``{id: maximum probability}`` for ids 1..N.

    Example:
        >>> lab = np.zeros((4, 4, 4), np.int32); lab[0, 0, 0] = 1; lab[3, 3, 3] = 2
        >>> lesion_confidences(lab, np.full((4, 4, 4), 0.75, np.float32))
        {1: 0.75, 2: 0.75}
    """
    n = int(labels.max(initial=0))
    if n == 0:
        return {}
    peaks = ndimage.maximum(prob, labels, index=np.arange(1, n + 1))
    return {i + 1: round(float(v), 4) for i, v in enumerate(np.atleast_1d(peaks))}


def keep_confident(
    labels: np.ndarray,
    model_prob: np.ndarray,
    model_spacing: Sequence[float],
    min_confidence: float,
    to_labels_grid: Callable[[np.ndarray], np.ndarray],
    threshold: float = 0.5,
) -> np.ndarray:
    """Keep the lesions of ``labels`` that touch a lesion whose maximum probability reaches ``min_confidence``
    on the grid the model predicted on.

    A lesion's confidence is its maximum probability; interpolated onto a coarser output grid (a native
    scan with thick slices) every maximum drops, so a confidence floor chosen on 1 mm cases would discard
    lesions the model is sure of. The floor is therefore applied on the model grid, and the output-grid
    lesions overlapping a confident model-grid lesion are kept (renumbered 1..N in their order).

    Args:
        labels: (X, Y, Z) int lesion labels on the output grid (`postprocess` without a confidence floor).
        model_prob: one task's probabilities on the model grid.
        model_spacing: voxel size of the model grid, mm.
        min_confidence: the confidence floor (model card).
        to_labels_grid: maps a float array from the model grid onto the grid of ``labels`` (linear).
        threshold: probability above which a model-grid voxel is lesion.

    Returns:
        int32 labels on the output grid.

    Example:
        >>> prob = np.zeros((8, 8, 8), np.float32); prob[2:4, 2:4, 2:4] = 0.95; prob[5:7, 5:7, 5:7] = 0.6
        >>> labels, _ = postprocess(prob, (1, 1, 1))
        >>> np.unique(keep_confident(labels, prob, (1, 1, 1), 0.9, lambda a: a)).tolist()
        [0, 1]
    """
    model_labels, _ = postprocess(
        model_prob, model_spacing, threshold=threshold, min_confidence=min_confidence
    )
    confident = to_labels_grid((model_labels > 0).astype(np.float32)) > 0
    ids = np.unique(labels[confident & (labels > 0)])
    remap = np.zeros(int(labels.max(initial=0)) + 1, np.int32)
    remap[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return remap[labels]


def postprocess_mapped(
    prob: np.ndarray,
    spacing: Sequence[float],
    model_prob: np.ndarray,
    model_spacing: Sequence[float],
    to_output: Callable[[np.ndarray], np.ndarray],
    parenchyma_mask: np.ndarray | None = None,
    threshold: float = 0.5,
    min_size_mm3: float = 0.0,
    min_confidence: float = 0.0,
    extra_axial: bool = False,
    tissue_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[int, float]]:
    """`postprocess` of a map resampled from the model's grid onto an output grid, the confidence floor
    taken on the model grid (`keep_confident`): what `neurolesion segment` and `neurolesion predict` do.

    Args:
        prob: one task's probabilities on the output grid.
        spacing: voxel size of the output grid, mm.
        model_prob: the same task's probabilities on the model grid.
        model_spacing: voxel size of the model grid, mm.
        to_output: maps a float array from the model grid onto the output grid (linear).
        parenchyma_mask: brain parenchyma on the output grid (see `postprocess`).
        threshold: probability above which a voxel is lesion.
        min_size_mm3: smaller lesions are dropped (on the output grid).
        min_confidence: lesions whose maximum on the model grid is lower are dropped.
        extra_axial: the task's false-positive rule (see `postprocess`).
        tissue_mask: the brain less its CSF on the output grid (see `postprocess`).

    Returns:
        ``(labels, confidences)`` on the output grid, as `postprocess` returns them.

    Example:
        >>> prob = np.zeros((8, 8, 8), np.float32); prob[2:4, 2:4, 2:4] = 0.95
        >>> labels, conf = postprocess_mapped(prob * 0.8, (1, 1, 1), prob, (1, 1, 1), lambda a: a, min_confidence=0.9)
        >>> conf
        {1: 0.76}
    """
    labels, conf = postprocess(
        prob,
        spacing,
        parenchyma_mask,
        threshold=threshold,
        min_size_mm3=min_size_mm3,
        extra_axial=extra_axial,
        tissue_mask=tissue_mask,
    )
    if min_confidence > 0:
        labels = keep_confident(labels, model_prob, model_spacing, min_confidence, to_output, threshold)
        conf = lesion_confidences(labels, prob)
    return labels, conf
