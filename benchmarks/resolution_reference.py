"""How much of a task's truth each simulated case's acquisition can resolve: a reference Dice for its models.

The simulator draws every label map on the 1 mm working grid, then acquires each sequence at its own
resolution (a Gaussian blur of one acquisition voxel, sampling on the acquisition grid, Gibbs ringing,
interpolation back to 1 mm; `neurolesion.synth.acquisition`). This script passes each case's truth mask,
as a noise-free image of infinite contrast, through that same chain with the case's own protocol
(``case.json``) and thresholds it at one half: the lesion as the acquisition shows it at best. Its Dice
with the truth is what a reader of that one sequence could draw without knowing the lesions' shapes
beforehand; it is a reference, not a strict bound (a network that has learnt the shapes, or combines
sequences acquired along other axes, may do better; one that faces noise and faint lesions does worse).

Per case it reports the reference on the task's primary sequence (the first of its first required group,
as `neurolesion.metrics.breakdown` splits slice thickness) and the best over the sequences given; with
``--per-case`` (an `eval_model.py` run's ``metrics/per_case.csv``) it sets the model's Dice beside it,
split into thin (at most 1.5 mm) and thick slices of the primary sequence:

    python benchmarks/resolution_reference.py --cases data/synth/test_csvd4 --task wmh \
        --per-case runs/eval/wmh/metrics/per_case.csv -o runs/eval/wmh_resolution.json

Only common-grid cases whose working grid is the label grid (``neurolesion synth``'s default) are
supported; other cases are refused with the reason.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from neurolesion.errors import InputError
from neurolesion.io.nifti import load_nifti
from neurolesion.metrics.breakdown import THIN_SLICE_MM, acquisition_slice_mm
from neurolesion.metrics.overlap import dice
from neurolesion.registry import TASKS
from neurolesion.synth import acquisition as acqmod
from neurolesion.train.data import case_folders


def seen_through(
    mask: np.ndarray, protocol: dict[str, Any], work_spacing: tuple[float, float, float]
) -> np.ndarray:
    """The mask as one acquisition shows it: blurred, sampled and interpolated back, thresholded at 0.5.

    Args:
        mask: (X, Y, Z) boolean mask on the working grid.
        protocol: one sequence's entry of a case.json ``acquisition`` (spacing, plane, oblique, gibbs_kept).
        work_spacing: voxel size of the working grid, mm.

    Returns:
        Boolean mask of the same shape: where the noise-free acquired image of the mask is at least 0.5.

    Example:
        >>> m = np.zeros((20, 20, 20), bool); m[8:12, 8:12, 9:11] = True
        >>> thin = {"spacing": [1.0, 1.0, 1.0], "plane": "axial", "oblique": [0, 0, 0]}
        >>> thick = {**thin, "spacing": [1.0, 1.0, 6.0]}
        >>> int(seen_through(m, thin, (1.0, 1.0, 1.0)).sum()), int(seen_through(m, thick, (1.0, 1.0, 1.0)).sum())
        (32, 0)
    """
    acq = acqmod.Acquisition(
        sequence=str(protocol.get("sequence", "")),
        spacing=tuple(float(s) for s in protocol["spacing"]),
        plane=str(protocol["plane"]),
        oblique=tuple(float(a) for a in protocol.get("oblique", (0.0, 0.0, 0.0))),
        snr=float("inf"),
        bias=0.0,
        ghosts=0.0,
        gibbs_kept=float(protocol.get("gibbs_kept", 1.0)),
    )
    image = acqmod.degrade(mask.astype(np.float32), acq, work_spacing, np.random.default_rng(0))
    image, _ = acqmod.sample_along_working_axes(image, acq, work_spacing)
    return np.asarray(acqmod.resize(image, mask.shape, order=1) >= 0.5)


def case_reference(case: Path, task: str, sequences: tuple[str, ...]) -> dict[str, Any] | None:
    """One case's reference Dice per sequence (None when its truth is empty).

    Raises:
        InputError: the case is not a common-grid simulation whose working grid is its label grid.
    """
    meta = json.loads((case / "case.json").read_text())
    if meta.get("grid") != "common" or meta.get("working_grid") != meta.get("label_grid"):
        raise InputError(
            f"{case / 'case.json'}: grid {meta.get('grid')!r}, working grid {meta.get('working_grid', {}).get('shape')}"
            f" vs label grid {meta.get('label_grid', {}).get('shape')}; expected a common-grid case simulated"
            " on its label grid (neurolesion synth's default)"
        )
    truth = load_nifti(case / f"{task}_labels.nii.gz", label=True)
    mask = truth.data > 0
    if not mask.any():
        return None
    spacing = (float(truth.spacing[0]), float(truth.spacing[1]), float(truth.spacing[2]))
    acquisitions = meta.get("acquisition", {})
    by_sequence = {
        seq: dice(seen_through(mask, acquisitions[seq], spacing), mask)
        for seq in sequences
        if seq in acquisitions
    }
    return {
        "case": case.name,
        "slice_mm": acquisition_slice_mm(meta, task),
        "lesion_voxels": int(mask.sum()),
        "by_sequence": by_sequence,
        "primary": next(iter(by_sequence.values()), None),
        "best": max(by_sequence.values(), default=None),
    }


def summarise(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean of ``key`` over all rows and over thin and thick slices of the primary sequence."""
    out: dict[str, Any] = {}
    for name, keep in (
        ("all", lambda r: True),
        ("thin", lambda r: r["slice_mm"] is not None and r["slice_mm"] <= THIN_SLICE_MM),
        ("thick", lambda r: r["slice_mm"] is not None and r["slice_mm"] > THIN_SLICE_MM),
    ):
        values = [r[key] for r in rows if keep(r) and r.get(key) is not None]
        out[name] = {"mean": float(np.mean(values)) if values else None, "n": len(values)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", required=True, help="folder of simulated case folders")
    ap.add_argument("--task", required=True, choices=sorted(t for t in TASKS if t != "brain"))
    ap.add_argument(
        "--sequences", nargs="+", help="sequences to pass the truth through (default: the task's inputs)"
    )
    ap.add_argument(
        "--per-case", help="an eval_model.py run's metrics/per_case.csv: the model's Dice beside it"
    )
    ap.add_argument("-o", "--output", required=True, help="JSON report")
    args = ap.parse_args(argv)
    spec = TASKS[args.task]
    sequences = tuple(
        args.sequences or dict.fromkeys([s for g in spec.required for s in g] + list(spec.optional))
    )
    try:
        model: dict[str, float] = {}
        if args.per_case:
            with open(args.per_case, newline="") as f:
                model = {r["case"]: float(r["dice"]) for r in csv.DictReader(f)}
        rows = []
        for case in case_folders(args.cases):
            row = case_reference(case, args.task, sequences)
            if row is None:
                continue
            if args.per_case:
                if case.name not in model:
                    raise InputError(
                        f"{args.per_case}: no row for case {case.name}; expected every case of {args.cases}"
                    )
                row["model"] = model[case.name]
            rows.append(row)
    except (InputError, OSError, KeyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    report = {
        "cases": args.cases,
        "task": args.task,
        "sequences": list(sequences),
        "reference_primary": summarise(rows, "primary"),
        "reference_best": summarise(rows, "best"),
        "model": summarise(rows, "model") if args.per_case else None,
        "rows": rows,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    for key in ("reference_primary", "reference_best", "model"):
        if report[key]:
            parts = [
                f"{k} {v['mean']:.3f} (n={v['n']})" for k, v in report[key].items() if v["mean"] is not None
            ]
            sys.stdout.write(f"{key}: " + ", ".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
