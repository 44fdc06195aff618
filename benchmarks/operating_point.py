"""Choose a model's operating point (smallest lesion kept, lowest lesion confidence kept) on tuning cases.

Predicts every case once (probability maps), then sweeps `postprocess`'s ``min_size_mm3`` (never below
the task's registry minimum, which `segment` applies anyway) and ``min_confidence`` and reports, for each
pair, the pooled lesion-wise precision, recall and F1 (hit rule as in `eval_model.py`) and the mean Dice
over the cases that hold lesions. The rule: the pair with the best F1; among pairs within ``--tolerance``
of it, the smallest size floor, then the lowest confidence floor (the most sensitive of the nearly-best).
With ``--thresholds``, the pair is chosen so at every voxel probability threshold, and the threshold then
among those chosen rows: the best mean Dice among the thresholds within ``--tolerance`` of their best F1
(a joint choice: a card's pair at 0.4 need not be the pair chosen at 0.5). Use cases the model never
trained on and that are NOT the test set (a training fold's validation cases, or freshly simulated tuning
cases with their own seeds), then pass the choice to `eval_model.py --min-size-mm3 --min-confidence
[--threshold]`:

    neurolesion synth -t tumor --n 8 --seed 131000 -o data/synth/tune_tumor -s t1c -s flair
    python benchmarks/operating_point.py --model runs/tumor/best.pt --cases data/synth/tune_tumor \
        --task tumor -o runs/oppoint_tumor

``--brain-mask extract`` chooses with the masks ``neurolesion segment`` computes, as `eval_model.py` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from eval_model import extracted_masks, postprocess_masks  # benchmarks/, the script's own folder

from neurolesion.errors import InputError
from neurolesion.infer.files import predict_files
from neurolesion.infer.postprocess import check_operating_point, postprocess
from neurolesion.io.nifti import load_nifti
from neurolesion.metrics.lesionwise import match_lesions
from neurolesion.metrics.overlap import dice
from neurolesion.models.card import load_model
from neurolesion.registry import TASKS
from neurolesion.train.data import case_folders

SIZES = (0.0, 3.0, 10.0, 20.0, 40.0)


def size_floors(task: str, sizes: tuple[float, ...] = SIZES) -> tuple[float, ...]:
    """The size floors worth sweeping for `task`: those of `sizes` at or above the registry's minimum, and
    that minimum, which `segment` applies whatever the card says (`ModelCard.postprocess_settings`).

    Example:
        >>> size_floors("lacune"), size_floors("wmh")
        ((14.0, 20.0, 40.0), (3.0, 10.0, 20.0, 40.0))
    """
    floor = TASKS[task].min_size_mm3 if task in TASKS else 0.0
    return tuple(sorted({max(float(s), floor) for s in sizes}))


CONFIDENCES = (0.5, 0.6, 0.7, 0.8, 0.9)


def sweep(
    cases: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, tuple[float, ...]]],
    sizes: tuple[float, ...],
    confidences: tuple[float, ...],
    rule: str,
    distance_mm: float,
    threshold: float = 0.5,
    extra_axial: bool = False,
) -> list[dict[str, float]]:
    """Pooled lesion P/R/F1 and mean Dice for every (min_confidence, min_size_mm3) pair; each case is
    ``(probability, truth, brain mask, tissue mask, spacing)`` (``extra_axial``: the task's false-positive
    rule, `neurolesion.registry.Task`, which judges against the tissue mask)."""
    rows = []
    for conf in confidences:
        for size in sizes:
            tp = fp = fn = 0
            dices = []
            for prob, truth, brain, tissue, spacing in cases:
                labels, _ = postprocess(
                    prob,
                    spacing,
                    brain,
                    threshold=threshold,
                    min_size_mm3=size,
                    min_confidence=conf,
                    extra_axial=extra_axial,
                    tissue_mask=tissue,
                )
                m = match_lesions(labels, truth, spacing=spacing, rule=rule, distance_mm=distance_mm)
                tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
                if truth.any():
                    dices.append(dice(labels > 0, truth > 0))
            p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
            f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
            rows.append(
                {
                    "threshold": threshold,
                    "min_confidence": conf,
                    "min_size_mm3": size,
                    "dice": float(np.mean(dices)) if dices else float("nan"),
                    "precision": p,
                    "recall": r,
                    "f1": f1,
                    "tp": tp,
                    "fp": fp,
                    "fn": fn,
                }
            )
    return rows


def choose(rows: list[dict[str, float]], tolerance: float) -> dict[str, float]:
    """The most sensitive pair (smallest size floor, then lowest confidence floor) within ``tolerance``
    of the best F1."""
    best = max(r["f1"] for r in rows)
    near = [r for r in rows if r["f1"] >= best - tolerance]
    return min(near, key=lambda r: (r["min_size_mm3"], r["min_confidence"]))


def choose_threshold(rows: list[dict[str, float]], tolerance: float) -> dict[str, float]:
    """Among the rows chosen at several voxel thresholds (each its own best pair), the one with the best
    mean Dice whose F1 is within ``tolerance`` of the best F1 (the threshold moves the lesions' borders more
    than their count; ties go to the threshold nearest 0.5)."""
    best = max(r["f1"] for r in rows)
    near = [r for r in rows if r["f1"] >= best - tolerance]
    return max(near, key=lambda r: (r["dice"], -abs(r["threshold"] - 0.5)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument(
        "--cases",
        required=True,
        nargs="+",
        help="folders of tuning cases (never the test set); several folders are pooled",
    )
    ap.add_argument("--task", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument(
        "--brain-mask",
        choices=("case", "extract"),
        default="case",
        help="case: each case's brain_mask.nii.gz; extract: computed from its images as segment does",
    )
    ap.add_argument("--hit-rule", default="centroid")
    ap.add_argument("--precision", default="auto", help="network arithmetic: auto, float32 or bfloat16")
    ap.add_argument("--distance-mm", type=float, default=5.0)
    ap.add_argument("--tolerance", type=float, default=0.02, help="F1 margin of the nearly-best pairs")
    ap.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        help="mirror test-time augmentation, 8 mirrorings (default: as the model card says)",
    )
    ap.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=[0.5],
        help="voxel probability thresholds, each with its own chosen pair (0.5 is always among them; default 0.5 "
        "only)",
    )
    args = ap.parse_args(argv)
    try:
        for threshold in args.thresholds:
            check_operating_point(threshold=threshold, where="--thresholds")
        folders = [case for root in args.cases for case in case_folders(root)]
    except InputError as exc:
        ap.error(str(exc))
    names = [case.name for case in folders]
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        ap.error(f"--cases: {repeated} occur in more than one folder; expected every case name once")
    model = load_model(args.model)
    out = Path(args.output)
    extra_axial = model.card.postprocess_settings(args.task)["extra_axial"]
    cases = []
    for case in folders:
        pred = out / case.name
        mask_file, tissue_file, statistics = (
            extracted_masks(case, pred)
            if args.brain_mask == "extract"
            else (case / "brain_mask.nii.gz", None, None)
        )
        if not (pred / f"{args.task}_probability.nii.gz").is_file():
            predict_files(
                model,
                case,
                pred,
                mask=mask_file if mask_file.is_file() else None,
                statistics_mask=statistics,
                tissue_mask=tissue_file,
                tta=args.tta,
                precision=args.precision,
            )
        prob = load_nifti(pred / f"{args.task}_probability.nii.gz")
        truth = load_nifti(case / f"{args.task}_labels.nii.gz", label=True)
        brain, tissue = postprocess_masks(case, pred, args.brain_mask)
        cases.append((prob.data, truth.data, brain, tissue, tuple(float(s) for s in truth.spacing)))
    thresholds = sorted({0.5, *args.thresholds})
    by_pair = {
        t: sweep(cases, size_floors(args.task), CONFIDENCES, args.hit_rule, args.distance_mm, t, extra_axial)
        for t in thresholds
    }
    rows = [r for t in thresholds for r in by_pair[t]]
    by_threshold = [choose(by_pair[t], args.tolerance) for t in thresholds] if len(thresholds) > 1 else []
    chosen = choose_threshold(by_threshold, args.tolerance) if by_threshold else choose(rows, args.tolerance)
    lines = [
        "| voxel threshold | min confidence | min size mm3 | Dice | precision | recall | F1 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['threshold']:g} | {r['min_confidence']:.1f} | {r['min_size_mm3']:g} | {r['dice']:.3f} | "
        f"{r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} |"
        for r in rows
    ]
    if by_threshold:
        lines += [
            "",
            "| voxel threshold | its pair (min size mm3 / confidence) | Dice | precision | recall | F1 |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['threshold']:g} | {r['min_size_mm3']:g} / {r['min_confidence']:.1f} | {r['dice']:.3f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} |"
            for r in by_threshold
        ]
    report: dict[str, Any] = {
        "model": args.model,
        "cases": names,
        "task": args.task,
        "hit_rule": args.hit_rule,
        "distance_mm": args.distance_mm,
        "tolerance": args.tolerance,
        "brain_mask": args.brain_mask,
        "rows": rows,
        "threshold_rows": by_threshold,
        "chosen": chosen,
    }
    (out / "operating_point.json").write_text(json.dumps(report, indent=2))
    (out / "operating_point.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.write(
        f"chosen: --min-size-mm3 {chosen['min_size_mm3']:g} --min-confidence {chosen['min_confidence']:g} "
        + (f"--threshold {chosen['threshold']:g} " if by_threshold else "")
        + f"(F1 {chosen['f1']:.3f}, Dice {chosen['dice']:.3f})\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
