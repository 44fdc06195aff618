"""The training loop: runs, validates, checkpoints, resumes exactly; checkpoints load as models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neurolesion.errors import InputError
from neurolesion.models.card import load_model
from neurolesion.train.config import TrainConfig
from neurolesion.train.loop import train

TINY = {
    "name": "tiny",
    "steps": 4,
    "val_every": 2,
    "val_cases": 1,
    "device": "cpu",
    "model": {"channels": [4, 8], "patch_size": [16, 16, 16]},
    "sampler": {"blob_cases": 2, "blob_shape": [20, 20, 20]},
    "augment": {"enabled": False},
}


class Stop(Exception):
    pass


def test_resume_is_exact(tmp_path: Path) -> None:
    cfg = TrainConfig.from_mapping(TINY)
    straight = train(cfg, tmp_path / "a")

    def interrupt(step: int, loss: float) -> None:
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, tmp_path / "b", on_step=interrupt)
    resumed = train(cfg, tmp_path / "b", resume=True)
    a = torch.load(straight.last, weights_only=True)["state_dict"]
    b = torch.load(resumed.last, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["step"] for h in resumed.history] == [2, 4]
    assert resumed.history[-1]["mean_dice"] == straight.history[-1]["mean_dice"]


def test_checkpoint_is_a_model_with_card(tmp_path: Path) -> None:
    result = train(TrainConfig.from_mapping(TINY), tmp_path)
    model = load_model(result.best)
    assert model.card.name == "tiny" and model.card.training_data["source"] == "blobs"
    assert "mean_dice" in model.card.validation
    assert (tmp_path / "history.json").is_file() and (tmp_path / "best.json").is_file()


def test_resume_with_other_config_is_refused(tmp_path: Path) -> None:
    train(TrainConfig.from_mapping(TINY), tmp_path)
    with pytest.raises(InputError, match=r"different training configuration \(lr differ\)"):
        train(TrainConfig.from_mapping({**TINY, "lr": 0.5}), tmp_path, resume=True)


def test_resume_accepts_checkpoint_from_before_a_setting_existed(tmp_path: Path) -> None:
    cfg = TrainConfig.from_mapping(TINY)

    def interrupt(step: int, loss: float) -> None:
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, tmp_path, on_step=interrupt)
    last = tmp_path / "last.pt"
    ck = torch.load(last, weights_only=True)
    # A checkpoint written before `augment.p_contrast` was a setting lacks the key.
    del ck["train_config"]["augment"]["p_contrast"]
    torch.save(ck, last)
    resumed = train(cfg, tmp_path, resume=True)
    assert [h["step"] for h in resumed.history] == [2, 4]


@pytest.mark.slow
def test_simulator_stream_trains_and_validates_on_held_out_heads(tmp_path: Path) -> None:
    cfg = TrainConfig.from_mapping(
        {**TINY, "steps": 2, "val_every": 2, "sampler": {"source": "synth", "batch_size": 1}}
    )
    result = train(cfg, tmp_path)
    card = load_model(result.best).card
    assert card.training_data["source"] == "synth"
    assert card.training_data["validation_stream_seed"] != card.training_data["stream_seed"]


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bfloat16_trains_float32_weights_and_only_where_native(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, native: bool
) -> None:
    monkeypatch.setattr("neurolesion.train.loop.native_bfloat16", lambda device: native)
    with caplog.at_level("WARNING", logger="neurolesion.train.loop"):
        result = train(TrainConfig.from_mapping({**TINY, "cpu_bf16": True}), tmp_path)
    weights = torch.load(result.last, weights_only=True)["state_dict"]
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    assert all(h["loss"] == h["loss"] for h in result.history)  # no NaN loss
    assert ("no native bfloat16" in caplog.text) is not native


def test_init_weights_start_the_run_from_a_model(tmp_path: Path) -> None:
    first = train(TrainConfig.from_mapping(TINY), tmp_path / "a")
    tuned = train(
        TrainConfig.from_mapping(
            {**TINY, "steps": 1, "val_every": 1, "lr": 1e-12, "init_weights": str(first.last)}
        ),
        tmp_path / "b",
    )
    a = torch.load(first.last, weights_only=True)["state_dict"]
    b = torch.load(tuned.last, weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    other = {**TINY, "model": {**TINY["model"], "channels": [4, 4]}, "init_weights": str(first.last)}
    with pytest.raises(InputError, match="init_weights"):
        train(TrainConfig.from_mapping(other), tmp_path / "c")


def test_init_weights_carry_the_convolutions_into_a_batch_norm_network(tmp_path: Path) -> None:
    first = train(TrainConfig.from_mapping(TINY), tmp_path / "a")
    batch_model = {**TINY["model"], "norm": "batch", "normalisation": "median-brain"}
    cfg = {
        **TINY,
        "model": batch_model,
        "steps": 1,
        "val_every": 1,
        "lr": 1e-12,
        "init_weights": str(first.last),
    }
    tuned = train(TrainConfig.from_mapping(cfg), tmp_path / "b")
    a = torch.load(first.last, weights_only=True)["state_dict"]
    b = torch.load(tuned.last, weights_only=True)["state_dict"]
    assert set(a) < set(b)  # the batch-norm layers add their affine and running statistics
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    assert any(k.endswith("running_var") for k in set(b) - set(a))
    loaded = load_model(tuned.last)
    assert (loaded.config.norm, loaded.config.normalisation) == ("batch", "median-brain")
    assert not loaded.net.training
