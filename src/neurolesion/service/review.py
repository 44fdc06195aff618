"""Clinician corrections: keep the AI and the accepted label maps side by side, measure their agreement.

A job folder holds the AI result in ``output/`` (never modified) and the accepted version in ``review/``
(``<task>_labels.nii.gz`` and ``lesions.csv``), written when a corrected label map is saved.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from neurolesion.errors import InputError
from neurolesion.io.atomic import atomic_path
from neurolesion.io.nifti import load_nifti, save_nifti
from neurolesion.volume import Volume

#: Largest label map accepted from the browser once decompressed (a 512x512x400 uint16 is 200 MB).
MAX_LABEL_BYTES = 512 << 20

#: Columns of the exported review log (one row per lesion per saved correction).
LOG_COLUMNS = (
    "job_id",
    "task",
    "saved_at",
    "review_seconds",
    "correction_seconds",
    "case_dice",
    "ai_id",
    "accepted_ids",
    "status",
    "reviewer_accepted",
    "dice",
    "ai_volume_ml",
    "accepted_volume_ml",
)


def current_labels_path(job_root: Path, task: str) -> Path:
    """The accepted label map of `task` when one was saved, else the AI one."""
    accepted = job_root / "review" / f"{task}_labels.nii.gz"
    return accepted if accepted.is_file() else job_root / "output" / f"{task}_labels.nii.gz"


def current_lesions_path(job_root: Path) -> Path:
    """The accepted lesion table when a correction was saved, else the AI one."""
    accepted = job_root / "review" / "lesions.csv"
    return accepted if accepted.is_file() else job_root / "output" / "lesions.csv"


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def read_lesions(path: Path) -> list[dict[str, Any]]:
    """Rows of a lesions.csv with numbers as numbers (empty list when the file is absent)."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def write_lesions(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write lesion rows atomically with the pipeline's column order."""
    from neurolesion.pipeline import LESION_COLUMNS

    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(LESION_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def parse_label_upload(data: bytes, like: Volume, name: str) -> np.ndarray:
    """The integer label array of an uploaded NIfTI (plain or gzipped), checked against the AI grid.

    Args:
        data: the file's bytes (NiiVue's saved drawing).
        like: the AI label map whose grid (shape and affine) the upload must have.
        name: what to call it in errors.

    Returns:
        (X, Y, Z) uint16 labels.

    Raises:
        InputError: unreadable, too large, other shape or affine, negative or fractional labels.
    """
    if data[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            data = gz.read(MAX_LABEL_BYTES + 1)
    if len(data) > MAX_LABEL_BYTES:
        raise InputError(f"{name}: label map over {MAX_LABEL_BYTES >> 20} MB; expected one volume")
    try:
        img = nib.Nifti1Image.from_bytes(data)
        array = np.asarray(img.dataobj)
    except Exception as exc:
        raise InputError(f"{name}: not a readable NIfTI label map ({exc})") from None
    array = (
        array.reshape(array.shape[:3]) if array.ndim > 3 and array.size == np.prod(array.shape[:3]) else array
    )
    if array.shape != like.shape:
        raise InputError(f"{name}: label map shape {array.shape}; expected the case grid {like.shape}")
    if not np.allclose(img.affine, like.affine, atol=1e-3):
        raise InputError(
            f"{name}: label map affine differs from the case grid; expected {like.affine.tolist()}"
        )
    if array.min() < 0 or not np.array_equal(array, np.round(array)) or array.max() > 65535:
        raise InputError(f"{name}: labels must be whole numbers 0..65535")
    return array.astype(np.uint16)


def compare(
    ai: np.ndarray, accepted: np.ndarray, voxel_ml: float, reviewer_accepted: Iterable[int] = ()
) -> dict[str, Any]:
    """Agreement between the AI and the accepted label maps, per lesion and for the case.

    Each AI lesion is compared with the accepted lesions that overlap it (so a relabelled lesion keeps
    its Dice); accepted lesions that overlap no AI lesion are reported as added (Dice 0).

    Args:
        ai: AI instance labels.
        accepted: accepted instance labels on the same grid.
        voxel_ml: volume of one voxel in ml.
        reviewer_accepted: AI ids the reviewer explicitly accepted.

    Returns:
        ``{"case_dice": float, "lesions": [{"ai_id", "accepted_ids", "status", "reviewer_accepted",
        "dice", "ai_volume_ml", "accepted_volume_ml"}]}``; status is unchanged, edited, deleted or added.

    Example:
        >>> ai = np.zeros((4, 4, 4), np.uint16); ai[0, 0, :2] = 1
        >>> compare(ai, ai * 0, 0.001)["lesions"][0]["status"]
        'deleted'
    """
    chosen = {int(i) for i in reviewer_accepted}
    accepted_counts = np.bincount(accepted.ravel())
    rows: list[dict[str, Any]] = []
    matched: set[int] = set()
    for index, box in enumerate(ndimage.find_objects(ai), start=1):
        if box is None:
            continue
        ai_mask = ai[box] == index
        inside = accepted[box][ai_mask]
        overlapping = sorted(int(v) for v in np.unique(inside) if v)
        matched.update(overlapping)
        ai_count = int(ai_mask.sum())
        acc_count = int(sum(accepted_counts[i] for i in overlapping))
        score = 2.0 * int(np.count_nonzero(inside)) / (ai_count + acc_count)
        status = "deleted" if not overlapping else "unchanged" if score == 1.0 else "edited"
        rows.append(
            {
                "ai_id": index,
                "accepted_ids": overlapping,
                "status": status,
                "reviewer_accepted": index in chosen,
                "dice": round(score, 4),
                "ai_volume_ml": round(ai_count * voxel_ml, 4),
                "accepted_volume_ml": round(acc_count * voxel_ml, 4),
            }
        )
    for index in sorted(int(v) for v in np.unique(accepted) if v and int(v) not in matched):
        rows.append(
            {
                "ai_id": None,
                "accepted_ids": [index],
                "status": "added",
                "reviewer_accepted": True,
                "dice": 0.0,
                "ai_volume_ml": 0.0,
                "accepted_volume_ml": round(int(accepted_counts[index]) * voxel_ml, 4),
            }
        )
    from neurolesion.metrics.overlap import dice  # the metrics package is heavy to import in workers

    return {"case_dice": round(float(dice(accepted > 0, ai > 0)), 4), "lesions": rows}


def _accepted_rows(
    labels: np.ndarray,
    affine: np.ndarray,
    task: str,
    prob: np.ndarray | None,
    ai: np.ndarray,
    ai_rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Lesion rows of the accepted map; type and anatomy come from the AI lesion each one overlaps."""
    from neurolesion.analysis.table import lesion_table

    by_id = {int(r["id"]): r for r in ai_rows}
    source: dict[int, dict[str, Any]] = {}
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None:
            under = ai[box][labels[box] == index]
            hits = [by_id[int(i)] for i in np.unique(under) if int(i) in by_id]
            if hits:
                source[index] = hits[0]
    types = {
        i: f"{r['type']}/{r['subtype']}" if r.get("subtype") else str(r["type"])
        for i, r in source.items()
        if r.get("type")
    }
    rows = lesion_table(labels, affine, task, prob=prob, anatomy=None, types=types)
    for row in rows:
        for key in ("region", "lobe", "side", "brainstem"):
            carried = source.get(int(row["id"]), {}).get(key)
            if carried not in (None, "") and row.get(key) in (None, ""):
                row[key] = carried
    return list(rows)


def save_correction(
    job_root: Path, task: str, data: bytes, reviewer_accepted: Iterable[int] = ()
) -> dict[str, Any]:
    """Store a corrected label map of one task as the accepted version and update the accepted table.

    Args:
        job_root: the job folder (``output/`` holds the AI result).
        task: the task whose labels were corrected.
        data: NIfTI bytes of the corrected instance labels on the reference grid.
        reviewer_accepted: AI lesion ids the reviewer accepted explicitly.

    Returns:
        The comparison of `compare` plus ``"rows"``: the accepted lesion rows of this task.

    Raises:
        InputError: no AI result for `task`, or an upload that does not fit the case grid.
    """
    ai_path = job_root / "output" / f"{task}_labels.nii.gz"
    if not ai_path.is_file():
        raise InputError(f"task {task!r}: this job has no {ai_path.name} to correct")
    ai_volume = load_nifti(ai_path, label=True)
    ai = ai_volume.data.astype(np.uint16)
    accepted = parse_label_upload(data, ai_volume, f"{task} correction")
    prob_path = job_root / "output" / f"{task}_probability.nii.gz"
    prob = load_nifti(prob_path).data if prob_path.is_file() else None
    save_nifti(accepted, job_root / "review" / f"{task}_labels.nii.gz", like=ai_volume, dtype=np.uint16)
    all_rows = read_lesions(current_lesions_path(job_root))
    ai_rows = [r for r in read_lesions(job_root / "output" / "lesions.csv") if r.get("task") == task]
    rows = _accepted_rows(accepted, ai_volume.affine, task, prob, ai, ai_rows)
    order = {name: i for i, name in enumerate(dict.fromkeys(r.get("task") for r in [*all_rows, *rows]))}
    merged = sorted(
        [r for r in all_rows if r.get("task") != task] + rows, key=lambda r: (order[r.get("task")], r["id"])
    )
    write_lesions(job_root / "review" / "lesions.csv", merged)
    voxel_ml = float(np.prod(ai_volume.spacing)) / 1000.0
    return compare(ai, accepted, voxel_ml, reviewer_accepted) | {"rows": rows}


def write_review_log(path: str | os.PathLike[str], reviews: Iterable[Mapping[str, Any]]) -> Path:
    """Write saved reviews as CSV, one row per lesion (LOG_COLUMNS).

    Example:
        >>> write_review_log("review_log.csv", store.reviews())  # doctest: +SKIP
    """
    out = Path(path)
    with atomic_path(out) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(LOG_COLUMNS))
        writer.writeheader()
        for review in reviews:
            for lesion in review["lesions"] or [{}]:
                writer.writerow(
                    {
                        "job_id": review["job_id"],
                        "task": review["task"],
                        "saved_at": review["created_at"],
                        "review_seconds": review["review_seconds"],
                        "correction_seconds": review["correction_seconds"],
                        "case_dice": review["case_dice"],
                        **{k: lesion.get(k, "") for k in LOG_COLUMNS[6:]},
                        "accepted_ids": " ".join(str(i) for i in lesion.get("accepted_ids", [])),
                    }
                )
    return out
