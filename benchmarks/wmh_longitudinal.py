"""WMH lesion detection on real raw clinical scans: the new and enlarged MS lesions of real-ms/longitudinal.

    python benchmarks/wmh_longitudinal.py -o OUT [--model FILE] [--studies 2] [--json OUT/summary.json]

patient19 (the other real check) was skull-stripped and warped to MNI space by its publishers; these scans
are raw (FLAIR 0.72 x 0.72 x 3 mm, T1 and T2 on their own grids, with skull, bias field). Each study goes
through `neurolesion.segment` with ``tasks=["wmh"]`` (the shipped `wmh-unet` unless ``--model``). The
patients' ``gt.nii.gz`` marks the lesion *change* between study 1 and study 2 (new or enlarged lesions) in a
common space: each of its 26-connected components is a lesion, or the grown part of one, present in study 2.
The fraction of them that the study-2 WMH labels touch (overlap rule) is a lesion recall on raw clinical
scans; precision cannot be measured here (the other lesions are not marked). Study 1 is a control: a new
lesion should not be there (an enlarged one partly is). Labels and probabilities are carried from the FLAIR
grid to the common space by ``studyN_FLAIR_to_common_space.txt`` (common point -> FLAIR point, as in
`bench_preprocess.py`).

Per lesion: volume, hit, maximum WMH probability inside it; summarised by size (under 10, 10-30, 30-100,
100 mm³ and more).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cc3d
import numpy as np
from bench_preprocess import LONGITUDINAL, longitudinal_case

from neurolesion.io.nifti import load_nifti
from neurolesion.pipeline import segment
from neurolesion.preprocess.registration import matrix_from_itk_file
from neurolesion.preprocess.resample import Grid, resample

PATIENTS = ("patient01", "patient12")
BINS = ((0.0, 10.0, "<10"), (10.0, 30.0, "10-30"), (30.0, 100.0, "30-100"), (100.0, np.inf, ">=100"))


def change_lesions(patient: str, study: int, output: Path, model: str | None) -> list[dict[str, Any]]:
    """Segment one study and score every change lesion of the patient's mask against its WMH output."""
    folder = LONGITUDINAL / patient
    out = output / f"{patient}_study{study}"
    if not (out / "wmh_labels.nii.gz").exists():
        segment(
            longitudinal_case(patient, study),
            out,
            tasks=["wmh"],
            models={"wmh": model} if model else None,
            locate=False,
        )
    truth = load_nifti(folder / "gt.nii.gz", label=True)
    to_flair = matrix_from_itk_file(str(folder / f"study{study}_FLAIR_to_common_space.txt"))
    grid = Grid.of(truth)
    labels = resample(
        load_nifti(out / "wmh_labels.nii.gz", label=True), grid, order="nearest", transform=to_flair
    )
    prob = resample(load_nifti(out / "wmh_probability.nii.gz"), grid, transform=to_flair)
    components = cc3d.connected_components(truth.data > 0, connectivity=26)
    voxel_mm3 = float(np.prod(truth.spacing))
    rows = []
    for index in range(1, int(components.max()) + 1):
        inside = components == index
        rows.append(
            {
                "patient": patient,
                "study": study,
                "volume_mm3": round(float(inside.sum()) * voxel_mm3, 1),
                "hit": bool((labels.data[inside] > 0).any()),
                "max_probability": round(float(prob.data[inside].max()), 3),
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Recall and median maximum probability per size bin and overall."""
    summary: dict[str, Any] = {}
    for low, high, name in (*BINS, (0.0, np.inf, "all")):
        chosen = [r for r in rows if low <= r["volume_mm3"] < high]
        if chosen:
            summary[name] = {
                "lesions": len(chosen),
                "hit": sum(r["hit"] for r in chosen),
                "recall": round(sum(r["hit"] for r in chosen) / len(chosen), 3),
                "median_max_probability": round(float(np.median([r["max_probability"] for r in chosen])), 3),
            }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="segmentations (reused when present)"
    )
    parser.add_argument("--model", help="WMH model file instead of the shipped wmh-unet")
    parser.add_argument("--studies", type=int, nargs="+", default=[2, 1], help="studies to segment (1, 2)")
    parser.add_argument("--json", type=Path, help="write per-lesion rows and summaries here")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    for study in args.studies:
        rows = [
            row for patient in PATIENTS for row in change_lesions(patient, study, args.output, args.model)
        ]
        result[f"study{study}"] = {"summary": summarise(rows), "lesions": rows}
        for name, figures in result[f"study{study}"]["summary"].items():
            print(f"study {study} {name:>6} mm3: {figures}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
