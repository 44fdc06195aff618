"""Sliding-window prediction: shapes on the input grid, missing channels, TTA, resampling."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from neurolesion.errors import InputError
from neurolesion.infer import predict
from neurolesion.infer.predict import Predictor, mask_box, predict_volume, resolve_precision, stack_inputs
from neurolesion.models.card import LoadedModel, ModelCard, save_model
from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network

CFG = ModelConfig(inputs=("flair", "t1"), outputs=("wmh", "lacune"), channels=(4, 8), patch_size=(16, 16, 16))


class Threshold(nn.Module):
    """Logit = 10 x (channel 0 - 1): a perfect 'model' for bright voxels, to test the plumbing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * (x[:, :1] - 1).repeat(1, 2, 1, 1, 1)


def model(net: nn.Module | None = None) -> LoadedModel:
    return LoadedModel((net or build_network(CFG)).eval(), CFG, ModelCard.for_config("t", CFG))


def test_probabilities_on_the_input_grid() -> None:
    image = np.zeros((2, 37, 21, 18), np.float32)
    image[0, 10:15, 5:9, 4:8] = 3.0
    prob = predict_volume(model(Threshold()), image, (1.0, 1.0, 1.0))
    assert prob.shape == (2, 37, 21, 18) and prob.dtype == np.float32
    assert prob[0, 12, 7, 6] > 0.99 and prob[0, 30, 15, 15] < 0.01


def test_tta_and_resampling_keep_the_grid_and_left_right() -> None:
    image = np.zeros((2, 40, 20, 20), np.float32)
    image[0, 4:10, 8:12, 8:12] = 3.0  # a bright block near the low-x end
    prob = predict_volume(model(Threshold()), image, (0.5, 1.0, 1.0), tta=True)
    assert prob.shape == (2, 40, 20, 20)
    assert prob[0, 7, 10, 10] > 0.9 and prob[0, 33, 10, 10] < 0.1


class Shifted(nn.Module):
    """Logit of the voxel one step further along x: not mirror-symmetric, so TTA changes its output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * (torch.roll(x[:, :1], 1, dims=2) - 1).repeat(1, 2, 1, 1, 1)


def test_tta_follows_the_model_card_unless_the_caller_says(tmp_path: object) -> None:
    image = np.zeros((2, 20, 20, 20), np.float32)
    image[0, 8:12, 8:12, 8:12] = 3.0
    plain = model(Shifted())
    with_tta = LoadedModel(plain.net, CFG, replace(plain.card, tta=True))
    mirrored = predict_volume(plain, image, (1.0, 1.0, 1.0), tta=True)
    single = predict_volume(plain, image, (1.0, 1.0, 1.0))
    assert not np.allclose(mirrored, single)
    np.testing.assert_allclose(predict_volume(with_tta, image, (1.0, 1.0, 1.0)), mirrored)
    np.testing.assert_allclose(predict_volume(with_tta, image, (1.0, 1.0, 1.0), tta=False), single)
    path = save_model(f"{tmp_path}/m.pt", build_network(CFG), CFG, with_tta.card)
    assert Predictor(str(path)).model.card.tta


def test_missing_channel_is_zeroed() -> None:
    image = np.full((2, 16, 16, 16), 3.0, np.float32)
    prob = predict_volume(model(Threshold()), image, (1.0, 1.0, 1.0), present=[False, True])
    assert prob.max() < 0.01


def test_bad_shapes() -> None:
    with pytest.raises(InputError, match="expected \\(2, X, Y, Z\\)"):
        predict_volume(model(), np.zeros((1, 8, 8, 8), np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="at least one True"):
        predict_volume(model(), np.zeros((2, 8, 8, 8), np.float32), (1.0, 1.0, 1.0), present=[False, False])


def test_predictor_loads_a_saved_model(tmp_path: object) -> None:
    path = save_model(f"{tmp_path}/m.pt", build_network(CFG), CFG, ModelCard.for_config("m", CFG))
    prob = Predictor(str(path))(np.zeros((2, 20, 20, 20), np.float32), (1.0, 1.0, 1.0))
    assert prob.shape == (2, 20, 20, 20) and 0 <= prob.min() <= prob.max() <= 1


def test_stack_inputs_keeps_card_order_and_blanks_missing() -> None:
    t1 = np.full((3, 4, 5), 2.0, np.float32)
    flair = np.full((3, 4, 5), 7.0, np.float32)
    image, present = stack_inputs({"t1": t1, "flair": flair}, ["flair", "t2", "t1"], "case1")
    assert image.shape == (3, 3, 4, 5) and image.dtype == np.float32
    assert present == [True, False, True]
    assert (image[0] == 7).all() and (image[1] == 0).all() and (image[2] == 2).all()


def test_stack_inputs_names_what_is_missing() -> None:
    with pytest.raises(InputError, match=r"case1: needs t2star or swi; got t1"):
        stack_inputs({"t1": np.zeros((2, 2, 2))}, ["t2star", "swi"], "case1")
    # a sequence the network was always trained with must be there even when others are
    with pytest.raises(InputError, match=r"case1: needs t2; got t2star, t1"):
        stack_inputs(
            {"t2star": np.zeros((2, 2, 2)), "t1": np.zeros((2, 2, 2))},
            ["t2", "t2star", "t1"],
            "case1",
            [("t2",)],
        )


def test_mask_box_widens_clips_and_falls_back_to_the_whole_array() -> None:
    m = np.zeros((30, 20, 10), bool)
    m[2:5, 8:12, 4:6] = True
    assert mask_box(m, (1.0, 1.0, 1.0), 3.0) == (slice(0, 8), slice(5, 15), slice(1, 9))
    assert mask_box(m, (1.0, 1.0, 0.5), 3.0)[2] == slice(0, 10)  # 6 voxels at 0.5 mm, clipped
    assert mask_box(np.zeros((4, 5, 6), bool), (1.0, 1.0, 1.0), 3.0) == (
        slice(0, 4),
        slice(0, 5),
        slice(0, 6),
    )


def test_precision_names_and_auto_follow_the_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    monkeypatch.setattr(predict, "native_bfloat16", lambda device: False)
    assert resolve_precision("auto", "cpu") == "float32"
    monkeypatch.setattr(predict, "native_bfloat16", lambda device: True)
    assert resolve_precision("auto", "cpu") == "bfloat16"
    with pytest.raises(InputError, match="precision 'half': expected one of auto, float32, bfloat16"):
        resolve_precision("half", "cpu")


def test_bfloat16_probabilities_stay_close_to_float32() -> None:
    torch.manual_seed(0)
    net = model()
    image = np.random.default_rng(0).standard_normal((2, 24, 20, 18)).astype(np.float32)
    full = predict_volume(net, image, (1.0, 1.0, 1.0), precision="float32")
    half = predict_volume(net, image, (1.0, 1.0, 1.0), precision="bfloat16")
    assert half.dtype == np.float32 and half.shape == full.shape
    assert 0 < np.abs(half - full).max() < 0.05  # autocast did run, and stays near float32
    with pytest.raises(InputError, match="precision"):
        predict_volume(net, image, (1.0, 1.0, 1.0), precision="fp8")
