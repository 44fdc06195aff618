"""Per-size / per-subtype / per-region lesion tables from matching results and simulator records."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from neurolesion.metrics.breakdown import (
    acquisition_slice_mm,
    build_tables,
    case_breakdown,
    records_by_id,
    size_bin,
    tables_markdown,
)
from neurolesion.metrics.evaluate import evaluate_arrays

from .conftest import balls


def _rec(id_: int, type_: str, subtype: str, region: str, diameter: float | None) -> dict[str, Any]:
    extra: dict[str, Any] = (
        {"task": "tumor"} if diameter is None else {"task": "tumor", "diameter_mm": diameter}
    )
    return {"task": "tumor", "id": id_, "type": type_, "subtype": subtype, "region": region, "extra": extra}


@pytest.fixture
def tumour_case() -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Truth ids 2, 5, 9, 11 (gaps, and a record 3 without voxels); the prediction finds 5, 9 and 11
    (shifted by one voxel) and adds one false positive."""
    shape = (64, 64, 40)
    truth = np.zeros(shape, np.int16)
    truth[8, 8, 8] = 2  # a single voxel, recorded as 1.5 mm
    sphere = balls(shape, np.array([[30, 10, 10], [10, 40, 20], [40, 40, 22]]), np.array([1.5, 3.0, 6.0]))
    truth[sphere == 1], truth[sphere == 2], truth[sphere == 3] = 5, 9, 11
    pred = np.roll(np.isin(truth, (5, 9, 11)), 1, axis=0).astype(np.int16)
    pred[55:58, 5:8, 30:33] = 1
    records = [
        _rec(2, "metastasis", "solid", "lobar", 1.5),
        _rec(3, "metastasis", "solid", "deep", 4.0),
        _rec(5, "metastasis", "ring", "deep", 3.0),
        _rec(9, "meningioma", "convexity", "lobar", 8.0),
        _rec(11, "schwannoma", "cisternal", "infratentorial", None),
        {"task": "cmb", "id": 5, "type": "cmb", "subtype": "deep", "region": "deep", "extra": {}},
    ]
    return pred, truth, records


def test_size_bins_have_inclusive_lower_edges() -> None:
    assert [size_bin(d) for d in (0.5, 2.0, 4.99, 5.0, 10.0, 19.9, 20.0)] == [
        "<2 mm",
        "2-5 mm",
        "2-5 mm",
        "5-10 mm",
        "10-20 mm",
        "10-20 mm",
        ">=20 mm",
    ]


def test_records_by_id_selects_the_task_including_extra_task() -> None:
    recs = [{"id": 1, "extra": {"task": "ccm"}}, {"task": "cmb", "id": 1}, {"task": "ccm", "id": 4}]
    assert sorted(records_by_id(recs, "ccm")) == [1, 4]
    assert records_by_id(recs, "tumor") == {}


def test_tumour_tables(tumour_case: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]) -> None:
    pred, truth, records = tumour_case
    cb = case_breakdown("c1", pred, truth, records_by_id(records, "tumor"))
    assert [les.id for les in cb.lesions] == [2, 5, 9, 11]
    assert [les.detected for les in cb.lesions] == [False, True, True, True]
    assert cb.missing_records == 1
    # no diameter in the record: the mask's Feret diameter (a radius-6 voxel ball spans 12-13 mm)
    assert 12.0 <= cb.lesions[3].diameter_mm <= 13.5
    tables = build_tables([cb], task="tumor")
    assert {k: (v["detected"], v["total"]) for k, v in tables["by_size"].items()} == {
        "<2 mm": (0, 1),
        "2-5 mm": (1, 1),
        "5-10 mm": (1, 1),
        "10-20 mm": (1, 1),
        ">=20 mm": (0, 0),
    }
    assert tables["by_size"][">=20 mm"]["recall"] is None
    assert tables["by_subtype"]["metastasis/solid"] == {"detected": 0, "total": 1, "recall": 0.0}
    assert tables["by_type"]["metastasis"] == {"detected": 1, "total": 2, "recall": 0.5}
    assert tables["by_region"]["lobar"]["recall"] == 0.5
    assert tables["by_region"]["infratentorial"]["recall"] == 1.0
    assert tables["pooled"] == {"tp": 3, "fp": 1, "fn": 1, "precision": 0.75, "recall": 0.75, "f1": 0.75}
    req = {r["name"]: r for r in tables["requirements"]}
    assert req["lesion recall, diameter >= 5 mm"]["value"] == 1.0
    assert req["lesion recall, diameter >= 5 mm"]["total"] == 2
    assert req["lesion recall, diameter 2-5 mm"]["met"] is True
    assert req["lesion precision"]["value"] == 0.75
    assert req["lesion precision"]["met"] is False
    json.dumps(tables)  # JSON-serialisable as it stands
    md = tables_markdown(tables)
    assert "| lesion precision | 0.750 | 0.900 | NO |" in md
    assert "| metastasis/ring | 1 | 1 | 1.000 |" in md


def test_counts_agree_with_the_evaluation() -> None:
    rng = np.random.default_rng(3)
    centres = rng.uniform(4, 28, (6, 3)) * [1, 1, 0.4]
    truth = balls((32, 32, 14), centres, rng.uniform(1.5, 3.0, 6))
    pred = np.roll(truth > 0, 2, axis=1) | balls((32, 32, 14), np.array([[3, 28, 10]]), np.array([2.0])) > 0
    spacing = (0.8, 0.8, 2.5)
    _, m = evaluate_arrays(pred, truth, spacing)
    cb = case_breakdown("c", pred, truth, {}, affine=np.diag([*spacing, 1.0]))
    assert (cb.match.tp, cb.match.fp, cb.match.fn) == (m.tp, m.fp, m.fn)
    assert m.n_truth == len(cb.lesions) == len(np.unique(truth)) - 1


def test_single_lesion_in_two_pieces_stays_one_lesion() -> None:
    truth = np.zeros((20, 20, 20), np.int16)
    truth[5:8, 5:8, 5:8] = 1
    truth[5:8, 9:12, 5:8] = 1  # same instance id, not connected
    cb = case_breakdown("c", truth > 0, truth, {1: {"type": "ccm", "subtype": "I", "region": "deep"}})
    assert len(cb.lesions) == 1 and cb.lesions[0].detected
    assert cb.match.n_truth == 1 and cb.match.n_pred == 2  # the prediction is split into components
    assert build_tables([cb], "cmb")["requirements"][0]["value"] == pytest.approx(2 / 3)


def test_affine_sets_centroid_distance_and_fallback_diameter() -> None:
    truth = np.zeros((20, 20, 20), np.int16)
    truth[10, 10, 4:8] = 3  # 4 voxels along z
    pred = np.roll(truth > 0, 3, axis=0)
    near = case_breakdown("c", pred, truth, {})
    far = case_breakdown("c", pred, truth, {}, affine=np.diag([2.0, 1.0, 2.0, 1.0]))
    assert near.lesions[0].detected and not far.lesions[0].detected  # 3 mm vs 6 mm apart
    assert near.lesions[0].diameter_mm == pytest.approx(4.0)
    assert far.lesions[0].diameter_mm == pytest.approx(8.0)


def test_empty_truth_and_prediction() -> None:
    z = np.zeros((8, 8, 8), np.int16)
    tables = build_tables([case_breakdown("c", z, z, {})], task="tumor")
    assert tables["n_lesions"] == 0
    assert tables["pooled"]["f1"] == 1.0
    assert [r["value"] for r in tables["requirements"]] == [None, None, 1.0, None]


def test_rejects_fractional_truth_and_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="fractional"):
        case_breakdown("c", np.zeros((4, 4, 4)), np.full((4, 4, 4), 0.5), {})
    with pytest.raises(ValueError, match="shape"):
        case_breakdown("c", np.zeros((4, 4, 5)), np.zeros((4, 4, 4)), {})


def test_recall_by_slice_thickness_of_the_task_sequence(
    tumour_case: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]],
) -> None:
    # Two copies of the tumour case, one acquired on 1 mm T1c slices, one on 5 mm ones with the 3 mm
    # metastasis missed there: the thin-slice 2-5 mm recall stays 1, the pooled one falls to a half.
    pred, truth, records = tumour_case
    thin_meta = {"acquisition": {"t1c": {"spacing": [0.9, 0.9, 1.0]}, "flair": {"spacing": [1, 1, 5]}}}
    thick_meta = {"acquisition": {"t1c": {"spacing": [0.9, 0.9, 5.0]}}}
    assert acquisition_slice_mm(thin_meta, "tumor") == 1.0  # T1c, the task's sequence, not FLAIR
    assert acquisition_slice_mm(thick_meta, "wmh") is None  # no FLAIR acquisition recorded
    recs = records_by_id(records, "tumor")
    missed = pred.copy()
    missed[truth == 5] = 0
    missed[np.roll(truth == 5, 1, axis=0)] = 0
    cases = [
        case_breakdown("thin", pred, truth, recs, slice_mm=acquisition_slice_mm(thin_meta, "tumor")),
        case_breakdown("thick", missed, truth, recs, slice_mm=acquisition_slice_mm(thick_meta, "tumor")),
    ]
    tables = build_tables(cases, task="tumor")
    assert tables["by_slice"]["thin (<= 1.5 mm)"] == {"detected": 3, "total": 4, "recall": 0.75}
    assert tables["by_slice"]["thick (> 1.5 mm)"] == {"detected": 2, "total": 4, "recall": 0.5}
    assert tables["by_size_thin_slices"]["2-5 mm"] == {"detected": 1, "total": 1, "recall": 1.0}
    req = {r["name"]: r for r in tables["requirements"]}
    assert req["lesion recall, diameter 2-5 mm"]["value"] == 0.5
    thin = req["lesion recall, diameter 2-5 mm, thin slices"]
    assert (thin["value"], thin["total"], thin["target"], thin["met"]) == (1.0, 1, None, None)
    md = tables_markdown(tables)
    assert "## Recall by slice thickness" in md and "| thick (> 1.5 mm) | 2 | 4 | 0.500 |" in md
