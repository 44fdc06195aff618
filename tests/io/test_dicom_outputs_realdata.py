"""RTSTRUCT and SEG written on the real Philips MPRAGE series (../shared/data/dicom-mprage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from neurolesion.io.dicom import DicomSeries, read_dicom_folder
from neurolesion.io.dicomseg import write_seg
from neurolesion.io.rtstruct import rasterise_rtstruct, write_rtstruct
from tests.helpers.dciodvfy import dciodvfy_errors
from tests.helpers.dicom_writer import ball_labels
from tests.io.test_dicomseg import read_back

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def mprage() -> DicomSeries:
    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "dicom-mprage"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (real DICOM series beside the repository)")
    [series] = read_dicom_folder(folder)
    return series


@pytest.fixture(scope="module")
def lesions(mprage: DicomSeries) -> np.ndarray:
    """Balls of 5, 10 and 20 mm around the middle of the head, one on each side."""
    centre = mprage.volume.affine @ [*((np.array(mprage.volume.shape) - 1) / 2), 1.0]
    balls = [
        (centre[:3] + offset, d)
        for offset, d in (([-30, 10, 20], 20.0), ([25, -5, 0], 10.0), ([0, 30, -20], 5.0))
    ]
    return ball_labels(mprage.volume.affine, mprage.volume.shape, balls)


def test_rtstruct_on_real_series(mprage: DicomSeries, lesions: np.ndarray, tmp_path: Path) -> None:
    out = write_rtstruct(lesions, mprage, tmp_path / "rtstruct.dcm", names={1: "metastasis 1"})
    assert dciodvfy_errors(out) == []
    back = rasterise_rtstruct(out, mprage)
    for lesion in (1, 2, 3):
        a, b = back == lesion, lesions == lesion
        assert 2 * np.sum(a & b) / (np.sum(a) + np.sum(b)) >= 0.95
    ds = pydicom.dcmread(out)
    assert ds.PatientID == "d2n_Philips_3T_R571" and ds.StudyInstanceUID == mprage.uids.study_instance_uid
    references = (
        ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    )
    assert references.SeriesInstanceUID == mprage.uids.series_instance_uid
    assert len(references.ContourImageSequence) == 170


def test_seg_on_real_series(mprage: DicomSeries, lesions: np.ndarray, tmp_path: Path) -> None:
    out = write_seg({"tumor": lesions}, mprage, tmp_path / "seg.dcm")
    assert dciodvfy_errors(out) == []
    np.testing.assert_array_equal(read_back(out, mprage)[..., 0], lesions > 0)
