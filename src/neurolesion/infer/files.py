"""Run one trained model on images from disk and write its probability and lesion maps (`neurolesion predict`).

Unlike `neurolesion segment`, nothing is resampled or co-registered here: the model's input sequences must
already share one grid (as in a simulated case folder or a pre-processed study). Images are z-scored inside
the brain mask (``brain_mask.nii.gz`` in the input folder, or ``mask``; the whole image otherwise).

Example:
    >>> summary = predict_files(load_model("runs/wmh/best.pt"), "case_0001/", "out/")  # doctest: +SKIP
    >>> summary["tasks"]["wmh"]["count"]  # doctest: +SKIP
    12
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from neurolesion.errors import InputError
from neurolesion.infer.postprocess import check_operating_point, postprocess_mapped
from neurolesion.infer.predict import predict_volume, resize_to_shape, resize_to_spacing, stack_inputs
from neurolesion.io.atomic import atomic_path
from neurolesion.io.case import load_case
from neurolesion.io.nifti import load_nifti, save_nifti, save_probability
from neurolesion.models.card import LoadedModel
from neurolesion.preprocess.normalize import normaliser


def _mask(path: str | os.PathLike[str], shape: tuple[int, ...]) -> np.ndarray:
    mask = load_nifti(path, label=True).data > 0
    if mask.shape != shape:
        raise InputError(f"{path}: mask shape {mask.shape} differs from the image grid {shape}")
    return mask


def predict_files(
    model: LoadedModel,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    mask: str | os.PathLike[str] | None = None,
    tta: bool | None = None,
    device: str | None = None,
    threshold: float | None = None,
    min_size_mm3: float = 0.0,
    precision: str = "auto",
    statistics_mask: str | os.PathLike[str] | None = None,
    tissue_mask: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Predict every task of ``model`` on one case and write ``<task>_probability.nii.gz``,
    ``<task>_labels.nii.gz`` and ``predict.json`` into ``output``.

    Args:
        model: a loaded model.
        input: NIfTI file named after its sequence, folder of such files, BIDS or DICOM folder.
        output: output folder (created).
        mask: brain mask NIfTI (default: ``brain_mask.nii.gz`` beside the images, else none).
        tta: mirror test-time augmentation (None: as the model card says).
        device: torch device.
        threshold: probability threshold of the lesion maps (None: the model card's, else 0.5).
        min_size_mm3: smallest lesion kept, for every task (each task's registry minimum and the model
            card's operating point, `ModelCard.postprocess_settings`, apply anyway and may raise it).
        precision: network arithmetic, ``auto``, ``float32`` or ``bfloat16`` (see `predict_volume`).
        statistics_mask: NIfTI mask whose voxels give the normalisation statistics (default: the brain
            mask), e.g. the one `neurolesion segment` uses (`neurolesion.preprocess.prepare.brain_masks`).
        tissue_mask: NIfTI mask the false-positive rule of ``extra_axial`` tasks judges against (default:
            the brain mask), e.g. the brain less its CSF that `neurolesion segment` uses.

    Returns:
        ``{"model", "inputs_present", "tasks": {task: {"count", "volume_ml", "confidence"}}}``.

    Raises:
        InputError: none of the model's sequences found, images on different grids, or a threshold
            outside (0, 1).
    """
    if threshold is not None:  # before any work: the card's own point was checked when it was loaded
        check_operating_point(threshold=threshold, where=str(input))
    card = model.card
    case = load_case(input)
    present = [s in case.images for s in card.inputs]
    unmet = card.unmet_inputs(case.images)
    if unmet:
        needs = " and ".join(" or ".join(g) for g in unmet)
        raise InputError(
            f"{input}: model {card.name} needs {needs}; found {', '.join(case.images) or 'none'}"
        )
    ref = case.images[next(s for s, p in zip(card.inputs, present, strict=True) if p)]
    for s in card.inputs:
        vol = case.images.get(s)
        if vol is not None and (vol.shape != ref.shape or not np.allclose(vol.affine, ref.affine, atol=1e-3)):
            raise InputError(
                f"{vol.name}: grid {vol.shape} differs from {ref.name} {ref.shape}; predict needs images on one "
                "grid (use `neurolesion segment`, which co-registers)"
            )
    mask_path = Path(mask) if mask else Path(input) / "brain_mask.nii.gz"
    brain = _mask(mask_path, ref.shape) if mask_path.is_file() else None
    statistics, tissue = (
        brain if path is None else _mask(path, ref.shape) for path in (statistics_mask, tissue_mask)
    )
    normalise = normaliser(card.normalisation, model.source)  # the one the model was trained with
    normalised = {s: normalise(case.images[s], statistics).data for s in card.inputs if s in case.images}
    image, present = stack_inputs(normalised, card.inputs, str(input), card.required)
    # Predict on the model grid and keep that map: the card's confidence floor is applied there, as
    # `neurolesion segment` does (interpolation onto thick slices lowers every lesion's maximum).
    model_spacing = model.config.spacing
    on_model = resize_to_spacing(image, ref.spacing, model_spacing)
    prob_model = predict_volume(
        model, on_model, model_spacing, present=present, tta=tta, device=device, precision=precision
    )

    def to_input(a: np.ndarray) -> np.ndarray:
        return resize_to_shape(a[None], ref.shape)[0]

    prob = resize_to_shape(prob_model, ref.shape)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    voxel_ml = float(np.prod(ref.spacing)) / 1000.0
    tasks: dict[str, Any] = {}
    for k, task in enumerate(card.tasks):
        settings = card.postprocess_settings(task)
        settings["min_size_mm3"] = max(settings["min_size_mm3"], min_size_mm3)
        if threshold is not None:
            settings["threshold"] = threshold
        labels, conf = postprocess_mapped(
            prob[k],
            ref.spacing,
            prob_model[k],
            model_spacing,
            to_input,
            brain,
            tissue_mask=tissue,
            **settings,
        )
        save_probability(prob[k], out / f"{task}_probability.nii.gz", like=ref)
        save_nifti(labels, out / f"{task}_labels.nii.gz", like=ref, dtype=np.uint16)
        tasks[task] = {
            "count": len(conf),
            "volume_ml": round(float((labels > 0).sum()) * voxel_ml, 4),
            "confidence": {str(i): c for i, c in conf.items()},
        }
    summary = {
        "model": {"name": card.name, "arch": card.arch, "source": model.source},
        "inputs_present": {s: p for s, p in zip(card.inputs, present, strict=True)},
        "tasks": tasks,
    }
    with atomic_path(out / "predict.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
