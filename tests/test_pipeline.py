"""`segment` end to end on a small skull-stripped phantom with tiny untrained models: the output contract."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from neurolesion import InputError
from neurolesion.analysis import LESION_COLUMNS
from neurolesion.metrics import dice
from neurolesion.models.card import ModelCard, export_model, save_model
from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network
from neurolesion.pipeline import BOX_MARGIN_MM, segment
from tests.conftest import write_nifti

# An oblique, anisotropic, left-right flipped grid: outputs must come back on exactly this grid.
AFFINE = np.array(
    [
        [-0.9, 0.1, 0.0, 80.0],
        [0.1, 0.9, 0.0, -100.0],
        [0.0, 0.0, 2.5, -40.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
FAST = {"brain": "nonzero", "bias_correct": False, "register": False, "locate": False}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A skull-stripped 'head': an ellipsoid of tissue (zero outside) with bright blobs on FLAIR."""
    root = tmp_path_factory.mktemp("phantom")
    rng = np.random.default_rng(1)
    x, y, z = np.ogrid[:48, :56, :20]
    brain = ((x - 24) / 20) ** 2 + ((y - 28) / 24) ** 2 + ((z - 10) / 8.5) ** 2 < 1
    flair = np.where(brain, rng.normal(100, 5, brain.shape), 0)
    for cx, cy, cz in ((15, 20, 10), (30, 35, 8)):
        flair[((x - cx) ** 2 + (y - cy) ** 2 + ((z - cz) * 2.8) ** 2) < 16] = 250
    t1 = np.where(brain, rng.normal(80, 5, brain.shape), 0)
    write_nifti(root / "FLAIR.nii.gz", flair.astype(np.float32), AFFINE)
    write_nifti(root / "T1.nii.gz", t1.astype(np.float32), AFFINE)
    return root


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {}
    for task, inputs in (("wmh", ("flair", "t1")), ("lacune", ("flair", "t1")), ("epvs", ("t1", "flair"))):
        cfg = ModelConfig(
            arch="unet", inputs=inputs, outputs=(task,), channels=(4, 8), res_units=0, patch_size=(32, 32, 32)
        )
        out[task] = save_model(root / f"{task}.pt", build_network(cfg), cfg, ModelCard.for_config(task, cfg))
    return out


def _reject_constant(name: str) -> None:
    raise AssertionError(f"summary.json holds {name}, which JSON parsers outside Python reject")


def test_outputs_follow_the_contract_on_the_input_grid(
    phantom: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    stages: list[str] = []
    result = segment(
        phantom, tmp_path / "out", models=tiny_models, progress=lambda s, f: stages.append(s), **FAST
    )
    out = result.output
    expected = {"brain_mask.nii.gz", "lesions.csv", "summary.json", "report.html"}
    expected |= {f"{t}_{kind}.nii.gz" for t in ("wmh", "lacune") for kind in ("labels", "probability")}
    assert expected <= {p.name for p in out.iterdir()}
    assert not [p for p in out.parent.iterdir() if "partial" in p.name]
    for name in expected - {"lesions.csv", "summary.json", "report.html"}:
        img = nib.load(str(out / name))
        assert img.shape == (48, 56, 20) and np.allclose(img.affine, AFFINE, atol=1e-4), name
    brain = np.asarray(nib.load(str(out / "brain_mask.nii.gz")).dataobj)
    flair = np.asarray(nib.load(str(phantom / "FLAIR.nii.gz")).dataobj)
    # The mask went to the 1 mm model grid and back: equal up to boundary voxels.
    assert dice(brain > 0, flair > 0) > 0.97
    with (out / "lesions.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == LESION_COLUMNS
        rows = list(reader)
    labels = np.asarray(nib.load(str(out / "wmh_labels.nii.gz")).dataobj)
    assert sum(r["task"] == "wmh" for r in rows) == len(np.unique(labels[labels > 0]))
    # Strict JSON (browsers, jq): no bare NaN, although the unregistered reference has no NMI.
    summary = json.loads((out / "summary.json").read_text(), parse_constant=_reject_constant)
    assert summary["registration"]["flair"]["nmi_before"] is None
    assert summary["input"]["reference"] == "flair"
    assert summary["tasks_run"] == ["brain", "wmh", "lacune", "epvs"]
    assert "cmb" in summary["tasks_skipped"] and "tumor" in summary["tasks_skipped"]
    assert {"load", "preprocess", "model:wmh", "model:lacune", "analysis", "write"} <= set(
        summary["timings_s"]
    )
    assert stages[0] == "load" and stages[-1] == "done"
    assert np.allclose(summary["registration"]["t1"]["matrix"], np.eye(4))  # register=False: scanner's


def test_a_failing_task_does_not_lose_the_others(
    phantom: Path, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neurolesion.infer.predict as predict

    real = predict.predict_volume

    def flaky(model, image, *args, **kwargs):  # type: ignore[no-untyped-def]
        if model.card.tasks == ("lacune",):
            raise RuntimeError("simulated crash")
        return real(model, image, *args, **kwargs)

    monkeypatch.setattr(predict, "predict_volume", flaky)
    result = segment(phantom, tmp_path / "out", models=tiny_models, **FAST)
    assert result.summary["tasks_failed"] == {"lacune": "RuntimeError: simulated crash"}
    assert (result.output / "wmh_labels.nii.gz").is_file()
    assert not (result.output / "lacune_labels.nii.gz").exists()


def test_missing_sequence_for_a_named_task_writes_nothing(phantom: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cmb needs t2star/swi"):
        segment(phantom, tmp_path / "out", tasks=["cmb"], **FAST)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_model_serving_several_tasks_runs_once(
    phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neurolesion.infer.predict as predict

    cfg = ModelConfig(
        arch="unet",
        inputs=("flair", "t1"),
        outputs=("wmh", "lacune"),
        channels=(4, 8),
        res_units=0,
        patch_size=(32, 32, 32),
    )
    both = save_model(tmp_path / "both.pt", build_network(cfg), cfg, ModelCard.for_config("both", cfg))
    calls: list[tuple[str, ...]] = []
    real = predict.predict_volume

    def counting(model, image, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(model.card.tasks)
        return real(model, image, *args, **kwargs)

    monkeypatch.setattr(predict, "predict_volume", counting)
    result = segment(
        phantom, tmp_path / "out", models={"wmh": both, "lacune": both}, tasks=["wmh", "lacune"], **FAST
    )
    assert calls == [("wmh", "lacune")]
    assert {"wmh", "lacune"} <= set(result.summary["tasks_run"])
    assert (result.output / "lacune_probability.nii.gz").is_file()


def test_summary_is_written_once_with_every_timing(
    phantom: Path, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    real = Path.write_text

    def spy(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name.startswith(("summary", ".summary")):
            written.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", spy)
    result = segment(phantom, tmp_path / "out", models=tiny_models, **FAST)
    assert written == ["summary.json"]
    summary = json.loads((result.output / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary, default=str))
    assert "write" in summary["timings_s"]
    assert result.files["summary"] == result.output / "summary.json"


@pytest.mark.parametrize(("floor", "kept"), [(0.9, True), (0.99, False)])
def test_confidence_floor_is_taken_on_the_model_grid(
    phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, floor: float, kept: bool
) -> None:
    # A lesion with maximum 0.95 on the 1 mm model grid, 1 mm thick at z = -31: on the 2.5 mm output
    # slices (z = -32.5, -30) its maximum is 0.7. A floor of 0.9 must keep it, 0.99 must drop it.
    import dataclasses

    import neurolesion.pipeline as pipeline

    cfg = ModelConfig(
        arch="unet",
        inputs=("flair", "t1"),
        outputs=("wmh",),
        channels=(4, 8),
        res_units=0,
        patch_size=(32, 32, 32),
    )
    card = dataclasses.replace(
        ModelCard.for_config("wmh", cfg), postprocess={"wmh": {"min_confidence": floor}}
    )
    path = save_model(tmp_path / "wmh.pt", build_network(cfg), cfg, card)
    real = pipeline._Models.probability

    def planted(self, name, task):  # type: ignore[no-untyped-def]
        _, model = real(self, name, task)
        grid = self.prepared.grid
        prob = np.zeros(grid.shape, np.float32)
        assert np.allclose(grid.affine[2, :3], [0, 0, 1])  # model-grid slice k lies at z = affine[2, 3] + k
        k = round(float(-31 - grid.affine[2, 3]))
        cx, cy, _ = np.argwhere(self.prepared.brain_mask).mean(0).astype(int)
        prob[cx - 3 : cx + 3, cy - 3 : cy + 3, k] = 0.95
        prob[cx - 3 : cx + 3, cy - 3 : cy + 3, [k - 1, k + 1]] = 0.7
        return prob, model

    monkeypatch.setattr(pipeline._Models, "probability", planted)
    result = segment(phantom, tmp_path / "out", models={"wmh": path}, tasks=["wmh"], **FAST)
    labels = np.asarray(nib.load(str(result.output / "wmh_labels.nii.gz")).dataobj)
    native_max = np.asarray(nib.load(str(result.output / "wmh_probability.nii.gz")).dataobj).max()
    assert 0.5 < native_max < 0.9
    assert labels.max() == (1 if kept else 0)


def test_a_model_missing_a_sequence_it_was_trained_with_is_skipped_with_the_reason(
    phantom: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    cfg = ModelConfig(
        arch="unet",
        inputs=("t2", "flair", "t1"),
        outputs=("lacune",),
        channels=(4, 8),
        res_units=0,
        patch_size=(32, 32, 32),
    )
    card = ModelCard.for_config("lacune-t2", cfg, required=(("t2",),))  # trained with T2 always present
    needs_t2 = save_model(tmp_path / "lacune-t2.pt", build_network(cfg), cfg, card)
    result = segment(
        phantom, tmp_path / "out", models={"wmh": tiny_models["wmh"], "lacune": needs_t2}, **FAST
    )
    assert "wmh" in result.summary["tasks_run"] and "lacune" not in result.summary["tasks_run"]
    assert result.summary["tasks_skipped"]["lacune"] == "model " + str(needs_t2) + " needs t2; have flair, t1"
    assert not (result.output / "lacune_labels.nii.gz").exists()


def test_models_run_over_the_brain_box_and_probabilities_stay_on_the_whole_grid(
    phantom: Path, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neurolesion.infer.predict as predict

    shapes: list[tuple[int, ...]] = []
    real = predict.predict_volume

    def recording(model, image, *args, **kwargs):  # type: ignore[no-untyped-def]
        shapes.append(image.shape[1:])
        return real(model, image, *args, **kwargs)

    monkeypatch.setattr(predict, "predict_volume", recording)
    for margin in (1000.0, 2.0):  # the whole model grid, then the brain's box
        monkeypatch.setattr("neurolesion.pipeline.BOX_MARGIN_MM", margin)
        out = tmp_path / f"out{margin:g}"
        result = segment(phantom, out, models={"wmh": tiny_models["wmh"]}, tasks=["wmh"], **FAST)
        assert nib.load(str(result.output / "wmh_probability.nii.gz")).shape == (48, 56, 20)
    whole, box = shapes
    assert all(b <= w for b, w in zip(box, whole, strict=True)) and np.prod(box) < 0.8 * np.prod(whole)


def test_a_model_below_its_target_says_so_in_the_warnings(
    phantom: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    draft = export_model(tiny_models["wmh"], tmp_path / "draft.pt", below_target="Dice 0.5 vs 0.85")
    result = segment(phantom, tmp_path / "out", models={"wmh": draft}, tasks=["wmh"], **FAST)
    assert "wmh: model wmh is below its accuracy target: Dice 0.5 vs 0.85" in result.summary["warnings"]
    assert result.summary["models"]["wmh"]["below_target"] == "Dice 0.5 vs 0.85"
    plain = segment(phantom, tmp_path / "out2", models={"wmh": tiny_models["wmh"]}, tasks=["wmh"], **FAST)
    assert not any("below its accuracy target" in w for w in plain.summary["warnings"])


def test_precision_reaches_the_models_and_the_summary(
    phantom: Path, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neurolesion.infer.predict as predict

    asked: list[str] = []
    real = predict.predict_volume

    def recording(model, image, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(kwargs["precision"])
        return real(model, image, *args, **kwargs)

    monkeypatch.setattr(predict, "predict_volume", recording)
    result = segment(
        phantom,
        tmp_path / "out",
        models={"wmh": tiny_models["wmh"]},
        tasks=["wmh"],
        precision="bfloat16",
        **FAST,
    )
    assert asked == ["bfloat16"]
    assert result.summary["models"]["wmh"]["precision"] == "bfloat16"
    assert result.summary["models"]["wmh"]["tta"] is False
    with pytest.raises(InputError, match="precision 'fp16'"):
        segment(phantom, tmp_path / "bad", models={"wmh": tiny_models["wmh"]}, precision="fp16", **FAST)
    assert not (tmp_path / "bad").exists()


def test_each_model_gets_the_normalisation_its_card_names(
    phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neurolesion.infer.predict as predict
    import neurolesion.preprocess.prepare as prepare_module

    seen: dict[str, np.ndarray] = {}
    made: list[prepare_module.Prepared] = []
    real_predict, real_prepare = predict.predict_volume, prepare_module.prepare

    def recording(model, image, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen[model.card.normalisation] = image
        return real_predict(model, image, *args, **kwargs)

    def keeping(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(real_prepare(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(predict, "predict_volume", recording)
    monkeypatch.setattr(prepare_module, "prepare", keeping)
    models = {}
    for task, normalisation in (("wmh", "zscore-brain"), ("lacune", "median-brain")):
        cfg = ModelConfig(
            inputs=("flair", "t1"),
            outputs=(task,),
            channels=(4, 8),
            res_units=0,
            patch_size=(32, 32, 32),
            normalisation=normalisation,
        )
        models[task] = save_model(
            tmp_path / f"{task}.pt", build_network(cfg), cfg, ModelCard.for_config(task, cfg)
        )
    segment(phantom, tmp_path / "out", models=models, tasks=["wmh", "lacune"], **FAST)
    (prepared,) = made
    box = predict.mask_box(prepared.brain_mask, prepared.grid.spacing, BOX_MARGIN_MM)
    for name in ("zscore-brain", "median-brain"):
        expected = np.stack([prepared.normalised(name)[s][box] for s in ("flair", "t1")])
        np.testing.assert_allclose(seen[name], expected, atol=1e-6)
    assert not np.allclose(seen["zscore-brain"], seen["median-brain"], atol=0.1)


def test_extra_axial_candidates_are_judged_against_the_brain_less_its_csf(
    phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tumours are extra-axial (registry): segment gives their post-processing the tissue mask (the brain
    # less its CSF), every other task the brain mask.
    import importlib
    import shutil

    from neurolesion.preprocess.prepare import Prepared

    # the module, not the function `neurolesion.infer` exports under the same name
    postprocess_module = importlib.import_module("neurolesion.infer.postprocess")

    case = tmp_path / "case"
    shutil.copytree(phantom, case)
    shutil.copy(phantom / "T1.nii.gz", case / "T1C.nii.gz")
    sentinels: list[np.ndarray] = []

    def tissue_mask(self: Prepared) -> np.ndarray:
        sentinels.append(np.zeros_like(self.native_brain_mask()))
        return sentinels[-1]

    judged: dict[bool, np.ndarray] = {}
    real = postprocess_module.postprocess_mapped

    def spy(
        *args: Any, parenchyma_mask: np.ndarray, tissue_mask: np.ndarray, extra_axial: bool, **kw: Any
    ) -> Any:
        # the mask each task's false-positive rule judges against (`postprocess`)
        judged[extra_axial] = tissue_mask if extra_axial else parenchyma_mask
        return real(
            *args, parenchyma_mask=parenchyma_mask, tissue_mask=tissue_mask, extra_axial=extra_axial, **kw
        )

    monkeypatch.setattr(Prepared, "native_tissue_mask", tissue_mask)
    monkeypatch.setattr(postprocess_module, "postprocess_mapped", spy)
    models = {}
    for task, inputs in (("tumor", ("t1c", "flair")), ("wmh", ("flair", "t1"))):
        cfg = ModelConfig(
            arch="unet", inputs=inputs, outputs=(task,), channels=(4, 8), patch_size=(32, 32, 32)
        )
        models[task] = save_model(
            tmp_path / f"{task}.pt", build_network(cfg), cfg, ModelCard.for_config(task, cfg)
        )
    segment(case, tmp_path / "out", models=models, tasks=["tumor", "wmh"], **FAST)
    assert len(sentinels) == 1 and judged[True] is sentinels[0]
    assert judged[False] is not sentinels[0] and judged[False].any()
