"""Time the lesion table: 200 lesions of mixed sizes on a 256^3 grid (target: a couple of seconds).

Run: python benchmarks/bench_lesion_table.py
"""

from __future__ import annotations

import time

import numpy as np

from neurolesion.analysis.table import lesion_table


def main() -> None:
    rng = np.random.default_rng(0)
    shape = (256, 256, 256)
    labels = np.zeros(shape, np.int32)
    prob = rng.random(shape, dtype=np.float32) * 0.5
    for lesion_id in range(1, 201):
        radius = rng.choice([1.0, 2.0, 4.0, 8.0, 15.0])
        centre = rng.uniform(radius + 2, 254 - radius, size=3)
        lo = np.maximum(np.floor(centre - radius).astype(int), 0)
        hi = np.ceil(centre + radius).astype(int) + 1
        x, y, z = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        ball = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius**2
        labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][ball] = lesion_id
    affine = np.diag([0.9, 0.9, 1.2, 1.0])
    for name, aff in (("axial grid", affine), ("oblique grid", _oblique(affine))):
        start, cpu = time.perf_counter(), time.process_time()
        rows = lesion_table(labels, aff, "cmb", prob=prob)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"lesion_table, {name}: {len(rows)} lesions on {shape}: {wall:.2f} s ({cpu:.2f} s CPU)")


def _oblique(affine: np.ndarray) -> np.ndarray:
    a = np.radians(20)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    out = affine.copy()
    out[:3, :3] = rot @ affine[:3, :3]
    return out


if __name__ == "__main__":
    main()
