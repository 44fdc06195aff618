"""Folder-level evaluation: pair predicted and true NIfTI files by case name, score every case, summarise.

Layouts accepted on either side (and mixed):

- a single NIfTI file (the case is named after it);
- a flat folder of ``NAME.nii[.gz]`` files; a ``NAME_probability.nii[.gz]`` beside a prediction gives
  each predicted lesion's confidence;
- a folder of ``segment`` output folders ``NAME/<task>_labels.nii.gz`` (with ``<task>_probability`` when
  present), the task given by `task` or the only ``*_labels`` file in the folder.

A prediction may be a binary mask, a label map (each lesion its own id) or a probability map (lesions
are its components at or above `threshold`). Every truth case needs a prediction; predictions without
truth are logged and skipped.

Outputs in the output folder: ``per_case.csv`` (one row per case), ``summary.json`` (per metric: mean,
median, SD, bootstrap 95 % CI; pooled lesion counts; sensitivity by lesion size; PR/FROC summary;
volume agreement) and PNG plots (``pr_curve.png``, ``froc.png``, ``volume_bland_altman.png``,
``volume_correlation.png``). Non-finite values (a distance to an empty mask is inf) are written as
"inf"/"nan" in the CSV, left out of the summary statistics (``n`` counts the finite ones) and written
as null in the JSON.

Example:
    >>> summary = evaluate_folders("preds/", "truth/", "eval/", task="wmh")  # doctest: +SKIP
    >>> summary["metrics"]["dice"]["mean"]  # doctest: +SKIP
    0.71
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from neurolesion.errors import InputError
from neurolesion.io.atomic import atomic_path
from neurolesion.io.jsonsafe import json_safe
from neurolesion.io.nifti import load_nifti
from neurolesion.metrics.agreement import bland_altman, bootstrap_ci, icc, pearson, spearman
from neurolesion.metrics.curves import LesionCurves, lesion_curves
from neurolesion.metrics.lesionwise import (
    HIT_RULES,
    SIZE_EDGES_MM,
    HitRule,
    LesionMatch,
    is_probability,
    match_lesions,
)
from neurolesion.metrics.overlap import overlap_metrics, ratio
from neurolesion.metrics.surface import bounding_box, surface_metrics

log = logging.getLogger(__name__)

_SUFFIXES = (".nii.gz", ".nii")
_PROB = "_probability"


@dataclass(frozen=True)
class CaseFiles:
    """One case's files: prediction, truth and optional probability map."""

    name: str
    pred: Path
    truth: Path
    prob: Path | None = None


def _stem(path: Path) -> str | None:
    for suffix in _SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def _segment_folder(folder: Path, task: str | None) -> tuple[Path, Path | None] | None:
    """(labels, probability) of a `segment` output folder, or None when it is not one."""
    labels = [p for p in folder.iterdir() if (_stem(p) or "").endswith("_labels")]
    if task is not None:
        labels = [p for p in labels if _stem(p) == f"{task}_labels"]
    if len(labels) != 1:
        return None
    prefix = str(_stem(labels[0]))[: -len("_labels")]
    probs = [p for p in folder.iterdir() if _stem(p) == f"{prefix}{_PROB}"]
    return labels[0], (probs[0] if probs else None)


def _cases(root: Path, task: str | None) -> dict[str, tuple[Path, Path | None]]:
    """{case name: (image, probability or None)} of a file or folder (see the module for layouts)."""
    if root.is_file():
        if _stem(root) is None:
            raise InputError(f"{root}: not a NIfTI file (expected .nii or .nii.gz)")
        return {str(_stem(root)): (root, None)}
    if not root.is_dir():
        raise InputError(f"{root}: no such file or folder")
    found: dict[str, tuple[Path, Path | None]] = {}
    for entry in sorted(root.iterdir()):
        stem = _stem(entry)
        if entry.is_file() and stem is not None and not stem.endswith(_PROB):
            prob = [root / f"{stem}{_PROB}{s}" for s in _SUFFIXES]
            found[stem] = (entry, next((p for p in prob if p.is_file()), None))
        elif entry.is_dir() and (seg := _segment_folder(entry, task)) is not None:
            found[entry.name] = seg
    if not found:
        raise InputError(
            f"{root}: no NIfTI files and no segment output folders"
            + (f" with {task}_labels.nii.gz" if task else "")
        )
    return found


def pair_cases(
    pred: str | os.PathLike[str], truth: str | os.PathLike[str], task: str | None = None
) -> list[CaseFiles]:
    """Pair prediction and truth files by case name.

    Args:
        pred: prediction file or folder.
        truth: truth file or folder.
        task: task name selecting ``<task>_labels`` in segment output folders.

    Returns:
        One `CaseFiles` per truth case, sorted by name.

    Raises:
        InputError: a path is missing or holds no NIfTI, or a truth case has no prediction.
    """
    p_root, t_root = Path(pred), Path(truth)
    preds, truths = _cases(p_root, task), _cases(t_root, task)
    if p_root.is_file() and t_root.is_file():
        return [CaseFiles(next(iter(truths)), p_root, t_root, None)]
    missing = sorted(set(truths) - set(preds))
    if missing:
        raise InputError(
            f"{p_root}: no prediction for {len(missing)} truth case(s) of {t_root}: {', '.join(missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''}; expected files or folders with the same names"
        )
    extra = sorted(set(preds) - set(truths))
    if extra:
        log.warning("%d prediction(s) without truth skipped: %s", len(extra), ", ".join(extra[:10]))
    return [CaseFiles(n, preds[n][0], truths[n][0], preds[n][1]) for n in sorted(truths)]


def evaluate_arrays(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    rule: HitRule = "centroid",
    prob: np.ndarray | None = None,
    threshold: float = 0.5,
    distance_mm: float = 5.0,
    tolerance_mm: float = 1.0,
    connectivity: int = 26,
) -> tuple[dict[str, float], LesionMatch]:
    """Every voxel, surface and lesion-wise metric of one case.

    Args:
        pred: binary mask, label map or probability map.
        truth: binary mask or label map of the same shape.
        spacing: voxel size in mm.
        rule: lesion hit rule.
        prob: probability map giving lesion confidences.
        threshold: probability threshold when `pred` is a probability map.
        distance_mm: centroid hit-rule distance.
        tolerance_mm: surface Dice tolerance.
        connectivity: lesion connectivity (6, 18 or 26).

    Returns:
        ({metric: value}, the `LesionMatch`).

    Raises:
        ValueError: `truth` has fractional values, or the shapes differ.

    Example:
        >>> t = np.zeros((20, 20, 20)); t[5:9, 5:9, 5:9] = 1
        >>> row, match = evaluate_arrays(t, t)
        >>> row["dice"], row["hd95_mm"], match.f1
        (1.0, 0.0, 1.0)
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if is_probability(truth):
        raise ValueError("truth has fractional values; expected a binary mask or an integer label map")
    if is_probability(pred):
        prob = pred if prob is None else prob
        pred = pred >= threshold
    # Integer labels from here on, so the lesion step does not scan for probabilities again.
    pred, truth = pred.astype(np.int32, copy=False), truth.astype(np.int32, copy=False)
    p_mask, t_mask = pred != 0, truth != 0
    row = overlap_metrics(p_mask, t_mask, spacing)
    box = bounding_box(p_mask | t_mask, margin=2) or tuple(slice(0, n) for n in pred.shape)
    row.update(surface_metrics(p_mask[box], t_mask[box], spacing, tolerance_mm))
    match = match_lesions(
        np.ascontiguousarray(pred[box]),
        np.ascontiguousarray(truth[box]),
        spacing,
        rule=rule,
        distance_mm=distance_mm,
        connectivity=connectivity,
        prob=None if prob is None else np.ascontiguousarray(np.asarray(prob)[box]),
    )
    row.update(match.as_dict())
    return row, match


def _load_pair(case: CaseFiles) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[float, ...]]:
    pred, truth = load_nifti(case.pred, label=True), load_nifti(case.truth, label=True)
    prob = load_nifti(case.prob, label=True) if case.prob else None
    for other in [pred] + ([prob] if prob is not None else []):
        if not other.same_grid(truth):
            raise InputError(
                f"{other.name}: grid {other.shape} with spacing {np.round(other.spacing, 4).tolist()} mm "
                f"differs from the truth {truth.name} ({truth.shape}, {np.round(truth.spacing, 4).tolist()} "
                "mm) or its affine; expected the same grid (resample the prediction onto the truth first)"
            )
    return pred.data, truth.data, None if prob is None else prob.data, truth.spacing


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x[np.isfinite(x)]


def _describe(values: Sequence[float], n_boot: int, seed: int) -> dict[str, float]:
    x = _finite(values)
    lo, hi = bootstrap_ci(x, n_boot=n_boot, seed=seed)
    nan = float("nan")
    return {
        "mean": float(x.mean()) if x.size else nan,
        "median": float(np.median(x)) if x.size else nan,
        "sd": float(x.std(ddof=1)) if x.size > 1 else nan,
        "ci_low": lo,
        "ci_high": hi,
        "n": int(x.size),
    }


def _volume_agreement(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    vp = np.array([r["volume_pred_ml"] for r in rows])
    vt = np.array([r["volume_truth_ml"] for r in rows])
    if vp.size < 3 or np.ptp(vp) == 0 or np.ptp(vt) == 0:
        return {"n": int(vp.size), "note": "needs at least 3 cases with varying volumes"}
    ba = bland_altman(vp, vt)
    return {
        "n": int(vp.size),
        "pearson_r": pearson(vp, vt).statistic,
        "spearman_rho": spearman(vp, vt).statistic,
        "icc_a1": icc(np.stack([vp, vt], axis=1)),
        "bland_altman_ml": {"bias": ba.bias, "sd": ba.sd, "lower": ba.lower, "upper": ba.upper},
    }


def summarize(
    rows: Sequence[dict[str, Any]],
    matches: Sequence[LesionMatch],
    curves: LesionCurves,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Summary of per-case rows: statistics per metric, pooled lesion counts, curves and agreement.

    Example:
        >>> t = np.zeros((20, 20, 20)); t[5:9, 5:9, 5:9] = 1
        >>> row, m = evaluate_arrays(t, t)
        >>> summarize([row], [m], lesion_curves([m], n_boot=0))["lesions"]["f1"]
        1.0
    """
    names = [k for k, v in rows[0].items() if k != "case" and isinstance(v, int | float)] if rows else []
    tp, n_p, n_t = (sum(getattr(m, a) for m in matches) for a in ("tp", "n_pred", "n_truth"))
    empty = n_p + n_t == 0
    by_size: dict[str, list[int]] = {}
    for m in matches:
        for name, (hit, total) in m.detected_by_size(SIZE_EDGES_MM).items():
            acc = by_size.setdefault(name, [0, 0])
            acc[0], acc[1] = acc[0] + hit, acc[1] + total
    return {
        "n_cases": len(rows),
        "metrics": {k: _describe([r[k] for r in rows], n_boot, seed) for k in names},
        "lesions": {
            "tp": tp,
            "fp": n_p - tp,
            "fn": n_t - tp,
            "precision": ratio(tp, n_p, empty),
            "recall": ratio(tp, n_t, empty),
            "f1": ratio(2 * tp, n_p + n_t, empty),
            "sensitivity_by_size": {
                k: {"detected": h, "total": n, "sensitivity": h / n if n else None}
                for k, (h, n) in by_size.items()
            },
        },
        "curves": {
            "average_precision": curves.average_precision,
            "average_precision_ci": list(curves.ap_ci),
            "froc_cpm": curves.cpm,
        },
        "volume_agreement": _volume_agreement(rows),
    }


def _plot(curves: LesionCurves, rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vp = np.array([r["volume_pred_ml"] for r in rows])
    vt = np.array([r["volume_truth_ml"] for r in rows])
    mean, diff = (vp + vt) / 2, vp - vt
    ba = bland_altman(vp, vt)
    figures = {
        "pr_curve.png": (
            "Lesion-wise recall",
            "Lesion-wise precision",
            curves.recall_grid,
            curves.precision_band,
        ),
        "froc.png": ("False positives per case", "Sensitivity", curves.fp_grid, curves.sensitivity_band),
    }
    written = []
    for name, (xlabel, ylabel, grid, band) in figures.items():
        fig, ax = plt.subplots(figsize=(5, 4))
        if name == "pr_curve.png":
            ax.step(curves.recall, curves.precision, where="post", label=f"AP {curves.average_precision:.3f}")
        else:
            fp = np.r_[0.0, curves.fp_per_case, max(grid[-1], curves.fp_per_case.max(initial=0.0))]
            sens = np.r_[0.0, curves.recall, curves.recall[-1] if curves.recall.size else 0.0]
            ax.step(fp, sens, where="post", label=f"CPM {curves.cpm:.3f}")
            ax.set_xscale("symlog", linthresh=0.1)
        if np.isfinite(band).any():
            ax.fill_between(grid, band[0], band[1], alpha=0.25, step="post", label="95 % bootstrap band")
        ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
        ax.legend(loc="lower right" if name == "froc.png" else "lower left")
        written.append(_save(fig, out / name))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(mean, diff, s=12)
    for y, style in ((ba.bias, "-"), (ba.lower, "--"), (ba.upper, "--")):
        if math.isfinite(y):
            ax.axhline(y, color="k", linestyle=style, linewidth=1)
    ax.set(xlabel="Mean volume (ml)", ylabel="Predicted − true volume (ml)", title="Bland–Altman")
    written.append(_save(fig, out / "volume_bland_altman.png"))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(vt, vp, s=12)
    top = float(max(vt.max(initial=0), vp.max(initial=0))) or 1.0
    ax.plot([0, top], [0, top], "k--", linewidth=1)
    ax.set(xlabel="True volume (ml)", ylabel="Predicted volume (ml)", title="Volumes")
    written.append(_save(fig, out / "volume_correlation.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def evaluate_folders(
    pred: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    output: str | os.PathLike[str],
    task: str | None = None,
    rule: str = "centroid",
    threshold: float = 0.5,
    distance_mm: float = 5.0,
    n_boot: int = 1000,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate predictions against truth and write per_case.csv, summary.json and plots.

    Args:
        pred: prediction file or folder (see the module for layouts).
        truth: truth file or folder.
        output: output folder (created).
        task: task selecting ``<task>_labels`` in segment output folders.
        rule: lesion hit rule, "overlap", "centroid" or "coverage".
        threshold: threshold of probability-map predictions.
        distance_mm: centroid hit-rule distance.
        n_boot: bootstrap resamples for the confidence intervals.
        plots: write the PNG plots.

    Returns:
        The summary (also written to summary.json, with non-finite values as null).

    Raises:
        InputError: unknown hit rule, unreadable files, unpaired truth cases or mismatched grids.
    """
    if rule not in HIT_RULES:
        raise InputError(f"hit rule {rule!r} is not one of {', '.join(HIT_RULES)}")
    out = Path(output)
    rows: list[dict[str, Any]] = []
    matches: list[LesionMatch] = []
    for case in pair_cases(pred, truth, task):
        p, t, prob, spacing = _load_pair(case)
        try:
            row, match = evaluate_arrays(p, t, spacing, cast(HitRule, rule), prob, threshold, distance_mm)
        except ValueError as exc:
            raise InputError(f"{case.truth}: {exc}") from None
        log.info("%s: dice %.3f, lesion F1 %.3f", case.name, row["dice"], row["lesion_f1"])
        rows.append({"case": case.name, **row})
        matches.append(match)
    curves = lesion_curves(matches)
    summary = json_safe(
        {"task": task, "hit_rule": rule, "threshold": threshold, **summarize(rows, matches, curves, n_boot)}
    )
    if rule == "centroid":
        summary["distance_mm"] = distance_mm
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "per_case.csv") as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, allow_nan=False))
    if plots:
        _plot(curves, rows, out)
    return summary
