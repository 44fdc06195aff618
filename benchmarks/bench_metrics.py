"""Benchmark of neurolesion.metrics.

Targets (issue 3): HD95 and lesion-wise matching on a 256³ volume with 200 lesions in under 2 s on one
core; a 100-case evaluation (NIfTI reading, every metric, summary with bootstrap CIs, plots) in under a
minute.

Run: OMP_NUM_THREADS=1 nice python benchmarks/bench_metrics.py [--cases 100] [--shape 182 218 182]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("OMP_NUM_THREADS", "1")
T = TypeVar("T")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from neurolesion.metrics import match_lesions, surface_metrics  # noqa: E402
from neurolesion.metrics.evaluate import evaluate_folders  # noqa: E402


def lesion_volume(shape: tuple[int, int, int], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Truth with `n` balls (radius 1-6 voxels) and a prediction that shifts, drops and adds lesions."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.uint8)
    prob = np.zeros(shape, np.float32)
    for i in range(n):
        r = rng.uniform(1.0, 6.0)
        c = rng.uniform(8, np.array(shape) - 8)
        lo = np.maximum(np.floor(c - r - 2).astype(int), 0)
        hi = np.minimum(np.ceil(c + r + 2).astype(int), shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"))
        dist = np.sqrt(((grid - c[:, None, None, None]) ** 2).sum(0))
        truth[box] |= dist <= r
        if i % 10 != 0:  # 10 % missed
            shift = rng.normal(0, 0.7, 3)
            d_pred = np.sqrt(((grid - (c + shift)[:, None, None, None]) ** 2).sum(0))
            prob[box] = np.maximum(
                prob[box], np.where(d_pred <= r * rng.uniform(0.8, 1.2), rng.uniform(0.5, 1), 0)
            )
    for _ in range(n // 10):  # false positives
        c = rng.integers(4, np.array(shape) - 4)
        prob[c[0] - 1 : c[0] + 2, c[1] - 1 : c[1] + 2, c[2] - 1 : c[2] + 2] = rng.uniform(0.5, 0.8)
    return prob, truth


def timed(fn: Callable[[], T], repeat: int = 3) -> tuple[str, T]:
    """Best wall and CPU time of `repeat` calls ("wall X s, cpu Y s"), and the last result.

    CPU time is the figure to trust on a shared machine: wall time grows with the other processes' load.
    """
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return f"wall {min(wall):.3f} s, cpu {min(cpu):.3f} s", out


def bench_single(spacing: tuple[float, float, float]) -> None:
    prob, truth = lesion_volume((256, 256, 256), 200, seed=0)
    pred = prob >= 0.5
    t_hd, sm = timed(lambda: surface_metrics(pred, truth, spacing))
    print(f"256^3, 200 lesions: surface metrics (HD95, HD, ASSD, surface Dice) {t_hd}  {sm}")
    for rule in ("centroid", "overlap", "coverage"):
        t_m, m = timed(lambda rule=rule: match_lesions(prob, truth, spacing, rule=rule))
        print(f"256^3, 200 lesions: match_lesions rule={rule:<8} {t_m}  TP {m.tp} FP {m.fp} FN {m.fn}")
    t_both, _ = timed(lambda: (surface_metrics(pred, truth, spacing), match_lesions(prob, truth, spacing)))
    print(f"256^3, 200 lesions: HD95 + centroid matching together {t_both} (target < 2 s)")


def bench_folder(n_cases: int, shape: tuple[int, int, int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        affine = np.diag([1.0, 1.0, 1.0, 1.0])
        (root / "truth").mkdir()
        t0 = time.perf_counter()
        for i in range(n_cases):
            prob, truth = lesion_volume(shape, 15, seed=100 + i)
            nib.save(nib.Nifti1Image(truth, affine), str(root / "truth" / f"case{i:03d}.nii.gz"))
            case = root / "pred" / f"case{i:03d}"
            case.mkdir(parents=True)
            nib.save(nib.Nifti1Image((prob >= 0.5).astype(np.uint8), affine), str(case / "wmh_labels.nii.gz"))
            nib.save(nib.Nifti1Image(prob, affine), str(case / "wmh_probability.nii.gz"))
        print(f"(writing {n_cases} synthetic cases took {time.perf_counter() - t0:.1f} s, not counted)")
        elapsed, summary = timed(
            lambda: evaluate_folders(root / "pred", root / "truth", root / "eval", task="wmh"), repeat=1
        )
        print(
            f"{n_cases}-case evaluation of {shape} volumes (labels + probability maps, bootstrap CIs, plots): "
            f"{elapsed} (target < 60 s); mean Dice {summary['metrics']['dice']['mean']:.3f}, "
            f"lesion F1 {summary['lesions']['f1']:.3f}, AP {summary['curves']['average_precision']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--shape", type=int, nargs=3, default=(182, 218, 182))
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    bench_single((0.9, 0.9, 1.2))
    bench_folder(args.cases, tuple(args.shape))


if __name__ == "__main__":
    main()
