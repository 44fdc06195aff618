"""RT Structure Set output: validity, references, and contours that rasterise back to the label map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from neurolesion.errors import InputError
from neurolesion.io.dicom import DicomSeries, read_dicom_folder
from neurolesion.io.rtstruct import NO_LESION, rasterise_rtstruct, slice_contours, write_rtstruct
from tests.helpers.dciodvfy import dciodvfy_errors
from tests.helpers.dicom_writer import ball_labels, grid_affine, phantom, write_series

SHAPE = (48, 40, 16)
SPACING = (1.0, 1.25, 2.0)
# (centre RAS mm, diameter mm): lesions of 5 mm and more, one on the patient's left.
LESIONS = [((-12.0, 4.0, 2.0), 14.0), ((10.0, -8.0, -4.0), 8.0), ((4.0, 10.0, 8.0), 5.0)]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.sum(a & b) / max(np.sum(a) + np.sum(b), 1))


def _source(tmp: Path, plane: str, multiframe: bool = False) -> DicomSeries:
    affine = grid_affine(plane, SHAPE, SPACING)
    write_series(tmp / "src", phantom(affine, SHAPE), affine, multiframe=multiframe)
    [series] = read_dicom_folder(tmp / "src")
    return series


@pytest.mark.parametrize(
    ("plane", "multiframe"),
    [("axial", False), ("sagittal", False), ("coronal", False), ("oblique", False), ("oblique", True)],
)
def test_round_trip_and_validity(tmp_path: Path, plane: str, multiframe: bool) -> None:
    series = _source(tmp_path, plane, multiframe)
    labels = ball_labels(series.volume.affine, SHAPE, LESIONS)
    i, j, k = np.argwhere(labels == 1).mean(axis=0).round().astype(int)
    labels[i - 1 : i + 1, j - 1 : j + 1, k] = 0  # a hole: the inner contour must stay a hole
    names = {1: "metastasis 1", 2: "metastasis 2", 3: "meningioma 1"}
    out = write_rtstruct(
        labels, series, tmp_path / "out" / "rtstruct.dcm", names=names, colours={2: (255, 0, 0)}
    )

    assert dciodvfy_errors(out) == []
    back = rasterise_rtstruct(out, series)
    for lesion in (1, 2, 3):
        assert dice(back == lesion, labels == lesion) >= 0.95, lesion
    assert np.mean(back == labels) > 0.999

    ds = pydicom.dcmread(out)
    assert [r.ROIName for r in ds.StructureSetROISequence] == ["metastasis 1", "metastasis 2", "meningioma 1"]
    assert [int(r.ROINumber) for r in ds.StructureSetROISequence] == [1, 2, 3]
    assert list(ds.ROIContourSequence[1].ROIDisplayColor) == [255, 0, 0]
    assert ds.PatientID == "SYNTH01" and ds.StudyInstanceUID == series.uids.study_instance_uid
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == series.uids.frame_of_reference_uid
    rt_series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert rt_series.SeriesInstanceUID == series.uids.series_instance_uid
    referenced = {i.ReferencedSOPInstanceUID for i in rt_series.ContourImageSequence}
    assert referenced == set(series.uids.sop_instance_uids)
    for contour in ds.ROIContourSequence[0].ContourSequence:
        assert contour.ContourGeometricType == "CLOSED_PLANAR"
        assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID in referenced
    assert list(out.parent.iterdir()) == [out]  # the atomic write left no temporary file


def test_contours_stay_on_the_left(tmp_path: Path) -> None:
    series = _source(tmp_path, "oblique")
    labels = ball_labels(series.volume.affine, SHAPE, LESIONS[:1])  # centred at RAS x = -12 (left)
    ds = pydicom.dcmread(write_rtstruct(labels, series, tmp_path / "rt.dcm"))
    points = np.concatenate(
        [np.asarray(c.ContourData, float).reshape(-1, 3) for c in ds.ROIContourSequence[0].ContourSequence]
    )
    assert np.mean(points[:, 0]) == pytest.approx(12.0, abs=1.0)  # LPS x = +12: the patient's left


def test_slice_contours_keep_holes() -> None:
    ring = np.zeros((9, 9), bool)
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False
    outlines = slice_contours(ring)
    assert len(outlines) == 2
    assert {len(o) for o in outlines} == {8}  # straight edges collapse; corners are cut at the half-voxel


def test_bad_input(tmp_path: Path) -> None:
    series = _source(tmp_path, "axial")
    with pytest.raises(InputError, match="expected the series grid"):
        write_rtstruct(np.zeros((4, 4, 4), np.int32), series, tmp_path / "rt.dcm")
    assert not (tmp_path / "rt.dcm").exists()
    with pytest.raises(InputError, match="expected RT Structure Set"):
        rasterise_rtstruct(next((tmp_path / "src").glob("*.dcm")), series)


def test_outputs_in_the_source_folder_are_not_read_as_images(tmp_path: Path) -> None:
    series = _source(tmp_path, "coronal")
    labels = ball_labels(series.volume.affine, SHAPE, LESIONS[:1])
    write_rtstruct(labels, series, tmp_path / "src" / "out" / "rtstruct.dcm")
    [again] = read_dicom_folder(tmp_path / "src")
    assert again.uids.series_instance_uid == series.uids.series_instance_uid


def test_no_lesion_gives_one_empty_roi(tmp_path: Path) -> None:
    series = _source(tmp_path, "axial")
    out = write_rtstruct(np.zeros(SHAPE, np.int32), series, tmp_path / "rt.dcm")
    assert dciodvfy_errors(out) == []
    assert [r.ROIName for r in pydicom.dcmread(out).StructureSetROISequence] == [NO_LESION]
    assert not rasterise_rtstruct(out, series).any()
