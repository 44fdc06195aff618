"""One case end to end: load -> pre-process -> models -> post-process -> analysis -> outputs.

Example:
    >>> from neurolesion.pipeline import segment
    >>> result = segment("dicom_folder/", "out/", tasks=["cmb"])  # doctest: +SKIP
    >>> result.summary["tasks"]["cmb"]["count"]  # doctest: +SKIP
    3
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import neurolesion
from neurolesion.analysis.table import LESION_COLUMNS
from neurolesion.errors import InputError
from neurolesion.io.case import Case, load_case
from neurolesion.io.jsonsafe import json_safe
from neurolesion.io.nifti import save_nifti, save_probability
from neurolesion.registry import TASKS, expand_tasks, tasks_for_sequences

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


@dataclass
class SegmentResult:
    """What `segment` produced.

    Attributes:
        output: the output folder.
        summary: the content of summary.json.
        lesions: the rows of lesions.csv.
        files: output name -> path.
    """

    output: Path
    summary: dict[str, Any]
    lesions: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def plan_tasks(case: Case, requested: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """Choose the tasks to run and say why the others are skipped.

    Args:
        case: the loaded case.
        requested: task or group names; None or ``all`` means every task the sequences allow.

    Returns:
        (tasks to run, {skipped task: reason}).

    Raises:
        InputError: a task was asked for by name and a sequence it needs is missing.
    """
    present = set(case.sequences)
    if not requested or [r.lower() for r in requested] == ["all"]:
        runnable = [t.name for t in tasks_for_sequences(present)]
        skipped = {
            name: f"needs {' and '.join('/'.join(g) for g in t.required)}; have {', '.join(case.sequences)}"
            for name, t in TASKS.items()
            if name not in runnable
        }
        return runnable, skipped
    names = expand_tasks(requested)
    missing = [n for n in names if not TASKS[n].runnable(present)]
    if missing:
        needs = "; ".join(
            f"{n} needs {' and '.join('/'.join(g) for g in TASKS[n].required)}" for n in missing
        )
        raise InputError(
            f"{case.source.get('path', 'input')}: sequence missing: {needs} (have {', '.join(case.sequences)})"
        )
    return names, {}


@contextmanager
def _staging(output: Path) -> Iterator[Path]:
    """A temporary folder beside `output`; its files move into `output` only when the block succeeds."""
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}-partial-", dir=output.parent))
    try:
        yield stage
        output.mkdir(parents=True, exist_ok=True)
        for item in sorted(stage.iterdir()):
            target = output / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class _Clock:
    def __init__(self, progress: Progress | None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str, fraction: float) -> Iterator[None]:
        if self.progress is not None:
            self.progress(name, fraction)
        log.info("stage %s", name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(LESION_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def segment(
    input: str | os.PathLike[str] | Case | None,
    output: str | os.PathLike[str],
    *,
    tasks: Sequence[str] | None = None,
    overrides: Mapping[str, str | os.PathLike[str]] | None = None,
    progress: Progress | None = None,
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    tta: bool | None = None,
    device: str = "cpu",
    precision: str = "auto",
    brain: str = "auto",
    bias_correct: bool = True,
    register: bool = True,
    locate: bool = True,
) -> SegmentResult:
    """Segment one case and write every output of the contract into `output`.

    Args:
        input: DICOM folder, BIDS folder, NIfTI file or folder, or an already loaded Case.
        output: output folder (created; files in it are replaced).
        tasks: task or group names (default: every task the present sequences allow).
        overrides: sequence name -> file or series folder, winning over detection.
        progress: called as ``progress(stage, fraction_done)`` at each stage.
        models: task -> model file or folder, instead of the shipped default for that task.
        tta: mirror test-time augmentation (8x slower per model; None: as each model's card says).
        device: ``cpu`` or ``cuda``.
        precision: network arithmetic, ``auto`` (bfloat16 where the processor has it natively), ``float32``
            or ``bfloat16`` (see `neurolesion.infer.predict`).
        brain: brain extraction method (``auto``; ``nonzero`` for already skull-stripped images; see
            `neurolesion.preprocess.brain.available_methods`).
        bias_correct: N4 bias-field correction before anything else.
        register: rigid co-registration of every sequence to the reference (else trust the scanner).
        locate: register the atlas to give each lesion its region, lobe and side (and the CSVD scores
            their locations).

    Returns:
        The SegmentResult (summary.json content, lesion rows, written files).

    Raises:
        InputError: unusable input or a requested task whose sequences are missing. Nothing is written.
    """
    from neurolesion.analysis import atlas_to_case, csvd_scores, lesion_table, task_totals
    from neurolesion.infer.predict import resolve_precision
    from neurolesion.preprocess.prepare import prepare

    precision = resolve_precision(precision, device)  # refuses an unknown precision before any work
    out = Path(output)
    clock = _Clock(progress)
    with clock.stage("load", 0.0):
        case = input if isinstance(input, Case) else load_case(input, overrides)
        run, skipped = plan_tasks(case, tasks)
    ref = case.reference_volume
    warnings: list[str] = []
    with clock.stage("preprocess", 0.1):
        prepared = prepare(case, brain=brain, bias_correct=bias_correct, register=register)
        warnings.extend(prepared.warnings)
    brain_native = prepared.native_brain_mask()
    # the brain less its CSF, for the tasks whose false-positive rule judges against it (one resampling)
    tissue_native = (
        prepared.native_tissue_mask() if any(t in TASKS and TASKS[t].extra_axial for t in run) else None
    )

    labels: dict[str, np.ndarray] = {}
    probs: dict[str, np.ndarray] = {}
    models_used: dict[str, Any] = {}
    failed: dict[str, str] = {}
    lesion_tasks = [t for t in run if t != "brain"]
    runner = _Models(prepared, tta=tta, device=device, precision=precision)
    for i, task in enumerate(lesion_tasks):
        with clock.stage(f"model:{task}", 0.2 + 0.6 * i / max(len(lesion_tasks), 1)):
            try:
                result = _run_task(task, runner, brain_native, tissue_native, ref.spacing, models)
            except InputError:
                raise
            except Exception as exc:  # one task failing must not lose the others
                log.exception("task %s failed", task)
                failed[task] = f"{type(exc).__name__}: {exc}"
                continue
            if isinstance(result, str):
                skipped[task] = result
                continue
            labels[task], probs[task], models_used[task] = result
            if models_used[task].get("below_target"):
                name, note = models_used[task]["name"], models_used[task]["below_target"]
                warnings.append(f"{task}: model {name} is below its accuracy target: {note}")

    with clock.stage("analysis", 0.85):
        anatomy = None
        try:
            if locate:
                anatomy = atlas_to_case(ref, brain_native)
                warnings.extend(anatomy.warnings)
        except Exception as exc:
            log.exception("atlas registration failed")
            warnings.append(f"anatomical regions unavailable: atlas registration failed ({exc})")
        rows: list[dict[str, Any]] = []
        for task, lab in labels.items():
            rows.extend(lesion_table(lab, ref.affine, task, prob=probs[task], anatomy=anatomy))
        scores = (
            csvd_scores(labels, ref.affine, anatomy) if set(labels) & {"wmh", "cmb", "lacune", "epvs"} else {}
        )

    summary: dict[str, Any] = {
        "neurolesion": neurolesion.__version__,
        "input": {
            "path": str(case.source.get("path", "")),
            "kind": case.source.get("kind"),
            "reference": case.reference,
            "sequences": {
                s: {"shape": list(v.shape), "spacing_mm": [round(x, 4) for x in v.spacing], "file": v.name}
                for s, v in case.images.items()
            },
            "detected_series": case.source.get("series", []),
        },
        "tasks_run": [t for t in run if t not in skipped and t not in failed],
        "tasks_skipped": skipped,
        "tasks_failed": failed,
        "models": models_used,
        "tasks": {t: {"count": 0, "volume_ml": 0.0, **task_totals(rows).get(t, {})} for t in labels},
        "brain_volume_ml": round(float(brain_native.sum()) * float(np.prod(ref.spacing)) / 1000.0, 2),
        "scores": scores,
        "registration": {
            seq: {
                "nmi_before": round(t.nmi_before, 4),
                "nmi_after": round(t.nmi_after, 4),
                "rotation_deg": round(t.rotation_deg, 3),
                "translation_mm": round(t.translation_mm, 3),
                "matrix": np.round(t.matrix, 6).tolist(),  # reference world -> sequence world (RAS mm)
            }
            for seq, t in prepared.registration.items()
        },
        "atlas_registration": anatomy.quality if anatomy is not None else None,
        "warnings": warnings,
        "timings_s": clock.timings,
    }
    with _staging(out) as stage:
        with clock.stage("write", 0.95):
            registration = {seq: t.matrix for seq, t in prepared.registration.items()}
            files = _write_outputs(
                stage, case, brain_native, labels, probs, rows, summary, anatomy, registration
            )
        # Last and once, with every timing (``timings_s`` is the clock's own dict); staging moves it whole.
        files["summary"] = stage / "summary.json"
        summary = json_safe(summary)  # what the file holds, the caller gets: None where no value
        files["summary"].write_text(json.dumps(summary, indent=2, default=str, allow_nan=False))
    if progress is not None:
        progress("done", 1.0)
    return SegmentResult(out, summary, rows, {name: out / p.name for name, p in files.items()})


def _model_for_task(task: str, models: Mapping[str, str | os.PathLike[str]] | None) -> str | None:
    """The model file named for `task` in `models`, else the first shipped model predicting it, else None."""
    from neurolesion.models.card import shipped_models

    if models and task in models:
        return str(models[task])
    return next((card.name for card in shipped_models() if task in card.tasks), None)


#: Models run over the brain mask's bounding box widened by this much (mm), not the whole field of view:
#: room for extra-axial tumours (meningiomas, schwannomas) and a mask that cut into the cortex.
BOX_MARGIN_MM = 16.0


class _Models:
    """Loads each model once and runs it once per case, whatever number of tasks it predicts.

    A multi-output model (e.g. the four CSVD markers) serves several tasks; its probabilities on the model
    grid are kept after the first task asks for them.
    """

    def __init__(self, prepared: Any, *, tta: bool | None, device: str, precision: str) -> None:
        self.prepared, self.tta, self.device, self.precision = prepared, tta, device, precision
        self._loaded: dict[str, Any] = {}
        self._predicted: dict[str, np.ndarray] = {}

    def _model(self, name: str) -> Any:
        from neurolesion.models.card import load_model

        if name not in self._loaded:
            self._loaded[name] = load_model(name)
        return self._loaded[name]

    def card(self, name: str) -> Any:
        """The card of model `name` (loading it once)."""
        return self._model(name).card

    def probability(self, name: str, task: str) -> tuple[np.ndarray, Any]:
        """Probability of `task` on the model grid from model `name`, and the loaded model."""
        from neurolesion.infer.predict import mask_box, predict_volume, stack_inputs

        model = self._model(name)
        card = model.card
        if name not in self._predicted:
            prep = self.prepared
            image, present = stack_inputs(
                prep.normalised(card.normalisation, sequences=card.inputs),
                card.inputs,
                f"model {card.name} for {task}",
                card.required,
            )
            box = (slice(None), *mask_box(prep.brain_mask, prep.grid.spacing, BOX_MARGIN_MM))
            inside = predict_volume(
                model,
                image[box],
                prep.grid.spacing,
                present=present,
                tta=self.tta,
                device=self.device,
                precision=self.precision,
            )
            prob = np.zeros((inside.shape[0], *image.shape[1:]), np.float32)
            prob[box] = inside
            self._predicted[name] = prob
        return self._predicted[name][list(card.tasks).index(task)], model


def _run_task(
    task: str,
    runner: _Models,
    brain_native: np.ndarray,
    tissue_native: np.ndarray | None,
    spacing: tuple[float, float, float],
    models: Mapping[str, str | os.PathLike[str]] | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | str:
    """Predict one task, map it to the reference's native grid and post-process it there; or say why
    the task cannot run (no model, or a sequence its model was always trained with is missing)."""
    from neurolesion.infer.postprocess import postprocess_mapped

    name = _model_for_task(task, models)
    if name is None:
        return "no trained model for this task is installed yet"
    unmet = runner.card(name).unmet_inputs(runner.prepared.images)
    if unmet:
        needs = " and ".join("/".join(g) for g in unmet)
        return f"model {name} needs {needs}; have {', '.join(runner.prepared.images)}"
    prob_model, model = runner.probability(name, task)
    prep = runner.prepared
    prob = prep.to_native(prob_model, order="linear").astype(np.float32)
    lab, _ = postprocess_mapped(
        prob,
        spacing,
        prob_model,
        prep.grid.spacing,
        lambda a: prep.to_native(a, order="linear"),
        parenchyma_mask=brain_native,
        tissue_mask=tissue_native,
        **model.card.postprocess_settings(task),
    )
    used = {
        "name": model.card.name,
        "arch": model.card.arch,
        "source": model.source,
        "tta": model.card.tta if runner.tta is None else runner.tta,
        "precision": runner.precision,
    }
    if model.card.below_target:
        used["below_target"] = model.card.below_target
    return lab, prob, used


def _write_outputs(
    stage: Path,
    case: Case,
    brain: np.ndarray,
    labels: Mapping[str, np.ndarray],
    probs: Mapping[str, np.ndarray],
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    anatomy: Any,
    registration: Mapping[str, np.ndarray],
) -> dict[str, Path]:
    ref = case.reference_volume
    files: dict[str, Path] = {}
    files["brain_mask"] = save_nifti(
        brain.astype(np.uint8), stage / "brain_mask.nii.gz", like=ref, dtype=np.uint8
    )
    for task, lab in labels.items():
        files[f"{task}_labels"] = save_nifti(lab, stage / f"{task}_labels.nii.gz", like=ref, dtype=np.uint16)
        files[f"{task}_probability"] = save_probability(
            probs[task], stage / f"{task}_probability.nii.gz", like=ref
        )
    _write_csv(stage / "lesions.csv", rows)
    files["lesions"] = stage / "lesions.csv"
    series = case.source.get("dicom_series", {}).get(case.reference)
    if series is not None:
        files.update(write_dicom_outputs(stage, series, labels, rows, summary))
    from neurolesion.report import write_report

    try:
        files["report"] = write_report(
            stage,
            summary,
            rows,
            dict(case.images),
            dict(labels),
            brain=brain,
            anatomy=anatomy,
            registration=registration,
        )
    except Exception as exc:
        log.exception("report failed")
        summary["warnings"].append(f"report not written: {type(exc).__name__}: {exc}")
    return files


def write_dicom_outputs(
    stage: Path,
    series: Any,
    labels: Mapping[str, np.ndarray],
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
) -> dict[str, Path]:
    """Write rtstruct.dcm (one ROI per lesion) and seg.dcm (one segment per task) referencing `series`.

    Args:
        stage: folder to write into.
        series: the source `io.dicom.DicomSeries` (the reference sequence) the label maps lie on.
        labels: task -> instance label map on the series' grid.
        rows: lesion table rows (for the ROI names: type and number).
        summary: its ``warnings`` list receives the reason when a DICOM output cannot be written.

    Returns:
        name -> path of what was written (``rtstruct``, ``seg``).
    """
    from neurolesion.io.dicomseg import write_seg
    from neurolesion.io.rtstruct import write_rtstruct

    files: dict[str, Path] = {}
    combined = np.zeros(series.volume.shape, np.int32)
    names: dict[int, str] = {}
    next_id = 1
    for task, lab in labels.items():
        types = {int(r["id"]): str(r["type"]) for r in rows if r["task"] == task}
        for lesion_id in np.unique(lab[lab > 0]):
            combined[lab == lesion_id] = next_id
            names[next_id] = f"{types.get(int(lesion_id), task)} {int(lesion_id)}"
            next_id += 1
    try:
        if names:
            files["rtstruct"] = write_rtstruct(combined, series, stage / "rtstruct.dcm", names=names)
        if labels:
            files["seg"] = write_seg(dict(labels), series, stage / "seg.dcm")
    except Exception as exc:
        log.exception("DICOM outputs failed")
        summary["warnings"].append(f"DICOM outputs not written: {type(exc).__name__}: {exc}")
    return files
