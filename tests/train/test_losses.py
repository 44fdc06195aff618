"""Losses: ordering of good and bad predictions, and the per-lesion inverse weighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolesion.train.config import LossConfig
from neurolesion.train.losses import build_loss, lesion_weights

NAMES = ("dice", "dice_ce", "dice_topk", "iw_bce", "dice_iw_bce", "focal")


@pytest.fixture
def target() -> torch.Tensor:
    t = torch.zeros(2, 2, 12, 12, 12)
    t[:, 0, 2:6, 2:6, 2:6] = 1
    t[:, 1, 8, 8, 8] = 1
    return t


@pytest.mark.parametrize("name", NAMES)
def test_good_prediction_has_lower_loss(name: str, target: torch.Tensor) -> None:
    loss = build_loss(LossConfig(name=name))  # type: ignore[arg-type]
    good = float(loss(20 * target - 10, target))
    bad = float(loss(torch.zeros_like(target) - 3, target))
    assert good < bad


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow(name: str, target: torch.Tensor) -> None:
    logits = torch.zeros_like(target, requires_grad=True)
    build_loss(LossConfig(name=name))(logits, target).backward()  # type: ignore[arg-type]
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_small_and_large_lesions_weigh_the_same() -> None:
    m = np.zeros((40, 40, 40), np.uint8)
    m[2:4, 2:4, 2:4] = 1  # 8 voxels: "2 mm metastasis"
    m[10:30, 10:30, 10:30] = 1  # 8000 voxels
    w = lesion_weights(m)
    assert w[m == 0].max() == 1.0
    assert np.isclose(w[2:4, 2:4, 2:4].sum(), w[10:30, 10:30, 10:30].sum())


def test_iw_bce_penalises_missing_a_small_lesion_more_than_plain_bce() -> None:
    t = torch.zeros(1, 1, 20, 20, 20)
    t[..., 1:3, 1:3, 1:3] = 1
    t[..., 8:18, 8:18, 8:18] = 1
    miss_small = 20 * t - 10
    miss_small[..., 1:3, 1:3, 1:3] = -10
    plain = torch.nn.functional.binary_cross_entropy_with_logits(miss_small, t)
    weighted = build_loss(LossConfig(name="iw_bce"))(miss_small, t)
    assert float(weighted) > 10 * float(plain)


def test_dice_iw_bce_weighs_a_missed_small_lesion_like_a_missed_large_one() -> None:
    """Against Dice + plain BCE, missing the small lesion costs far more relative to missing the large one."""
    t = torch.zeros(1, 1, 20, 20, 20)
    t[..., 1:3, 1:3, 1:3] = 1  # 8 voxels
    t[..., 8:18, 8:18, 8:18] = 1  # 1000 voxels
    perfect = 20 * t - 10
    miss_small, miss_large = perfect.clone(), perfect.clone()
    miss_small[..., 1:3, 1:3, 1:3] = -10
    miss_large[..., 8:18, 8:18, 8:18] = -10

    def ratio(name: str) -> float:
        loss = build_loss(LossConfig(name=name))  # type: ignore[arg-type]
        return float(loss(miss_small, t)) / float(loss(miss_large, t))

    assert ratio("dice_ce") < 0.02
    assert ratio("dice_iw_bce") > 0.3


def test_topk_keeps_the_hardest_fraction() -> None:
    loss = build_loss(LossConfig(name="dice_topk", topk=0.1))
    t = torch.zeros(1, 1, 10, 10, 10)
    logits = torch.full_like(t, -10.0)
    logits[0, 0, 0, 0, :5] = 10.0  # 5 wrong voxels of 1000: in the top 10 %
    assert float(loss(logits, t)) > 0.5 * 5 * 10 / 100 * 0.9


@pytest.mark.parametrize("name", NAMES)
def test_channels_are_independent_tasks(name: str) -> None:
    """Both tasks present at one voxel (multi-label): a perfect prediction of both costs little."""
    t = torch.zeros(1, 2, 8, 8, 8)
    t[:, :, 2:5, 2:5, 2:5] = 1
    perfect = float(build_loss(LossConfig(name=name))(20 * t - 10, t))  # type: ignore[arg-type]
    assert perfect < 0.05
