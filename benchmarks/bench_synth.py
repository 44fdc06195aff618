"""Simulator speed: one full 1 mm case (every task, every sequence) and the patch stream's throughput.

Times are CPU seconds of this process (numpy/BLAS pinned to one thread, so CPU time = one core's time even
on a busy machine) plus wall-clock seconds, per stage of a case. Writing the case folder is timed apart.

    python benchmarks/bench_synth.py                 # 3 cases, common grid, then native grid
    python benchmarks/bench_synth.py --cases 5 --patches 64
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np


def time_cases(grid: str, n: int) -> None:
    from neurolesion.synth.case import SynthConfig, simulate_case

    cpu, wall, write = [], [], []
    for seed in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        case = simulate_case(100 + seed, ["all"], None, SynthConfig(grid=grid))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        with tempfile.TemporaryDirectory() as tmp:
            w1 = time.perf_counter()
            case.write(Path(tmp) / case.case_id)
            write.append(time.perf_counter() - w1)
        n_lesions = len(case.records)
        shapes = {s: v.shape for s, v in case.images.items()}
        print(
            f"  {grid} seed {100 + seed}: {cpu[-1]:.1f} s CPU, {wall[-1]:.1f} s wall, {n_lesions} lesions {shapes}"
        )
    print(
        f"{grid:>6} grid, all tasks, 6 sequences: CPU {np.mean(cpu):.1f} s (max {np.max(cpu):.1f}), "
        f"wall {np.mean(wall):.1f} s, write {np.mean(write):.1f} s per case"
    )


def time_patches(n: int) -> None:
    from neurolesion.synth.patches import PatchStream

    stream = PatchStream(
        tasks=["wmh", "cmb", "lacune", "epvs"], sequences=["flair", "t1", "t2", "swi"], seed=1
    )
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in islice(iter(stream), n):
        pass
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(
        f"patch stream (64^3, 4 CSVD tasks, 4 sequences, {stream.patches_per_head} patches/head): "
        f"{n / cpu:.2f} patches per CPU second, {n / wall:.2f} per wall second ({n} patches)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--patches", type=int, default=48)
    args = parser.parse_args()
    from neurolesion.synth.case import working_anatomy

    t0 = time.perf_counter()
    working_anatomy(1)
    print(f"anatomy (cached npz or first derivation): {time.perf_counter() - t0:.1f} s")
    for grid in ("common", "native"):
        time_cases(grid, args.cases)
    time_patches(args.patches)


if __name__ == "__main__":
    main()
