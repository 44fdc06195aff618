"""CSVD scores: MARS counts, Fazekas rule, total CSVD score, Z-score burden and reference tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurolesion.analysis.regions import CaseAnatomy
from neurolesion.analysis.scores import (
    ReferenceRow,
    csvd_scores,
    fazekas_grades,
    load_reference_table,
    mars_counts,
    reference_from_cohort,
    task_totals,
    write_reference_table,
)
from neurolesion.anatomy.labels import Lobe, Region, Side, Tissue
from neurolesion.errors import InputError

SHAPE = (60, 60, 40)
AFF = np.diag([1.0, 1.0, 2.0, 1.0])


def _anatomy() -> CaseAnatomy:
    """Ventricle slab in the middle, basal ganglia beside it, frontal lobe in front, brainstem below.

    x < 30 is the patient's left (RAS x increases with the index).
    """
    tissue = np.full(SHAPE, Tissue.WM, np.uint8)
    lobe = np.full(SHAPE, Lobe.PERIVENTRICULAR_DEEP_WM, np.uint8)
    region = np.full(SHAPE, Region.DEEP, np.uint8)
    tissue[27:33, 20:40, 20:26] = Tissue.VENTRICLE
    lobe[27:33, 20:40, 20:26] = Lobe.NONE
    lobe[:, 45:, :] = Lobe.FRONTAL
    region[:, 45:, :] = Region.LOBAR
    lobe[15:25, 25:35, 20:26] = Lobe.BASAL_GANGLIA
    lobe[35:45, 25:35, 20:26] = Lobe.BASAL_GANGLIA
    lobe[25:35, 25:35, :6] = Lobe.BRAINSTEM
    region[25:35, 25:35, :6] = Region.INFRATENTORIAL
    side = np.where(np.arange(SHAPE[0])[:, None, None] < 30, Side.LEFT, Side.RIGHT)
    side = np.broadcast_to(side, SHAPE).astype(np.uint8)
    return CaseAnatomy(tissue, region, lobe, side, AFF)


def _dots(points: list[tuple[int, int, int]]) -> np.ndarray:
    lab = np.zeros(SHAPE, np.int32)
    for n, (x, y, z) in enumerate(points, start=1):
        lab[x, y, z] = n
    return lab


def test_mars_counts_by_structure_and_side() -> None:
    cmb = _dots([(10, 50, 10), (50, 50, 10), (52, 52, 12), (28, 28, 2), (18, 28, 22)])
    m = mars_counts(cmb, _anatomy())
    assert m["counts"]["lobar"]["frontal"] == {"left": 1, "right": 2}
    assert m["counts"]["infratentorial"]["brainstem"] == {"left": 1, "right": 0}
    assert m["counts"]["deep"]["basal_ganglia"] == {"left": 1, "right": 0}
    assert (m["lobar"], m["deep"], m["infratentorial"], m["total"], m["unlocated"]) == (3, 1, 1, 5, 0)


def test_fazekas_periventricular_extent_and_deep_confluence() -> None:
    vent = _anatomy().tissue == Tissue.VENTRICLE
    wmh = np.zeros(SHAPE, np.int32)
    assert fazekas_grades(wmh, AFF, vent)["periventricular"] == 0
    wmh[33:36, 20:40, 20:26] = 1  # 3 mm lining beside the ventricle
    g = fazekas_grades(wmh, AFF, vent)
    assert (g["periventricular"], g["deep"], g["pv_extent_mm"]) == (1, 0, 3.0)
    wmh[33:41, 20:40, 20:26] = 1  # 8 mm halo
    assert fazekas_grades(wmh, AFF, vent)["periventricular"] == 2
    wmh[33:50, 20:40, 20:26] = 1  # 17 mm: into the deep white matter
    assert fazekas_grades(wmh, AFF, vent)["periventricular"] == 3
    deep = np.zeros(SHAPE, np.int32)
    deep[3:6, 3:6, 30:32] = 1  # punctate (about 4 mm)
    assert fazekas_grades(deep, AFF, vent)["deep"] == 1
    deep[3:16, 3:6, 30:32] = 1  # 13 mm: beginning confluence
    assert fazekas_grades(deep, AFF, vent)["deep"] == 2
    deep[3:26, 3:8, 30:33] = 1  # 23 mm: confluent
    g = fazekas_grades(deep, AFF, vent)
    assert (g["deep"], g["periventricular"]) == (3, 0)
    assert fazekas_grades(deep, AFF, np.zeros(SHAPE, bool)) is None


def test_total_csvd_score_and_markers() -> None:
    anatomy = _anatomy()
    epvs = _dots([(16 + i % 8, 26 + i // 8, 22) for i in range(11)])  # 11 in the left basal ganglia
    wmh = np.zeros(SHAPE, np.int32)
    wmh[33:50, 20:40, 20:26] = 1
    labels = {"wmh": wmh, "cmb": _dots([(10, 50, 10)]), "lacune": np.zeros(SHAPE, np.int32), "epvs": epvs}
    s = csvd_scores(labels, AFF, anatomy)
    assert s["markers"]["epvs"]["count"] == 11
    assert s["markers"]["wmh"]["volume_ml"] == pytest.approx(17 * 20 * 6 * 2 / 1000)
    assert s["epvs_basal_ganglia"] == {"left": 11, "right": 0}
    assert s["csvd_score"]["points"] == {"lacune": 0, "cmb": 1, "epvs": 1, "wmh": 1}
    assert (s["csvd_score"]["total"], s["csvd_score"]["complete"]) == (3, True)
    assert s["z_scores"] == {} and s["z_burden"] is None


def test_missing_markers_and_anatomy_are_reported() -> None:
    s = csvd_scores({"cmb": _dots([(10, 50, 10)])}, AFF, None)
    assert s["mars"] is None and s["fazekas"] is None
    assert s["csvd_score"]["total"] == 1
    assert s["csvd_score"]["missing"] == ["lacune", "epvs", "wmh"]
    assert any("MARS" in n for n in s["notes"])


def test_z_scores_against_reference_table(tmp_path: Path) -> None:
    rows = [
        ReferenceRow("wmh", "volume_ml", "log1p", 0.0, 1.0),
        ReferenceRow("cmb", "count", "none", 1.0, 2.0),
    ]
    path = write_reference_table(rows, tmp_path / "ref.csv")
    assert load_reference_table(path) == rows
    wmh = np.zeros(SHAPE, np.int32)
    wmh[:10, :10, :5] = 1  # 1.0 ml
    s = csvd_scores({"wmh": wmh, "cmb": _dots([(1, 50, 1), (5, 50, 1), (9, 50, 1)])}, AFF, None, path)
    assert s["z_scores"]["wmh_volume_ml"] == pytest.approx(np.log(2), abs=1e-3)
    assert s["z_scores"]["cmb_count"] == pytest.approx(1.0)
    assert s["z_burden"] == pytest.approx((np.log(2) + 1) / 2, abs=1e-3)


def test_reference_table_from_cohort_and_bad_tables(tmp_path: Path) -> None:
    cases = [{"markers": {"cmb": {"count": n, "volume_ml": 0.0}}} for n in (0, 2, 5)]
    (row,) = reference_from_cohort(cases, {"cmb": "count"})
    assert row.mean == pytest.approx(np.mean(np.log1p([0, 2, 5])))
    bad = tmp_path / "bad.csv"
    bad.write_text("marker,measure,transform,mean,sd\nwmh,volume_ml,log1p,1.0,0\n")
    with pytest.raises(InputError, match="sd > 0"):
        load_reference_table(bad)
    bad.write_text("marker,measure,mean\nwmh,volume_ml,1\n")
    with pytest.raises(InputError, match="lacks columns"):
        load_reference_table(bad)
    with pytest.raises(InputError, match="not found"):
        load_reference_table(tmp_path / "none.csv")


def test_task_totals() -> None:
    rows = [
        {"task": "tumor", "volume_ml": 1.0, "max_diameter_mm": 12.0, "brainstem": False},
        {"task": "tumor", "volume_ml": 2.5, "max_diameter_mm": 20.0, "brainstem": True},
    ]
    assert task_totals(rows)["tumor"] == {
        "count": 2,
        "volume_ml": 3.5,
        "largest_diameter_mm": 20.0,
        "brainstem": 1,
    }
