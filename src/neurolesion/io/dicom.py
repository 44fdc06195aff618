"""DICOM series import: a folder of files (any nesting, plain or .gz) to one `DicomSeries` per image series.

Files are grouped by SeriesInstanceUID (and, inside a series, by orientation, matrix, echo and image type),
slices are ordered along the slice normal, the stack is checked (no missing or unevenly spaced slices,
orthonormal direction cosines, sane voxel sizes), rescale slope/intercept are applied and the exact
voxel-to-RAS affine is built from ImagePositionPatient/ImageOrientationPatient/PixelSpacing (DICOM LPS
turned into RAS). Classic one-slice-per-file series and Enhanced multi-frame images (per-frame functional
groups) are both read. The series' identifiers (UIDs, SOP instances in slice order, patient and study
attributes) are kept: the DICOM outputs (RTSTRUCT, SEG) reference them.

Array axes follow the DICOM pixel grid: X runs along a row (increasing column index, the DICOM row
direction cosine), Y down the columns (increasing row index), Z along the slice normal in slice order.

Example:
    >>> series = read_dicom_folder("patient/")  # doctest: +SKIP
    >>> [(s.description, s.sequence, s.confidence, s.volume.shape) for s in series]  # doctest: +SKIP
    [('ADNI_Sag3D MPRAGE', 't1', 0.95, (256, 256, 170))]
"""

from __future__ import annotations

import gzip
import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from neurolesion.errors import InputError
from neurolesion.io.sequence import HEADER_FIELDS, OTHER, detect_sequence
from neurolesion.registry import check_sequence
from neurolesion.volume import Volume

log = logging.getLogger(__name__)

#: Smallest and largest voxel size (mm) accepted along any axis.
VOXEL_SIZE_RANGE: tuple[float, float] = (0.05, 30.0)
#: Fewest slices a series needs to be a volume.
MIN_SLICES = 3
#: Tolerance on the norm and dot product of the direction cosines.
ORTHONORMAL_TOL = 1e-3
#: Allowed deviation of a slice from its expected position, as a fraction of the slice spacing.
SPACING_TOL = 0.01

#: Attributes of the Patient, General Study and Patient Study modules copied into derived objects.
PATIENT_STUDY_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "PatientSize",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "SpecificCharacterSet",
)
_LOCALIZER_WORDS = ("LOCALIZER", "SCOUT", "SURVEY")
_GZIP_MAGIC = b"\x1f\x8b"


def user_sequence(name: str) -> tuple[str, float, str]:
    """A sequence named by the user, as (name, confidence 1.0, reason), like `detect_sequence` returns.

    Raises:
        InputError: `name` is neither a registry sequence nor "other".
    """
    return (OTHER if name.lower() == OTHER else check_sequence(name)), 1.0, "set by the user"


@dataclass(frozen=True)
class SeriesUIDs:
    """Identifiers of a source series, as DICOM outputs reference them.

    Attributes:
        study_instance_uid, series_instance_uid, frame_of_reference_uid, sop_class_uid: the UIDs.
        sop_instance_uids: SOP Instance UID of every slice, in Z order (repeated for a multi-frame file).
        frame_numbers: 1-based frame number of every slice in a multi-frame file; empty for classic series.
    """

    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_class_uid: str
    sop_instance_uids: tuple[str, ...]
    frame_numbers: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class DicomSeries:
    """One image series read from DICOM.

    Attributes:
        volume: the image, (1, X, Y, Z) float32 with its voxel-to-RAS affine; `volume.meta` holds the
            identifiers and the detected sequence (JSON-friendly).
        sequence: registry sequence name, or "other".
        confidence: confidence of the sequence detection in [0, 1] (1.0 when set by the user).
        reason: why that sequence was chosen.
        description: SeriesDescription (with a suffix when a series held several volumes).
        series_number: SeriesNumber, or None.
        uids: the source identifiers.
        patient_study: Patient and General Study module attributes of the source (PATIENT_STUDY_KEYWORDS).
        headers: the slice headers in Z order, without pixel data (geometry for RTSTRUCT and SEG).
        path: the folder or file the series was read from.
    """

    volume: Volume
    sequence: str
    confidence: float
    reason: str
    description: str
    series_number: int | None
    uids: SeriesUIDs
    patient_study: Dataset = field(repr=False)
    headers: tuple[Dataset, ...] = field(repr=False)
    path: Path = field(default=Path())

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly record of the series (for summary.json and logs)."""
        return {
            "description": self.description,
            "series_number": self.series_number,
            "sequence": self.sequence,
            "confidence": self.confidence,
            "reason": self.reason,
            "shape": list(self.volume.shape),
            "spacing_mm": [round(v, 4) for v in self.volume.spacing],
            "study_instance_uid": self.uids.study_instance_uid,
            "series_instance_uid": self.uids.series_instance_uid,
        }

    def with_sequence(self, name: str) -> DicomSeries:
        """The same series with its sequence set by the user (confidence 1.0).

        Raises:
            InputError: `name` is not a registry sequence or "other".
        """
        seq, confidence, reason = user_sequence(name)
        meta = {
            **self.volume.meta,
            "sequence": seq,
            "sequence_confidence": confidence,
            "sequence_reason": reason,
        }
        volume = Volume(self.volume.array, self.volume.affine, self.volume.name, meta)
        return replace(self, volume=volume, sequence=seq, confidence=confidence, reason=reason)


@dataclass(frozen=True)
class _Slice:
    """One 2D image (a classic file, or one frame of a multi-frame file) with its geometry."""

    path: Path
    header: Dataset
    frame: int  # 1-based frame number; 0 for a classic single-frame file
    position: tuple[float, ...]
    orientation: tuple[float, ...]
    spacing: tuple[float, ...]  # (between rows, between columns) as PixelSpacing
    slope: float
    intercept: float
    stack_key: tuple[Any, ...]  # what must be equal for slices to belong to one volume


def _open_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzipped."""
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(
                f"{path}: corrupt or truncated gzip file ({exc}); expected a gzipped DICOM file"
            ) from None
    return data


def _peek(path: Path) -> bytes:
    """The first 132 bytes (decompressed when gzipped): enough to tell a DICOM file."""
    with path.open("rb") as fh:
        head = fh.read(132)
    if head[:2] != _GZIP_MAGIC:
        return head
    try:
        with gzip.open(path) as fh:
            return fh.read(132)
    except (OSError, EOFError) as exc:
        if path.name.lower().endswith((".dcm.gz", ".dicom.gz")):
            raise InputError(
                f"{path}: corrupt or truncated gzip file ({exc}); expected a gzipped DICOM file"
            ) from None
        return b""


def _read_header(path: Path) -> Dataset | None:
    """The header (no pixel data) of a DICOM file; None for a file that is not DICOM.

    Raises:
        InputError: the file says it is DICOM (preamble "DICM") but cannot be parsed.
    """
    head = _peek(path)
    has_preamble = head[128:132] == b"DICM"
    raw_start = head[:2] in (b"\x08\x00", b"\x02\x00")  # a preamble-less dataset starts with group 0008/0002
    if not has_preamble and not raw_start:
        log.info("skipping %s: not a DICOM file", path)
        return None
    data = _open_bytes(path)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=not has_preamble)
        ds.get("SeriesInstanceUID")  # parsing is lazy: touch the data set so a broken one fails here
        list(ds.keys())
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OverflowError) as exc:
        if has_preamble:
            raise InputError(f"{path}: corrupt DICOM file ({type(exc).__name__}: {exc})") from None
        log.info("skipping %s: not a DICOM file", path)
        return None
    if "SOPClassUID" not in ds and "DirectoryRecordSequence" not in ds:
        if has_preamble:
            raise InputError(
                f"{path}: corrupt DICOM file (no SOP Class UID could be read); expected a DICOM object"
            )
        log.info("skipping %s: not a DICOM file", path)
        return None
    return ds


def _group(header: Dataset, frame_item: Dataset | None, keyword: str) -> Dataset | None:
    """The first item of a functional group sequence, per-frame first, then shared."""
    for holder in (frame_item, *header.get("SharedFunctionalGroupsSequence", [])):
        if holder is not None and keyword in holder and len(holder[keyword].value) > 0:
            item: Dataset = holder[keyword].value[0]
            return item
    return None


def _floats(value: Any, n: int, path: Path, what: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != n or not np.all(np.isfinite(numbers)):
        raise InputError(f"{path}: {what} is {value!r}; expected {n} finite numbers")
    return numbers


def _geometry_from(
    source: Dataset, path: Path
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None:
    """(position, orientation, spacing) from a data set or functional group items; None when one is absent."""
    if any(k not in source for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")):
        return None
    position = _floats(source.ImagePositionPatient, 3, path, "ImagePositionPatient")
    orientation = _floats(source.ImageOrientationPatient, 6, path, "ImageOrientationPatient")
    spacing = _floats(source.PixelSpacing, 2, path, "PixelSpacing")
    return position, orientation, spacing


def _common_key(
    header: Dataset, orientation: tuple[float, ...], spacing: tuple[float, ...]
) -> tuple[Any, ...]:
    return (
        tuple(round(v, 3) for v in orientation),
        tuple(round(v, 4) for v in spacing),
        int(header.get("Rows", 0)),
        int(header.get("Columns", 0)),
    )


def _classic_slices(path: Path, header: Dataset) -> list[_Slice]:
    geometry = _geometry_from(header, path)
    if geometry is None:
        log.info(
            "skipping %s: image without ImagePositionPatient, ImageOrientationPatient or PixelSpacing", path
        )
        return []
    position, orientation, spacing = geometry
    key = (
        *_common_key(header, orientation, spacing),
        str(header.get("EchoNumbers", "")),
        str(header.get("EchoTime", "")),
        str(header.get("TemporalPositionIdentifier", "")),
        "\\".join(str(v) for v in header.get("ImageType", [])),
    )
    slope = float(header.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(header.get("RescaleIntercept", 0.0) or 0.0)
    return [_Slice(path, header, 0, position, orientation, spacing, slope, intercept, key)]


def _multiframe_slices(path: Path, header: Dataset) -> list[_Slice]:
    frames = header.get("PerFrameFunctionalGroupsSequence")
    count = int(header.get("NumberOfFrames", 1) or 1)
    if frames is None or len(frames) != count:
        raise InputError(
            f"{path}: multi-frame image with {count} frames but "
            f"{0 if frames is None else len(frames)} per-frame functional groups; expected one per frame "
            "(only Enhanced multi-frame images with plane position and orientation per frame are supported)"
        )
    slices = []
    for number, item in enumerate(frames, start=1):
        merged = Dataset()
        for keyword, attr in (
            ("PlanePositionSequence", "ImagePositionPatient"),
            ("PlaneOrientationSequence", "ImageOrientationPatient"),
            ("PixelMeasuresSequence", "PixelSpacing"),
        ):
            group = _group(header, item, keyword)
            if group is not None and attr in group:
                setattr(merged, attr, group[attr].value)
        geometry = _geometry_from(merged, path)
        if geometry is None:
            raise InputError(
                f"{path}: frame {number} lacks plane position, orientation or pixel spacing; expected all three"
            )
        position, orientation, spacing = geometry
        transform = _group(header, item, "PixelValueTransformationSequence")
        content = _group(header, item, "FrameContentSequence")
        echo = _group(header, item, "MREchoSequence")
        frame_type = _group(header, item, "MRImageFrameTypeSequence")
        key = (
            *_common_key(header, orientation, spacing),
            str(content.get("StackID", "")) if content else "",
            str(content.get("TemporalPositionIndex", "")) if content else "",
            str(echo.get("EffectiveEchoTime", "")) if echo else "",
            "\\".join(str(v) for v in frame_type.get("FrameType", [])) if frame_type else "",
        )
        slope = float(transform.get("RescaleSlope", 1.0) or 1.0) if transform else 1.0
        intercept = float(transform.get("RescaleIntercept", 0.0) or 0.0) if transform else 0.0
        slices.append(_Slice(path, header, number, position, orientation, spacing, slope, intercept, key))
    return slices


def _image_slices(path: Path, header: Dataset) -> list[_Slice]:
    """The 2D images of a file; [] (logged) for non-image objects and images we cannot place.

    Raises:
        InputError: an Enhanced multi-frame image whose functional groups are incomplete.
    """
    if "Rows" not in header or "Columns" not in header:
        log.info("skipping %s: not an image (SOP class %s)", path, header.get("SOPClassUID", "?"))
        return []
    if int(header.get("SamplesPerPixel", 1)) != 1:
        log.info("skipping %s: colour image (SamplesPerPixel %s)", path, header.get("SamplesPerPixel"))
        return []
    if "PerFrameFunctionalGroupsSequence" in header:
        return _multiframe_slices(path, header)
    if int(header.get("NumberOfFrames", 1) or 1) > 1:
        log.warning(
            "skipping %s: multi-frame image without per-frame functional groups (only Enhanced multi-frame "
            "images, whose frames carry their plane position and orientation, can be placed)",
            path,
        )
        return []
    return _classic_slices(path, header)


def stack_geometry(
    positions: np.ndarray, orientation: Iterable[float], spacing: Iterable[float], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Slice order and voxel-to-RAS affine of a stack of parallel slices.

    Args:
        positions: (N, 3) ImagePositionPatient of each slice (LPS mm), in any order.
        orientation: ImageOrientationPatient (row direction cosine, then column direction cosine).
        spacing: PixelSpacing (between rows, between columns) in mm.
        where: the series, for error messages.

    Returns:
        (order, affine): indices sorting the slices along the normal (row x column cosine), and the 4x4
        affine from (column index, row index, slice index) to RAS mm.

    Raises:
        InputError: fewer than MIN_SLICES slices, non-orthonormal cosines, absurd voxel sizes, duplicate,
            missing or unevenly spaced slices, or slices not stacked along the normal (sheared stack).

    Example:
        >>> pos = np.array([[0.0, 0.0, z] for z in (2.0, 0.0, 4.0)])
        >>> order, affine = stack_geometry(pos, [1, 0, 0, 0, 1, 0], [0.5, 0.5], "s")
        >>> order.tolist(), np.diag(affine).tolist()
        ([1, 0, 2], [-0.5, -0.5, 2.0, 1.0])
    """
    pos: np.ndarray = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    cosines = np.asarray(list(orientation), dtype=np.float64)
    row_cos, col_cos = cosines[:3], cosines[3:]
    row_spacing, col_spacing = (float(v) for v in spacing)
    if len(pos) < MIN_SLICES:
        raise InputError(
            f"{where}: {len(pos)} slice(s); expected a 3D series of at least {MIN_SLICES} slices"
        )
    norms = np.linalg.norm([row_cos, col_cos], axis=1)
    if np.any(np.abs(norms - 1) > ORTHONORMAL_TOL) or abs(float(row_cos @ col_cos)) > ORTHONORMAL_TOL:
        raise InputError(
            f"{where}: ImageOrientationPatient {cosines.tolist()} is not two orthonormal direction cosines "
            f"(norms {norms.round(4).tolist()}, dot {float(row_cos @ col_cos):.4f})"
        )
    normal = np.cross(row_cos, col_cos)
    depth = pos @ normal
    order = np.argsort(depth, kind="stable")
    depth, pos = depth[order], pos[order]
    gaps = np.diff(depth)
    step = float(np.median(gaps))
    lo, hi = VOXEL_SIZE_RANGE
    for name, size in (("pixel spacing (rows)", row_spacing), ("pixel spacing (columns)", col_spacing)):
        if not lo <= size <= hi:
            raise InputError(f"{where}: {name} is {size:g} mm; expected {lo:g} to {hi:g} mm")
    if np.any(gaps < 1e-3 * max(step, 1e-3)):
        dup = int(np.sum(gaps < 1e-3 * max(step, 1e-3)))
        raise InputError(
            f"{where}: {dup} slice(s) share a position with another; expected one slice per position "
            "(several volumes mixed in one series?)"
        )
    if not lo <= step <= hi:
        raise InputError(f"{where}: slice spacing is {step:g} mm; expected {lo:g} to {hi:g} mm")
    big = np.flatnonzero(gaps > 1.5 * step)
    if big.size:
        i = int(big[0])
        missing = round(float(gaps[i]) / step) - 1
        raise InputError(
            f"{where}: missing slice(s): a gap of {gaps[i]:.3f} mm between slices {i + 1} and {i + 2} "
            f"(at {depth[i]:.3f} and {depth[i + 1]:.3f} mm along the normal) where the spacing is {step:.3f} mm "
            f"(about {max(missing, 1)} slice(s) missing; {len(big)} gap(s) in all)"
        )
    off_grid = np.abs(depth - np.linspace(depth[0], depth[-1], len(depth)))
    worst = int(np.argmax(off_grid))
    if off_grid[worst] > SPACING_TOL * step:
        raise InputError(
            f"{where}: uneven slice spacing: gaps from {gaps.min():.3f} to {gaps.max():.3f} mm (slice {worst + 1} "
            f"is {off_grid[worst]:.3f} mm off an even grid); expected one constant spacing"
        )
    slice_vector = (pos[-1] - pos[0]) / (len(pos) - 1)
    offsets = pos - pos[0]
    shear = offsets - np.outer(offsets @ normal, normal)
    if float(np.max(np.linalg.norm(shear, axis=1))) > SPACING_TOL * min(row_spacing, col_spacing, step):
        raise InputError(
            f"{where}: slice positions drift {float(np.max(np.linalg.norm(shear, axis=1))):.3f} mm across the "
            "slice plane (gantry tilt or sheared stack); expected slices stacked along the normal"
        )
    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_spacing
    lps[:3, 1] = col_cos * row_spacing
    lps[:3, 2] = slice_vector
    lps[:3, 3] = pos[0]
    return order, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _pixels(path: Path, header: Dataset, where: str) -> np.ndarray:
    """Stored pixel values of a file: (rows, cols) or (frames, rows, cols).

    Only the pixel module is parsed again (the header was read already). A file without file meta
    information (no preamble) is decoded in the encoding its header was read with.

    Raises:
        InputError: the pixel data cannot be read (truncated, or a compression without decoder).
    """
    options: dict[str, Any] = {}
    if "TransferSyntaxUID" not in getattr(header, "file_meta", {}):
        implicit, little = header.original_encoding
        options["transfer_syntax_uid"] = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    try:
        return np.asarray(pixel_array(io.BytesIO(_open_bytes(path)), **options))
    except (
        InvalidDicomError,
        EOFError,
        ValueError,
        KeyError,
        AttributeError,
        RuntimeError,
        NotImplementedError,
    ) as exc:
        syntax = options.get("transfer_syntax_uid") or header.file_meta.get("TransferSyntaxUID")
        raise InputError(
            f"{where}: cannot read the pixel data of {path} (transfer syntax {syntax}): {exc}; expected complete "
            "pixel data, uncompressed or in a decodable compression (JPEG, JPEG-LS and JPEG 2000 need "
            "python-gdcm: pip install 'neurolesion[dicom]')"
        ) from None


def _volume_array(slices: list[_Slice], where: str) -> np.ndarray:
    """(X, Y, Z) float32 array of slices already in Z order, rescaled."""
    rows, cols = int(slices[0].header.Rows), int(slices[0].header.Columns)
    out = np.empty((cols, rows, len(slices)), dtype=np.float32)
    cache: dict[Path, np.ndarray] = {}
    for z, s in enumerate(slices):
        if s.path not in cache:  # keep one file's pixels: the frames of a multi-frame file come together
            cache = {s.path: _pixels(s.path, s.header, where)}
        pixels = cache[s.path]
        plane = pixels[s.frame - 1] if s.frame and pixels.ndim == 3 else pixels
        if plane.shape != (rows, cols):
            raise InputError(
                f"{where}: {s.path} has pixel data of shape {plane.shape}; expected {(rows, cols)}"
            )
        out[:, :, z] = plane.T.astype(np.float32) * np.float32(s.slope) + np.float32(s.intercept)
    return out


def _header_fields(header: Dataset) -> dict[str, Any]:
    """The fields detect_sequence reads, taken from the top level or from the MR functional groups."""
    fields = {k: header.get(k) for k in HEADER_FIELDS if header.get(k) not in (None, "")}
    frames = header.get("PerFrameFunctionalGroupsSequence")
    first = frames[0] if frames else None
    for key, group, attr in (
        ("RepetitionTime", "MRTimingAndRelatedParametersSequence", "RepetitionTime"),
        ("FlipAngle", "MRTimingAndRelatedParametersSequence", "FlipAngle"),
        ("EchoTime", "MREchoSequence", "EffectiveEchoTime"),
        ("InversionTime", "MRModifierSequence", "InversionTimes"),
    ):
        item = _group(header, first, group)
        value = item.get(attr) if item is not None else None
        if key not in fields and value is not None:
            fields[key] = value[0] if isinstance(value, MultiValue | list) else value
    return fields


def _patient_study(header: Dataset) -> Dataset:
    out = Dataset()
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in header:
            setattr(out, keyword, header[keyword].value)
    return out


def _is_localizer(header: Dataset) -> bool:
    image_type = " ".join(str(v) for v in header.get("ImageType", [])).upper()
    description = str(header.get("SeriesDescription", "")).upper()
    return any(w in image_type or w in description for w in _LOCALIZER_WORDS)


def _build_series(
    slices: list[_Slice], where: str, root: Path, description: str, detected: tuple[str, float, str]
) -> DicomSeries:
    header = slices[0].header
    order, affine = stack_geometry(
        np.array([s.position for s in slices]), slices[0].orientation, slices[0].spacing, where
    )
    ordered = [slices[i] for i in order]
    array = _volume_array(ordered, where)
    sequence, confidence, reason = detected
    number = header.get("SeriesNumber")
    series_number = None if number in (None, "") else int(number)
    uids = SeriesUIDs(
        study_instance_uid=str(header.get("StudyInstanceUID", "")),
        series_instance_uid=str(header.get("SeriesInstanceUID", "")),
        frame_of_reference_uid=str(header.get("FrameOfReferenceUID", "")),
        sop_class_uid=str(header.get("SOPClassUID", "")),
        sop_instance_uids=tuple(str(s.header.get("SOPInstanceUID", "")) for s in ordered),
        frame_numbers=tuple(s.frame for s in ordered) if ordered[0].frame else (),
    )
    patient_study = _patient_study(header)
    meta = {
        "source": "dicom",
        "path": str(root),
        "series_description": description,
        "series_number": series_number,
        **{k: v for k, v in vars(uids).items() if isinstance(v, str)},
        "sop_instance_uids": list(uids.sop_instance_uids),
        "frame_numbers": list(uids.frame_numbers),
        "sequence": sequence,
        "sequence_confidence": confidence,
        "sequence_reason": reason,
        "patient_study": {k: str(patient_study[k].value) for k in patient_study.dir()},
    }
    log.info(
        "%s: %s, %d slices, sequence %s (%.2f: %s)",
        where,
        array.shape,
        len(ordered),
        sequence,
        confidence,
        reason,
    )
    return DicomSeries(
        volume=Volume(array, affine, name=where, meta=meta),
        sequence=sequence,
        confidence=confidence,
        reason=reason,
        description=description,
        series_number=series_number,
        uids=uids,
        patient_study=patient_study,
        headers=tuple(s.header for s in ordered),
        path=root,
    )


def _split_suffixes(keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], str]:
    """A short label per sub-volume when a series holds several (" [2 of 3]")."""
    if len(keys) == 1:
        return {keys[0]: ""}
    return {k: f" [{i} of {len(keys)}]" for i, k in enumerate(keys, start=1)}


def _detect(
    header: Dataset, description: str, overrides: Mapping[str, str], used: set[str]
) -> tuple[str, float, str]:
    """The user's sequence for this series when an override key names it, else the detected one."""
    names = {str(header.get("SeriesInstanceUID", "")), str(header.get("SeriesNumber", "")), description}
    names.add(str(header.get("SeriesDescription", "")))
    for key, name in overrides.items():
        if key in names:
            used.add(key)
            return user_sequence(name)
    return detect_sequence(_header_fields(header))


def read_dicom_folder(
    path: str | Path,
    sequences: Mapping[str, str] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
) -> list[DicomSeries]:
    """Read every image series under a folder (any nesting; plain or gzipped files) or in one file.

    Non-DICOM files and non-image objects (reports, presentation states, RTSTRUCT...) are skipped and
    logged; localizers and series of fewer than MIN_SLICES slices are skipped and logged too.

    Args:
        path: a folder (searched recursively) or a single DICOM file (e.g. an Enhanced multi-frame image).
        sequences: user overrides of the detected sequence: SeriesInstanceUID, SeriesNumber or
            SeriesDescription -> sequence name (registry name or "other"); confidence becomes 1.0.
        on_error: "raise" (default): a defective series (missing or uneven slices, bad geometry, unreadable
            pixels) of a recognised sequence raises; "skip": it is logged and left out. Defective series of
            no recognised sequence ("other": diffusion, perfusion, ...) are always logged and left out.

    Returns:
        The series, ordered by SeriesNumber then description.

    Raises:
        InputError: the path does not exist, a DICOM file is corrupt, a series of a recognised sequence is
            defective (on_error "raise"), an override matches nothing, or no usable image series was found.

    Example:
        >>> [s.sequence for s in read_dicom_folder("dicom/", sequences={"3": "flair"})]  # doctest: +SKIP
        ['t1', 'flair']
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root}: no such file or folder; expected a DICOM folder or file")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    groups: dict[tuple[str, tuple[Any, ...]], list[_Slice]] = defaultdict(list)
    not_dicom = not_placed = 0
    for file in files:
        header = _read_header(file)
        if header is None:
            not_dicom += 1
            continue
        slices = _image_slices(file, header)
        not_placed += not slices
        for s in slices:
            groups[(str(header.get("SeriesInstanceUID", file)), s.stack_key)].append(s)

    by_series: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for uid, key in groups:
        by_series[uid].append(key)
    series: list[DicomSeries] = []
    notes: list[str] = []
    overrides, used = dict(sequences or {}), set[str]()
    for uid, keys in by_series.items():
        suffixes = _split_suffixes(keys)
        for key in keys:
            slices = groups[(uid, key)]
            header = slices[0].header
            description = f"{header.get('SeriesDescription', '')}{suffixes[key]}"
            where = f"{root}: series {header.get('SeriesNumber', '?')} {description!r}"
            detected = _detect(header, description, overrides, used)
            if _is_localizer(header) or len(slices) < MIN_SLICES:
                why = "localizer" if _is_localizer(header) else f"{len(slices)} slice(s), not a 3D volume"
                log.info("skipping %s: %s", where, why)
                notes.append(f"{where}: {why}")
                continue
            try:
                series.append(_build_series(slices, where, root, description, detected))
            except InputError as exc:
                if on_error == "raise" and detected[0] != OTHER:
                    raise
                log.warning("skipping defective %s series: %s", detected[0], exc)
                notes.append(str(exc))
    unused = [k for k in overrides if k not in used]
    if unused:
        found = ", ".join(f"{s.series_number} {s.description!r}" for s in series)
        raise InputError(
            f"{root}: sequence override(s) {unused} match no series; expected a SeriesInstanceUID, "
            f"SeriesNumber or SeriesDescription among: {found}"
        )
    if not series:
        detail = "; ".join(notes) if notes else "no DICOM image with position and orientation"
        raise InputError(
            f"{root}: no usable 3D image series ({len(files)} file(s): {not_dicom} not DICOM, {not_placed} "
            f"DICOM objects that are not images with a position): {detail}; "
            f"expected a folder with at least one 3D DICOM image series of {MIN_SLICES}+ slices"
        )
    series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.description))
    return series
