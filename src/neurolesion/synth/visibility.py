"""Which simulated lesions a rater could see on the acquired image.

A lesion is inserted at 1 mm and then imaged: thick slices, blur and noise can leave a small or faint one
invisible on the sequence a rater would draw it on (e.g. a 5 mm³ WMH on FLAIR with 6 mm slices). Labelling
such a lesion anyway teaches a network that small bright spots are unpredictable; real expert masks only
hold what the rater saw. The measure is the lesion's contrast-to-noise ratio against the parenchyma around
it, on the image as acquired (resampled to the label grid):

    CNR = (mean inside - median of the shell) / standard deviation of the shell,

the shell being the voxels 2-3 voxels from the lesion that belong to no lesion and lie in the brain outside
the ventricles and the extra-cerebral CSF, and, since a large faint lesion is seen where a small one of
the same contrast is not, its detectability in the sense of Rose's criterion:

    d = CNR x sqrt(n / r),

n being the lesion's voxel count and r the voxels per resolution element of the acquisition (a 1 x 1 x 5 mm
acquisition on a 1 mm label grid: r = 5), whose samples are not independent. A rater sees a lesion when d
reaches about 3-5 (Rose 1948); the simulator's default leaves out lesions with d < 3.

Example:
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(100, 5, (32, 32, 32))
    >>> instances = np.zeros(image.shape, np.int32)
    >>> instances[8:11, 8:11, 8:11] = 1; image[8:11, 8:11, 8:11] += 30  # bright: visible
    >>> instances[20:23, 20:23, 20:23] = 2  # no contrast: invisible
    >>> invisible_instances(image, instances, np.ones(image.shape, bool), min_detectability=3.0)
    [2]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

#: Fewest shell voxels needed to judge a lesion; a lesion enclosed by others is kept.
MIN_SHELL_VOXELS = 10


def lesion_cnr(image: np.ndarray, instances: np.ndarray, tissue: np.ndarray) -> dict[int, float]:
    """Contrast-to-noise ratio of each instance against the tissue around it (NaN: too little tissue).

    Args:
        image: (X, Y, Z) intensities on the grid of ``instances``.
        instances: (X, Y, Z) instance map (0 background, 1..N lesions); every non-zero voxel is kept out
            of every shell.
        tissue: (X, Y, Z) bool, where the shell may lie (brain parenchyma).

    Returns:
        instance id -> CNR (positive: brighter than its surroundings).

    Raises:
        ValueError: the three arrays differ in shape.
    """
    if not image.shape == instances.shape == tissue.shape:
        raise ValueError(
            f"image {image.shape}, instances {instances.shape} and tissue {tissue.shape} must share one shape"
        )
    out: dict[int, float] = {}
    boxes = ndimage.find_objects(instances)
    for idx, box in enumerate(boxes, start=1):
        if box is None:
            continue
        grown = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in box)
        inside = instances[grown] == idx
        near = ndimage.binary_dilation(inside, iterations=1)
        shell = (
            ndimage.binary_dilation(inside, iterations=3) & ~near & (instances[grown] == 0) & tissue[grown]
        )
        if shell.sum() < MIN_SHELL_VOXELS:
            out[idx] = float("nan")
            continue
        around = image[grown][shell]
        spread = float(np.std(around))
        out[idx] = float((image[grown][inside].mean() - np.median(around)) / max(spread, 1e-6))
    return out


def invisible_instances(
    image: np.ndarray,
    instances: np.ndarray,
    tissue: np.ndarray,
    min_detectability: float,
    voxels_per_element: float = 1.0,
) -> list[int]:
    """Instance ids whose detectability CNR x sqrt(n / r) is below ``min_detectability``; lesions that
    cannot be judged (`lesion_cnr` NaN) are kept.

    Args:
        image: (X, Y, Z) intensities on the grid of ``instances``.
        instances: (X, Y, Z) instance map.
        tissue: (X, Y, Z) bool, where the shell may lie.
        min_detectability: smallest detectability a rater would still see (Rose: 3-5).
        voxels_per_element: r, the grid voxels per resolution element of the acquisition (at least 1).

    Returns:
        Sorted instance ids.
    """
    counts = np.bincount(instances.reshape(-1))
    r = max(float(voxels_per_element), 1.0)
    return sorted(
        i
        for i, c in lesion_cnr(image, instances, tissue).items()
        if c * np.sqrt(counts[i] / r) < min_detectability
    )


def voxels_per_element(acquired_spacing: Sequence[float], grid_spacing: Sequence[float]) -> float:
    """Voxels of a grid per resolution element of an acquisition (at least 1).

    Example:
        >>> round(voxels_per_element((0.9, 0.9, 5.0), (1.0, 1.0, 1.0)), 2)
        4.05
    """
    return max(float(np.prod(acquired_spacing) / np.prod(grid_spacing)), 1.0)
