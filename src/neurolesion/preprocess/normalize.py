"""Intensity normalisation: percentile clipping, then z-score with statistics from inside the brain.

Example:
    >>> import numpy as np
    >>> from neurolesion.volume import Volume
    >>> v = Volume(np.random.default_rng(0).normal(100, 20, (8, 8, 8)), np.eye(4))
    >>> z = normalize(v, np.ones((8, 8, 8), bool))
    >>> abs(float(z.data.mean())) < 1e-5, round(float(z.data.std()), 2)
    (True, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_multiotsu

from neurolesion.errors import InputError
from neurolesion.volume import Volume

#: Default clipping percentiles (of the voxels inside the mask).
PERCENTILES: tuple[float, float] = (0.5, 99.5)


def _mask_of(volume: Volume, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return np.ones(volume.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != volume.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the image grid {volume.shape}")
    if not mask.any():
        raise InputError(f"{volume.name or 'volume'}: the brain mask is empty; cannot normalise intensities")
    return mask


def clip_percentiles(
    volume: Volume, mask: np.ndarray | None = None, percentiles: tuple[float, float] = PERCENTILES
) -> Volume:
    """Clip every channel to the given percentiles of its values inside `mask` (whole image when None).

    Args:
        volume: the image.
        mask: boolean (X, Y, Z) region whose intensities set the percentiles.
        percentiles: lower and upper percentile, 0-100.

    Returns:
        The clipped image (same grid).

    Raises:
        InputError: empty mask.
        ValueError: mask on another grid.

    Example:
        >>> v = Volume(np.arange(1000.0).reshape(10, 10, 10), np.eye(4))
        >>> c = clip_percentiles(v, percentiles=(1, 99))
        >>> round(float(c.data.min()), 2), round(float(c.data.max()), 2)
        (9.99, 989.01)
    """
    inside = _mask_of(volume, mask)
    clipped = [np.clip(ch, *np.percentile(ch[inside], percentiles)) for ch in volume.array]
    return volume.with_array(np.stack(clipped))


def zscore(volume: Volume, mask: np.ndarray | None = None, reference: Volume | None = None) -> Volume:
    """Subtract the mean and divide by the standard deviation of each channel inside `mask`.

    Every voxel is transformed (the background too), so the brain has mean 0 and standard deviation 1.

    Args:
        volume: the image.
        mask: boolean (X, Y, Z) brain mask; the whole image when None.
        reference: the image on the same grid whose values inside `mask` give the mean and standard
            deviation (e.g. `volume` percentile-clipped); `volume` itself when None.

    Raises:
        InputError: empty mask, or no intensity variation inside it.
        ValueError: mask or reference on another grid.

    Example:
        >>> v = Volume(np.arange(8.0).reshape(2, 2, 2), np.eye(4))
        >>> float(zscore(v).data.std())
        1.0
    """
    inside = _mask_of(volume, mask)
    ref = volume if reference is None else reference
    if ref.array.shape != volume.array.shape:
        raise ValueError(f"reference shape {ref.array.shape} differs from the image's {volume.array.shape}")
    out = []
    for channel, ref_channel in zip(volume.array, ref.array, strict=True):
        values = ref_channel[inside].astype(np.float64)
        std = float(values.std())
        if std == 0.0:
            raise InputError(
                f"{volume.name or 'volume'}: intensity is constant ({values[0]:g}) inside the brain mask; "
                "expected contrast"
            )
        out.append((channel - values.mean()) / std)
    return volume.with_array(np.stack(out))


def normalize(
    volume: Volume, mask: np.ndarray | None = None, percentiles: tuple[float, float] = PERCENTILES
) -> Volume:
    """Percentile clipping then z-score, both with statistics from inside `mask` (the brain).

    Args:
        volume: the image.
        mask: boolean (X, Y, Z) brain mask; the whole image when None.
        percentiles: clipping percentiles (default 0.5 and 99.5).

    Returns:
        float32 image, mean 0 and standard deviation 1 inside the mask.

    Raises:
        InputError: empty mask or constant intensities inside it.
    """
    return zscore(clip_percentiles(volume, mask, percentiles), mask)


#: ``zscore-brain-unclipped`` limit, in brain standard deviations, on either side of the brain's mean.
UNCLIPPED_BOUND = 30.0


def zscore_unclipped(
    volume: Volume,
    mask: np.ndarray | None = None,
    percentiles: tuple[float, float] = PERCENTILES,
    bound: float = UNCLIPPED_BOUND,
) -> Volume:
    """Z-score with the statistics of the percentile-clipped brain, applied to the unclipped image.

    Inside the percentile range the values equal `normalize`'s; outside it they keep their contrast
    (limited to ``bound`` standard deviations) instead of all landing on the clipping value. Why: on
    post-contrast T1 every enhancing lesion lies above the brain's 99.5th percentile, so clipping gives a
    3-voxel metastasis 16 SDs above the brain the same value as the 0.5 % brightest normal voxels; only its
    size then sets it apart, and a network trained on clipped images ignores metastases of under about
    25 voxels (docs/status.md). nnU-Net does not clip MR images either.

    Args:
        volume: the image.
        mask: boolean (X, Y, Z) brain mask; the whole image when None.
        percentiles: the range whose clipped values set the mean and standard deviation (so that a large
            lesion or an artefact does not set the scale).
        bound: largest absolute output value.

    Returns:
        float32 image in [-bound, bound].

    Raises:
        InputError: empty mask or constant intensities inside it.

    Example:
        >>> v = Volume(np.r_[np.random.default_rng(0).normal(100, 10, 999), 300.0].reshape(10, 10, 10), np.eye(4))
        >>> float(normalize(v).data.max()) < 3.5, float(zscore_unclipped(v).data.max()) > 15
        (True, True)
    """
    z = zscore(volume, mask, reference=clip_percentiles(volume, mask, percentiles))
    return z.with_array(np.clip(z.array, -bound, bound).astype(np.float32))


#: ``median-brain`` units: this fraction of the brain's median intensity. Simulated FLAIR brains spread
#: 0.14-0.19 of their median (standard deviation), so the unit is near the z-score's on them.
MEDIAN_UNIT = 0.2


def median_scale(
    volume: Volume, mask: np.ndarray | None = None, percentiles: tuple[float, float] = PERCENTILES
) -> Volume:
    """Percentile clipping, then each channel relative to its median inside `mask`: (x / median - 1) / 0.2.

    Unlike the z-score, a lesion's value does not depend on how widely the rest of the brain spreads: a
    brain with a brighter cortex, wider CSF spaces or many lesions compresses every z-value, but leaves a
    lesion 30 % brighter than the median tissue at 1.5 (``median-brain``). MR magnitude images have no
    offset, so the median sets their scale.

    Args:
        volume: the image.
        mask: boolean (X, Y, Z) brain mask; the whole image when None.
        percentiles: clipping percentiles (default 0.5 and 99.5).

    Returns:
        float32 image, 0 at the median inside the mask, 1 per `MEDIAN_UNIT` of it.

    Raises:
        InputError: empty mask, or a median inside it that is not positive.

    Example:
        >>> v = Volume(np.array([50.0, 100.0, 100.0, 130.0]).reshape(1, 1, 4), np.eye(4))
        >>> [round(float(x), 2) for x in median_scale(v, percentiles=(0, 100)).data.ravel()]
        [-2.5, 0.0, 0.0, 1.5]
    """
    inside = _mask_of(volume, mask)
    clipped = clip_percentiles(volume, mask, percentiles)
    out = []
    for channel in clipped.array:
        median = float(np.median(channel[inside]))
        if not median > 0:
            raise InputError(
                f"{volume.name or 'volume'}: median intensity {median:g} inside the brain mask; expected a "
                "positive magnitude image"
            )
        out.append((channel / median - 1.0) / MEDIAN_UNIT)
    return clipped.with_array(np.stack(out).astype(np.float32))


def scale_nonzero(
    volume: Volume, mask: np.ndarray | None = None, percentiles: tuple[float, float] = PERCENTILES
) -> Volume:
    """Map every channel's percentiles over its non-zero voxels to 0 and 1, clipping outside.

    Needs no brain mask (``percentile-nonzero``): it is the normalisation of models that run before the
    brain is known, e.g. brain extraction on a raw head. The background lands at (about) 0, the value
    sliding-window inference pads with.

    Args:
        volume: the image.
        mask: ignored (the signature of `NORMALISATIONS`).
        percentiles: the values mapped to 0 and 1.

    Returns:
        float32 image in [0, 1].

    Raises:
        InputError: an image with no non-zero voxel or constant non-zero intensities.

    Example:
        >>> v = Volume(np.arange(1000.0).reshape(10, 10, 10), np.eye(4))
        >>> s = scale_nonzero(v, percentiles=(0, 100))
        >>> float(s.data.min()), float(s.data.max())
        (0.0, 1.0)
    """
    out = []
    for channel in volume.array:
        values = channel[channel != 0]
        lo, hi = np.percentile(values, percentiles) if values.size else (0.0, 0.0)
        if hi <= lo:
            raise InputError(
                f"{volume.name or 'volume'}: no intensity variation among its non-zero voxels; expected an image"
            )
        out.append(np.clip((channel - lo) / (hi - lo), 0.0, 1.0))
    return volume.with_array(np.stack(out).astype(np.float32))


#: Sequences whose CSF stands apart from brain tissue, in the order `parenchyma` trusts them, and whether
#: CSF is their brightest (True) or darkest (False) class. On T2 nothing but CSF (and fluid-like lesions)
#: is as bright; on FLAIR and T1 the darkest class also takes grey matter in partial volume with CSF.
CSF_CONTRASTS: tuple[tuple[str, bool], ...] = (("t2", True), ("flair", False), ("t1", False), ("t1c", False))


def parenchyma(images: Mapping[str, np.ndarray], brain: np.ndarray) -> np.ndarray:
    """The brain mask less its CSF: where `segment` takes its normalisation statistics.

    Brain extraction (deepbet, SynthStrip) keeps the CSF of the sulci and around the brain inside the
    mask, while the simulator's brain mask, over which every model's training images were normalised,
    holds brain tissue and the ventricles only. The CSF is dark on FLAIR, so the z-score of a scan
    normalised over a brain-extraction mask is compressed: on a simulated case the FLAIR spreads 0.32 of
    its median over deepbet's mask (12 % of it extra-cerebral CSF) against 0.18 over the simulator's.
    The CSF is found as the extreme class of a 3-class Otsu split of the first sequence of
    `CSF_CONTRASTS` present.

    Args:
        images: sequence -> (X, Y, Z) image on the brain mask's grid (not normalised).
        brain: boolean brain mask.

    Returns:
        Boolean mask: `brain` less the CSF class (`brain` itself when no sequence shows CSF apart, or when
        the split would leave less than half of it).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> t2 = np.concatenate([rng.normal(100, 5, 900), rng.normal(60, 5, 900), rng.normal(400, 20, 200)])
        >>> brain = np.ones(t2.shape, bool)
        >>> round(float((~parenchyma({"t2": t2}, brain)).mean()), 2)  # the CSF's 10 %
        0.1
    """
    brain = np.asarray(brain, bool)
    for seq, bright in CSF_CONTRASTS:
        if seq not in images or not brain.any():
            continue
        values = np.asarray(images[seq])[brain]
        if np.ptp(values) == 0:
            continue
        low, high = threshold_multiotsu(values, 3)
        csf = images[seq] > high if bright else images[seq] < low
        kept = brain & ~csf
        if kept.sum() >= 0.5 * brain.sum():
            return kept
    return brain


#: `statistics_mask`: depth (mm) of the rim of `parenchyma` left out, where tissue and CSF share voxels.
STATISTICS_RIM_MM = 2.0
#: `statistics_mask`: CSF deeper than this (mm) inside the brain mask is ventricular and stays in.
VENTRICLE_DEPTH_MM = 20.0
#: `statistics_mask`: the band under the brain mask's surface (mm) where dark non-brain voxels are looked for.
SURFACE_BAND_MM = 8.0
#: `statistics_mask`: a band voxel darker than this percentile of the deeper mask, on any image, is left out.
DARK_PERCENTILE = 1.0


def statistics_mask(
    tissue: np.ndarray,
    brain: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    images: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The region of an extracted brain whose intensity statistics match the training masks'.

    Every model's training images were normalised over the simulator's brain mask: brain tissue and the
    ventricles, no sulcal or extra-cerebral CSF (docs/simulator.md). `parenchyma` removes the CSF class of
    a brain-extraction mask, ventricles included, and keeps the voxels where tissue and CSF share a voxel
    at its surface; both move the z-scores. On simulated heads with deepbet's masks (session 24, median
    of 10 heads per test set) the standard deviation over it is 0.86-1.36 times that over the
    simulator's mask (SWI 1.36, FLAIR 1.22 on CSVD heads, T2 0.89); this mask, ``tissue`` less its outer
    `STATISTICS_RIM_MM` plus the CSF more than `VENTRICLE_DEPTH_MM` inside ``brain`` (the ventricles),
    brings every ratio to 1.02-1.12. Where that rim would leave less than half of ``tissue`` (a tight,
    pre-stripped mask, a thin slab), the rim narrows to the widest distance that leaves half, so that the
    statistics change gradually with the mask rather than jumping back to ``tissue``.

    Given the ``images``, the voxels within `SURFACE_BAND_MM` of the brain mask's surface that are darker,
    on any image, than the `DARK_PERCENTILE` percentile of the deeper part of the mask are left out too;
    an image's zeros (outside its field of view) are not judged. They are the bone, dura and sinuses that
    a brain-extraction mask takes in where it overreaches by more than the rim: dark on most sequences,
    and not CSF, so `parenchyma` keeps them. On simulated heads with deepbet's masks they are under 1 % of
    the mask but widened the SWI spread by up to a third (session 25).

    Args:
        tissue: boolean (X, Y, Z) brain less its CSF (`parenchyma`).
        brain: boolean brain mask it came from, same grid.
        spacing: voxel size (mm).
        images: sequence -> intensities on the same grid (optional).

    Returns:
        Boolean mask; ``tissue`` itself when even a one-voxel rim would leave less than half of it.

    Raises:
        ValueError: masks or images of different shapes.

    Example:
        >>> x, y, z = np.ogrid[:60, :60, :60]
        >>> r = np.sqrt((x - 30) ** 2 + (y - 30) ** 2 + (z - 30) ** 2)
        >>> brain = r < 28
        >>> tissue = brain & (r > 4) & (r < 25)  # no ventricle, no CSF rim
        >>> mask = statistics_mask(tissue, brain)
        >>> bool(mask[30, 30, 30]), bool(mask[30, 30, 55]), bool(mask[30, 30, 50])  # ventricle, rim, tissue
        (True, False, True)
    """
    tissue, brain = np.asarray(tissue, bool), np.asarray(brain, bool)
    if tissue.shape != brain.shape:
        raise ValueError(f"tissue mask shape {tissue.shape} differs from the brain mask's {brain.shape}")
    for name, image in (images or {}).items():
        if np.shape(image) != brain.shape:
            raise ValueError(
                f"{name}: image shape {np.shape(image)} differs from the brain mask's {brain.shape}"
            )
    # distances within the masks' box and one voxel of background around it, where they all end: the
    # same as over the whole grid, in a third of the time (scipy's box, not `metrics.surface.bounding_box`,
    # whose package import costs `segment` 0.4 s)
    found = ndimage.find_objects((tissue | brain).astype(np.uint8))
    if not found or found[0] is None:
        return tissue
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in found[0])
    depth = ndimage.distance_transform_edt(tissue[box], sampling=spacing)
    inside = depth[tissue[box]]
    # the widest rim up to STATISTICS_RIM_MM (the distances a voxel can have, widest first) leaving half
    rims = np.unique(inside[inside <= STATISTICS_RIM_MM])[::-1]
    rim = next((r for r in rims if np.count_nonzero(inside > r) >= 0.5 * inside.size), None)
    if rim is None:
        return tissue
    core = depth > rim
    brain_depth = ndimage.distance_transform_edt(brain[box], sampling=spacing)
    kept = core | (brain[box] & ~tissue[box] & (brain_depth > VENTRICLE_DEPTH_MM))
    band = kept & (brain_depth < SURFACE_BAND_MM)
    below = kept & ~band
    if below.any():
        dark = np.zeros_like(band)
        for image in (images or {}).values():
            values = np.asarray(image)[box]
            covered = values != 0  # 0: outside a sequence's field of view (`prepare`)
            deeper = values[below & covered]
            if deeper.size:
                dark |= band & covered & (values < np.percentile(deeper, DARK_PERCENTILE))
        kept &= ~dark
    out = np.zeros_like(tissue)
    out[box] = kept
    return out


#: Intensity normalisations by the name a model card records: (volume, brain mask or None) -> volume.
NORMALISATIONS: dict[str, Callable[[Volume, np.ndarray | None], Volume]] = {
    "zscore-brain": normalize,
    "zscore-brain-unclipped": zscore_unclipped,
    "median-brain": median_scale,
    "percentile-nonzero": scale_nonzero,
}


def normaliser(name: str, where: str = "model card") -> Callable[[Volume, np.ndarray | None], Volume]:
    """The normalisation a model card or training configuration names (`NORMALISATIONS`).

    Args:
        name: the normalisation's name.
        where: what named it (file or model), for the error message.

    Returns:
        ``(volume, brain mask or None) -> volume``.

    Raises:
        InputError: an unknown name.

    Example:
        >>> normaliser("zscore-brain") is normalize
        True
    """
    if name not in NORMALISATIONS:
        raise InputError(f"{where}: normalisation {name!r} unknown; expected one of {sorted(NORMALISATIONS)}")
    return NORMALISATIONS[name]
