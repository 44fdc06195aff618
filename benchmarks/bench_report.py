"""Time the analysis and report stages on the real patient19 (its expert WMH mask stands in for a prediction).

Run: python benchmarks/bench_report.py [OUTDIR]   (default OUTDIR: /tmp/neurolesion_report_bench)
Prints the time of each stage and the brain Dice of the atlas registration; writes report.html/pdf.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cc3d
import numpy as np

from neurolesion.analysis import atlas_to_case, csvd_scores, lesion_table
from neurolesion.io.nifti import load_nifti
from neurolesion.report import write_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-ms" / "cross_sectional" / "patient19"


def main() -> None:
    if not DATA.is_dir():
        print(f"skipped: real data not found at {DATA}")
        return
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/neurolesion_report_bench")
    flair = load_nifti(DATA / "FLAIR.nii.gz")
    t1 = load_nifti(DATA / "T1.nii.gz")
    brain = flair.data > 0
    wmh = cc3d.connected_components(load_nifti(DATA / "gt.nii.gz", label=True).data > 0, connectivity=26)
    timings = {}
    start, cpu = time.perf_counter(), time.process_time()
    anatomy = atlas_to_case(flair, brain)
    timings["atlas_to_case"] = time.perf_counter() - start
    print(f"atlas_to_case CPU time (all threads): {time.process_time() - cpu:.1f} s")
    start = time.perf_counter()
    rows = lesion_table(wmh, flair.affine, "wmh", prob=(wmh > 0).astype(np.float32), anatomy=anatomy)
    timings["lesion_table"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = csvd_scores({"wmh": wmh}, flair.affine, anatomy)
    timings["csvd_scores"] = time.perf_counter() - start
    summary = {
        "neurolesion": "benchmark",
        "input": {"path": str(DATA), "kind": "nifti", "reference": "flair"},
        "tasks_run": ["brain", "wmh"],
        "scores": scores,
        "brain_volume_ml": round(float(brain.sum()) / 1000.0, 1),
        "warnings": ["wmh: the expert mask stands in for a prediction (benchmark)"],
    }
    start = time.perf_counter()
    path = write_report(
        out, summary, rows, {"flair": flair, "t1": t1}, {"wmh": wmh}, brain=brain, anatomy=anatomy
    )
    timings["write_report"] = time.perf_counter() - start
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.2f} s")
    print(f"atlas registration: {dict(anatomy.quality)}")
    print(f"{len(rows)} WMH lesions; Fazekas {scores['fazekas']}")
    print(f"report: {path}")


if __name__ == "__main__":
    main()
