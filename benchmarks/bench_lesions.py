"""Benchmark of the lesion generators (neurolesion.synth.lesions) on the 1 mm working grid.

Target (issue 4): a whole case's lesions (every generator, in the simulator's order) well under 5 s on one
core at 1 mm. Reports CPU time per generator for default (random) cases and for heavy cases (20
metastases + meningioma + schwannoma, 10 CCMs, Fazekas 3 WMH, 15 lacunes, EPVS rating 4 in both regions,
30 CMBs, every mimic).

Run: OMP_NUM_THREADS=1 nice python benchmarks/bench_lesions.py [--cases 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from neurolesion.synth.case import working_anatomy
from neurolesion.synth.deform import HeadConfig, random_head
from neurolesion.synth.lesions import ccm, cmb, epvs, lacune, mimics, tumor, wmh

ORDER = (("tumor", tumor), ("ccm", ccm), ("wmh", wmh), ("lacune", lacune), ("epvs", epvs), ("cmb", cmb))
HEAVY: dict[str, dict[str, object]] = {
    "tumor": {"kinds": ("metastasis", "meningioma", "schwannoma"), "met_count": 20},
    "ccm": {"count": 10},
    "wmh": {"fazekas_pv": 3, "fazekas_deep": 3, "pons_probability": (1.0, 1.0, 1.0, 1.0)},
    "lacune": {"count": 15},
    "epvs": {"bg_grade": 4, "cso_grade": 4},
    "cmb": {"count": 30},
    "mimics": {"pallidal_probability": 1.0, "plexus_probability": 1.0, "air_probability": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3)
    args = parser.parse_args()
    anat = working_anatomy(1)
    print(f"working grid {anat.labels.shape} at {anat.spacing} mm")
    for label, params in (("default", {}), ("heavy", HEAVY)):
        totals = []
        for seed in range(args.cases):
            head = random_head(anat, np.random.default_rng(seed), HeadConfig())
            parts, total = [], 0.0
            for name, module in (*ORDER, ("mimics", mimics)):
                t = time.process_time()
                out = module.insert(head, np.random.default_rng(100 + seed), **params.get(name, {}))
                dt = time.process_time() - t
                total += dt
                parts.append(f"{name} {dt:.2f}s/{len(out.records)}")
            totals.append(total)
            print(f"{label} case {seed}: {totals[-1]:.2f} s CPU  ({', '.join(parts)})")
        print(
            f"{label}: mean {np.mean(totals):.2f} s, max {np.max(totals):.2f} s CPU per case (target < 5 s)"
        )


if __name__ == "__main__":
    main()
