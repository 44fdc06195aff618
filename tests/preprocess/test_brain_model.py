"""Learned brain extraction ("model"): spacing round-trip geometry, "auto" fallback, a toy-trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from neurolesion.errors import InputError
from neurolesion.metrics.overlap import dice
from neurolesion.models import card as cards
from neurolesion.models.card import LoadedModel, ModelCard, export_model
from neurolesion.models.config import ModelConfig
from neurolesion.preprocess import brain
from neurolesion.preprocess.brain import extract_brain, model_probability, register_brain_method
from neurolesion.train.config import TrainConfig
from neurolesion.train.loop import train
from neurolesion.volume import Volume
from tests.conftest import write_nifti
from tests.preprocess.conftest import make_head


class Bright(nn.Module):
    """A stand-in network: "brain" wherever the normalised intensity is high (logit 40 (x - 0.5))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 40.0 * (x - 0.5)


def _bright_model() -> LoadedModel:
    cfg = ModelConfig(
        inputs=("t1", "t2"),
        outputs=("brain",),
        any_input=True,
        channels=(4, 8),
        patch_size=(16, 16, 16),
        spacing=(2.0, 2.0, 2.0),
        normalisation="percentile-nonzero",
    )
    return LoadedModel(Bright(), cfg, ModelCard.for_config("bright", cfg))


def test_spacing_round_trip_keeps_the_input_grid_and_sides() -> None:
    # 1 mm, odd shape, x axis flipped (LAS) and shifted: predicted at 2 mm RAS, mask back on this exact grid
    shape = (47, 52, 39)
    image = np.zeros(shape, np.float32)
    image[:, :, :] = 10.0
    image[30:42, 10:40, 8:30] = 100.0  # a bright block on the high-index side = LEFT in LAS (x flipped)
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (23.0, -30.0, -15.0)
    volume = Volume(image, affine, "las.nii.gz")
    model = _bright_model()
    register_brain_method("test-bright")(lambda images: model_probability(model, images))
    mask = extract_brain({"t1": volume}, "test-bright")
    assert mask.shape == shape
    truth = image > 50
    assert dice(mask, truth) > 0.85
    left = affine @ np.r_[np.argwhere(mask).mean(axis=0), 1.0]
    assert left[0] < 0  # RAS x < 0 is the patient's left: the block stayed on the left
    assert not mask[5:17].any()  # nothing on the mirrored (right) side


def test_auto_falls_back_to_deepbet_without_a_shipped_brain_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cards, "WEIGHTS_DIR", tmp_path)
    called = []

    def fake_deepbet(images: dict[str, Volume]) -> np.ndarray:
        called.append(True)
        return next(iter(images.values())).meta["brain"].astype(np.float32)

    monkeypatch.setitem(brain._METHODS, "deepbet", (fake_deepbet, 0.5))
    head = make_head()
    assert brain.shipped_brain_model() is None
    assert np.array_equal(extract_brain({"t1": head}), head.meta["brain"]) and called
    with pytest.raises(InputError, match="no brain model is shipped"):
        extract_brain({"t1": head}, "model")


def _write_cases(root: Path, n: int) -> None:
    for i in range(n):
        head = make_head((32, 32, 32), spacing=1.0, seed=i)
        affine = np.eye(4)
        write_nifti(root / f"case{i}" / "brain_mask.nii.gz", head.meta["brain"].astype(np.uint8), affine)
        write_nifti(root / f"case{i}" / "t1.nii.gz", head.data, affine)
        t2 = np.where(head.meta["brain"], 260.0 - head.data, head.data)  # another contrast
        write_nifti(root / f"case{i}" / "t2.nii.gz", t2.astype(np.float32), affine)


def test_toy_trained_brain_model_plugs_into_extract_brain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_cases(tmp_path / "cases", 4)
    cfg = TrainConfig.from_mapping(
        {
            "name": "toy-brain",
            "steps": 40,
            "val_every": 40,
            "val_cases": 1,
            "folds": 2,
            "device": "cpu",
            "lr": 0.01,
            "model": {
                "inputs": ["t1", "t2"],
                "outputs": ["brain"],
                "any_input": True,
                "channels": [4, 8],
                "patch_size": [16, 16, 16],
                "spacing": [2.0, 2.0, 2.0],
                "normalisation": "percentile-nonzero",
            },
            "sampler": {"source": "folder", "folder": str(tmp_path / "cases"), "resample": True},
            "augment": {"enabled": False},
        }
    )
    result = train(cfg, tmp_path / "run", fold=0)
    assert result.history[-1]["dice"]["brain"] > 0.8
    weights = tmp_path / "weights"
    monkeypatch.setattr(cards, "WEIGHTS_DIR", weights)
    export_model(result.best, weights / "toy-brain.pt")
    assert brain.shipped_brain_model() == weights / "toy-brain.pt"
    head = make_head((32, 32, 32), spacing=1.0, seed=9)
    for method in ("auto", "model"):  # auto prefers the shipped model: deepbet must not run
        monkeypatch.setitem(brain._METHODS, "deepbet", (pytest.fail, 0.5))
        mask = extract_brain({"t1": head}, method)
        assert mask.shape == head.shape and dice(mask, head.meta["brain"]) > 0.6
