"""Saving and loading models with their cards; the shipped-model registry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from neurolesion.errors import InputError
from neurolesion.models.card import (
    ModelCard,
    export_model,
    load_model,
    required_inputs,
    save_model,
    shipped_models,
)
from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network

CFG = ModelConfig(arch="unet", inputs=("t2star",), outputs=("cmb",), channels=(4, 8), patch_size=(8, 8, 8))


def test_round_trip_file_keeps_weights_and_card(tmp_path: Path) -> None:
    net = build_network(CFG)
    card = ModelCard.for_config("cmb-toy", CFG, {"source": "blobs", "seed_range": [0, 9]}, {"dice": 0.7})
    path = save_model(tmp_path / "cmb-toy.pt", net, CFG, card)
    loaded = load_model(path)
    assert loaded.config == CFG
    assert loaded.card.labels == ("cmb",)
    assert loaded.card.training_data["seed_range"] == [0, 9]
    x = torch.randn(1, 1, 8, 8, 8)
    assert torch.allclose(net.eval()(x), loaded.net(x))
    assert json.loads((tmp_path / "cmb-toy.json").read_text())["inputs"] == ["t2star"]


def test_folder_model(tmp_path: Path) -> None:
    save_model(tmp_path / "m", build_network(CFG), CFG, ModelCard.for_config("m", CFG))
    assert (tmp_path / "m" / "card.json").is_file()
    assert load_model(tmp_path / "m").card.name == "m"


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no-such"):
        load_model("no-such")
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something"}, bad)
    with pytest.raises(InputError, match="not a neurolesion model"):
        load_model(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="model.pt"):
        load_model(tmp_path / "empty")


def test_shipped_models_is_a_list_of_cards() -> None:
    assert all(isinstance(c, ModelCard) for c in shipped_models())


def test_export_completes_the_card_and_drops_training_state(tmp_path: Path) -> None:
    net = build_network(CFG)
    save_model(tmp_path / "run" / "best.pt", net, CFG, ModelCard.for_config("cmb-run", CFG))
    ck = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    ck["optimizer"] = {"state": {}, "param_groups": []}  # what a training checkpoint also holds
    torch.save(ck, tmp_path / "run" / "best.pt")
    out = export_model(
        tmp_path / "run" / "best.pt",
        tmp_path / "cmb.pt",
        name="cmb",
        evaluation={"test_dice": 0.5},
        limitations=("small foci",),
    )
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "cmb" and card["evaluation"] == {"test_dice": 0.5}
    assert card["limitations"] == ["small foci"]
    assert "optimizer" not in torch.load(out, weights_only=True)
    x = torch.randn(1, 1, 8, 8, 8)
    assert torch.allclose(net.eval()(x), load_model(out).net(x))
    with pytest.raises(InputError, match=r"\.pt"):
        export_model(out, tmp_path / "cmb-folder")


def test_card_operating_point_raises_the_registry_minimum_and_is_released(tmp_path: Path) -> None:
    card = ModelCard.for_config("cmb-run", CFG)
    assert card.postprocess_settings("cmb") == {
        "threshold": 0.5,
        "min_size_mm3": 4.0,
        "min_confidence": 0.0,
        "extra_axial": False,
    }
    assert card.postprocess_settings("tumor")["extra_axial"] is True
    save_model(tmp_path / "run.pt", build_network(CFG), CFG, card)
    out = export_model(tmp_path / "run.pt", tmp_path / "cmb.pt", postprocess={"cmb": {"min_confidence": 0.8}})
    released = load_model(out).card
    assert released.postprocess == {"cmb": {"min_confidence": 0.8}}
    assert released.postprocess_settings("cmb") == {
        "threshold": 0.5,
        "min_size_mm3": 4.0,
        "min_confidence": 0.8,
        "extra_axial": False,
    }
    tuned = export_model(tmp_path / "run.pt", tmp_path / "big.pt", postprocess={"cmb": {"min_size_mm3": 1e6}})
    assert load_model(tuned).card.postprocess_settings("cmb")["min_size_mm3"] == 1e6
    lower = export_model(tmp_path / "run.pt", tmp_path / "low.pt", postprocess={"cmb": {"threshold": 0.4}})
    assert load_model(lower).card.postprocess_settings("cmb")["threshold"] == 0.4


def test_required_inputs_follow_the_training_channel_dropout() -> None:
    inputs = ("t2", "t2star", "t1")
    assert required_inputs(inputs, 0.0, 0, 0) == (("t2",), ("t2star",), ("t1",))  # never dropped: all
    assert required_inputs(inputs, 0.3, 1, 0) == (("t2",),)
    assert required_inputs(inputs, 0.3, 0, 2) == (("t2", "t2star"),)
    assert required_inputs(inputs, 0.3, 0, 0) == (inputs,)


def test_unmet_inputs_name_the_missing_group() -> None:
    cfg = ModelConfig(inputs=("t2", "t2star", "t1"), outputs=("ccm",))
    card = ModelCard.for_config("ccm", cfg, required=(("t2",),))
    assert card.unmet_inputs({"t2star", "t1"}) == [("t2",)]
    assert card.unmet_inputs({"t2"}) == []
    legacy = ModelCard.for_config("ccm", cfg)  # cards without requirements: any one input will do
    assert legacy.unmet_inputs({"t1"}) == [] and legacy.unmet_inputs({"flair"}) == [("t2", "t2star", "t1")]


def test_export_reads_the_requirements_from_the_training_configuration(tmp_path: Path) -> None:
    cfg = ModelConfig(
        arch="unet", inputs=("t1c", "flair"), outputs=("tumor",), channels=(4, 8), patch_size=(8, 8, 8)
    )
    save_model(tmp_path / "best.pt", build_network(cfg), cfg, ModelCard.for_config("tumor-run", cfg))
    ck = torch.load(tmp_path / "best.pt", weights_only=True)
    ck["train_config"] = {"augment": {"channel_dropout": 0.3, "channel_dropout_keep": 1}}
    torch.save(ck, tmp_path / "best.pt")
    out = export_model(tmp_path / "best.pt", tmp_path / "tumor.pt")
    assert load_model(out).card.required == (("t1c",),)
    assert json.loads(out.with_suffix(".json").read_text())["required"] == [["t1c"]]


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"cmb": {"threshold": 1.5}}, r"postprocess\[cmb\]: threshold 1.5"),
        ({"cmb": {"min_confidence": -0.1}}, r"postprocess\[cmb\]: min_confidence -0.1"),
        ({"cmb": {"treshold": 0.4}}, r"unknown settings \['treshold'\]"),
        ({"wmh": {"threshold": 0.4}}, r"'wmh' is not one of the model's tasks \['cmb'\]"),
    ],
)
def test_a_card_with_an_impossible_operating_point_is_refused(
    point: dict[str, dict[str, float]], message: str
) -> None:
    with pytest.raises(InputError, match=r"model card cmb-run: .*" + message):
        replace(ModelCard.for_config("cmb-run", CFG), postprocess=point)
