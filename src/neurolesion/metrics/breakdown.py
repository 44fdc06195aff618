"""Lesion-wise detection broken down by the simulator's ground-truth records (size, type, subtype, region).

A simulated case (``neurolesion synth``) holds ``<task>_labels.nii.gz`` whose voxel values are instance
ids and ``case.json`` whose ``lesions`` list has one record per inserted lesion: ``task``, ``id`` (its
value in that task's label map), ``type``, ``subtype`` (Zabramski type, solid/ring, periventricular/deep
...), ``region`` (lobar / deep / infratentorial ...) and ``extra.diameter_mm`` for most types. This module
matches a prediction to such a truth with `match_lesions` (the evaluation's rule), ties every true lesion
to its record, and tabulates lesion-wise recall per diameter bin, type, subtype, region and slice
thickness of the case's acquisition (thin: at most `THIN_SLICE_MM`, as radiosurgery planning asks), plus
pooled precision, recall and F1 and the detection requirements of the task (tumour: recall at 5 mm and
above, recall at 2-5 mm, precision; reported beside them, recall at 2-5 mm on thin slices).

Example:
    >>> t = np.zeros((30, 30, 30), np.int16); t[2:5, 2:5, 2:5] = 1; t[15:25, 15:25, 15:25] = 2
    >>> recs = [{"task": "tumor", "id": 1, "type": "metastasis", "subtype": "solid", "region": "lobar",
    ...          "extra": {"diameter_mm": 3.0}},
    ...         {"task": "tumor", "id": 2, "type": "meningioma", "subtype": "convexity", "region": "lobar",
    ...          "extra": {"diameter_mm": 10.0}}]
    >>> case = case_breakdown("c1", t == 2, t, records_by_id(recs, "tumor"))
    >>> tables = build_tables([case], task="tumor")
    >>> tables["by_size"]["2-5 mm"]["recall"], tables["by_size"]["10-20 mm"]["recall"]
    (0.0, 1.0)
    >>> tables["pooled"]["precision"], tables["pooled"]["recall"]
    (1.0, 0.5)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from neurolesion.analysis.table import max_diameter
from neurolesion.metrics import lesionwise
from neurolesion.metrics.lesionwise import HitRule, LesionMatch, label_lesions, match_lesions
from neurolesion.metrics.overlap import ratio
from neurolesion.registry import TASKS

log = logging.getLogger(__name__)

DIAMETER_EDGES_MM: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
UNKNOWN = "unknown"
#: Thickest voxel side (mm) of a thin-slice acquisition: what stereotactic radiosurgery planning asks of
#: its contrast-enhanced T1 (1-1.5 mm slices).
THIN_SLICE_MM = 1.5
SLICE_BINS: tuple[str, ...] = (f"thin (<= {THIN_SLICE_MM:g} mm)", f"thick (> {THIN_SLICE_MM:g} mm)")

# Issue 7 detection targets per task: (name, lesion subset or pooled statistic, target or None to report).
REQUIREMENTS: dict[str, tuple[tuple[str, str, float | None], ...]] = {
    "tumor": (
        ("lesion recall, diameter >= 5 mm", "recall_ge5", 0.95),
        ("lesion recall, diameter 2-5 mm", "recall_2to5", 0.80),
        ("lesion precision", "precision", 0.90),
        ("lesion recall, diameter 2-5 mm, thin slices", "recall_2to5_thin", None),
    ),
    "cmb": (("lesion F1", "f1", 0.85),),
}


@dataclass(frozen=True)
class TrueLesion:
    """One true lesion of a case, its record's attributes and whether a predicted lesion matched it.

    Attributes:
        case: case name.
        id: its value in the truth label map.
        type: record type (``unknown`` without a record).
        subtype: record subtype.
        region: record region.
        diameter_mm: record ``extra.diameter_mm``, else the mask's maximum 3D (Feret) diameter.
        detected: matched by a predicted lesion.
        slice_mm: thickest voxel side of the case's acquisition of the task's sequence (None: unknown).
    """

    case: str
    id: int
    type: str
    subtype: str
    region: str
    diameter_mm: float
    detected: bool
    slice_mm: float | None = None


@dataclass(frozen=True)
class CaseBreakdown:
    """One case's matching and its true lesions.

    Attributes:
        case: case name.
        match: the `LesionMatch` (true lesion k of it is `lesions[k - 1]`).
        lesions: the true lesions in label-id order.
        missing_records: records of the task whose id has no voxel in the label map (lost on resampling).
    """

    case: str
    match: LesionMatch
    lesions: tuple[TrueLesion, ...]
    missing_records: int = 0


def records_by_id(records: Iterable[Mapping[str, Any]], task: str) -> dict[int, Mapping[str, Any]]:
    """The records of `task` from a case.json ``lesions`` list, keyed by their label id.

    A record's task is its ``task`` key, else ``extra["task"]``.

    Example:
        >>> records_by_id([{"task": "cmb", "id": 3}, {"task": "wmh", "id": 3}], "cmb")
        {3: {'task': 'cmb', 'id': 3}}
    """
    out: dict[int, Mapping[str, Any]] = {}
    for rec in records:
        if (rec.get("task") or rec.get("extra", {}).get("task")) == task:
            out[int(rec["id"])] = rec
    return out


def size_bin(diameter_mm: float, edges_mm: Sequence[float] = DIAMETER_EDGES_MM) -> str:
    """Name of the diameter bin: ``<2 mm``, ``2-5 mm``, ..., ``>=20 mm`` (lower edges inclusive).

    Example:
        >>> size_bin(1.9), size_bin(2.0), size_bin(25.0)
        ('<2 mm', '2-5 mm', '>=20 mm')
    """
    return size_bin_names(edges_mm)[int(np.digitize(diameter_mm, edges_mm))]


def size_bin_names(edges_mm: Sequence[float] = DIAMETER_EDGES_MM) -> list[str]:
    """Names of the diameter bins cut at `edges_mm`, smallest first (the last one ``>=``).

    Example:
        >>> size_bin_names((2.0, 5.0))
        ['<2 mm', '2-5 mm', '>=5 mm']
    """
    return [*lesionwise.size_bin_names(edges_mm)[:-1], f">={edges_mm[-1]:g} mm"]


def slice_bin(slice_mm: float | None) -> str:
    """Name of the slice-thickness bin of an acquisition: thin (at most `THIN_SLICE_MM`), thick or unknown.

    Example:
        >>> slice_bin(1.0), slice_bin(5.0), slice_bin(None)
        ('thin (<= 1.5 mm)', 'thick (> 1.5 mm)', 'unknown')
    """
    if slice_mm is None:
        return UNKNOWN
    return SLICE_BINS[0] if slice_mm <= THIN_SLICE_MM else SLICE_BINS[1]


def acquisition_slice_mm(meta: Mapping[str, Any], task: str) -> float | None:
    """Thickest voxel side (mm) of a simulated case's acquisition of the task's primary sequence.

    The primary sequence is the first sequence of the task's first required group (registry) that the
    case's ``acquisition`` holds: T1c for tumours, FLAIR for WMH, T2* or SWI for microbleeds.

    Args:
        meta: a case.json (``neurolesion synth``): its ``acquisition`` maps sequence -> ``{"spacing": ...}``.
        task: registry task name.

    Returns:
        The thickest native voxel side, or None when the case records no such acquisition.

    Example:
        >>> acquisition_slice_mm({"acquisition": {"t1c": {"spacing": [0.9, 0.9, 5.0]}}}, "tumor")
        5.0
        >>> acquisition_slice_mm({}, "tumor") is None
        True
    """
    acquisitions = meta.get("acquisition", {})
    spec = TASKS.get(task)
    for seq in spec.required[0] if spec and spec.required else ():
        spacing = acquisitions.get(seq, {}).get("spacing")
        if spacing:
            return float(max(spacing))
    return None


def case_breakdown(
    case: str,
    pred: np.ndarray,
    truth: np.ndarray,
    records: Mapping[int, Mapping[str, Any]],
    affine: np.ndarray | None = None,
    rule: HitRule = "centroid",
    distance_mm: float = 5.0,
    prob: np.ndarray | None = None,
    threshold: float = 0.5,
    connectivity: int = 26,
    slice_mm: float | None = None,
) -> CaseBreakdown:
    """Match one case's prediction to its instance-labelled truth and attach each true lesion's record.

    Args:
        case: case name.
        pred: predicted mask, label map or probability map.
        truth: integer instance-label map (the simulator's ``<task>_labels``), same shape.
        records: the task's records keyed by label id (`records_by_id`).
        affine: voxel-to-RAS affine of the grid (default: identity, 1 mm); gives the spacing and the
            fallback diameters.
        rule: lesion hit rule (see `match_lesions`).
        distance_mm: centroid rule distance.
        prob: probability map giving confidences.
        threshold: threshold of a probability-map prediction.
        connectivity: connectivity splitting the prediction into lesions.
        slice_mm: thickest voxel side of the case's acquisition (`acquisition_slice_mm`), given to every
            true lesion.

    Returns:
        The `CaseBreakdown`.

    Raises:
        ValueError: shapes differ or the truth is not an integer label map.

    Example:
        >>> t = np.zeros((20, 20, 20), np.int16); t[2:4, 2:4, 2:4] = 7
        >>> cb = case_breakdown("c", t > 0, t, {})
        >>> cb.lesions[0].id, cb.lesions[0].type, cb.lesions[0].detected
        (7, 'unknown', True)
    """
    t = np.asarray(truth)
    if t.shape != np.asarray(pred).shape:
        raise ValueError(f"prediction shape {np.asarray(pred).shape} differs from truth shape {t.shape}")
    if t.dtype.kind == "f" and not np.array_equal(t, np.round(t)):
        raise ValueError("truth has fractional values; expected an integer instance-label map")
    aff = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    spacing = tuple(float(v) for v in np.linalg.norm(aff[:3, :3], axis=0))
    ids = np.unique(t[t > 0]).astype(np.int64)
    t_lab, _ = label_lesions(t, instances=True)
    # Ids shifted by one so that a single-lesion map (max 1) is still read as instances, not re-split.
    shifted = (t_lab + (t_lab > 0)).astype(np.int32)
    match = match_lesions(
        pred,
        shifted,
        spacing,
        rule=rule,
        distance_mm=distance_mm,
        connectivity=connectivity,
        prob=prob,
        threshold=threshold,
    )
    detected = np.zeros(ids.size, dtype=bool)
    detected[match.pairs[:, 1] - 1] = True
    boxes = ndimage.find_objects(t_lab)
    lesions = []
    for k, lid in enumerate(ids):
        rec = records.get(int(lid), {})
        diameter = rec.get("extra", {}).get("diameter_mm")
        if diameter is None:
            diameter = _feret_mm(t_lab, k + 1, boxes[k], aff)
        lesions.append(
            TrueLesion(
                case=case,
                id=int(lid),
                type=str(rec.get("type", UNKNOWN)),
                subtype=str(rec.get("subtype", UNKNOWN)),
                region=str(rec.get("region", UNKNOWN)),
                diameter_mm=float(diameter),
                detected=bool(detected[k]),
                slice_mm=slice_mm,
            )
        )
    missing = len(set(records) - set(ids.tolist()))
    if missing:
        log.info("%s: %d record(s) without voxels in the label map", case, missing)
    return CaseBreakdown(case, match, tuple(lesions), missing)


def _feret_mm(labels: np.ndarray, k: int, box: tuple[slice, ...], affine: np.ndarray) -> float:
    """Maximum 3D diameter in mm of label `k`, whose bounding box is `box`."""
    offset = np.array([s.start for s in box], dtype=np.float64)
    return max_diameter(labels[box] == k, offset, affine)


def recall_table(
    lesions: Sequence[TrueLesion], key: Callable[[TrueLesion], str], order: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """``{group: {"detected", "total", "recall"}}`` of true lesions grouped by `key`.

    Groups in `order` come first (also when empty: recall None), the others sorted by name.

    Example:
        >>> ls = [TrueLesion("c", 1, "ccm", "I", "deep", 6.0, True), TrueLesion("c", 2, "ccm", "IV", "deep", 2.5, False)]
        >>> recall_table(ls, lambda x: x.subtype)
        {'I': {'detected': 1, 'total': 1, 'recall': 1.0}, 'IV': {'detected': 0, 'total': 1, 'recall': 0.0}}
    """
    groups: dict[str, list[bool]] = {name: [] for name in order}
    for les in lesions:
        groups.setdefault(key(les), []).append(les.detected)
    names = list(order) + sorted(set(groups) - set(order))
    return {
        n: {
            "detected": int(sum(groups[n])),
            "total": len(groups[n]),
            "recall": sum(groups[n]) / len(groups[n]) if groups[n] else None,
        }
        for n in names
    }


def pooled(cases: Sequence[CaseBreakdown]) -> dict[str, Any]:
    """Pooled lesion counts over cases: tp, fp, fn, precision, recall, F1.

    Example:
        >>> t = np.zeros((20, 20, 20), np.int16); t[2:4, 2:4, 2:4] = 1
        >>> pooled([case_breakdown("c", t > 0, t, {})])["f1"]
        1.0
    """
    tp = sum(c.match.tp for c in cases)
    n_pred = sum(c.match.n_pred for c in cases)
    n_truth = sum(c.match.n_truth for c in cases)
    empty = n_pred + n_truth == 0
    return {
        "tp": tp,
        "fp": n_pred - tp,
        "fn": n_truth - tp,
        "precision": ratio(tp, n_pred, empty),
        "recall": ratio(tp, n_truth, empty),
        "f1": ratio(2 * tp, n_pred + n_truth, empty),
    }


def _subset_recall(
    lesions: Sequence[TrueLesion], low: float, high: float, thin_only: bool = False
) -> dict[str, Any]:
    hit = [
        x.detected
        for x in lesions
        if low <= x.diameter_mm < high and (not thin_only or slice_bin(x.slice_mm) == SLICE_BINS[0])
    ]
    return {"detected": int(sum(hit)), "total": len(hit), "value": sum(hit) / len(hit) if hit else None}


def requirements(
    task: str | None, lesions: Sequence[TrueLesion], pool: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The issue's detection requirements for `task` with measured values (empty for other tasks).

    Each item: ``{"name", "value", "target", "met"}`` (plus ``detected``/``total`` for recalls);
    ``met`` is None when there is no target or no lesion to measure.

    Example:
        >>> [r["name"] for r in requirements("cmb", [], {"f1": 1.0})]
        ['lesion F1']
    """
    out = []
    for name, stat, target in REQUIREMENTS.get(task or "", ()):
        if stat == "recall_ge5":
            item = _subset_recall(lesions, 5.0, np.inf)
        elif stat == "recall_2to5":
            item = _subset_recall(lesions, 2.0, 5.0)
        elif stat == "recall_2to5_thin":
            item = _subset_recall(lesions, 2.0, 5.0, thin_only=True)
        else:
            item = {"value": pool[stat]}
        value = item["value"]
        met = None if target is None or value is None else bool(value >= target)
        out.append({"name": name, **item, "target": target, "met": met})
    return out


def build_tables(
    cases: Sequence[CaseBreakdown], task: str | None = None, edges_mm: Sequence[float] = DIAMETER_EDGES_MM
) -> dict[str, Any]:
    """Every table: recall by size, type, subtype, region and slice thickness, and by size on thin slices;
    pooled counts; the task's requirements.

    Args:
        cases: per-case breakdowns.
        task: task name selecting the requirements (``tumor``, ``cmb``).
        edges_mm: diameter bin edges.

    Returns:
        ``{"task", "n_cases", "n_lesions", "missing_records", "pooled", "by_size", "by_type",
        "by_subtype", "by_region", "by_slice", "by_size_thin_slices", "requirements"}``.
    """
    lesions = [les for c in cases for les in c.lesions]
    pool = pooled(cases)
    return {
        "task": task,
        "n_cases": len(cases),
        "n_lesions": len(lesions),
        "missing_records": sum(c.missing_records for c in cases),
        "pooled": pool,
        "by_size": recall_table(
            lesions, lambda x: size_bin(x.diameter_mm, edges_mm), size_bin_names(edges_mm)
        ),
        "by_type": recall_table(lesions, lambda x: x.type),
        "by_subtype": recall_table(lesions, lambda x: f"{x.type}/{x.subtype}"),
        "by_region": recall_table(lesions, lambda x: x.region),
        "by_slice": recall_table(lesions, lambda x: slice_bin(x.slice_mm), SLICE_BINS),
        "by_size_thin_slices": recall_table(
            [x for x in lesions if slice_bin(x.slice_mm) == SLICE_BINS[0]],
            lambda x: size_bin(x.diameter_mm, edges_mm),
            size_bin_names(edges_mm),
        ),
        "requirements": requirements(task, lesions, pool),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def tables_markdown(tables: Mapping[str, Any]) -> str:
    """The tables of `build_tables` as Markdown.

    Example:
        >>> t = np.zeros((20, 20, 20), np.int16); t[2:4, 2:4, 2:4] = 1
        >>> print(tables_markdown(build_tables([case_breakdown("c", t > 0, t, {})], "cmb")).splitlines()[0])
        # Lesion-wise detection: cmb, 1 case(s), 1 true lesion(s)
    """
    lines = [
        f"# Lesion-wise detection: {tables.get('task') or 'all'}, {tables['n_cases']} case(s), "
        f"{tables['n_lesions']} true lesion(s)",
        "",
    ]
    p = tables["pooled"]
    lines += [
        "| TP | FP | FN | precision | recall | F1 |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {p['tp']} | {p['fp']} | {p['fn']} | {_fmt(p['precision'])} | {_fmt(p['recall'])} | {_fmt(p['f1'])} |",
        "",
    ]
    titles = {
        "by_size": "diameter",
        "by_type": "type",
        "by_subtype": "subtype",
        "by_region": "region",
        "by_slice": "slice thickness",
        "by_size_thin_slices": "diameter, thin slices",
    }
    for key, title in ((k, t) for k, t in titles.items() if k in tables):
        lines += [
            f"## Recall by {title}",
            "",
            f"| {title} | detected | total | recall |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {name} | {r['detected']} | {r['total']} | {_fmt(r['recall'])} |"
            for name, r in tables[key].items()
        ]
        lines.append("")
    if tables["requirements"]:
        lines += ["## Requirements", "", "| requirement | value | target | met |", "|---|---:|---:|---|"]
        for r in tables["requirements"]:
            value = _fmt(r["value"]) + (f" ({r['detected']}/{r['total']})" if "total" in r else "")
            met = {True: "yes", False: "NO", None: "–"}[r["met"]]
            lines.append(f"| {r['name']} | {value} | {_fmt(r['target'])} | {met} |")
        lines.append("")
    if tables["missing_records"]:
        lines.append(
            f"{tables['missing_records']} record(s) had no voxel in the label map and are not counted."
        )
    return "\n".join(lines)
