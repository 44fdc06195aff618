"""`neurolesion demo` end to end (slow: a whole simulated head on clinical grids through segment)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from neurolesion.cli import app


@pytest.mark.slow
def test_demo_simulates_segments_and_scores(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "demo"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "accuracy against the simulated truth" in result.stdout
    assert "brain   Dice" in result.stdout
    assert (tmp_path / "demo" / "segmentation" / "report.html").is_file()
    assert (tmp_path / "demo" / "case" / "case.json").is_file()
