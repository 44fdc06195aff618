"""Clinical scores of small-vessel disease: MARS, Fazekas, the 0-4 total CSVD score, and a Z-score burden.

Operational rules (the automated stand-ins for visual ratings; documented in docs/report.md):

- **MARS** (Microbleed Anatomical Rating Scale): microbleeds counted per structure and side, where each
  microbleed's structure and side are the majority atlas labels under it (`CaseAnatomy.locate`). Lobar:
  frontal, parietal, temporal, occipital, insula (and cingulate, which MARS folds into frontal/parietal);
  deep: basal ganglia, thalamus, internal and external capsule, corpus callosum, deep and periventricular
  white matter; infratentorial: brainstem, cerebellum. Definite and possible microbleeds are not told apart.
- **Fazekas**: the WMH mask is split into 26-connected components. A component that comes within
  `PV_CONTACT_MM` of the (atlas) ventricles is periventricular; the others are deep.
  Periventricular grade: 0 none; 1 when the periventricular WMH reach at most `PV_GRADE_MM[0]` from the
  ventricles (caps, pencil-thin lining); 2 up to `PV_GRADE_MM[1]` (smooth halo); 3 beyond (irregular,
  extending into the deep white matter). Deep grade from the largest deep component's maximum 3D diameter:
  0 none; 1 below `DEEP_GRADE_MM[0]` (punctate foci); 2 below `DEEP_GRADE_MM[1]` (beginning confluence);
  3 otherwise (large confluent areas).
- **Total CSVD score** (Staals et al. 2014), one point each for: >= 1 lacune; >= 1 microbleed; basal-ganglia
  EPVS > 10 (counted in 3D on the side with more, a stand-in for the single-slice count); periventricular
  Fazekas 3 or deep Fazekas 2-3. A marker that was not segmented scores no point and is listed in
  ``missing``; the score is then a lower bound (``complete`` False).
- **Z-score burden**: per-marker z-scores of a count or volume against a reference table (`ReferenceRow`,
  CSV ``marker,measure,transform,mean,sd``; ``transform`` ``log1p`` or ``none``), and their mean.

Example:
    >>> wmh = np.zeros((20, 20, 20), np.int32); wmh[5:8, 5:8, 5:8] = 1
    >>> s = csvd_scores({"wmh": wmh}, np.eye(4), None)
    >>> s["markers"]["wmh"], s["csvd_score"]["missing"]
    ({'count': 1, 'volume_ml': 0.027}, ['lacune', 'cmb', 'epvs', 'wmh'])
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cc3d
import edt
import numpy as np
from scipy import ndimage

from neurolesion.analysis.regions import CaseAnatomy, lobe_name
from neurolesion.analysis.table import max_diameter
from neurolesion.anatomy.labels import Lobe, Tissue
from neurolesion.errors import InputError

CSVD_MARKERS: tuple[str, ...] = ("wmh", "cmb", "lacune", "epvs")
#: A WMH component within this distance (mm) of the ventricles is periventricular.
PV_CONTACT_MM = 3.0
#: Periventricular extent (mm from the ventricles) limits of Fazekas grades 1 and 2.
PV_GRADE_MM: tuple[float, float] = (5.0, 10.0)
#: Largest deep WMH diameter (mm) limits of Fazekas grades 1 and 2.
DEEP_GRADE_MM: tuple[float, float] = (10.0, 20.0)
#: Basal-ganglia EPVS above this count are moderate-to-severe (one CSVD point).
EPVS_BG_THRESHOLD = 10

MARS_STRUCTURES: dict[str, tuple[str, ...]] = {
    "lobar": ("frontal", "parietal", "temporal", "occipital", "insula", "cingulate"),
    "deep": (
        "basal_ganglia",
        "thalamus",
        "internal_capsule",
        "external_capsule",
        "corpus_callosum",
        "periventricular_deep_wm",
    ),
    "infratentorial": ("brainstem", "cerebellum"),
}

TRANSFORMS = ("log1p", "none")
MEASURES = ("count", "volume_ml")


@dataclass(frozen=True)
class ReferenceRow:
    """Reference distribution of one marker measure: mean and SD after `transform`.

    Example:
        >>> ReferenceRow("wmh", "volume_ml", "log1p", 1.0, 0.5).z(math.e - 1)
        0.0
    """

    marker: str
    measure: str
    transform: str
    mean: float
    sd: float

    def z(self, value: float) -> float:
        """Z-score of a raw `value`."""
        x = math.log1p(value) if self.transform == "log1p" else value
        return (x - self.mean) / self.sd


def load_reference_table(path: str | os.PathLike[str]) -> list[ReferenceRow]:
    """Read a reference table CSV (columns marker, measure, transform, mean, sd; one row per marker measure).

    Raises:
        InputError: missing file or column, unknown marker/measure/transform, non-positive SD.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: reference table not found; expected a CSV file")
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"marker", "measure", "transform", "mean", "sd"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{p}: reference table lacks columns {sorted(missing)}")
        rows = []
        for n, r in enumerate(reader, start=2):
            try:
                row = ReferenceRow(
                    r["marker"], r["measure"], r["transform"], float(r["mean"]), float(r["sd"])
                )
            except ValueError as err:
                raise InputError(f"{p} line {n}: mean/sd {r['mean']!r}/{r['sd']!r} not numbers") from err
            _check_reference_row(row, f"{p} line {n}")
            rows.append(row)
    return rows


def _check_reference_row(row: ReferenceRow, where: str) -> None:
    if row.marker not in CSVD_MARKERS:
        raise InputError(f"{where}: marker {row.marker!r}; expected one of {', '.join(CSVD_MARKERS)}")
    if row.measure not in MEASURES:
        raise InputError(f"{where}: measure {row.measure!r}; expected one of {', '.join(MEASURES)}")
    if row.transform not in TRANSFORMS:
        raise InputError(f"{where}: transform {row.transform!r}; expected one of {', '.join(TRANSFORMS)}")
    if not (math.isfinite(row.mean) and math.isfinite(row.sd) and row.sd > 0):
        raise InputError(f"{where}: mean {row.mean} / sd {row.sd}; expected finite values and sd > 0")


def reference_from_cohort(
    scores: Sequence[Mapping[str, Any]], measures: Mapping[str, str] | None = None
) -> list[ReferenceRow]:
    """Build a reference table (log1p mean and SD) from the `csvd_scores` of a cohort.

    Args:
        scores: one `csvd_scores` result per case.
        measures: marker -> measure (default: volume for WMH, count for the others).

    Raises:
        InputError: fewer than two cases have a marker, or its SD is zero.
    """
    wanted = measures or {"wmh": "volume_ml", "cmb": "count", "lacune": "count", "epvs": "count"}
    rows = []
    for marker, measure in wanted.items():
        values = [math.log1p(s["markers"][marker][measure]) for s in scores if marker in s["markers"]]
        if len(values) < 2:
            raise InputError(f"cohort: {len(values)} case(s) with {marker}; a reference needs at least two")
        row = ReferenceRow(marker, measure, "log1p", float(np.mean(values)), float(np.std(values, ddof=1)))
        _check_reference_row(row, f"cohort {marker}")
        rows.append(row)
    return rows


def write_reference_table(rows: Sequence[ReferenceRow], path: str | os.PathLike[str]) -> Path:
    """Write a reference table CSV readable by `load_reference_table`."""
    p = Path(path)
    with p.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["marker", "measure", "transform", "mean", "sd"])
        for r in rows:
            writer.writerow([r.marker, r.measure, r.transform, f"{r.mean:.6g}", f"{r.sd:.6g}"])
    return p


def csvd_scores(
    labels_by_task: Mapping[str, np.ndarray],
    affine: np.ndarray,
    anatomy: CaseAnatomy | None,
    reference_table: str | os.PathLike[str] | Sequence[ReferenceRow] | None = None,
) -> dict[str, Any]:
    """Small-vessel-disease scores of one case from its CSVD label maps (all on one grid).

    Args:
        labels_by_task: task -> label map (lesion ids); the CSVD tasks present are scored, others ignored.
        affine: the grid's voxel-to-RAS matrix.
        anatomy: case anatomy on the grid (needed for MARS, Fazekas and basal-ganglia EPVS).
        reference_table: CSV path or rows for the Z-scores (None: no Z-scores).

    Returns:
        ``markers`` (count, volume_ml per marker), ``mars``, ``fazekas``, ``epvs_basal_ganglia``,
        ``csvd_score`` (total, points, missing, complete), ``z_scores``, ``z_burden`` and ``notes``.
        A score that cannot be computed is None and its reason is in ``notes``.
    """
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine)[:3, :3]))) / 1000.0
    present = {m: np.asarray(labels_by_task[m]) for m in CSVD_MARKERS if m in labels_by_task}
    notes: list[str] = []
    markers = {
        m: {"count": _count(lab), "volume_ml": round(int(np.count_nonzero(lab)) * voxel_ml, 4)}
        for m, lab in present.items()
    }
    if anatomy is None:
        notes.append("no atlas registration: MARS, Fazekas and basal-ganglia EPVS not computed")
    mars = mars_counts(present["cmb"], anatomy) if "cmb" in present and anatomy is not None else None
    fazekas = None
    if "wmh" in present and anatomy is not None:
        fazekas = fazekas_grades(present["wmh"], affine, anatomy.tissue == Tissue.VENTRICLE)
        if fazekas is None:
            notes.append("no ventricles in the registered atlas: Fazekas not computed")
    epvs_bg = (
        basal_ganglia_epvs(present["epvs"], anatomy) if "epvs" in present and anatomy is not None else None
    )

    points: dict[str, int | None] = {
        "lacune": int(markers["lacune"]["count"] >= 1) if "lacune" in markers else None,
        "cmb": int(markers["cmb"]["count"] >= 1) if "cmb" in markers else None,
        "epvs": int(max(epvs_bg.values()) > EPVS_BG_THRESHOLD) if epvs_bg is not None else None,
        "wmh": (
            int(fazekas["periventricular"] == 3 or fazekas["deep"] >= 2) if fazekas is not None else None
        ),
    }
    missing = [m for m, p in points.items() if p is None]
    z_scores, z_burden = _z_scores(markers, reference_table)
    return {
        "markers": markers,
        "mars": mars,
        "fazekas": fazekas,
        "epvs_basal_ganglia": epvs_bg,
        "csvd_score": {
            "total": sum(p for p in points.values() if p is not None),
            "points": points,
            "missing": missing,
            "complete": not missing,
        },
        "z_scores": z_scores,
        "z_burden": z_burden,
        "notes": notes,
    }


def _count(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(labels.ravel().astype(np.int64))[1:])) if labels.any() else 0


def _lesion_locations(labels: np.ndarray, anatomy: CaseAnatomy) -> list[tuple[str, str]]:
    """(lobe, side) of every lesion id of `labels`."""
    lab = labels.astype(np.int64)
    out = []
    for n, box in enumerate(ndimage.find_objects(lab)):
        if box is not None:
            loc = anatomy.locate(lab[box] == n + 1, box)
            out.append((loc.lobe, loc.side))
    return out


def mars_counts(labels: np.ndarray, anatomy: CaseAnatomy) -> dict[str, Any]:
    """MARS microbleed counts: per structure and side, per region, total, and those outside the atlas.

    Example:
        >>> from neurolesion.analysis.regions import CaseAnatomy
        >>> a = CaseAnatomy(*(np.full((6, 6, 6), c, np.uint8) for c in (6, 2, 8, 2)), np.eye(4))
        >>> cmb = np.zeros((6, 6, 6), np.int32); cmb[1, 1, 1] = 1; cmb[4, 4, 4] = 2
        >>> m = mars_counts(cmb, a)
        >>> m["counts"]["deep"]["thalamus"], m["deep"], m["total"]
        ({'left': 0, 'right': 2}, 2, 2)
    """
    counts = {
        region: {s: {"left": 0, "right": 0} for s in names} for region, names in MARS_STRUCTURES.items()
    }
    region_of = {s: region for region, names in MARS_STRUCTURES.items() for s in names}
    unlocated = 0
    for lobe, side in _lesion_locations(labels, anatomy):
        region = region_of.get(lobe)
        if region is None or side not in ("left", "right", "midline"):
            unlocated += 1
            continue
        cell = counts[region][lobe]
        cell[side] = cell.get(side, 0) + 1
    totals = {
        region: sum(sum(c.values()) for c in structures.values()) for region, structures in counts.items()
    }
    return {"counts": counts, **totals, "total": sum(totals.values()) + unlocated, "unlocated": unlocated}


def basal_ganglia_epvs(labels: np.ndarray, anatomy: CaseAnatomy) -> dict[str, int]:
    """Number of EPVS whose majority structure is the basal ganglia, per side.

    Example:
        >>> from neurolesion.analysis.regions import CaseAnatomy
        >>> a = CaseAnatomy(*(np.full((6, 6, 6), c, np.uint8) for c in (4, 2, 7, 1)), np.eye(4))
        >>> epvs = np.zeros((6, 6, 6), np.int32); epvs[1, 1, 1] = 1
        >>> basal_ganglia_epvs(epvs, a)
        {'left': 1, 'right': 0}
    """
    out = {"left": 0, "right": 0}
    basal = lobe_name(Lobe.BASAL_GANGLIA)
    for lobe, side in _lesion_locations(labels, anatomy):
        if lobe == basal and side in out:
            out[side] += 1
    return out


def fazekas_grades(wmh: np.ndarray, affine: np.ndarray, ventricles: np.ndarray) -> dict[str, Any] | None:
    """Periventricular and deep Fazekas grades from a WMH map and a ventricle mask (see the module rules).

    Args:
        wmh: WMH label map or mask (> 0 is lesion).
        affine: voxel-to-RAS matrix of the grid (distances in mm).
        ventricles: boolean ventricle mask on the grid.

    Returns:
        ``periventricular``, ``deep`` (grades 0-3), ``pv_extent_mm``, ``deep_max_diameter_mm``,
        ``pv_volume_ml`` and ``deep_volume_ml``; None when the ventricle mask is empty.

    Example:
        >>> vent = np.zeros((40, 40, 40), bool); vent[18:22, 10:30, 18:22] = True
        >>> wmh = np.zeros((40, 40, 40), np.uint8); wmh[22:25, 10:30, 18:22] = 1; wmh[2:4, 2:4, 2:4] = 1
        >>> g = fazekas_grades(wmh, np.eye(4), vent)
        >>> g["periventricular"], g["deep"], g["pv_extent_mm"]
        (1, 1, 3.0)
    """
    if not ventricles.any():
        return None
    aff = np.asarray(affine, dtype=np.float64)
    spacing = tuple(float(s) for s in np.linalg.norm(aff[:3, :3], axis=0))
    voxel_ml = float(np.prod(spacing)) / 1000.0
    full = np.asarray(wmh) > 0
    # the distance to the ventricles is exact inside a box holding every ventricle and WMH voxel
    box = _bounding_box(full | ventricles)
    mask = full[box]
    distance = edt.edt(~ventricles[box], anisotropy=spacing, black_border=False, parallel=1)
    components = cc3d.connected_components(mask, connectivity=26)
    pv = np.zeros(mask.shape, bool)
    deep_count, deep_diameter = 0, 0.0
    for n, sub in enumerate(ndimage.find_objects(components)):
        if sub is None:
            continue
        lesion = components[sub] == n + 1
        if float(distance[sub][lesion].min()) <= PV_CONTACT_MM:
            pv[sub] |= lesion
        else:
            deep_count += 1
            offset = np.array([b.start + s.start for b, s in zip(box, sub, strict=True)], dtype=np.float64)
            deep_diameter = max(deep_diameter, max_diameter(lesion, offset, aff))
    pv_extent = float(distance[pv].max()) if pv.any() else 0.0
    pv_grade = 0 if not pv.any() else 1 + int(pv_extent > PV_GRADE_MM[0]) + int(pv_extent > PV_GRADE_MM[1])
    deep_grade = (
        0
        if deep_count == 0
        else 1 + int(deep_diameter >= DEEP_GRADE_MM[0]) + int(deep_diameter >= DEEP_GRADE_MM[1])
    )
    pv_voxels = int(pv.sum())
    return {
        "periventricular": pv_grade,
        "deep": deep_grade,
        "pv_extent_mm": round(pv_extent, 2),
        "deep_max_diameter_mm": round(deep_diameter, 2),
        "pv_volume_ml": round(pv_voxels * voxel_ml, 4),
        "deep_volume_ml": round((int(mask.sum()) - pv_voxels) * voxel_ml, 4),
    }


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """Smallest box holding every True voxel (the whole grid when none)."""
    box = ndimage.find_objects(mask.astype(np.uint8))
    return box[0] if box and box[0] is not None else tuple(slice(0, n) for n in mask.shape)


def _z_scores(
    markers: Mapping[str, Mapping[str, float]],
    reference_table: str | os.PathLike[str] | Sequence[ReferenceRow] | None,
) -> tuple[dict[str, float], float | None]:
    if reference_table is None:
        return {}, None
    rows = (
        load_reference_table(reference_table)
        if isinstance(reference_table, str | os.PathLike)
        else list(reference_table)
    )
    z = {
        f"{r.marker}_{r.measure}": round(r.z(float(markers[r.marker][r.measure])), 3)
        for r in rows
        if r.marker in markers
    }
    return z, (round(float(np.mean(list(z.values()))), 3) if z else None)


def task_totals(lesions: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-task totals of a lesion table: count, total volume, largest diameter, brainstem lesions.

    Example:
        >>> task_totals([{"task": "ccm", "volume_ml": 0.5, "max_diameter_mm": 9.0, "brainstem": True}])
        {'ccm': {'count': 1, 'volume_ml': 0.5, 'largest_diameter_mm': 9.0, 'brainstem': 1}}
    """
    out: dict[str, dict[str, Any]] = {}
    for row in lesions:
        t = out.setdefault(
            row["task"], {"count": 0, "volume_ml": 0.0, "largest_diameter_mm": 0.0, "brainstem": 0}
        )
        t["count"] += 1
        t["volume_ml"] = round(t["volume_ml"] + float(row["volume_ml"]), 4)
        t["largest_diameter_mm"] = max(t["largest_diameter_mm"], float(row["max_diameter_mm"]))
        t["brainstem"] += int(bool(row.get("brainstem")))
    return out
