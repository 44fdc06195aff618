"""Export files of a job: the pipeline's own when nothing was corrected, rebuilt from the accepted
labels otherwise (through the same writers the pipeline uses).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from neurolesion.errors import InputError
from neurolesion.io.atomic import atomic_path
from neurolesion.io.nifti import load_nifti
from neurolesion.service.review import current_labels_path, current_lesions_path, read_lesions
from neurolesion.service.worker import upload_input

#: Export kind -> (download name, media type).
EXPORTS: dict[str, tuple[str, str]] = {
    "rtstruct": ("rtstruct.dcm", "application/dicom"),
    "seg": ("seg.dcm", "application/dicom"),
    "nifti": ("labels_nifti.zip", "application/zip"),
    "csv": ("lesions.csv", "text/csv"),
    "report": ("report.html", "text/html"),
}


def _tasks(job_root: Path) -> list[str]:
    return sorted(
        p.name.removesuffix("_labels.nii.gz") for p in (job_root / "output").glob("*_labels.nii.gz")
    )


def corrected(job_root: Path) -> bool:
    """True when a correction was saved for any task."""
    return any((job_root / "review").glob("*_labels.nii.gz"))


def _current_labels(job_root: Path) -> dict[str, np.ndarray]:
    return {
        t: load_nifti(current_labels_path(job_root, t), label=True).data.astype(np.uint16)
        for t in _tasks(job_root)
    }


def _nifti_zip(job_root: Path, target: Path) -> Path:
    """Current labels per task (accepted where corrected), the AI versions, brain mask and table."""
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for task in _tasks(job_root):
            zf.write(current_labels_path(job_root, task), f"{task}_labels.nii.gz")
            zf.write(job_root / "output" / f"{task}_labels.nii.gz", f"ai/{task}_labels.nii.gz")
        brain = job_root / "output" / "brain_mask.nii.gz"
        if brain.is_file():
            zf.write(brain, "brain_mask.nii.gz")
        zf.write(current_lesions_path(job_root), "lesions.csv")
    return target


def _dicom_exports(job_root: Path, request: dict[str, Any], target_dir: Path) -> dict[str, Path]:
    """RTSTRUCT and SEG of the accepted labels, referencing the uploaded DICOM series."""
    from neurolesion.io.case import load_case
    from neurolesion.pipeline import write_dicom_outputs

    summary = json.loads((job_root / "output" / "summary.json").read_text())
    if summary.get("input", {}).get("kind") != "dicom":
        raise InputError(
            "this study was not DICOM: RTSTRUCT and SEG need the source DICOM series to reference"
        )
    inputs = job_root / "input"
    overrides = {seq: inputs / name for seq, name in (request.get("overrides") or {}).items()}
    case = load_case(None if request.get("only_overrides") else upload_input(inputs), overrides or None)
    series = case.source.get("dicom_series", {}).get(case.reference)
    if series is None:
        raise InputError(
            "the reference sequence of this study is not a DICOM series; no RTSTRUCT/SEG possible"
        )
    if not _tasks(job_root):
        raise FileNotFoundError("no lesion label map: the lesion tasks of this job were skipped")
    notes: dict[str, Any] = {"warnings": []}
    with tempfile.TemporaryDirectory(dir=job_root) as stage:
        files = write_dicom_outputs(
            Path(stage),
            series,
            _current_labels(job_root),
            read_lesions(current_lesions_path(job_root)),
            notes,
        )
        if not files:
            raise RuntimeError("; ".join(notes["warnings"]) or "no lesion to export")
        target_dir.mkdir(parents=True, exist_ok=True)
        return {name: Path(shutil.move(str(path), target_dir / path.name)) for name, path in files.items()}


def _report(job_root: Path, target: Path) -> Path:
    """The HTML report rebuilt from the accepted labels and table."""
    from neurolesion.report import write_report

    summary = json.loads((job_root / "output" / "summary.json").read_text())
    summary.setdefault("warnings", []).append("contours corrected and accepted by a reviewer")
    images = {
        p.name.removesuffix(".nii.gz"): load_nifti(p) for p in sorted((job_root / "viewer").glob("*.nii.gz"))
    }
    brain_file = job_root / "output" / "brain_mask.nii.gz"
    brain = load_nifti(brain_file, label=True).data > 0 if brain_file.is_file() else None
    with tempfile.TemporaryDirectory(dir=job_root) as stage:
        written = write_report(
            Path(stage),
            summary,
            read_lesions(current_lesions_path(job_root)),
            images,
            _current_labels(job_root),
            brain=brain,
            registration={
                seq: np.asarray(r["matrix"])
                for seq, r in (summary.get("registration") or {}).items()
                if "matrix" in r
            },
            pdf=False,
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(str(written), target))


def export_file(job_root: Path, kind: str, request: dict[str, Any]) -> Path:
    """The file to download for one export kind (rebuilt from the accepted labels when corrected).

    Args:
        job_root: the job folder.
        kind: one of EXPORTS.
        request: the job's request (overrides, to find the DICOM series again).

    Returns:
        Path of the file.

    Raises:
        InputError: unknown kind, or a DICOM export of a study that was not DICOM.
        FileNotFoundError: the pipeline did not write that output, or the job has no lesion label map.
    """
    if kind not in EXPORTS:
        raise InputError(f"export {kind!r}: unknown; expected one of {sorted(EXPORTS)}")
    output, edited = job_root / "output", corrected(job_root)
    exports = job_root / "review" / "exports"
    if kind == "csv":
        return current_lesions_path(job_root)
    if kind == "nifti":
        return _nifti_zip(job_root, exports / EXPORTS[kind][0])
    if kind == "report":
        return _report(job_root, exports / "report.html") if edited else output / "report.html"
    if not edited:
        original = output / EXPORTS[kind][0]
        if original.is_file():
            return original
    files = _dicom_exports(job_root, request, exports)
    if kind not in files:
        raise FileNotFoundError(f"{EXPORTS[kind][0]} could not be written for this study")
    return files[kind]
