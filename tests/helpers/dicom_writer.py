"""Write small synthetic DICOM MR series for tests: any orientation, rescaling, gzip, nesting and defects.

The writer works from a RAS voxel-to-world affine (the NIfTI convention) and writes what the DICOM standard
says: ImageOrientationPatient / ImagePositionPatient in LPS, the row direction cosine along increasing column
index, pixel rows of slice k = array[:, :, k].T. It is written independently of the reader under test.

Example:
    >>> affine = grid_affine("oblique", (32, 28, 12), (1.0, 1.2, 3.0))
    >>> written = write_series(tmp / "t1", phantom(affine, (32, 28, 12)), affine, gzip=True)  # doctest: +SKIP
"""

from __future__ import annotations

import gzip as gz
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless, generate_uid

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Direction cosines (row direction, column direction) in LPS of the standard planes.
PLANES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
}

#: Header of a T1 MPRAGE, used when no other fields are given.
T1_FIELDS: dict[str, Any] = {
    "ScanningSequence": "GR",
    "SequenceVariant": "MP",
    "RepetitionTime": 2300.0,
    "EchoTime": 2.98,
    "InversionTime": 900.0,
}


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    rot = np.eye(3)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return rot


def grid_affine(
    plane: str,
    shape: Sequence[int],
    spacing: Sequence[float],
    centre: Sequence[float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """RAS affine of a grid in a standard plane ("axial", "sagittal", "coronal") or "oblique", centred on `centre`.

    The oblique plane is the axial one turned 20 degrees about the LPS x axis and 15 degrees about z.
    """
    if plane == "oblique":
        row, col = PLANES["axial"]
        rot = _rotation(2, 15.0) @ _rotation(0, 20.0)
        row, col = tuple(rot @ np.array(row)), tuple(rot @ np.array(col))
    else:
        row, col = PLANES[plane]
    row_v, col_v = np.array(row, dtype=float), np.array(col, dtype=float)
    lps = np.eye(4)
    lps[:3, 0] = row_v * spacing[0]
    lps[:3, 1] = col_v * spacing[1]
    lps[:3, 2] = np.cross(row_v, col_v) * spacing[2]
    half = (np.asarray(shape, dtype=float) - 1) / 2
    lps[:3, 3] = (LPS_FROM_RAS[:3, :3] @ np.asarray(centre, dtype=float)) - lps[:3, :3] @ half
    return LPS_FROM_RAS @ lps


def world_coordinates(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """(X, Y, Z, 3) RAS coordinates of every voxel centre."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    return np.asarray(idx @ affine[:3, :3].T + affine[:3, 3])


def phantom(
    affine: np.ndarray,
    shape: Sequence[int],
    marker_ras: Sequence[float] = (-30.0, 8.0, 6.0),
    radius: float = 4.0,
    background: float = 100.0,
    marker: float = 1000.0,
) -> np.ndarray:
    """An asymmetric phantom sampled on a grid: a ball of `radius` mm at `marker_ras` (RAS mm, default on the
    patient's left), plus a gradient along RAS y so that front and back differ too."""
    world = world_coordinates(affine, shape)
    values = background + 0.5 * world[..., 1]
    inside = np.linalg.norm(world - np.asarray(marker_ras), axis=-1) <= radius
    return np.where(inside, marker, values).astype(np.float32)


def ball_labels(
    affine: np.ndarray, shape: Sequence[int], balls: Sequence[tuple[Sequence[float], float]]
) -> np.ndarray:
    """Instance map (1, 2, ...) of balls given as (centre RAS mm, diameter mm), sampled on a grid."""
    labels = np.zeros(tuple(shape), dtype=np.int32)
    to_voxel = np.linalg.inv(affine)
    step = float(np.min(np.linalg.norm(affine[:3, :3], axis=0)))
    for i, (centre, diameter) in enumerate(balls, start=1):
        middle = to_voxel[:3, :3] @ np.asarray(centre, dtype=float) + to_voxel[:3, 3]
        reach = diameter / 2 / step + 1
        lo = np.clip(np.floor(middle - reach), 0, shape).astype(int)
        hi = np.clip(np.ceil(middle + reach) + 1, 0, shape).astype(int)
        box = affine.copy()
        box[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
        world = world_coordinates(box, hi - lo)
        inside = np.linalg.norm(world - np.asarray(centre), axis=-1) <= diameter / 2
        region = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        region[inside] = i
    return labels


@dataclass
class WrittenSeries:
    """What write_series wrote: the files (in slice order, skipped slices left out) and the identifiers."""

    folder: Path
    paths: list[Path]
    study_uid: str
    series_uid: str
    frame_uid: str
    sop_uids: list[str]
    affine: np.ndarray
    datasets: list[Dataset] = field(default_factory=list, repr=False)


def _slice_dataset(
    raw: np.ndarray,
    ipp: Sequence[float],
    iop: Sequence[float],
    spacing: Sequence[float],
    common: Mapping[str, Any],
    number: int,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in common.items():
        setattr(ds, keyword, value)
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in iop]
    ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]  # (between rows, between columns)
    ds.Rows, ds.Columns = raw.shape
    ds.PixelData = raw.astype("<i2").tobytes()
    return ds


def write_series(
    folder: Path,
    array: np.ndarray,
    affine: np.ndarray,
    *,
    description: str = "t1_mprage_sag",
    series_number: int = 1,
    study_uid: str | None = None,
    series_uid: str | None = None,
    patient_id: str = "SYNTH01",
    fields: Mapping[str, Any] | None = None,
    slope: float = 1.0,
    intercept: float = 0.0,
    gzip: bool = False,
    subfolders: int = 0,
    skip_slices: Iterable[int] = (),
    shift_slices: Mapping[int, float] | None = None,
    orientation: Sequence[float] | None = None,
    multiframe: bool = False,
    compress: str | None = None,
    seed: int = 0,
) -> WrittenSeries:
    """Write `array` (X, Y, Z) on the grid `affine` (RAS) as one DICOM MR series under `folder`.

    Args:
        description: SeriesDescription (and ProtocolName).
        study_uid, series_uid: the UIDs to use (new ones by default); several calls with one series_uid make
            one series with several volumes.
        fields: extra header fields (pydicom keywords); default T1_FIELDS.
        slope, intercept: RescaleSlope/RescaleIntercept; stored values are round((v - intercept) / slope).
        gzip: write `.dcm.gz` files.
        subfolders: spread the slices over that many nested folders (`a0/b0/`, `a1/b1/` ...).
        skip_slices: slice indices left out (a missing slice).
        shift_slices: slice index -> shift in mm along the normal (uneven spacing).
        orientation: ImageOrientationPatient written instead of the true one (e.g. non-orthonormal).
        multiframe: write one Legacy Converted Enhanced MR multi-frame file (highdicom) instead.
        compress: "rle" (RLE Lossless, pydicom's own encoder) or "jpeg-lossless" (JPEG Lossless SV1, needs
            python-gdcm); plain Explicit VR Little Endian by default.
        seed: file names are shuffled with it, so that file order is not slice order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lps = LPS_FROM_RAS @ np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    iop = np.concatenate([lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]])
    normal = np.cross(iop[:3], iop[3:])
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = series_uid or generate_uid(), generate_uid()
    common: dict[str, Any] = {
        "SOPClassUID": MRImageStorage,
        "Modality": "MR",
        "Manufacturer": "neurolesion-tests",
        "PatientName": "Synthetic^Phantom",
        "PatientID": patient_id,
        "PatientBirthDate": "19700101",
        "PatientSex": "O",
        "StudyInstanceUID": study_uid,
        "StudyDate": "20260101",
        "StudyTime": "120000",
        "StudyID": "1",
        "AccessionNumber": "A1",
        "ReferringPhysicianName": "",
        "SeriesInstanceUID": series_uid,
        "SeriesNumber": series_number,
        "SeriesDescription": description,
        "ProtocolName": description,
        "FrameOfReferenceUID": frame_uid,
        "PositionReferenceIndicator": "",
        "PatientPosition": "HFS",
        "ImageType": ["ORIGINAL", "PRIMARY", "M", "NONE"],
        "ScanOptions": "",
        "MRAcquisitionType": "3D",
        "SliceThickness": f"{spacing[2]:.6f}",
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16,
        "BitsStored": 16,
        "HighBit": 15,
        "PixelRepresentation": 1,
        "RescaleSlope": f"{slope:g}",
        "RescaleIntercept": f"{intercept:g}",
        "RescaleType": "US",
        "ContentDate": "20260101",
        "ContentTime": "120000",
        **(T1_FIELDS if fields is None else fields),
    }
    skip, shifts = set(skip_slices), dict(shift_slices or {})
    datasets = []
    for k in range(array.shape[2]):
        if k in skip:
            continue
        ipp = lps[:3, 3] + k * lps[:3, 2] + shifts.get(k, 0.0) * normal
        raw = np.round((np.asarray(array[:, :, k], dtype=float).T - intercept) / slope)
        iop_k = np.asarray(orientation, dtype=float) if orientation is not None else iop
        datasets.append(_slice_dataset(raw, ipp, iop_k, spacing, common, k + 1))
    if multiframe:
        from highdicom.legacy import LegacyConvertedEnhancedMRImage

        enhanced = LegacyConvertedEnhancedMRImage(
            legacy_datasets=datasets,
            series_instance_uid=generate_uid(),
            series_number=series_number,
            sop_instance_uid=generate_uid(),
            instance_number=1,
        )
        path = folder / ("enhanced.dcm.gz" if gzip else "enhanced.dcm")
        _save(enhanced, path, gzip)
        uid = str(enhanced.SeriesInstanceUID)
        return WrittenSeries(
            folder, [path], study_uid, uid, frame_uid, [enhanced.SOPInstanceUID], affine, [enhanced]
        )
    names = np.random.default_rng(seed).permutation(len(datasets))
    paths = []
    for ds, name in zip(datasets, names, strict=True):
        sub = folder
        if subfolders:
            sub = folder / f"a{name % subfolders}" / f"b{name % subfolders}"
            sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"IM{name:04d}.dcm{'.gz' if gzip else ''}"
        if compress == "rle":
            ds.compress(RLELossless)
        _save(ds, path, gzip)
        if compress == "jpeg-lossless":
            _gdcm_jpeg_lossless(path)
        paths.append(path)
    sop_uids = [str(ds.SOPInstanceUID) for ds in datasets]
    return WrittenSeries(folder, paths, study_uid, series_uid, frame_uid, sop_uids, affine, datasets)


def _save(ds: Dataset, path: Path, gzip: bool) -> None:
    if gzip:
        with gz.open(path, "wb") as fh:
            ds.save_as(fh, enforce_file_format=True)
    else:
        ds.save_as(path, enforce_file_format=True)


def _gdcm_jpeg_lossless(path: Path) -> None:
    """Re-encode a plain DICOM file as JPEG Lossless (process 14, SV1) in place, with GDCM."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    if not reader.Read():
        raise RuntimeError(f"GDCM could not read {path}")
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise RuntimeError(f"GDCM could not re-encode {path}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise RuntimeError(f"GDCM could not write {path}")
