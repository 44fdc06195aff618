"""The service with the real pipeline on the real DICOM MPRAGE beside the repository (slow, real data)."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient

from neurolesion.service.app import create_app
from neurolesion.service.settings import ServiceSettings
from tests.service.conftest import AUTH, TOKEN, upload, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_real_dicom_folder_runs_through_the_real_pipeline(shared_data: Path, tmp_path: Path) -> None:
    series = sorted((shared_data / "dicom-mprage" / "series").glob("*.dcm.gz"))
    settings = ServiceSettings(data_dir=tmp_path, token=TOKEN)
    with TestClient(create_app(settings)) as client:
        response = upload(client, [(f"mprage/{p.name}", p.read_bytes()) for p in series], label="mprage")
        assert response.status_code == 201, response.text
        job = wait_for(client, response.json()["id"], timeout=1200)
        assert job["status"] == "done", job
        assert job["sequences"] == ["t1"] and job["has_brain_mask"]
        assert "brain" in job["summary"]["tasks_run"]

        def image(name: str) -> nib.Nifti1Image:
            data = client.get(f"/api/jobs/{job['id']}/images/{name}", headers=AUTH).content
            return nib.Nifti1Image.from_bytes(gzip.decompress(data))

        t1, brain = image("t1"), image("brain_mask")
        assert t1.shape == brain.shape and np.allclose(t1.affine, brain.affine, atol=1e-4)
        brain_ml = float(np.asarray(brain.dataobj).sum()) * float(np.prod(brain.header.get_zooms())) / 1000
        assert 900 < brain_ml < 2000, brain_ml
        archive = client.get(f"/api/jobs/{job['id']}/export/nifti", headers=AUTH)
        assert "brain_mask.nii.gz" in zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
