"""Losses: ordering of good and bad predictions, and the per-lesion inverse weighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolesion.train.config import LossConfig
from neurolesion.train.losses import blob_dice, build_loss, lesion_weights

NAMES = ("dice", "dice_ce", "dice_topk", "iw_bce", "dice_iw_bce", "dice_blob", "focal")


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


def _two_lesions() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """An 8-voxel and a 1000-voxel lesion; logits finding both, all but the small one, all but the large."""
    t = torch.zeros(1, 1, 20, 20, 20)
    t[..., 1:3, 1:3, 1:3] = 1
    t[..., 8:18, 8:18, 8:18] = 1
    perfect = 40 * t - 20
    miss_small, miss_large = perfect.clone(), perfect.clone()
    miss_small[..., 1:3, 1:3, 1:3] = -20
    miss_large[..., 8:18, 8:18, 8:18] = -20
    return t, perfect, miss_small, miss_large


def test_dice_iw_bce_weighs_a_missed_small_lesion_like_a_missed_large_one() -> None:
    """Against Dice + plain BCE, missing the small lesion costs far more relative to missing the large one."""
    t, _, miss_small, miss_large = _two_lesions()

    def ratio(name: str) -> float:
        loss = build_loss(LossConfig(name=name))  # type: ignore[arg-type]
        return float(loss(miss_small, t)) / float(loss(miss_large, t))

    assert ratio("dice_ce") < 0.02
    assert ratio("dice_iw_bce") > 0.3
    assert ratio("dice_blob") > 0.1  # the blob term costs both misses 0.5


def test_blob_dice_scores_each_lesion_on_its_own() -> None:
    """Missing either lesion costs the same; a false positive costs every lesion; no lesion costs 0."""
    t, perfect, miss_small, miss_large = _two_lesions()
    assert float(blob_dice(perfect, t)) < 1e-3
    assert np.isclose(float(blob_dice(miss_small, t)), 0.5, atol=1e-3)
    assert np.isclose(float(blob_dice(miss_large, t)), 0.5, atol=1e-3)
    false_positive = perfect.clone()
    false_positive[..., 1:3, 15:17, 1:3] = 20  # 8 voxels outside both lesions
    # small lesion: 2 * 8 / (8 + 8 + 8) -> loss 1/3; large: 2 * 1000 / (1000 + 8 + 1000) -> about 0.004
    assert np.isclose(float(blob_dice(false_positive, t)), (1 / 3 + 8 / 2008) / 2, atol=1e-3)
    empty = torch.zeros_like(t)
    logits = torch.zeros_like(t, requires_grad=True)
    value = blob_dice(logits, empty)
    value.backward()
    assert float(value.detach()) == 0.0 and logits.grad is not None


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
