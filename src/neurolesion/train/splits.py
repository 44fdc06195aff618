"""Patient-wise K-fold split stratified by lesion count and lesion volume.

Cases are binned into strata by the terciles of their lesion count and of their total lesion volume;
each stratum is shuffled (seeded) and dealt round-robin over the folds, continuing where the previous
stratum stopped, so every fold gets a similar mix of few/many and small/large lesion loads. All data of
one patient (one case name) lands in one fold.

Example:
    >>> counts = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55]
    >>> folds = kfold_split([f"c{i}" for i in range(10)], counts, [c * 0.1 for c in counts], k=5)
    >>> sorted(len(v) for v in folds.values())
    [2, 2, 2, 2, 2]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurolesion.errors import InputError


def _tercile(values: np.ndarray) -> np.ndarray:
    """0, 1 or 2 per value by its tercile (ties stay together)."""
    edges = np.quantile(values, [1 / 3, 2 / 3])
    return np.searchsorted(edges, values, side="right")


def kfold_split(
    names: Sequence[str],
    lesion_counts: Sequence[float],
    lesion_volumes: Sequence[float],
    k: int = 5,
    seed: int = 0,
) -> dict[int, list[str]]:
    """Assign cases to ``k`` folds, stratified by lesion count and volume.

    Args:
        names: case (patient) names; duplicates are one patient.
        lesion_counts: lesions per case.
        lesion_volumes: total lesion volume per case.
        k: number of folds.
        seed: shuffling seed.

    Returns:
        ``{fold: [case names]}`` for folds 0..k-1, names sorted within a fold.

    Raises:
        InputError: fewer patients than folds, or lists of different lengths.
    """
    if not len(names) == len(lesion_counts) == len(lesion_volumes):
        raise InputError("kfold_split: names, lesion_counts and lesion_volumes differ in length")
    patients: dict[str, tuple[float, float]] = {}
    for n, c, v in zip(names, lesion_counts, lesion_volumes, strict=True):
        pc, pv = patients.get(n, (0.0, 0.0))
        patients[n] = (pc + float(c), pv + float(v))
    if len(patients) < k:
        raise InputError(f"{len(patients)} patients cannot be split into {k} folds; need at least {k}")
    keys = sorted(patients)
    arr = np.asarray([patients[n] for n in keys])
    strata = _tercile(arr[:, 0]) * 3 + _tercile(arr[:, 1])
    rng = np.random.default_rng(seed)
    folds: dict[int, list[str]] = {i: [] for i in range(k)}
    slot = 0
    for s in np.unique(strata):
        members = [keys[i] for i in np.flatnonzero(strata == s)]
        for i in rng.permutation(len(members)):
            folds[slot % k].append(members[i])
            slot += 1
    return {i: sorted(v) for i, v in folds.items()}
