"""Tissue-class intensity randomisation for training (`AugmentConfig.p_tissue`).

SynthSeg-style contrast randomisation that keeps the lesions' definition: every coarse tissue class of a
simulated case (cortex, white matter, deep grey matter, CSF, cerebellar grey, cerebellar white matter and
brainstem) gets its own random offset in each channel, a lesion moves with the tissue it sits in (so its
contrast to its surroundings is kept), and the patch is then re-standardised with the whole brain's new
mean and SD, computed exactly from per-class moments stored when the case was loaded. A brighter cortex
or larger CSF spaces thus compress every lesion's z-contrast the way they do in a real brain's
``zscore-brain`` normalisation, which a patch-wise augmentation alone cannot show.

Example:
    >>> anatomy = np.full((8, 8, 8), int(Tissue.WM), np.uint8)
    >>> anatomy[:4] = int(Tissue.CORTICAL_GM)
    >>> classes = tissue_classes(anatomy)
    >>> image = np.random.default_rng(0).normal(size=(1, 8, 8, 8)).astype(np.float32)
    >>> moments = class_moments(image, classes, np.ones((8, 8, 8), bool))
    >>> shift_tissues(image, classes, moments, np.random.default_rng(1), 0.5).shape
    (1, 8, 8, 8)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue

#: Coarse tissue classes (1..N) and the anatomy codes each holds; every other code is class 0 (unshifted).
TISSUE_CLASSES: tuple[tuple[int, ...], ...] = (
    (Tissue.CORTICAL_GM, Tissue.HIPPOCAMPUS_AMYGDALA),
    (Tissue.WM,),
    (Tissue.CAUDATE, Tissue.PUTAMEN, Tissue.PALLIDUM, Tissue.THALAMUS),
    (Tissue.VENTRICLE, Tissue.CSF, Tissue.CHOROID_PLEXUS),
    (Tissue.CEREBELLAR_GM,),
    (Tissue.CEREBELLAR_WM, Tissue.BRAINSTEM),
)
N_CLASSES = len(TISSUE_CLASSES) + 1  # with class 0

#: Anatomy codes from this value up are lesions and mimics (`neurolesion.synth.tissues.LesionTissue`).
FIRST_LESION_CODE = 32


def tissue_classes(anatomy: np.ndarray) -> np.ndarray:
    """Coarse tissue class of every voxel; a lesion voxel takes the class of the nearest non-lesion voxel.

    Args:
        anatomy: (X, Y, Z) anatomy codes of a simulated case (``anatomy.nii.gz``).

    Returns:
        (X, Y, Z) uint8 classes 0..N_CLASSES-1.
    """
    lut = np.zeros(256, np.uint8)
    for k, members in enumerate(TISSUE_CLASSES, start=1):
        lut[list(members)] = k
    codes = np.asarray(anatomy).astype(np.uint8)
    lesion = codes >= FIRST_LESION_CODE
    if lesion.any():
        nearest = ndimage.distance_transform_edt(lesion, return_distances=False, return_indices=True)
        codes = codes[tuple(nearest)]
    return lut[codes]


def class_moments(image: np.ndarray, classes: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Per channel and class, inside the brain: (fraction of brain voxels, mean, mean of squares).

    Args:
        image: (C, X, Y, Z) normalised image.
        classes: (X, Y, Z) `tissue_classes`.
        brain: (X, Y, Z) brain mask.

    Returns:
        (C, N_CLASSES, 3) float64.
    """
    cls = classes[brain].astype(np.int64)
    n = np.bincount(cls, minlength=N_CLASSES).astype(np.float64)
    out = np.zeros((image.shape[0], N_CLASSES, 3))
    safe = np.maximum(n, 1.0)
    for c in range(image.shape[0]):
        v = image[c][brain].astype(np.float64)
        out[c, :, 0] = n / max(n.sum(), 1.0)
        out[c, :, 1] = np.bincount(cls, v, N_CLASSES) / safe
        out[c, :, 2] = np.bincount(cls, v * v, N_CLASSES) / safe
    return out


def shift_tissues(
    image: np.ndarray,
    classes: np.ndarray,
    moments: np.ndarray,
    rng: np.random.Generator,
    sd: float,
    sigma: float = 1.0,
) -> np.ndarray:
    """Add one random offset per tissue class and channel, then re-standardise with the whole brain's new
    mean and SD.

    Args:
        image: (C, X, Y, Z) normalised patch.
        classes: (X, Y, Z) its `tissue_classes`.
        moments: (C, N_CLASSES, 3) the whole case's `class_moments`.
        rng: random generator.
        sd: standard deviation of the offsets, in the image's (brain SD) units.
        sigma: the offset map is smoothed by this Gaussian (voxels) so class borders stay partial-volume
            soft.

    Returns:
        (C, X, Y, Z) float32.
    """
    out = np.empty_like(image, dtype=np.float32)
    for c in range(image.shape[0]):
        offsets = np.zeros(N_CLASSES)
        offsets[1:] = rng.normal(0.0, sd, N_CLASSES - 1)
        frac, mean, square = moments[c, :, 0], moments[c, :, 1], moments[c, :, 2]
        new_mean = float(np.sum(frac * (mean + offsets)))
        new_square = float(np.sum(frac * (square + 2.0 * mean * offsets + offsets**2)))
        new_sd = float(np.sqrt(max(new_square - new_mean**2, 1e-6)))
        shift = ndimage.gaussian_filter(offsets[classes].astype(np.float32), sigma)
        out[c] = (image[c] + shift - new_mean) / new_sd
    return out
