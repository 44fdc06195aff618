"""Brain extraction benchmark of a trained brain model (a checkpoint or the shipped one) against deepbet.

    python benchmarks/bench_brain.py --model runs/brain1/best.pt                  # held-out simulated heads
    python benchmarks/bench_brain.py --model runs/brain1/best.pt --deepbet        # and deepbet on each
    python benchmarks/bench_brain.py --model runs/brain1/best.pt --real           # real raw FLAIR/T1/T2

Simulated: every sequence of each case of --cases (default ../data/synth/test_csvd2, heads with skull that
no training run saw) alone through `extract_brain` on its native 1 mm grid; Dice and volume ratio against
the case's brain_mask.nii.gz (SynthStrip convention: parenchyma + inner CSF).
Real (--real): real-ms/longitudinal patient01/patient12, two studies each, through `prepare` with the
model as brain method (all three contrasts averaged) and with each contrast alone; Dice in the common
space against brainmask_common (the scoring of bench_preprocess.py --dice, which gives deepbet's figures).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from neurolesion.io.nifti import load_nifti
from neurolesion.preprocess.brain import extract_brain, model_method, register_brain_method
from neurolesion.volume import Volume

ROOT = Path(__file__).resolve().parents[1]
SEQUENCES = ("t1", "t1c", "t2", "flair", "t2star", "swi")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def run_simulated(cases: Path, n: int, methods: list[str]) -> None:
    scores: dict[tuple[str, str], list[float]] = {}
    print("case sequence method dice volume_ratio seconds")
    for folder in sorted(p for p in cases.iterdir() if (p / "brain_mask.nii.gz").is_file())[:n]:
        truth = load_nifti(folder / "brain_mask.nii.gz", label=True).data > 0
        for seq in SEQUENCES:
            path = folder / f"{seq}.nii.gz"
            if not path.is_file():
                continue
            image = load_nifti(path)
            for method in methods:
                start = time.perf_counter()
                mask = extract_brain({seq: image}, method)
                seconds = time.perf_counter() - start
                d = dice(mask, truth)
                scores.setdefault((method, seq), []).append(d)
                print(
                    folder.name, seq, method, f"{d:.4f}", f"{mask.sum() / truth.sum():.3f}", f"{seconds:.1f}"
                )
    print("# mean Dice per method and sequence")
    for method in methods:
        row = {seq: np.mean(v) for (m, seq), v in scores.items() if m == method}
        overall = np.mean([x for (m, _), v in scores.items() if m == method for x in v])
        print(method, " ".join(f"{s} {d:.4f}" for s, d in row.items()), f"all {overall:.4f}")


def run_real(method: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_preprocess import FILES, STUDIES, common_space_dice, longitudinal_case

    from neurolesion.preprocess.prepare import prepare

    print("patient study variant flair t1 t2")
    for patient, study in STUDIES:
        case = longitudinal_case(patient, study)
        prepared = prepare(case, brain=method)
        variants = {f"{method}-all": prepared.brain_mask}
        for seq in FILES:  # percentile-nonzero scaling undoes prepare's z-score (both affine)
            image = Volume(prepared.images[seq], prepared.grid.affine)
            variants[f"{method}-{seq}-only"] = extract_brain({seq: image}, method)
        for name, mask in variants.items():
            s = common_space_dice(prepared, case, patient, study, mask)
            print(patient, study, name, *(f"{s[q]:.4f}" for q in FILES), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model file or checkpoint (default: the shipped brain model)")
    parser.add_argument("--cases", type=Path, default=ROOT.parent / "data" / "synth" / "test_csvd2")
    parser.add_argument("--n", type=int, default=10, help="simulated cases")
    parser.add_argument("--deepbet", action="store_true", help="also deepbet on each simulated image")
    parser.add_argument("--real", action="store_true", help="real raw longitudinal scans instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    method = "model"
    if args.model:
        method = "checkpoint"
        register_brain_method(method)(model_method(args.model))
    if args.real:
        run_real(method)
    else:
        run_simulated(args.cases, args.n, [method] + (["deepbet"] if args.deepbet else []))


if __name__ == "__main__":
    main()
