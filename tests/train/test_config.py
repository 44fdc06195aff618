"""Training configs load from YAML, validate with clear errors; the shipped configs are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurolesion.errors import InputError
from neurolesion.train.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_yaml_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nsteps: 5\nmodel:\n  arch: vnet\n  channels: [4, 8]\n  patch_size: [16, 16, 16]\n")
    cfg = load_config(p)
    assert cfg.model.arch == "vnet" and cfg.model.channels == (4, 8) and cfg.steps == 5


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("steps: 0\n", "steps"),
        ("loss:\n  name: hinge\n", "loss.name"),
        ("sampler:\n  source: folder\n", "folder"),
        ("augment:\n  p_flip: 2\n", "p_flip"),
        ("lr: fast\n", "lr"),
        ("model: [1, 2]\n", "model"),
        ("steps: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_file_and_setting(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        load_config(p)
    assert "bad.yaml" in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_config("/nonexistent/cfg.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_are_valid(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.model.in_channels >= 1
