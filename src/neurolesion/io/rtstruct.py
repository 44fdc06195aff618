"""DICOM RT Structure Set output: one ROI per lesion, contoured on the source series' slices.

Every lesion of an instance label map (0 background, one integer id per lesion) on the source series' grid
becomes an ROI (number = the lesion id) with a name and a display colour. On each source slice that holds
the lesion, its outlines (outer boundaries and holes, found at the 0.5 iso-line of the binary slice by
`skimage.measure.find_contours`) become CLOSED_PLANAR contours in patient (LPS) coordinates, each
referencing its source image. Patient and study modules are copied from the source; the structure set
references the source study, series and every instance. `rasterise_rtstruct` turns contours back into a
label map (even-odd rule, so holes stay holes).

Example:
    >>> series = read_dicom_folder("dicom/")[0]  # doctest: +SKIP
    >>> write_rtstruct(labels, series, "out/rtstruct.dcm", names={1: "metastasis 1"})  # doctest: +SKIP
    >>> (rasterise_rtstruct("out/rtstruct.dcm", series) == labels).mean()  # doctest: +SKIP
    0.9999
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pydicom
from matplotlib import colormaps
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from skimage.draw import polygon2mask
from skimage.measure import approximate_polygon, find_contours

from neurolesion import __version__
from neurolesion.errors import InputError
from neurolesion.io.atomic import atomic_path
from neurolesion.io.dicom import DicomSeries

log = logging.getLogger(__name__)

RT_STRUCTURE_SET_STORAGE = UID("1.2.840.10008.5.1.4.1.1.481.3")
#: Detached Study Management (retired), the class the RT Referenced Study Sequence conventionally names.
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
_TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
#: Name of the single, empty ROI written when the label map holds no lesion.
NO_LESION = "no lesion found"


def default_colour(label: int) -> tuple[int, int, int]:
    """A distinct RGB (0-255) colour per label id, cycling through matplotlib's tab20."""
    r, g, b = (round(float(c) * 255) for c in colormaps["tab20"]((label - 1) % 20)[:3])
    return (r, g, b)


def slice_contours(mask: np.ndarray, tolerance: float = 0.05) -> list[np.ndarray]:
    """Closed outlines of a 2D binary mask, as (N, 2) vertex arrays in array index coordinates.

    Outlines follow the 0.5 iso-line, half a voxel outside the border voxel centres; holes are outlines too
    (fill with the even-odd rule). Colinear vertices are dropped (`tolerance` in voxels).

    Example:
        >>> m = np.zeros((5, 5), bool); m[2, 2] = True
        >>> slice_contours(m)[0].tolist()
        [[2.5, 2.0], [2.0, 1.5], [1.5, 2.0], [2.0, 2.5]]
    """
    padded = np.pad(np.asarray(mask, dtype=np.float32), 1)
    outlines = []
    for contour in find_contours(padded, 0.5):
        simple = approximate_polygon(contour - 1.0, tolerance)
        if len(simple) > 1 and np.allclose(simple[0], simple[-1]):
            simple = simple[:-1]
        if len(simple) >= 3:
            outlines.append(simple)
    return outlines


def _lps(affine: np.ndarray, ij: np.ndarray, k: int) -> np.ndarray:
    """(N, 3) LPS mm of voxel coordinates (i, j) on slice k."""
    voxels = np.column_stack([ij, np.full(len(ij), float(k))])
    return np.asarray((voxels @ affine[:3, :3].T + affine[:3, 3]) @ _RAS_TO_LPS)


def _image_ref(series: DicomSeries, k: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = series.uids.sop_class_uid
    item.ReferencedSOPInstanceUID = series.uids.sop_instance_uids[k]
    if series.uids.frame_numbers:
        item.ReferencedFrameNumber = series.uids.frame_numbers[k]
    return item


def _header(series: DicomSeries, series_number: int, label: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for element in series.patient_study:
        ds.add(element)
    for keyword in _TYPE2_PATIENT_STUDY:  # required, possibly empty
        ds.setdefault(keyword, "")
    ds.StudyInstanceUID = series.uids.study_instance_uid
    ds.FrameOfReferenceUID = series.uids.frame_of_reference_uid
    ds.PositionReferenceIndicator = series.headers[0].get("PositionReferenceIndicator", "")
    now = datetime.datetime.now()
    ds.InstanceCreationDate = ds.StructureSetDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.StructureSetTime = ds.SeriesTime = now.strftime("%H%M%S")
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"{label} on {series.description}"[:64]
    ds.OperatorsName = ""
    ds.Manufacturer = "neurolesion"
    ds.ManufacturerModelName = "neurolesion"
    ds.SoftwareVersions = __version__
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    ds.InstanceNumber = 1
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


def _referenced_frame(series: DicomSeries) -> Dataset:
    rt_series = Dataset()
    rt_series.SeriesInstanceUID = series.uids.series_instance_uid
    rt_series.ContourImageSequence = Sequence(
        [_image_ref(series, k) for k in range(len(series.uids.sop_instance_uids))]
    )
    study = Dataset()
    study.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
    study.ReferencedSOPInstanceUID = series.uids.study_instance_uid
    study.RTReferencedSeriesSequence = Sequence([rt_series])
    frame = Dataset()
    frame.FrameOfReferenceUID = series.uids.frame_of_reference_uid
    frame.RTReferencedStudySequence = Sequence([study])
    return frame


def _check_grid(labels: np.ndarray, series: DicomSeries, where: str) -> None:
    if labels.shape != series.volume.shape:
        raise InputError(
            f"{where}: label map of shape {labels.shape}; expected the series grid {series.volume.shape}"
        )
    if not series.uids.frame_of_reference_uid:
        raise InputError(f"{where}: source series has no FrameOfReferenceUID; an RT Structure Set needs one")


def write_rtstruct(
    labels: np.ndarray,
    series: DicomSeries,
    path: str | Path,
    names: Mapping[int, str] | None = None,
    colours: Mapping[int, tuple[int, int, int]] | None = None,
    *,
    label: str = "neurolesion",
    interpreted_type: str = "",
    series_number: int = 9901,
) -> Path:
    """Write the lesions of an instance label map as a DICOM RT Structure Set referencing `series`.

    Args:
        labels: (X, Y, Z) integer map on the source series' grid (`series.volume.shape`); 0 is background,
            every other value one lesion (its ROI number).
        series: the source series (from `read_dicom_folder`).
        path: output file; written atomically.
        names: lesion id -> ROI name (e.g. "metastasis 3"); default "lesion <id>". A map without lesions
            gives one ROI without contours named NO_LESION (an RT Structure Set needs one ROI at least).
        colours: lesion id -> RGB 0-255; default `default_colour`.
        label: StructureSetLabel (16 characters at most are kept).
        interpreted_type: RTROIInterpretedType of every ROI (e.g. "GTV"; empty by default).
        series_number: SeriesNumber of the new RTSTRUCT series.

    Returns:
        The path written.

    Raises:
        InputError: `labels` is not on the series grid, or the series has no frame of reference.
    """
    out = Path(path)
    grid = np.asarray(labels)
    _check_grid(grid, series, str(out))
    ids = [int(v) for v in np.unique(grid) if v > 0]
    if not ids:  # a structure set needs one ROI at least: say so with an empty one
        ids, names = [1], {1: NO_LESION}
        log.info("%s: no lesion; writing one empty ROI named %r", out, NO_LESION)
    ds = _header(series, series_number, label)
    ds.ReferencedFrameOfReferenceSequence = Sequence([_referenced_frame(series)])
    rois: list[Dataset] = []
    contours: list[Dataset] = []
    observations: list[Dataset] = []
    for n, lesion in enumerate(ids, start=1):
        roi = Dataset()
        roi.ROINumber = lesion
        roi.ReferencedFrameOfReferenceUID = series.uids.frame_of_reference_uid
        roi.ROIName = (names or {}).get(lesion, f"lesion {lesion}")[:64]
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        items: list[Dataset] = []
        mask = grid == lesion
        for k in np.flatnonzero(mask.any(axis=(0, 1))):
            for outline in slice_contours(mask[:, :, k]):
                item = Dataset()
                item.ContourImageSequence = Sequence([_image_ref(series, int(k))])
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(outline)
                item.ContourNumber = len(items) + 1
                item.ContourData = [f"{v:.4f}" for v in _lps(series.volume.affine, outline, int(k)).ravel()]
                items.append(item)
        roi_contour = Dataset()
        roi_contour.ROIDisplayColor = list((colours or {}).get(lesion, default_colour(lesion)))
        roi_contour.ReferencedROINumber = lesion
        if items:  # an empty ContourSequence is invalid: leave it out
            roi_contour.ContourSequence = Sequence(items)
        contours.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber = n
        observation.ReferencedROINumber = lesion
        observation.RTROIInterpretedType = interpreted_type
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    with atomic_path(out) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    log.info("%s: RT Structure Set with %d ROI(s) on %s", out, len(ids), series.description)
    return out


def rasterise_rtstruct(path: str | Path, series: DicomSeries) -> np.ndarray:
    """Fill the CLOSED_PLANAR contours of an RT Structure Set on the grid of `series`.

    Args:
        path: the RTSTRUCT file.
        series: the series whose grid to fill (normally the one the structure set references).

    Returns:
        (X, Y, Z) int32 map: each ROI's voxels hold its ROI number (a later ROI overwrites an earlier one
        where they overlap); contours on one slice combine by the even-odd rule.

    Raises:
        InputError: not an RT Structure Set, another frame of reference, or contours off the series' slices.
    """
    src = Path(path)
    try:
        ds = pydicom.dcmread(src)
    except (pydicom.errors.InvalidDicomError, OSError) as exc:
        raise InputError(f"{src}: cannot read as DICOM ({exc}); expected an RT Structure Set") from None
    if ds.get("SOPClassUID") != RT_STRUCTURE_SET_STORAGE:
        raise InputError(f"{src}: SOP class {ds.get('SOPClassUID')}; expected RT Structure Set Storage")
    shape = series.volume.shape
    to_voxel = np.linalg.inv(series.volume.affine)
    frames = {
        int(r.ROINumber): str(r.get("ReferencedFrameOfReferenceUID", "")) for r in ds.StructureSetROISequence
    }
    out = np.zeros(shape, dtype=np.int32)
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        if frames.get(number) not in ("", series.uids.frame_of_reference_uid):
            raise InputError(
                f"{src}: ROI {number} is in frame of reference {frames[number]}; expected the series'"
            )
        mask = np.zeros(shape, dtype=bool)
        for contour in roi.get("ContourSequence", []):
            if contour.ContourGeometricType != "CLOSED_PLANAR":
                continue
            lps = np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3)
            ras = lps @ _RAS_TO_LPS
            voxels = ras @ to_voxel[:3, :3].T + to_voxel[:3, 3]
            k = round(float(np.mean(voxels[:, 2])))
            if not 0 <= k < shape[2] or np.max(np.abs(voxels[:, 2] - k)) > 0.1:
                raise InputError(
                    f"{src}: ROI {number} has a contour at slice coordinate {np.mean(voxels[:, 2]):.2f}; expected "
                    f"it on one of the {shape[2]} slices of {series.description!r}"
                )
            mask[:, :, k] ^= polygon2mask(shape[:2], voxels[:, :2])
        out[mask] = number
    return out
