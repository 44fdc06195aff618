"""DICOM Segmentation (SEG) output with highdicom: one binary segment per task, on the source series' frames.

Each task's label map (instance ids or a binary mask on the source series' grid) becomes one segment (its
voxels > 0), labelled with the task's title and coded with SNOMED CT terms (brain: Brain; tumour: Neoplasm;
microbleeds: Hemorrhage; the other lesions: Lesion). The SEG references the source series and copies its
patient and study modules; viewers (OHIF, 3D Slicer, PACS) overlay it on the source.

Example:
    >>> series = read_dicom_folder("dicom/")[0]  # doctest: +SKIP
    >>> write_seg({"brain": brain_mask, "tumor": tumor_labels}, series, "out/seg.dcm")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from neurolesion import __version__
from neurolesion.errors import InputError
from neurolesion.io.atomic import atomic_path
from neurolesion.io.dicom import DicomSeries
from neurolesion.registry import TASKS

log = logging.getLogger(__name__)

#: SNOMED CT (category, type) of each task's segment; tasks not listed are coded as a lesion.
TASK_CODES: dict[str, tuple[Code, Code]] = {
    "brain": (codes.SCT.AnatomicalStructure, codes.SCT.Brain),
    "tumor": (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm),
    "cmb": (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Hemorrhage),
}
_LESION = (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion)


def _frames(mask: np.ndarray, series: DicomSeries) -> np.ndarray:
    """(frames, rows, cols) in the order of the source frames: Z order, or the multi-frame file's order."""
    stack = np.transpose(mask, (2, 1, 0))
    if not series.uids.frame_numbers:
        return stack
    ordered = np.zeros_like(stack)
    ordered[np.asarray(series.uids.frame_numbers) - 1] = stack
    return ordered


def _without_empty_sequences(header: Dataset) -> Dataset:
    """A copy of a source header without zero-item sequences (invalid in the modules highdicom copies)."""
    clean = copy.deepcopy(header)
    for element in list(clean):
        if element.VR == "SQ" and len(element.value) == 0:
            del clean[element.tag]
    return clean


def segment_descriptions(tasks: list[str]) -> list[hd.seg.SegmentDescription]:
    """One automatic-algorithm segment description per task, numbered from 1 in the given order."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name="neurolesion", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    out = []
    for number, task in enumerate(tasks, start=1):
        category, kind = TASK_CODES.get(task, _LESION)
        out.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=TASKS[task].title if task in TASKS else task,
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                tracking_uid=hd.UID(),
                tracking_id=task,
            )
        )
    return out


def write_seg(
    labels_by_task: Mapping[str, np.ndarray],
    series: DicomSeries,
    path: str | Path,
    *,
    series_number: int = 9902,
) -> Path:
    """Write one binary segment per task as a DICOM SEG referencing `series`.

    Args:
        labels_by_task: task name -> (X, Y, Z) map on the source series' grid; voxels > 0 are the segment.
        series: the source series (from `read_dicom_folder`).
        path: output file; written atomically.
        series_number: SeriesNumber of the new SEG series.

    Returns:
        The path written.

    Raises:
        InputError: no task given, or a map not on the series grid.
    """
    out = Path(path)
    if not labels_by_task:
        raise InputError(f"{out}: no segmentation given; expected at least one task's label map")
    masks = []
    for task, labels in labels_by_task.items():
        if np.shape(labels) != series.volume.shape:
            raise InputError(
                f"{out}: {task} map of shape {np.shape(labels)}; expected the series grid {series.volume.shape}"
            )
        masks.append(_frames(np.asarray(labels) > 0, series))
    pixels = np.stack(masks, axis=-1).astype(np.uint8)
    first = _without_empty_sequences(series.headers[0])
    source = [first] if series.uids.frame_numbers else [first, *series.headers[1:]]
    seg = hd.seg.Segmentation(
        source_images=source,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(list(labels_by_task)),
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="neurolesion",
        manufacturer_model_name="neurolesion",
        software_versions=__version__,
        device_serial_number="0",
        series_description=f"neurolesion on {series.description}"[:64],
        omit_empty_frames=bool(pixels.any()),
    )
    with atomic_path(out) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    log.info("%s: DICOM SEG with %d segment(s) on %s", out, len(masks), series.description)
    return out
