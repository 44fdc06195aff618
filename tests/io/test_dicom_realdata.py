"""The real Philips MPRAGE series (../shared/data/dicom-mprage) against the reference converter dcm2niix."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurolesion.io.dicom import read_dicom_folder

pytestmark = pytest.mark.realdata


@pytest.fixture
def mprage(shared_data: Path) -> Path:
    folder = shared_data / "dicom-mprage"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (real DICOM series beside the repository)")
    return folder


def _dcm2niix() -> str:
    found = shutil.which("dcm2niix") or str(Path(sys.executable).parent / "dcm2niix")
    if not Path(found).exists():
        pytest.skip("dcm2niix (the reference converter) is not installed")
    return found


def test_mprage_matches_dcm2niix(mprage: Path, tmp_path: Path) -> None:
    plain = tmp_path / "dicom"
    plain.mkdir()
    for path in sorted((mprage / "series").glob("*.dcm.gz")):  # dcm2niix does not read gzipped DICOM
        (plain / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    subprocess.run(
        [_dcm2niix(), "-z", "n", "-b", "n", "-p", "n", "-f", "ref", "-o", str(tmp_path), str(plain)],
        check=True,
        capture_output=True,
    )
    reference = nib.load(tmp_path / "ref.nii")

    [series] = read_dicom_folder(mprage)
    vol = series.volume
    assert vol.shape == (256, 256, 170)
    assert sorted(vol.shape) == sorted(reference.shape)
    np.testing.assert_allclose(sorted(vol.spacing), sorted(reference.header.get_zooms()), atol=1e-3)
    # Same voxels in the same place: bring both to the closest canonical (RAS) axis order and compare.
    ours = nib.as_closest_canonical(nib.Nifti1Image(vol.data, vol.affine))
    ref = nib.as_closest_canonical(reference)
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)
    np.testing.assert_allclose(
        ours.get_fdata(), ref.get_fdata(), rtol=1e-4, atol=1e-2
    )  # display scaling (-p n)

    assert (series.sequence, series.description) == ("t1", "ADNI_Sag3D MPRAGE")
    assert series.confidence >= 0.9
    sidecar = json.loads((mprage / "1301_WIP_ADNI_Sag3D_MPRAGE_cl.json").read_text())
    assert series.series_number == sidecar["SeriesNumber"]
    assert float(series.headers[0].RepetitionTime) / 1000 == pytest.approx(
        sidecar["RepetitionTime"], abs=1e-5
    )
    assert len(set(series.uids.sop_instance_uids)) == 170
    assert series.uids.frame_of_reference_uid
    assert series.patient_study.PatientID == "d2n_Philips_3T_R571"
