"""Accuracy of one trained model on a folder of held-out simulated cases (common grid).

Runs `predict_files` on every case folder (skipping those already predicted), then `evaluate_folders`
(voxel, surface and lesion-wise metrics with bootstrap CIs, PR/FROC and volume-agreement plots), then
matches every case's predicted lesions to its true lesions again (same hit rule) and ties each true lesion
to its record in ``case.json``: ``tables.json`` and ``tables.md`` hold lesion-wise recall by diameter bin
(record ``diameter_mm``, else the mask's maximum 3D diameter), type, subtype and region, pooled precision,
recall and F1, and the issue's requirements for the task (tumour: recall >= 5 mm, recall 2-5 mm,
precision; CMB: F1).

    neurolesion synth -t csvd --n 30 --seed 900000 -o data/test_csvd      # seeds never used in training
    python benchmarks/eval_model.py --model runs/wmh/best.pt --cases data/test_csvd --task wmh -o eval/wmh

The figures, as the model card will hold them, also go to ``card_section.json`` in the output folder,
under ``--card-section`` (default ``synthetic_test``): a second task of the same model, evaluated first
with e.g. ``--card-section synthetic_test_lacune``, enters the card via ``--extra-evaluation``.

By default every case is normalised and post-processed with its own ``brain_mask.nii.gz`` (the
simulator's, which holds every lesion). ``--brain-mask extract`` computes the masks as ``neurolesion
segment`` does instead: `brain_masks` on the case's images (reference sequence first; deepbet on heads
with a skull): the extracted mask for post-processing, that mask less its CSF for the extra-axial
false-positive rule, and the region whose statistics match the training masks' for the normalisation,
saved as ``brain_mask.nii.gz``, ``tissue_mask.nii.gz`` and ``statistics_mask.nii.gz`` beside each
prediction and reused (a folder holding only a brain mask gets the other two derived from it). These
are the figures a user of ``segment`` gets, including the lesions the extracted mask leaves out (bias
correction, registration and resampling, no-ops on a simulated case's common grid, are not run).

``--relabel`` re-derives every case's labels from the probability map an earlier run of the same model
saved in the output folder (the network is not run again), with this run's operating point and masks:
a new operating point measured on the same predictions (the maps are stored to 1/255).

``--min-size-mm3``, ``--min-confidence`` and ``--threshold`` change only the settings given: the others
stay the card's (before session 27 one of them replaced the task's whole operating point, so
``--threshold 0.4`` alone also dropped the card's confidence floor).

With ``--release FILE.pt`` the evaluated model is then exported (`neurolesion.models.card.export_model`:
weights, configuration and a card holding these figures, the command that produced them, any
``--extra-evaluation`` JSON files, e.g. real-scan results, and the ``--limitation`` lines), e.g. into
``src/neurolesion/models/weights/`` to ship it as the default for its tasks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from neurolesion.errors import InputError
from neurolesion.infer.files import predict_files
from neurolesion.infer.postprocess import postprocess
from neurolesion.io.atomic import atomic_path
from neurolesion.io.case import load_case
from neurolesion.io.nifti import load_nifti, save_nifti
from neurolesion.metrics.breakdown import (
    CaseBreakdown,
    acquisition_slice_mm,
    build_tables,
    case_breakdown,
    records_by_id,
    tables_markdown,
)
from neurolesion.metrics.evaluate import evaluate_folders
from neurolesion.metrics.lesionwise import HitRule
from neurolesion.models.card import ModelCard, export_model, load_model
from neurolesion.preprocess.prepare import brain_masks
from neurolesion.train.data import case_folders


def breakdown_case(case: Path, pred_folder: Path, task: str, rule: str, distance_mm: float) -> CaseBreakdown:
    """Match one simulated case's prediction to its truth and its case.json records."""
    truth = load_nifti(case / f"{task}_labels.nii.gz", label=True)
    pred = load_nifti(pred_folder / f"{task}_labels.nii.gz", label=True)
    prob_file = pred_folder / f"{task}_probability.nii.gz"
    prob = load_nifti(prob_file, label=True) if prob_file.is_file() else None
    if not pred.same_grid(truth):
        raise InputError(f"{pred.name}: grid {pred.shape} differs from the truth {truth.name} {truth.shape}")
    records = case / "case.json"  # without one (not a simulated case) every lesion's type is "unknown"
    meta: dict[str, Any] = json.loads(records.read_text()) if records.is_file() else {}
    return case_breakdown(
        case.name,
        pred.data,
        truth.data,
        records_by_id(meta.get("lesions", []), task),
        affine=truth.affine,
        rule=cast(HitRule, rule),
        distance_mm=distance_mm,
        prob=None if prob is None else prob.data,
        slice_mm=acquisition_slice_mm(meta, task),
    )


def extracted_masks(case: Path, out: Path) -> tuple[Path, Path, Path]:
    """The brain, tissue and normalisation-statistics masks `neurolesion segment` computes
    (`neurolesion.preprocess.prepare.brain_masks`) for a case whose images share one grid, saved as
    ``out/brain_mask.nii.gz``, ``out/tissue_mask.nii.gz`` and ``out/statistics_mask.nii.gz`` and reused
    (the case's images are not read again); a saved brain mask alone (a folder from before the tissue
    mask, session 24) is kept and the other two derived from it."""
    files = out / "brain_mask.nii.gz", out / "tissue_mask.nii.gz", out / "statistics_mask.nii.gz"
    if all(f.is_file() for f in files):
        return files
    loaded = load_case(case)
    reference = loaded.images[loaded.reference]
    saved = load_nifti(files[0], label=True).data > 0 if files[0].is_file() else None
    masks = brain_masks({loaded.reference: reference, **loaded.images}, brain=saved)
    out.mkdir(parents=True, exist_ok=True)
    for mask, file in zip(masks, files, strict=True):
        save_nifti(mask.astype(np.uint8), file, like=reference, dtype=np.uint8)
    return files


def postprocess_masks(case: Path, out: Path, brain_mask: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The brain and tissue masks post-processing judges a case's prediction in ``out`` against:
    ``extract``, those `extracted_masks` saves there; ``case``, the case's own brain mask (None without
    one) and no tissue mask."""
    mask_file, tissue_file = (
        extracted_masks(case, out)[:2] if brain_mask == "extract" else (case / "brain_mask.nii.gz", None)
    )
    brain = load_nifti(mask_file, label=True).data > 0 if mask_file.is_file() else None
    tissue = None if tissue_file is None else load_nifti(tissue_file, label=True).data > 0
    return brain, tissue


def relabel(card: ModelCard, task: str, case: Path, out: Path, brain_mask: str) -> None:
    """Rewrite ``out/<task>_labels.nii.gz`` from the saved ``out/<task>_probability.nii.gz`` with the card's
    operating point and the case's masks (`postprocess_masks`), as `predict_files` post-processes on a
    case whose grid is the model's."""
    prob_file = out / f"{task}_probability.nii.gz"
    if not prob_file.is_file():
        raise InputError(f"{prob_file}: no saved probability map to relabel; run without --relabel first")
    prob = load_nifti(prob_file)
    brain, tissue = postprocess_masks(case, out, brain_mask)
    labels, _ = postprocess(
        prob.data, prob.spacing, brain, tissue_mask=tissue, **card.postprocess_settings(task)
    )
    save_nifti(labels, out / f"{task}_labels.nii.gz", like=prob, dtype=np.uint16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--cases", required=True, type=Path)
    ap.add_argument("--task", required=True)
    ap.add_argument("-o", "--output", required=True, type=Path)
    ap.add_argument(
        "--brain-mask",
        choices=("case", "extract"),
        default="case",
        help="case: each case's brain_mask.nii.gz; extract: computed from its images as segment does",
    )
    ap.add_argument("--hit-rule", default="centroid")
    ap.add_argument("--precision", default="auto", help="network arithmetic: auto, float32 or bfloat16")
    ap.add_argument("--distance-mm", type=float, default=5.0, help="centroid hit-rule distance")
    ap.add_argument(
        "--relabel",
        action="store_true",
        help="labels from the probability maps saved in the output folder by an earlier run of this model",
    )
    ap.add_argument("--release", type=Path, help="export the evaluated model to this .pt file")
    ap.add_argument("--release-name", help="name of the released model (default: the checkpoint's)")
    ap.add_argument(
        "--extra-evaluation",
        type=Path,
        action="append",
        default=[],
        help="JSON merged into the card, e.g. another run's card_section.json",
    )
    ap.add_argument(
        "--card-section",
        default="synthetic_test",
        help="name of this evaluation in the card and in the card_section.json written to --output",
    )
    ap.add_argument("--limitation", action="append", default=[], help="a known weakness, for the card")
    ap.add_argument(
        "--below-target", help="one line: what falls short of the accuracy target (segment warns with it)"
    )
    ap.add_argument(
        "--min-size-mm3", type=float, help="operating point for the task (chosen on validation cases)"
    )
    ap.add_argument(
        "--min-confidence", type=float, help="operating point for the task (chosen on validation cases)"
    )
    ap.add_argument(
        "--threshold",
        type=float,
        help="voxel probability threshold for the task (chosen on validation cases)",
    )
    ap.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        help="mirror test-time augmentation, 8 mirrorings (default: as the model card says)",
    )
    args = ap.parse_args()

    model = load_model(args.model)
    point = {
        k: v
        for k, v in (
            ("min_size_mm3", args.min_size_mm3),
            ("min_confidence", args.min_confidence),
            ("threshold", args.threshold),
        )
        if v is not None
    }
    if point:  # evaluate (and release) with this operating point; the settings not given stay the card's
        point = {**model.card.postprocess.get(args.task, {}), **point}
        card = dataclasses.replace(model.card, postprocess={**model.card.postprocess, args.task: point})
        model = dataclasses.replace(model, card=card)
    if args.tta is not None:  # part of the operating point too
        model = dataclasses.replace(model, card=dataclasses.replace(model.card, tta=args.tta))
    pred_root = args.output / "pred"
    seconds = []
    cases = case_folders(args.cases)
    for case in cases:
        out = pred_root / case.name
        if args.relabel:
            relabel(model.card, args.task, case, out, args.brain_mask)
            continue
        if (out / f"{args.task}_labels.nii.gz").is_file():
            continue
        t0 = time.perf_counter()
        mask, tissue, statistics = extracted_masks(case, out) if args.brain_mask == "extract" else (None,) * 3
        predict_files(
            model,
            case,
            out,
            mask=mask,
            statistics_mask=statistics,
            tissue_mask=tissue,
            precision=args.precision,
        )
        seconds.append(time.perf_counter() - t0)
    summary = evaluate_folders(
        pred_root,
        args.cases,
        args.output / "metrics",
        task=args.task,
        rule=args.hit_rule,
        distance_mm=args.distance_mm,
    )
    per_case = {k: summary["metrics"][k] for k in ("dice", "lesion_f1", "hd95_mm") if k in summary["metrics"]}
    report = {"cases": summary["n_cases"], "predict_s_per_case": [round(x, 1) for x in seconds]}
    print(json.dumps({**report, "per_case": per_case, "pooled_lesions": summary["lesions"]}, indent=1))

    breakdowns = [
        breakdown_case(case, pred_root / case.name, args.task, args.hit_rule, args.distance_mm)
        for case in cases
    ]
    tables = {
        **build_tables(breakdowns, task=args.task),
        "hit_rule": args.hit_rule,
        "distance_mm": args.distance_mm,
    }
    markdown = tables_markdown(tables)
    with atomic_path(args.output / "tables.json") as tmp:
        tmp.write_text(json.dumps(tables, indent=1))
    with atomic_path(args.output / "tables.md") as tmp:
        tmp.write_text(markdown + "\n")
    print(markdown)
    metrics = summary["metrics"]
    evaluation: dict[str, Any] = {
        args.card_section: {
            "cases": summary["n_cases"],
            "folder": args.cases.name,
            "dice": metrics.get("dice"),
            "lesion_f1": metrics.get("lesion_f1"),
            "hd95_mm": metrics.get("hd95_mm"),
            "pooled_lesions": tables["pooled"],
            "requirements": tables["requirements"],
            "recall_by_size": tables["by_size"],
            "recall_by_subtype": tables["by_subtype"],
            "recall_by_region": tables["by_region"],
            "recall_by_slice": tables["by_slice"],
            "recall_by_size_thin_slices": tables["by_size_thin_slices"],
            "hit_rule": f"{args.hit_rule} {args.distance_mm} mm",
            "brain_mask": "extract_brain, tissue and statistics masks derived as segment does"
            if args.brain_mask == "extract"
            else "the case's own",
            "command": shlex.join(["python", *sys.argv]),
        }
    }
    with atomic_path(args.output / "card_section.json") as tmp:
        tmp.write_text(json.dumps(evaluation, indent=1))
    if args.release:
        for extra in args.extra_evaluation:
            evaluation.update(json.loads(extra.read_text()))
        out = export_model(
            args.model,
            args.release,
            args.release_name,
            evaluation=evaluation,
            limitations=tuple(args.limitation),
            postprocess=model.card.postprocess,
            tta=model.card.tta,
            below_target=args.below_target,
        )
        print(f"released {out} ({out.stat().st_size / 1e6:.1f} MB) with its card {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
