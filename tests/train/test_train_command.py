"""`neurolesion train` end to end on a tiny config; bad configs exit with code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from neurolesion.cli import app

TINY = """name: cli-tiny
steps: 2
val_every: 2
val_cases: 1
device: cpu
model:
  channels: [4, 8]
  patch_size: [16, 16, 16]
sampler:
  blob_cases: 2
  blob_shape: [20, 20, 20]
augment:
  enabled: false
"""


def test_train_writes_checkpoints(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(TINY)
    res = CliRunner().invoke(
        app, ["train", "--config", str(cfg), "-o", str(tmp_path / "run"), "--threads", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "best mean Dice" in res.output
    assert "step 2/2: loss" in res.output  # not a terminal: progress goes to the log as lines
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()


def test_bad_config_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("loss:\n  name: nope\n")
    res = CliRunner().invoke(app, ["train", "--config", str(cfg)])
    assert res.exit_code == 2
    assert "cfg.yaml" in res.output and "loss.name" in res.output
