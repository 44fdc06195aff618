"""`predict_files`: the card's operating point (confidence floor on the model grid, voxel threshold), statistics mask."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.infer import files
from neurolesion.models.card import ModelCard, load_model, save_model
from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network
from tests.conftest import write_nifti

CFG = ModelConfig(inputs=("flair",), outputs=("wmh",), channels=(4, 8), patch_size=(16, 16, 16))


def test_confidence_floor_applies_on_the_model_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Input with 2.5 mm slices: 6 slices become 15 on the 1 mm model grid, whose slice k lies at
    # model-grid z = 2.5 k + 0.75, so a one-slice lesion sure at 0.95 reads 0.79 on the input grid.
    affine = np.diag([1.0, 1.0, 2.5, 1.0])
    image = np.random.default_rng(0).normal(100, 10, (20, 22, 6)).astype(np.float32)
    write_nifti(tmp_path / "case" / "flair.nii.gz", image, affine)
    prob_model = np.zeros((1, 20, 22, 15), np.float32)
    prob_model[0, 4:8, 4:8, 3] = 0.95  # sure, thin: kept although its input-grid maximum is 0.79
    prob_model[0, 4:8, 4:8, [2, 4]] = 0.3
    prob_model[0, 12:16, 12:16, 7:11] = 0.6  # unsure: dropped

    def fake_predict(model: Any, image: np.ndarray, spacing: Any, **kw: Any) -> np.ndarray:
        assert image.shape == (1, 20, 22, 15) and tuple(spacing) == (1.0, 1.0, 1.0)
        return prob_model

    monkeypatch.setattr(files, "predict_volume", fake_predict)
    card = replace(ModelCard.for_config("m", CFG), postprocess={"wmh": {"min_confidence": 0.9}})
    model = load_model(save_model(tmp_path / "m.pt", build_network(CFG), CFG, card))
    summary = files.predict_files(model, tmp_path / "case", tmp_path / "out")
    labels = np.asarray(nib.load(str(tmp_path / "out" / "wmh_labels.nii.gz")).dataobj)
    assert labels.shape == (20, 22, 6)
    assert summary["tasks"]["wmh"]["count"] == 1
    assert labels[5, 5, 1] == 1 and labels[13, 13, 3] == 0
    assert summary["tasks"]["wmh"]["confidence"]["1"] == pytest.approx(0.79, abs=0.01)


def test_voxel_threshold_comes_from_the_card_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = np.random.default_rng(1).normal(100, 10, (12, 12, 12)).astype(np.float32)
    write_nifti(tmp_path / "case" / "flair.nii.gz", image)
    prob_model = np.zeros((1, 12, 12, 12), np.float32)
    prob_model[0, 3:9, 3:9, 3:9] = 0.45  # a faint rim...
    prob_model[0, 5:7, 5:7, 5:7] = 0.95  # ...around a sure core
    monkeypatch.setattr(files, "predict_volume", lambda *a, **k: prob_model)

    def volume(threshold: float | None, card_threshold: float | None) -> int:
        point = {} if card_threshold is None else {"wmh": {"threshold": card_threshold}}
        card = replace(ModelCard.for_config("m", CFG), postprocess=point)
        model = load_model(save_model(tmp_path / "m.pt", build_network(CFG), CFG, card))
        files.predict_files(model, tmp_path / "case", tmp_path / "out", threshold=threshold)
        return int((np.asarray(nib.load(str(tmp_path / "out" / "wmh_labels.nii.gz")).dataobj) > 0).sum())

    assert volume(None, None) == 8  # 0.5 by default: the core
    assert volume(None, 0.4) == 216  # the card's 0.4: core and rim
    assert volume(0.5, 0.4) == 8  # the caller wins
    with pytest.raises(InputError, match="threshold 1.5"):
        volume(1.5, None)


def test_statistics_mask_gives_the_normalisation_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Left half about 100, right half about 300: a z-score over the left half alone puts the left near 0.
    image = np.random.default_rng(2).normal(100, 5, (12, 12, 12)).astype(np.float32)
    image[6:] += 200
    write_nifti(tmp_path / "case" / "flair.nii.gz", image)
    left = np.zeros((12, 12, 12), np.uint8)
    left[:6] = 1
    write_nifti(tmp_path / "stats.nii.gz", left)
    seen: list[np.ndarray] = []

    def fake_predict(model: Any, image: np.ndarray, spacing: Any, **kw: Any) -> np.ndarray:
        seen.append(image)
        return np.zeros((1, *image.shape[1:]), np.float32)

    monkeypatch.setattr(files, "predict_volume", fake_predict)
    model = load_model(save_model(tmp_path / "m.pt", build_network(CFG), CFG, ModelCard.for_config("m", CFG)))
    files.predict_files(model, tmp_path / "case", tmp_path / "whole")
    files.predict_files(
        model, tmp_path / "case", tmp_path / "left", statistics_mask=tmp_path / "stats.nii.gz"
    )
    whole, on_left = seen
    assert whole[0, :6].mean() < -0.5  # the whole image's mean lies between the halves
    # the left half's statistics; the right half clipped at the left's 99.5th percentile
    assert abs(float(on_left[0, :6].mean())) < 0.1 and on_left[0, 6:].min() > 2
    write_nifti(tmp_path / "small.nii.gz", np.ones((4, 4, 4), np.uint8))
    with pytest.raises(InputError, match="small.nii.gz: mask shape"):
        files.predict_files(
            model, tmp_path / "case", tmp_path / "bad", statistics_mask=tmp_path / "small.nii.gz"
        )


def test_extra_axial_candidates_are_judged_against_the_tissue_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two sure candidates inside the brain mask; the first lies where the tissue mask (the brain less its
    # CSF) has nothing: a vessel among the CSF. Tumours are extra-axial (registry): the first is dropped.
    write_nifti(tmp_path / "case" / "t1c.nii.gz", np.random.default_rng(4).normal(100, 10, (14, 14, 14)))
    write_nifti(tmp_path / "case" / "brain_mask.nii.gz", np.ones((14, 14, 14), np.uint8))
    tissue = np.ones((14, 14, 14), np.uint8)
    tissue[1:6, 1:6, 1:6] = 0
    write_nifti(tmp_path / "tissue.nii.gz", tissue)
    prob = np.zeros((1, 14, 14, 14), np.float32)
    prob[0, 2:5, 2:5, 2:5] = 0.95
    prob[0, 8:11, 8:11, 8:11] = 0.95
    monkeypatch.setattr(files, "predict_volume", lambda *a, **k: prob)
    tumor = ModelConfig(inputs=("t1c",), outputs=("tumor",), channels=(4, 8), patch_size=(16, 16, 16))
    wmh = ModelConfig(inputs=("t1c",), outputs=("wmh",), channels=(4, 8), patch_size=(16, 16, 16))

    def count(config: ModelConfig, tissue_mask: Path | None, statistics_mask: Path | None = None) -> int:
        card = ModelCard.for_config("m", config)
        model = load_model(save_model(tmp_path / "m.pt", build_network(config), config, card))
        summary = files.predict_files(
            model,
            tmp_path / "case",
            tmp_path / "out",
            statistics_mask=statistics_mask,
            tissue_mask=tissue_mask,
        )
        return int(summary["tasks"][config.outputs[0]]["count"])

    assert count(tumor, None) == 2  # judged against the brain mask: both lie in it
    assert count(tumor, tmp_path / "tissue.nii.gz") == 1
    assert count(tumor, None, tmp_path / "tissue.nii.gz") == 2  # the statistics mask is not the tissue mask
    assert (
        count(wmh, tmp_path / "tissue.nii.gz") == 2
    )  # not extra-axial: the periphery rule, on the brain mask


def test_a_multi_task_model_gets_each_task_its_own_minimum_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one candidate of 8 mm3 in both outputs: the registry's 14 mm3 floor for lacunes must not reach the
    # EPVS (2 mm3), with no floor given (`ModelCard.postprocess_settings` takes each task's own)
    write_nifti(tmp_path / "case" / "t1.nii.gz", np.random.default_rng(5).normal(100, 10, (14, 14, 14)))
    prob = np.zeros((2, 14, 14, 14), np.float32)
    prob[:, 5:7, 5:7, 5:7] = 0.95
    monkeypatch.setattr(files, "predict_volume", lambda *a, **k: prob)
    config = ModelConfig(inputs=("t1",), outputs=("lacune", "epvs"), channels=(4, 8), patch_size=(16, 16, 16))
    model = load_model(
        save_model(tmp_path / "m.pt", build_network(config), config, ModelCard.for_config("m", config))
    )
    summary = files.predict_files(model, tmp_path / "case", tmp_path / "out")
    assert summary["tasks"]["lacune"]["count"] == 0 and summary["tasks"]["epvs"]["count"] == 1
    summary = files.predict_files(model, tmp_path / "case", tmp_path / "all", min_size_mm3=14.0)
    assert summary["tasks"]["epvs"]["count"] == 0  # one number applies to every task
