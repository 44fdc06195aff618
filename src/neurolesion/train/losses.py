"""Segmentation losses on sigmoid logits: Dice, Dice + BCE, DiceTopK, inversely-weighted BCE (alone or with
Dice), Dice + BCE + blob Dice, and focal.

All take logits (B, K, X, Y, Z) and binary targets of the same shape (one channel per task) and return a
scalar. MONAI provides soft Dice and focal; Dice + BCE, TopK-BCE, the per-lesion inverse weighting and the blob
Dice (Kofler et al., "blob loss", IPMI 2023) are here.

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


def lesion_labels(target: np.ndarray) -> np.ndarray:
    """The lesions (26-connected components, numbered from 1) of a binary (X, Y, Z) mask."""
    return cc3d.connected_components(np.ascontiguousarray(target > 0), connectivity=26)


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
    labels = lesion_labels(target)
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


def blob_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over lesions of each lesion's own soft Dice loss ("blob loss", Kofler et al., IPMI 2023).

    Each lesion (26-connected component of one channel of one patch) is scored against the prediction with
    the other lesions masked out: its Dice counts its own voxels and every false-positive voxel of the
    patch, so a missed 2 mm lesion costs as much as a missed 3 cm one, whatever else the patch holds.

    Args:
        logits: (B, K, X, Y, Z) logits.
        target: (B, K, X, Y, Z) binary targets.

    Returns:
        The mean Dice loss over every lesion of the batch (0, with a gradient, where there is none).

    Example:
        >>> t = torch.zeros(1, 1, 12, 12, 12); t[..., 1:7, 1:7, 1:7] = 1; t[..., 10, 10, 10] = 1
        >>> found = torch.zeros_like(t); found[..., 1:7, 1:7, 1:7] = 1  # the small lesion missed
        >>> round(float(blob_dice(20 * found - 10, t)), 2)
        0.5
    """
    t = target.detach().to("cpu", torch.uint8).numpy()
    prob = torch.sigmoid(logits.float())
    terms = []
    for b in range(t.shape[0]):
        for k in range(t.shape[1]):
            labels = lesion_labels(t[b, k])
            n = int(labels.max())
            if n == 0:
                continue
            idx = torch.from_numpy(labels.astype(np.int64).ravel()).to(logits.device)
            p = prob[b, k].reshape(-1)
            sums = torch.zeros(n + 1, device=p.device, dtype=p.dtype).index_add_(0, idx, p)
            sizes = torch.bincount(idx, minlength=n + 1).to(p.dtype)
            inter, background = sums[1:], sums[0]
            terms.append(1.0 - 2.0 * inter / (background + inter + sizes[1:] + 1e-5))
    if not terms:
        return prob.sum() * 0.0
    return torch.cat(terms).mean()


class DiceBCE(nn.Module):
    """Soft Dice + binary cross-entropy, both on sigmoid channels (MONAI's DiceCELoss applies a softmax
    cross-entropy as soon as there are several channels, which is wrong for independent tasks).

    Args:
        inverse_weighted: weight the BCE per lesion (`InverseWeightedBCE`). The batch-pooled Dice is
            dominated by the largest lesions and plain BCE by the background; with every lesion's voxels
            weighted by the inverse of its relative volume, missing a 2 mm lesion beside a 3 cm one costs
            as much as missing the large one, which is what lesion-wise detection counts.

        blob_weight: weight of the per-lesion Dice (`blob_dice`) added to the batch-pooled Dice and BCE.
    """

    def __init__(self, inverse_weighted: bool = False, blob_weight: float = 0.0) -> None:
        super().__init__()
        self.dice = DiceLoss(sigmoid=True, batch=True)
        self.iw_bce = InverseWeightedBCE() if inverse_weighted else None
        self.blob_weight = blob_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Combined loss."""
        if self.iw_bce is not None:
            bce = self.iw_bce(logits, target)
        else:
            bce = F.binary_cross_entropy_with_logits(logits, target.float())
        loss = self.dice(logits, target) + bce
        if self.blob_weight > 0:
            loss = loss + self.blob_weight * blob_dice(logits, target)
        return loss


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
        cfg: loss configuration (``name`` one of dice, dice_ce, dice_topk, iw_bce, dice_iw_bce, dice_blob,
            focal).

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
    if cfg.name == "dice_blob":
        return DiceBCE(blob_weight=cfg.blob_weight)
    return FocalLoss(gamma=cfg.focal_gamma, use_softmax=False)
