"""Where should `segment` take its normalisation statistics? The brain-extraction mask, or parts of it.

Every model was trained on simulated images z-scored over the simulator's brain mask, which holds brain
tissue and the ventricles but not the CSF of the sulci and around the brain. `segment` used to z-score
over deepbet's mask, which keeps that CSF (12 % of the mask on a simulated case): a train / inference
mismatch that compresses every z-value. This benchmark runs the pre-processing of `segment` once per
simulated case (N4, registration, deepbet) and then one model with the statistics from four masks:

- ``brain``: deepbet's mask (what `segment` did before session 14);
- ``tissue``: deepbet's mask less its CSF (`Prepared.tissue`, `neurolesion.preprocess.normalize.parenchyma`:
  sessions 14-23);
- ``statistics``: that mask less its outer 2 mm plus the ventricles (`Prepared.statistics`,
  `neurolesion.preprocess.normalize.statistics_mask`: what it does now);
- ``truth``: the simulator's brain mask (the training convention; simulated cases only).

Labels follow the model card (operating point, TTA), as in `segment`, and are scored on the case's grid
against its labels (lesion-wise F1 with the centroid rule, Dice)::

    python benchmarks/normalisation_mask.py --cases data/synth/tune_wmh --task wmh --n 10 -o OUT
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurolesion.infer.postprocess import postprocess_mapped
from neurolesion.infer.predict import mask_box, predict_volume, stack_inputs
from neurolesion.io.case import load_case
from neurolesion.io.nifti import load_nifti
from neurolesion.metrics.lesionwise import match_lesions
from neurolesion.metrics.overlap import dice
from neurolesion.models.card import load_model, shipped_models
from neurolesion.pipeline import BOX_MARGIN_MM
from neurolesion.preprocess.prepare import prepare
from neurolesion.preprocess.resample import resample
from neurolesion.train.data import case_folders

SEQUENCES = ("flair", "t1", "t2", "t1c", "t2star", "swi")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, required=True, help="simulated case folders")
    ap.add_argument("--task", default="wmh")
    ap.add_argument("--model", default=None, help="model (default: the task's shipped model)")
    ap.add_argument("--n", type=int, default=10, help="first N cases")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    name = args.model or next(c.name for c in shipped_models() if args.task in c.tasks)
    model = load_model(name)
    card = model.card
    args.output.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for folder in case_folders(args.cases)[: args.n]:
        files = {s: folder / f"{s}.nii.gz" for s in SEQUENCES if (folder / f"{s}.nii.gz").is_file()}
        case = load_case(None, {s: str(f) for s, f in files.items()})
        prep = prepare(case)
        truth_file = folder / f"{args.task}_labels.nii.gz"
        truth = load_nifti(truth_file, label=True)
        sim_brain = load_nifti(folder / "brain_mask.nii.gz", label=True)
        on_model = resample(
            sim_brain.with_array(sim_brain.data.astype(np.float32)), prep.grid, order="nearest"
        )
        masks = {
            "brain": prep.brain_mask,
            "tissue": prep.tissue,
            "statistics": prep.statistics,  # what prepare() took them from
            "truth": on_model.data > 0.5,
        }
        box = (slice(None), *mask_box(prep.brain_mask, prep.grid.spacing, BOX_MARGIN_MM))
        brain_native = prep.native_brain_mask()
        tissue_native = prep.native_tissue_mask()  # the extra-axial rule's, as segment passes it
        spacing = tuple(float(s) for s in truth.spacing)
        row: dict[str, Any] = {"case": folder.name, "truth_lesions": int(len(np.unique(truth.data)) - 1)}
        for name, stats in masks.items():
            images = prep.normalised(card.normalisation, stats)
            image, present = stack_inputs(images, card.inputs, card.name, card.required)
            inside = predict_volume(model, image[box], prep.grid.spacing, present)
            prob = np.zeros((inside.shape[0], *image.shape[1:]), np.float32)
            prob[box] = inside
            prob_model = prob[list(card.tasks).index(args.task)]
            lab, _ = postprocess_mapped(
                prep.to_native(prob_model, order="linear").astype(np.float32),
                spacing,
                prob_model,
                prep.grid.spacing,
                partial(prep.to_native, order="linear"),
                parenchyma_mask=brain_native,
                tissue_mask=tissue_native,
                **card.postprocess_settings(args.task),
            )
            m = match_lesions(lab, truth.data > 0, spacing, rule="centroid", distance_mm=5.0)
            row[name] = {
                "statistics_fraction": round(float(stats.sum() / prep.brain_mask.sum()), 3),
                "tp": m.tp,
                "fp": m.fp,
                "fn": m.fn,
                "dice": float(dice(lab > 0, truth.data > 0)) if truth.data.any() else None,
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    pooled: dict[str, Any] = {}
    for name in ("brain", "tissue", "statistics", "truth"):
        tp = sum(r[name]["tp"] for r in rows)
        fp = sum(r[name]["fp"] for r in rows)
        fn = sum(r[name]["fn"] for r in rows)
        dices = [r[name]["dice"] for r in rows if r[name]["dice"] is not None]
        pooled[name] = {
            "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1),
            "f1": 2 * tp / max(2 * tp + fp + fn, 1),
            "mean_dice": float(np.mean(dices)) if dices else None,
            "fp": fp,
        }
    print(json.dumps(pooled, indent=1))
    (args.output / "normalisation_mask.json").write_text(
        json.dumps({"cases": rows, "pooled": pooled}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
