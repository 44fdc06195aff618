"""`neurolesion predict` on a case folder; `neurolesion info --model`."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from neurolesion.cli import app
from neurolesion.models.card import ModelCard, save_model
from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network
from tests.conftest import write_nifti

CFG = ModelConfig(inputs=("flair", "t1"), outputs=("wmh",), channels=(4, 8), patch_size=(16, 16, 16))


def test_predict_case_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    affine = np.diag([1.0, 1.0, 1.2, 1.0])
    affine[:3, 3] = (-10, 5, 3)
    case = tmp_path / "case"
    write_nifti(case / "flair.nii.gz", rng.normal(100, 10, (20, 22, 18)).astype(np.float32), affine)
    mask = np.zeros((20, 22, 18), np.uint8)
    mask[3:17, 3:19, 3:15] = 1
    write_nifti(case / "brain_mask.nii.gz", mask, affine)
    model = save_model(tmp_path / "m.pt", build_network(CFG), CFG, ModelCard.for_config("m", CFG))
    res = CliRunner().invoke(app, ["predict", str(case), "--model", str(model), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    prob = nib.load(str(tmp_path / "out" / "wmh_probability.nii.gz"))
    assert prob.shape == (20, 22, 18) and np.allclose(prob.affine, affine)
    summary = json.loads((tmp_path / "out" / "predict.json").read_text())
    assert summary["inputs_present"] == {"flair": True, "t1": False}


def test_predict_unknown_model_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["predict", str(tmp_path), "--model", "nope", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "nope" in res.output


def test_info_model_reports_complexity(tmp_path: Path) -> None:
    model = save_model(tmp_path / "m.pt", build_network(CFG), CFG, ModelCard.for_config("m", CFG))
    res = CliRunner().invoke(app, ["info", "--json", "--model-source", str(model)])
    assert res.exit_code == 0, res.output
    arch = json.loads(res.output)["architectures"][str(model)]
    assert arch["parameters"] > 0 and arch["gflops_per_patch"] > 0
