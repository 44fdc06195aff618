"""Job lifecycle: persistence across restarts, queueing under a concurrency limit, dying workers."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from neurolesion.service.app import create_app
from neurolesion.service.store import MAX_ATTEMPTS, JobStore
from tests.service.conftest import AUTH, flair_bytes, settings_for, upload, wait_for


def test_restart_keeps_finished_jobs_and_resumes_interrupted_ones(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        done = upload(client, [("FLAIR.nii.gz", flair_bytes(tmp_path))]).json()["id"]
        assert wait_for(client, done)["status"] == "done"
    store = JobStore(settings.resolved_database_url)
    interrupted = store.create("interrupted", {})["id"]  # as if the server died while running it
    shutil.copytree(settings.jobs_dir / done / "input", settings.jobs_dir / interrupted / "input")
    store.update(interrupted, status="running", stage="model:wmh", progress=0.4, attempts=1)

    with TestClient(create_app(settings)) as client:
        assert client.get(f"/api/jobs/{done}", headers=AUTH).json()["status"] == "done"
        resumed = wait_for(client, interrupted)
        assert resumed["status"] == "done" and resumed["attempts"] == 2
        assert len(client.get(f"/api/jobs/{done}", headers=AUTH).json()["lesions"]) == 2


def test_jobs_interrupted_too_often_are_failed_not_lost(tmp_path: Path) -> None:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    job = store.create("x", {})
    store.update(job["id"], status="running", attempts=MAX_ATTEMPTS)
    queued = store.create("y", {})
    assert store.recover() == [queued["id"]]
    failed = store.get(job["id"])
    assert failed is not None and failed["status"] == "failed" and "interrupted" in failed["error"]


def test_concurrency_limit_queues_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PIPELINE_SECONDS", "0.4")
    with TestClient(create_app(settings_for(tmp_path / "data", concurrency=1))) as client:
        ids = [upload(client, [("FLAIR.nii.gz", flair_bytes(tmp_path))]).json()["id"] for _ in range(2)]
        most_running = 0
        while True:
            jobs = client.get("/api/jobs", headers=AUTH).json()
            most_running = max(most_running, sum(j["status"] == "running" for j in jobs))
            if all(j["status"] in ("done", "failed") for j in jobs):
                break
            time.sleep(0.1)
        assert most_running == 1
        assert [wait_for(client, i)["status"] for i in ids] == ["done", "done"]


def test_a_dying_worker_fails_its_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PIPELINE_CRASH", "1")
    with TestClient(create_app(settings_for(tmp_path / "data"))) as client:
        job = wait_for(client, upload(client, [("FLAIR.nii.gz", flair_bytes(tmp_path))]).json()["id"])
    assert job["status"] == "failed" and "exit code 137" in job["error"]
