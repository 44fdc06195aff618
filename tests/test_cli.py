"""The command line: exit codes and one-line errors (contract in DESIGN.md)."""

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from neurolesion.cli import app
from tests.conftest import write_nifti

runner = CliRunner()


def test_info_reports_versions_and_devices() -> None:
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0
    assert '"cuda_available"' in result.stdout and '"torch"' in result.stdout


def test_convert_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = write_nifti(tmp_path / "FLAIR.nii.gz", np.zeros((5, 5, 5, 4), np.float32))
    result = runner.invoke(app, ["convert", str(bad), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "FLAIR.nii.gz" in lines[0] and "4D" in lines[0]
    assert not (tmp_path / "out").exists()


def test_convert_nifti_folder(tmp_path: Path, head_like: np.ndarray) -> None:
    write_nifti(tmp_path / "in" / "T2.nii.gz", head_like)
    result = runner.invoke(app, ["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "t2.nii.gz").is_file() and (tmp_path / "out" / "detected.json").is_file()


def test_segment_refuses_an_unknown_precision(tmp_path: Path, head_like: np.ndarray) -> None:
    write_nifti(tmp_path / "in" / "FLAIR.nii.gz", head_like)
    result = runner.invoke(
        app, ["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--precision", "x"]
    )
    assert result.exit_code == 2
    assert "precision 'x': expected one of auto, float32, bfloat16" in result.stderr
    assert not (tmp_path / "out").exists()
