"""Segmentation losses on sigmoid logits: Dice, Dice + BCE, DiceTopK, inversely-weighted BCE (alone or with
Dice) and focal.

All take logits (B, K, X, Y, Z) and binary targets of the same shape (one channel per task) and return a
scalar. MONAI provides soft Dice and focal; Dice + BCE, TopK-BCE and the per-lesion inverse weighting are here.

Example:
    >>> import torch
    >>> from neurolesion.train.config import LossConfig
    >>> loss = build_loss(LossConfig(name="dice_topk"))
    >>> target = torch.zeros(1, 1, 8, 8, 8); target[..., 2:4, 2:4, 2:4] = 1
    >>> float(loss(torch.full_like(target, -5.0), target)) > float(loss(20 * target - 10, target))
    True
"""

from __future__ import annotations

import cc3d
import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, FocalLoss
from torch import nn

from neurolesion.train.config import LossConfig


def lesion_weights(target: np.ndarray) -> np.ndarray:
    """Per-voxel weights giving every lesion (connected component) the same total weight.

    Each lesion's voxels get ``mean_lesion_volume / lesion_volume``, so a 2 mm lesion weighs as much in
    total as a 3 cm one; background voxels get 1.

    Args:
        target: binary (X, Y, Z) mask.

    Returns:
        float32 (X, Y, Z) weights.

    Example:
        >>> m = np.zeros((9, 9, 9), np.uint8); m[0, 0, 0] = 1; m[4:7, 4:7, 4:7] = 1
        >>> w = lesion_weights(m)
        >>> float(w[0, 0, 0] * 1), float(w[4:7, 4:7, 4:7].sum())
        (14.0, 14.0)
    """
    labels = cc3d.connected_components(np.ascontiguousarray(target > 0), connectivity=26)
    counts = np.bincount(labels.ravel())
    weights = np.ones(target.shape, np.float32)
    if len(counts) > 1:
        sizes = counts[1:].astype(np.float32)
        per_label = np.concatenate([[1.0], sizes.mean() / sizes]).astype(np.float32)
        weights = per_label[labels]
    return weights


class InverseWeightedBCE(nn.Module):
    """Binary cross-entropy where each lesion's voxels are weighted by the inverse of its relative volume."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean weighted BCE over every voxel of every channel."""
        t = target.detach().to("cpu", torch.uint8).numpy()
        w = np.stack([lesion_weights(t[b, k]) for b in range(t.shape[0]) for k in range(t.shape[1])])
        weights = torch.from_numpy(w.reshape(t.shape)).to(logits.device)
        return F.binary_cross_entropy_with_logits(logits, target.float(), weight=weights)


class DiceBCE(nn.Module):
    """Soft Dice + binary cross-entropy, both on sigmoid channels (MONAI's DiceCELoss applies a softmax
    cross-entropy as soon as there are several channels, which is wrong for independent tasks).

    Args:
        inverse_weighted: weight the BCE per lesion (`InverseWeightedBCE`). The batch-pooled Dice is
            dominated by the largest lesions and plain BCE by the background; with every lesion's voxels
            weighted by the inverse of its relative volume, missing a 2 mm lesion beside a 3 cm one costs
            as much as missing the large one, which is what lesion-wise detection counts.
    """

    def __init__(self, inverse_weighted: bool = False) -> None:
        super().__init__()
        self.dice = DiceLoss(sigmoid=True, batch=True)
        self.iw_bce = InverseWeightedBCE() if inverse_weighted else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Combined loss."""
        if self.iw_bce is not None:
            bce = self.iw_bce(logits, target)
        else:
            bce = F.binary_cross_entropy_with_logits(logits, target.float())
        return self.dice(logits, target) + bce


class DiceTopK(nn.Module):
    """0.5 x soft Dice + 0.5 x TopK-BCE (mean over the ``k`` fraction of voxels with the highest loss).

    Args:
        k: fraction of voxels kept by TopK (0.1 = the hardest 10 %).
    """

    def __init__(self, k: float = 0.1) -> None:
        super().__init__()
        self.k = k
        self.dice = DiceLoss(sigmoid=True, batch=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Combined loss."""
        bce = F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none").flatten()
        n = max(1, int(self.k * bce.numel()))
        topk = torch.topk(bce, n, sorted=False).values.mean()
        return 0.5 * self.dice(logits, target) + 0.5 * topk


def build_loss(cfg: LossConfig) -> nn.Module:
    """The loss a configuration names.

    Args:
        cfg: loss configuration (``name`` one of dice, dice_ce, dice_topk, iw_bce, dice_iw_bce, focal).

    Returns:
        A module called as ``loss(logits, target)``.
    """
    if cfg.name == "dice":
        return DiceLoss(sigmoid=True, batch=True)
    if cfg.name == "dice_ce":
        return DiceBCE()
    if cfg.name == "dice_topk":
        return DiceTopK(cfg.topk)
    if cfg.name == "iw_bce":
        return InverseWeightedBCE()
    if cfg.name == "dice_iw_bce":
        return DiceBCE(inverse_weighted=True)
    return FocalLoss(gamma=cfg.focal_gamma, use_softmax=False)
