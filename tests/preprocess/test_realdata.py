"""Real raw clinical scans (real-ms/longitudinal): brain Dice in the common space and alignment."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from neurolesion.preprocess.prepare import prepare

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_preprocess.py"


def _bench() -> ModuleType:
    """The benchmark script as a module (it holds the common-space Dice protocol, used by both)."""
    spec = importlib.util.spec_from_file_location("bench_preprocess", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(("patient", "study"), [("patient01", 1), ("patient12", 2)])
def test_brain_dice_and_registration_on_raw_scans(shared_data: Path, patient: str, study: int) -> None:
    bench = _bench()
    if not (shared_data / "real-ms" / "longitudinal" / patient).is_dir():
        pytest.skip(f"{patient} not in {shared_data}/real-ms/longitudinal")
    case = bench.longitudinal_case(patient, study)
    prepared = prepare(case)
    scores = bench.common_space_dice(prepared, case, patient, study, prepared.brain_mask)
    assert min(scores.values()) >= 0.95, scores
    for seq in ("t1", "t2"):
        transform = prepared.registration[seq]
        assert transform.rotation_deg < 5 and transform.translation_mm < 10  # same session: small motion
    native = prepared.native_brain_mask()
    assert native.shape == case.images["flair"].shape
    assert 1000 < native.sum() * np.prod(case.images["flair"].spacing) / 1000 < 2000  # ml, an adult brain
