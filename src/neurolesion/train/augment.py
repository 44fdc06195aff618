"""On-the-fly patch augmentation with MONAI dictionary transforms, plus input-channel dropout.

Spatial transforms (rotation up to ±45°, scaling 0.9–1.1, flips, elastic) move image and label together
(label with nearest-neighbour); intensity transforms (gamma, contrast scaling, bias field, noise, blur,
low-resolution simulation) touch the image only. Each call is seeded, so a step's augmentation is reproducible.

Example:
    >>> from neurolesion.train.config import AugmentConfig
    >>> aug = Augmenter(AugmentConfig())
    >>> patch = {"image": np.zeros((2, 16, 16, 16), np.float32), "label": np.zeros((1, 16, 16, 16), np.uint8),
    ...          "present": np.ones(2, bool)}
    >>> out = aug(patch, seed=3)
    >>> out["image"].shape, out["label"].dtype, int(out["present"].sum()) >= 1
    ((2, 16, 16, 16), dtype('uint8'), True)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.transforms import (
    Compose,
    Rand3DElasticd,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandSimulateLowResolutiond,
)

from neurolesion.train.config import AugmentConfig
from neurolesion.train.data import Patch
from neurolesion.train.tissues import shift_tissues


def build_transforms(cfg: AugmentConfig) -> Compose:
    """The MONAI pipeline an augmentation configuration describes (keys ``image`` and ``label``)."""
    keys = ("image", "label")
    rot = math.radians(cfg.rotate_deg)
    lo, hi = cfg.scale
    return Compose(
        [
            RandAffined(
                keys,
                prob=cfg.p_affine,
                rotate_range=(rot, rot, rot),
                scale_range=[(lo - 1.0, hi - 1.0)] * 3,
                mode=("bilinear", "nearest"),
                padding_mode="border",
            ),
            Rand3DElasticd(
                keys,
                sigma_range=(5.0, 8.0),
                magnitude_range=(50.0, 150.0),
                prob=cfg.p_elastic,
                mode=("bilinear", "nearest"),
                padding_mode="border",
            ),
            *[RandFlipd(keys, prob=cfg.p_flip, spatial_axis=a) for a in range(3)],
            RandAdjustContrastd("image", prob=cfg.p_gamma, gamma=(0.7, 1.5), retain_stats=True),
            RandScaleIntensityd(
                "image",
                factors=(cfg.contrast_range[0] - 1.0, cfg.contrast_range[1] - 1.0),
                prob=cfg.p_contrast,
                channel_wise=True,
            ),
            RandBiasFieldd("image", prob=cfg.p_bias, coeff_range=(0.0, 0.1)),
            RandGaussianNoised("image", prob=cfg.p_noise, std=0.1),
            RandGaussianSmoothd(
                "image", prob=cfg.p_blur, sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0)
            ),
            RandSimulateLowResolutiond("image", prob=cfg.p_lowres, zoom_range=(0.5, 1.0)),
        ]
    )


def channel_dropout(
    present: np.ndarray, p: float, rng: np.random.Generator, keep_first: int = 0, one_of_first: int = 0
) -> np.ndarray:
    """Drop each present channel with probability ``p``, always keeping at least one.

    Args:
        present: (C,) which channels hold data.
        p: drop probability.
        rng: random generator.
        keep_first: the first channels that are never dropped.
        one_of_first: at least one of the first N channels survives when one is present (e.g. N = 2 for a
            microbleed model on SWI, T2*, T1: one susceptibility channel always stays); 0 = any channel.

    Returns:
        The new (C,) presence flags.

    Example:
        >>> channel_dropout(np.array([True, False]), 1.0, np.random.default_rng(0)).tolist()
        [True, False]
        >>> channel_dropout(np.array([True, True, True]), 1.0, np.random.default_rng(0), one_of_first=2)[:2].sum()
        np.int64(1)
    """
    keep = present & (rng.random(present.shape) >= p)
    keep[:keep_first] = present[:keep_first]
    group = slice(0, one_of_first or present.size)
    if not keep[group].any():
        idx = np.flatnonzero(present[group])
        if idx.size == 0:
            idx = np.flatnonzero(present)
        keep[idx[rng.integers(idx.size)]] = True
    return keep


class Augmenter:
    """Holds the MONAI pipeline of one configuration; call it on a patch with a seed.

    Args:
        cfg: augmentation configuration.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.transforms = build_transforms(cfg)

    def __call__(self, patch: Patch, seed: int) -> Patch:
        """Augment one patch (a new dict); missing and dropped channels are zeroed."""
        rng = np.random.default_rng(seed)
        image, label = patch["image"], patch["label"]
        cfg = self.cfg
        if cfg.enabled and cfg.p_tissue > 0 and "tissue" in patch and rng.random() < cfg.p_tissue:
            image = shift_tissues(image, patch["tissue"], patch["tissue_moments"], rng, cfg.tissue_shift)
        if self.cfg.enabled:
            self.transforms.set_random_state(seed=seed % (2**32))
            out = self.transforms(
                {"image": torch.as_tensor(image), "label": torch.as_tensor(label, dtype=torch.float32)}
            )
            image = np.asarray(out["image"], np.float32)
            label = np.rint(np.asarray(out["label"])).astype(np.uint8)
        present = np.asarray(patch["present"], bool)
        if self.cfg.enabled and self.cfg.channel_dropout > 0:
            present = channel_dropout(
                present,
                self.cfg.channel_dropout,
                rng,
                self.cfg.channel_dropout_keep,
                self.cfg.channel_dropout_one_of,
            )
        image = image * present[:, None, None, None]
        return {"image": image.astype(np.float32), "label": label, "present": present}
