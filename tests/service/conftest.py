"""Fixtures of the service tests: a synthetic FLAIR, settings using the fake pipeline, API helpers."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from neurolesion.service.app import create_app
from neurolesion.service.settings import ServiceSettings
from tests.conftest import write_nifti

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAKE = "tests.service.fake_pipeline:segment"
AFFINE = np.diag([1.0, 1.0, 1.5, 1.0])


def flair_bytes(tmp: Path) -> bytes:
    """A small synthetic FLAIR (24x28x20, 1x1x1.5 mm) as NIfTI bytes."""
    rng = np.random.default_rng(1)
    x, y, z = np.ogrid[:24, :28, :20]
    inside = ((x - 12) / 9) ** 2 + ((y - 14) / 11) ** 2 + ((z - 10) / 8) ** 2 < 1
    data = (inside * 100.0 + rng.normal(10, 2, (24, 28, 20))).astype(np.float32)
    return write_nifti(tmp / "FLAIR.nii.gz", data, AFFINE).read_bytes()


def settings_for(data_dir: Path, **kwargs: Any) -> ServiceSettings:
    return ServiceSettings(data_dir=data_dir, token=TOKEN, pipeline=FAKE, **kwargs)


def upload(client: TestClient, files: list[tuple[str, bytes]], **form: str) -> Any:
    return client.post(
        "/api/jobs",
        headers=AUTH,
        files=[("files", (name, io.BytesIO(data), "application/octet-stream")) for name, data in files],
        data=form,
    )


def wait_for(client: TestClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll until the job is done or failed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    """A running app (fake pipeline) and its data folder, shared by a module's tests."""
    data_dir = tmp_path_factory.mktemp("service")
    with TestClient(create_app(settings_for(data_dir))) as client:
        yield client, data_dir


@pytest.fixture(scope="module")
def done_job(service: tuple[TestClient, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished job of the synthetic FLAIR."""
    client, _ = service
    response = upload(
        client, [("FLAIR.nii.gz", flair_bytes(tmp_path_factory.mktemp("flair")))], label="case A"
    )
    assert response.status_code == 201, response.text
    job = wait_for(client, response.json()["id"])
    assert job["status"] == "done", job
    return job
