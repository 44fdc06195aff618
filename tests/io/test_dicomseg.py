"""DICOM SEG output: valid, read back by highdicom with the same voxels, one segment per task."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.io.dicom import DicomSeries, read_dicom_folder
from neurolesion.io.dicomseg import write_seg
from tests.helpers.dciodvfy import dciodvfy_errors
from tests.helpers.dicom_writer import ball_labels, grid_affine, phantom, write_series

SHAPE = (40, 36, 12)


def _source(tmp: Path, plane: str, multiframe: bool = False) -> DicomSeries:
    affine = grid_affine(plane, SHAPE, (1.2, 1.2, 2.5))
    write_series(tmp / "src", phantom(affine, SHAPE), affine, multiframe=multiframe)
    [series] = read_dicom_folder(tmp / "src")
    return series


def read_back(path: Path, series: DicomSeries) -> np.ndarray:
    """(X, Y, Z, segments) masks of a SEG on the grid of `series`."""
    seg = hd.seg.segread(path)
    if series.uids.frame_numbers:
        frames = seg.get_pixels_by_source_frame(
            series.uids.sop_instance_uids[0],
            list(series.uids.frame_numbers),
            assert_missing_frames_are_empty=True,
        )
    else:
        frames = seg.get_pixels_by_source_instance(
            list(series.uids.sop_instance_uids), assert_missing_frames_are_empty=True
        )
    return np.transpose(frames, (2, 1, 0, 3))


@pytest.mark.parametrize(
    ("plane", "multiframe"), [("sagittal", False), ("oblique", False), ("oblique", True)]
)
def test_segments_round_trip(tmp_path: Path, plane: str, multiframe: bool) -> None:
    series = _source(tmp_path, plane, multiframe)
    tumor = ball_labels(series.volume.affine, SHAPE, [((-12.0, 4.0, 2.0), 14.0), ((10.0, -8.0, -4.0), 8.0)])
    brain = np.zeros(SHAPE, np.uint8)
    brain[4:36, 4:32, 1:11] = 1
    out = write_seg(
        {"brain": brain, "tumor": tumor, "cmb": np.zeros(SHAPE, np.int32)}, series, tmp_path / "seg.dcm"
    )

    assert dciodvfy_errors(out) == []
    seg = hd.seg.segread(out)
    assert [d.SegmentLabel for d in seg.SegmentSequence] == [
        "Brain mask",
        "Radiosurgery tumours",
        "Cerebral microbleeds",
    ]
    assert seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Neoplasm"
    assert seg.StudyInstanceUID == series.uids.study_instance_uid and seg.PatientID == "SYNTH01"
    assert seg.FrameOfReferenceUID == series.uids.frame_of_reference_uid
    masks = read_back(out, series)
    np.testing.assert_array_equal(masks[..., 0], brain)
    np.testing.assert_array_equal(masks[..., 1], tumor > 0)
    assert not masks[..., 2].any()


def test_empty_and_bad_input(tmp_path: Path) -> None:
    series = _source(tmp_path, "axial")
    out = write_seg({"wmh": np.zeros(SHAPE, np.int32)}, series, tmp_path / "empty.dcm")
    assert dciodvfy_errors(out) == []
    with pytest.raises(InputError, match="expected the series grid"):
        write_seg({"wmh": np.zeros((3, 3, 3))}, series, tmp_path / "bad.dcm")
    with pytest.raises(InputError, match="at least one task"):
        write_seg({}, series, tmp_path / "bad.dcm")
    assert not (tmp_path / "bad.dcm").exists()
