"""Folder-level evaluation and the `neurolesion evaluate` command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from neurolesion.cli import app
from neurolesion.errors import InputError
from neurolesion.metrics.evaluate import evaluate_arrays, evaluate_folders, pair_cases
from tests.conftest import write_nifti

from .conftest import balls

AFFINE = np.diag([0.9, 0.9, 3.0, 1.0])


def _case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Truth label map with 3-5 balls; a probability prediction missing one and adding a false one."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    centres = rng.integers(6, 26, (n, 3)) * np.array([1, 1, 0]) + np.array([0, 0, 6])
    centres[:, 0] = np.arange(n) * 6 + 4
    truth = balls((32, 32, 12), centres, rng.uniform(1.5, 3.0, n))
    prob = np.where(truth > 1, rng.uniform(0.55, 0.95), 0.0).astype(np.float32)
    prob[28:31, 28:31, 2:4] = 0.6
    return prob, truth


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    for i in range(4):
        prob, truth = _case(i)
        write_nifti(tmp_path / "truth" / f"case{i}.nii.gz", truth.astype(np.int16), AFFINE)
        write_nifti(
            tmp_path / "pred" / f"case{i}" / "wmh_labels.nii.gz", (prob > 0.5).astype(np.uint8), AFFINE
        )
        write_nifti(tmp_path / "pred" / f"case{i}" / "wmh_probability.nii.gz", prob, AFFINE)
    return tmp_path / "pred", tmp_path / "truth"


def test_evaluate_arrays_row() -> None:
    prob, truth = _case(0)
    row, match = evaluate_arrays(prob, truth, (0.9, 0.9, 3.0), rule="overlap")
    assert match.n_truth == int(truth.max()) and match.fn == 1 and match.fp == 1
    assert 0.0 < row["dice"] < 1.0 and np.isfinite(row["hd95_mm"])
    assert row["lesion_tp"] == match.tp


def test_pairs_segment_folders_and_flat_files(folders: tuple[Path, Path]) -> None:
    pred, truth = folders
    cases = pair_cases(pred, truth, task="wmh")
    assert [c.name for c in cases] == ["case0", "case1", "case2", "case3"]
    assert all(c.prob is not None and c.prob.name == "wmh_probability.nii.gz" for c in cases)
    single = pair_cases(pred / "case0" / "wmh_labels.nii.gz", truth / "case0.nii.gz")
    assert len(single) == 1 and single[0].prob is None


def test_evaluate_folders_writes_outputs(folders: tuple[Path, Path], tmp_path: Path) -> None:
    pred, truth = folders
    out = tmp_path / "eval"
    summary = evaluate_folders(pred, truth, out, task="wmh", rule="overlap", n_boot=200)
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert [r["case"] for r in rows] == ["case0", "case1", "case2", "case3"]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["n_cases"] == 4 and summary["hit_rule"] == "overlap"
    dice = summary["metrics"]["dice"]
    assert dice["ci_low"] <= dice["mean"] <= dice["ci_high"] and dice["n"] == 4
    lesions = summary["lesions"]
    assert lesions["fp"] == 4 and lesions["fn"] == 4
    assert set(lesions["sensitivity_by_size"]) == {"<3 mm", "3-10 mm", ">10 mm"}
    assert 0.0 < summary["curves"]["average_precision"] < 1.0
    assert "pearson_r" in summary["volume_agreement"]
    for png in ("pr_curve.png", "froc.png", "volume_bland_altman.png", "volume_correlation.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_grid_mismatch_and_missing_cases(folders: tuple[Path, Path], tmp_path: Path) -> None:
    pred, truth = folders
    write_nifti(
        pred / "case1" / "wmh_labels.nii.gz", np.zeros((32, 32, 12), np.uint8), np.diag([1, 1, 3.0, 1])
    )
    with pytest.raises(InputError, match="case1.*grid"):
        evaluate_folders(pred, truth, tmp_path / "e1", task="wmh", plots=False)
    soft = np.full((32, 32, 12), 0.5, np.float32)
    write_nifti(pred / "case1" / "wmh_labels.nii.gz", soft, AFFINE)
    write_nifti(truth / "case1.nii.gz", soft, AFFINE)
    with pytest.raises(InputError, match=r"case1.nii.gz: truth has fractional values"):
        evaluate_folders(pred, truth, tmp_path / "e2", task="wmh", plots=False)
    write_nifti(truth / "case9.nii.gz", np.zeros((32, 32, 12), np.uint8), AFFINE)
    with pytest.raises(InputError, match="no prediction for 1 truth case.*case9"):
        pair_cases(pred, truth, task="wmh")
    with pytest.raises(InputError, match="no such file"):
        pair_cases(tmp_path / "nothing", truth)
    (pred / "case9.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="case9.nii.gz: cannot be read"):
        evaluate_folders(pred / "case9.nii.gz", truth / "case9.nii.gz", tmp_path / "e3", plots=False)


def test_cli_evaluate(folders: tuple[Path, Path], tmp_path: Path) -> None:
    pred, truth = folders
    runner = CliRunner()
    args = [
        "evaluate",
        "--pred",
        str(pred),
        "--truth",
        str(truth),
        "--task",
        "wmh",
        "-o",
        str(tmp_path / "o"),
    ]
    res = runner.invoke(app, [*args, "--hit-rule", "centroid", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["hit_rule"] == "centroid" and summary["distance_mm"] == 5.0
    bad = runner.invoke(app, [*args, "--hit-rule", "iou"])
    assert bad.exit_code == 2
    missing = runner.invoke(
        app, ["evaluate", "--pred", str(tmp_path / "x"), "--truth", str(truth), "-o", "o"]
    )
    assert missing.exit_code == 2 and "no such file" in missing.output
