"""Accuracy of one trained model on a folder of held-out simulated cases (common grid).

Runs `predict_files` on every case folder (skipping those already predicted), then `evaluate_folders`
(voxel, surface and lesion-wise metrics with bootstrap CIs, PR/FROC and volume-agreement plots).

    neurolesion synth -t csvd --n 30 --seed 900000 -o data/test_csvd      # seeds never used in training
    python benchmarks/eval_model.py --model runs/wmh/best.pt --cases data/test_csvd --task wmh -o eval/wmh
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from neurolesion.infer.files import predict_files
from neurolesion.metrics.evaluate import evaluate_folders
from neurolesion.models.card import load_model
from neurolesion.registry import TASKS
from neurolesion.train.data import case_folders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--cases", required=True, type=Path)
    ap.add_argument("--task", required=True)
    ap.add_argument("-o", "--output", required=True, type=Path)
    ap.add_argument("--hit-rule", default="centroid")
    args = ap.parse_args()

    model = load_model(args.model)
    pred_root = args.output / "pred"
    seconds = []
    for case in case_folders(args.cases):
        out = pred_root / case.name
        if (out / f"{args.task}_labels.nii.gz").is_file():
            continue
        t0 = time.perf_counter()
        predict_files(model, case, out, min_size_mm3=TASKS[args.task].min_size_mm3)
        seconds.append(time.perf_counter() - t0)
    summary = evaluate_folders(
        pred_root, args.cases, args.output / "metrics", task=args.task, rule=args.hit_rule
    )
    per_case = {k: summary["metrics"][k] for k in ("dice", "lesion_f1", "hd95_mm") if k in summary["metrics"]}
    report = {"cases": summary["n_cases"], "predict_s_per_case": [round(x, 1) for x in seconds]}
    print(json.dumps({**report, "per_case": per_case, "pooled_lesions": summary["lesions"]}, indent=1))


if __name__ == "__main__":
    main()
