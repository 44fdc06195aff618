"""A stand-in for `neurolesion.pipeline.segment` with the same signature and output contract.

It writes two cubic "WMH" lesions on the reference grid in a fraction of a second. Environment switches
(read in the worker process): FAKE_PIPELINE_SECONDS sleeps that long per stage; FAKE_PIPELINE_CRASH makes
the worker process die as an out-of-memory kill would.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from neurolesion.analysis.table import lesion_table
from neurolesion.io.case import load_case
from neurolesion.io.nifti import save_nifti
from neurolesion.service.review import write_lesions

#: Lesion id -> (slice per axis) of the two cubes the fake pipeline "finds".
LESIONS = {
    1: (slice(8, 11), slice(10, 13), slice(8, 11)),
    2: (slice(14, 16), slice(15, 17), slice(11, 13)),
}


def fake_labels(shape: tuple[int, int, int]) -> np.ndarray:
    """The label map the fake pipeline writes for a grid of `shape`."""
    labels = np.zeros(shape, np.uint16)
    for lesion_id, box in LESIONS.items():
        labels[box] = lesion_id
    return labels


def segment(
    input: str | Path | None,
    output: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    overrides: Mapping[str, str | Path] | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> SimpleNamespace:
    """Write the output contract for a WMH-only run (see module docstring)."""
    report = progress or (lambda stage, fraction: None)
    delay = float(os.environ.get("FAKE_PIPELINE_SECONDS", "0"))
    report("load", 0.0)
    case = load_case(input, overrides)
    if os.environ.get("FAKE_PIPELINE_CRASH"):
        os._exit(137)
    for stage, fraction in (("preprocess", 0.1), ("model:wmh", 0.3), ("analysis", 0.85)):
        report(stage, fraction)
        time.sleep(delay)
    ref = case.reference_volume
    labels = fake_labels(ref.shape)
    prob = (labels > 0).astype(np.float32) * 0.9
    out = Path(output)
    files = {
        "brain_mask": save_nifti(
            np.ones(ref.shape, np.uint8), out / "brain_mask.nii.gz", like=ref, dtype=np.uint8
        ),
        "wmh_labels": save_nifti(labels, out / "wmh_labels.nii.gz", like=ref, dtype=np.uint16),
        "wmh_probability": save_nifti(prob, out / "wmh_probability.nii.gz", like=ref),
    }
    rows = lesion_table(labels, ref.affine, "wmh", prob=prob)
    files["lesions"] = write_lesions(out / "lesions.csv", rows)
    summary: dict[str, Any] = {
        "input": {"kind": case.source.get("kind"), "reference": case.reference},
        "tasks_run": ["wmh"],
        "tasks": {"wmh": {"count": len(rows)}},
    }
    (out / "summary.json").write_text(json.dumps(summary))
    (out / "report.html").write_text("<html><body>fake report</body></html>")
    report("done", 1.0)
    return SimpleNamespace(output=out, summary=summary, lesions=rows, files=files)
