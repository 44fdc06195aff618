"""Wall time per stage and per task, and peak memory, of `neurolesion segment` on one case.

Runs the `neurolesion segment` command (`neurolesion.pipeline.segment`) on a case folder in a child process,
so that the peak resident memory read afterwards with ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is
the pipeline's own, and reads the per-stage timings the pipeline writes into ``summary.json`` (``load``,
``preprocess`` (brain extraction included, so the ``brain`` task has no stage of its own), ``model:<task>``,
``analysis``, ``write``). Also reported: the child's wall time including interpreter start and imports, its
CPU time (user + system: on a shared machine the wall time depends on the load, given at start and end),
and per task whether it ran, was skipped (no model installed) or failed, with its lesion count.

    neurolesion synth -t all --n 1 --seed 5 -o /tmp/x      # a 1 mm case with all six sequences
    nice python benchmarks/bench_segment.py /tmp/x/case_000005 --models wmh=runs/wmh3/best.pt \
        --threads 2 --json bench_segment.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)


def run_segment(
    case: Path,
    output: Path,
    tasks: list[str],
    models: list[str],
    threads: int | None,
    log: Path,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``neurolesion segment`` in a child process; its wall time, CPU time, peak memory and exit code."""
    command = [sys.executable, "-c", "from neurolesion.cli import main; main()", "segment", str(case)]
    for task in tasks:
        command += ["--task", task]
    for model in models:
        command += ["--model", model]
    command += [*(extra or []), "-o", str(output)]
    env = dict(os.environ)
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(command, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "command": " ".join(command),
        "returncode": rc,
        "process_wall_s": round(wall, 2),
        "process_cpu_s": round(cpu, 2),
        "peak_rss_gb": round(after.ru_maxrss / 1024**2, 3),  # Linux: kilobytes
    }


def task_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task: status, model seconds, lesion count and volume."""
    timings = summary.get("timings_s", {})
    rows = []
    for task in summary.get("tasks_run", []):
        totals = summary.get("tasks", {}).get(task, {})
        rows.append(
            {
                "task": task,
                "status": "run",
                "model_s": timings.get(f"model:{task}"),
                "count": totals.get("count"),
                "volume_ml": totals.get(
                    "volume_ml", summary.get("brain_volume_ml") if task == "brain" else None
                ),
            }
        )
    for status, key in (("skipped", "tasks_skipped"), ("failed", "tasks_failed")):
        for task, reason in summary.get(key, {}).items():
            rows.append(
                {"task": task, "status": status, "model_s": timings.get(f"model:{task}"), "reason": reason}
            )
    return rows


def print_report(result: dict[str, Any]) -> None:
    print(f"case {result['case']}  sequences {', '.join(result['sequences'])}  threads {result['threads']}")
    print(f"load average at start {result['load_start']}, at end {result['load_end']}")
    print(f"\n{'stage':<16}{'wall s':>9}")
    for stage, seconds in result["stages_s"].items():
        print(f"{stage:<16}{seconds:>9.2f}")
    print(f"{'sum of stages':<16}{sum(result['stages_s'].values()):>9.2f}")
    print(f"{'process wall':<16}{result['process_wall_s']:>9.2f}   (interpreter start and imports included)")
    print(f"{'process CPU':<16}{result['process_cpu_s']:>9.2f}   (user + system)")
    print(f"{'peak RSS GB':<16}{result['peak_rss_gb']:>9.3f}")
    print(f"\n{'task':<8}{'status':<9}{'model s':>9}{'count':>7}{'ml':>9}  note")
    for row in result["tasks"]:
        secs = "" if row.get("model_s") is None else f"{row['model_s']:.2f}"
        count = "" if row.get("count") is None else str(row["count"])
        vol = "" if row.get("volume_ml") is None else f"{row['volume_ml']:.2f}"
        note = row.get("reason", "brain extraction is part of preprocess" if row["task"] == "brain" else "")
        print(f"{row['task']:<8}{row['status']:<9}{secs:>9}{count:>7}{vol:>9}  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", type=Path, help="case folder (NIfTI per sequence), DICOM or BIDS folder")
    ap.add_argument("--task", action="append", help="task or group (repeatable; default all)")
    ap.add_argument("--models", action="append", default=[], metavar="TASK=PATH", help="passed as --model")
    ap.add_argument("--threads", type=int, help="CPU threads of the child (OMP/MKL/OpenBLAS/ITK variables)")
    ap.add_argument("-o", "--output", type=Path, help="segment output folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    ap.add_argument("--no-tta", action="store_true", help="pass --no-tta (every model without mirroring)")
    ap.add_argument("--precision", help="pass --precision (auto, float32 or bfloat16)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_segment_") as tmp:
        output = args.output or Path(tmp) / "out"
        log = Path(tmp) / "segment.log"
        load_start = [round(x, 2) for x in os.getloadavg()]
        extra = (["--no-tta"] if args.no_tta else []) + (
            ["--precision", args.precision] if args.precision else []
        )
        run = run_segment(args.case, output, args.task or ["all"], args.models, args.threads, log, extra)
        load_end = [round(x, 2) for x in os.getloadavg()]
        if run["returncode"] != 0:
            sys.exit(f"segment failed (exit {run['returncode']}):\n{log.read_text()[-3000:]}")
        summary = json.loads((output / "summary.json").read_text())
    result = {
        "case": str(args.case),
        "sequences": list(summary["input"]["sequences"]),
        "threads": args.threads,
        "load_start": load_start,
        "load_end": load_end,
        **run,
        "stages_s": summary["timings_s"],
        "tasks": task_rows(summary),
    }
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
