"""API tests of `neurolesion serve` with the FastAPI test client and the fake pipeline."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import AFFINE, AUTH, TOKEN, flair_bytes, upload, wait_for
from tests.service.fake_pipeline import fake_labels

Service = tuple[TestClient, Path]


def test_health_needs_no_token_but_everything_else_does(service: Service) -> None:
    client, _ = service
    assert client.get("/api/health").json()["status"] == "ok"
    assert client.get("/api/jobs").status_code == 401
    assert client.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/jobs", headers=AUTH).status_code == 200


def test_openapi_schema_is_published(service: Service) -> None:
    client, _ = service
    schema = client.get("/openapi.json").json()
    assert "/api/jobs/{job_id}/labels/{task}" in schema["paths"]
    assert "JobDetail" in schema["components"]["schemas"]


def test_finished_job_has_sequences_labels_and_lesion_table(
    service: Service, done_job: dict[str, Any]
) -> None:
    client, _ = service
    job = client.get(f"/api/jobs/{done_job['id']}", headers=AUTH).json()
    assert job["label"] == "case A"
    assert job["sequences"] == ["flair"] and job["reference"] == "flair"
    assert job["label_tasks"] == ["wmh"]
    assert [row["id"] for row in job["lesions"]] == [1, 2]
    assert job["lesions"][0]["volume_ml"] > 0
    assert job["progress"] == 1.0 and job["stage"] == "done"
    assert [j["id"] for j in client.get("/api/jobs", headers=AUTH).json()].count(done_job["id"]) == 1


def test_images_are_served_on_their_grid_and_uploads_never(
    service: Service, done_job: dict[str, Any]
) -> None:
    client, _ = service
    base = f"/api/jobs/{done_job['id']}/images"
    flair = client.get(f"{base}/flair", headers=AUTH)
    assert flair.status_code == 200
    img = nib.Nifti1Image.from_bytes(gzip.decompress(flair.content))
    assert img.shape == (24, 28, 20) and np.allclose(img.affine, AFFINE)
    labels = nib.Nifti1Image.from_bytes(
        gzip.decompress(client.get(f"{base}/labels-wmh", headers=AUTH).content)
    )
    assert np.array_equal(np.asarray(labels.dataobj), fake_labels((24, 28, 20)))
    for name in ("FLAIR", "..%2Finput%2FFLAIR", "input", "labels-..%2F..%2Finput"):
        assert client.get(f"{base}/{name}", headers=AUTH).status_code == 404


def test_the_brain_mask_is_listed_and_served_on_the_case_grid(
    service: Service, done_job: dict[str, Any]
) -> None:
    client, data_dir = service
    job = client.get(f"/api/jobs/{done_job['id']}", headers=AUTH).json()
    assert job["has_brain_mask"]
    response = client.get(f"/api/jobs/{done_job['id']}/images/brain_mask", headers=AUTH)
    assert response.status_code == 200
    mask = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))
    assert mask.shape == (24, 28, 20) and np.allclose(mask.affine, AFFINE)
    assert np.array_equal(np.asarray(mask.dataobj), np.ones((24, 28, 20), np.uint8))
    (data_dir / "jobs" / done_job["id"] / "output" / "brain_mask.nii.gz").rename(data_dir / "mask.nii.gz")
    try:
        assert not client.get(f"/api/jobs/{done_job['id']}", headers=AUTH).json()["has_brain_mask"]
        assert client.get(f"/api/jobs/{done_job['id']}/images/brain_mask", headers=AUTH).status_code == 404
    finally:
        (data_dir / "mask.nii.gz").rename(data_dir / "jobs" / done_job["id"] / "output" / "brain_mask.nii.gz")


def test_progress_is_streamed_as_server_sent_events(service: Service, done_job: dict[str, Any]) -> None:
    client, _ = service
    with client.stream("GET", f"/api/jobs/{done_job['id']}/events", headers=AUTH) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1]["status"] == "done"


def test_unusable_input_fails_the_job_with_the_reason(service: Service, tmp_path: Path) -> None:
    client, _ = service
    response = upload(client, [("scan.nii.gz", flair_bytes(tmp_path))])
    job = wait_for(client, response.json()["id"])
    assert job["status"] == "failed"
    assert "scan.nii.gz" in job["error"] and "sequence" in job["error"]


def test_sequences_can_be_named_for_files_that_do_not_tell(service: Service, tmp_path: Path) -> None:
    client, _ = service
    response = upload(client, [("scan.nii.gz", flair_bytes(tmp_path))], sequences='{"scan.nii.gz": "flair"}')
    assert wait_for(client, response.json()["id"])["status"] == "done"


def test_bad_form_values_are_refused(service: Service, tmp_path: Path) -> None:
    client, _ = service
    data = flair_bytes(tmp_path)
    assert upload(client, [("FLAIR.nii.gz", data)], tasks="nonsense").status_code == 400
    assert upload(client, [("FLAIR.nii.gz", data)], sequences='{"other.nii": "flair"}').status_code == 400
    assert upload(client, [("FLAIR.nii.gz", data)], sequences='{"FLAIR.nii.gz": "pet"}').status_code == 400
    assert client.post("/api/jobs", headers=AUTH, data={"label": "x"}).status_code == 422


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_upload_runs_and_unsafe_zips_are_refused(service: Service, tmp_path: Path) -> None:
    client, data_dir = service
    good = upload(client, [("study.zip", _zip({"study/FLAIR.nii.gz": flair_bytes(tmp_path)}))])
    assert good.status_code == 201
    for bad in ("../evil.nii.gz", "/abs/evil.nii.gz", "a/../../evil.nii.gz", "C:/evil.nii.gz"):
        response = upload(client, [("study.zip", _zip({bad: b"x"}))])
        assert response.status_code == 400, bad
        assert "leaves the upload folder" in response.json()["detail"]
    assert not list(data_dir.rglob("evil*"))
    assert upload(client, [("../x.nii.gz", b"x")]).status_code == 400


def test_uploads_that_are_not_images_are_refused_at_once(service: Service, tmp_path: Path) -> None:
    client, data_dir = service
    before = len(client.get("/api/jobs", headers=AUTH).json())
    cases = [
        ([("notes.txt", b"not an image")], "no image among notes.txt"),
        ([("FLAIR.nii.gz", b"random bytes, not gzip")], "FLAIR.nii.gz: not a NIfTI image"),
        ([("study.zip", _zip({"study/FLAIR.nii.gz": b"\x1f\x8bjunk"}))], "study/study/FLAIR.nii.gz"),
        ([("study.zip", _zip({"s/readme.txt": b"x", "s/IM1": b"y" * 200}))], "no image among"),
    ]
    for files, message in cases:
        response = upload(client, files)
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"]
    jobs = client.get("/api/jobs", headers=AUTH).json()
    refused = jobs[: len(jobs) - before]
    assert len(refused) == len(cases) and all(j["status"] == "failed" for j in refused)
    assert not [j for j in refused if (data_dir / "jobs" / j["id"]).exists()]


def test_corrections_keep_both_versions_update_table_and_log_dice(
    service: Service, done_job: dict[str, Any], tmp_path: Path
) -> None:
    client, _ = service
    job_id = done_job["id"]
    labels = fake_labels((24, 28, 20))
    labels[labels == 2] = 0  # delete lesion 2
    labels[8:11, 10:13, 11] = 1  # grow lesion 1 by a slice: 9 voxels on 27
    labels[3:5, 3:5, 3:5] = 7  # add a lesion
    edited = nib.Nifti1Image(labels, AFFINE)
    response = client.put(
        f"/api/jobs/{job_id}/labels/wmh",
        headers=AUTH,
        files={"file": ("wmh.nii", io.BytesIO(edited.to_bytes()), "application/octet-stream")},
        data={"review_seconds": "42.5", "correction_seconds": "12", "accepted": "[1]"},
    )
    assert response.status_code == 200, response.text
    review = response.json()
    by_ai = {row["ai_id"]: row for row in review["lesions"]}
    assert by_ai[1]["status"] == "edited" and abs(by_ai[1]["dice"] - 2 * 27 / (27 + 36)) < 1e-3
    assert by_ai[1]["reviewer_accepted"] is True
    assert by_ai[2]["status"] == "deleted" and by_ai[2]["dice"] == 0
    assert by_ai[None]["status"] == "added" and by_ai[None]["accepted_ids"] == [7]
    assert 0 < review["case_dice"] < 1
    assert [row["id"] for row in review["rows"]] == [1, 7]

    job = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
    assert job["corrected"] and [row["id"] for row in job["lesions"]] == [1, 7]
    assert len(job["reviews"]) == 1 and job["reviews"][0]["review_seconds"] == 42.5
    ai = client.get(f"/api/jobs/{job_id}/images/ai-labels-wmh", headers=AUTH).content
    assert np.array_equal(
        np.asarray(nib.Nifti1Image.from_bytes(gzip.decompress(ai)).dataobj), fake_labels((24, 28, 20))
    )

    table = client.get(f"/api/jobs/{job_id}/export/csv", headers=AUTH)
    assert table.status_code == 200
    assert [r["id"] for r in csv.DictReader(io.StringIO(table.text))] == ["1", "7"]
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/jobs/{job_id}/export/nifti", headers=AUTH).content)
    )
    assert {"wmh_labels.nii.gz", "ai/wmh_labels.nii.gz", "brain_mask.nii.gz", "lesions.csv"} <= set(
        archive.namelist()
    )

    report = client.get(f"/api/jobs/{job_id}/export/report", headers=AUTH)
    assert report.status_code == 200, report.text
    assert "attachment" in report.headers["content-disposition"] and "<html" in report.text.lower()

    log = client.get(f"/api/review-log.csv?job_id={job_id}", headers=AUTH)
    rows = list(csv.DictReader(io.StringIO(log.text)))
    assert {r["status"] for r in rows} == {"edited", "deleted", "added"}
    assert all(r["review_seconds"] == "42.5" for r in rows)


def test_corrections_on_another_grid_are_refused(service: Service, done_job: dict[str, Any]) -> None:
    client, _ = service
    wrong = nib.Nifti1Image(np.zeros((10, 10, 10), np.uint16), np.eye(4))
    response = client.put(
        f"/api/jobs/{done_job['id']}/labels/wmh",
        headers=AUTH,
        files={"file": ("wmh.nii", io.BytesIO(wrong.to_bytes()), "application/octet-stream")},
        data={"review_seconds": "1", "correction_seconds": "1"},
    )
    assert response.status_code == 400 and "shape" in response.json()["detail"]


def test_dicom_exports_of_a_nifti_study_explain_why_not(service: Service, done_job: dict[str, Any]) -> None:
    client, _ = service
    response = client.get(f"/api/jobs/{done_job['id']}/export/rtstruct", headers=AUTH)
    assert response.status_code == 409 and "DICOM" in response.json()["detail"]
    assert client.get(f"/api/jobs/{done_job['id']}/export/exe", headers=AUTH).status_code == 400


def test_upload_size_limit(tmp_path: Path) -> None:
    from neurolesion.service.app import create_app
    from tests.service.conftest import settings_for

    with TestClient(create_app(settings_for(tmp_path, max_upload_mb=1))) as client:
        response = upload(client, [("FLAIR.nii.gz", b"\0" * (2 << 20))])
        assert response.status_code == 413
        assert client.get("/api/jobs", headers=AUTH).json() == []
    assert TOKEN not in (tmp_path / "jobs.sqlite").read_bytes().decode("latin-1")


def test_without_a_built_front_end_the_page_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neurolesion.service import app as app_module
    from tests.service.conftest import settings_for

    monkeypatch.setattr(app_module, "STATIC_DIR", tmp_path / "missing")
    client = TestClient(app_module.create_app(settings_for(tmp_path)))
    page = client.get("/")
    assert page.status_code == 200 and "make web" in page.text
    assert page.headers["x-content-type-options"] == "nosniff"


def test_dicom_study_exports_rtstruct_and_seg_of_the_accepted_labels(
    service: Service, tmp_path: Path
) -> None:
    import pydicom

    from tests.helpers.dicom_writer import grid_affine, phantom, write_series

    client, _ = service
    shape = (24, 28, 20)
    affine = grid_affine("axial", shape, (1.0, 1.0, 1.5))
    folder = tmp_path / "flair"
    fields = {"RepetitionTime": 9000.0, "EchoTime": 90.0, "InversionTime": 2500.0}
    written = write_series(folder, phantom(affine, shape), affine, description="t2_flair_tra", fields=fields)
    files = [(f"study/{p.relative_to(folder)}", p.read_bytes()) for p in written.paths]
    job = wait_for(client, upload(client, files).json()["id"])
    assert job["status"] == "done", job
    labels = fake_labels(shape)
    labels[labels == 1] = 0
    edited = nib.Nifti1Image(labels, np.asarray(job_affine(client, job["id"])))
    response = client.put(
        f"/api/jobs/{job['id']}/labels/wmh",
        headers=AUTH,
        files={"file": ("wmh.nii.gz", io.BytesIO(gzip.compress(edited.to_bytes())), "application/gzip")},
        data={"review_seconds": "5", "correction_seconds": "2"},
    )
    assert response.status_code == 200, response.text
    for kind, modality in (("rtstruct", "RTSTRUCT"), ("seg", "SEG")):
        exported = client.get(f"/api/jobs/{job['id']}/export/{kind}", headers=AUTH)
        assert exported.status_code == 200, exported.text
        ds = pydicom.dcmread(io.BytesIO(exported.content))
        assert ds.Modality == modality and ds.StudyInstanceUID == written.study_uid
    rois = pydicom.dcmread(
        io.BytesIO(client.get(f"/api/jobs/{job['id']}/export/rtstruct", headers=AUTH).content)
    )
    assert len(rois.StructureSetROISequence) == 1  # lesion 1 was deleted


def job_affine(client: TestClient, job_id: str) -> Any:
    image = client.get(f"/api/jobs/{job_id}/images/ai-labels-wmh", headers=AUTH).content
    return nib.Nifti1Image.from_bytes(gzip.decompress(image)).affine


def test_dicom_study_without_lesion_maps_answers_404_not_500(service: Service, tmp_path: Path) -> None:
    """A real run with no lesion model installed delivers the brain mask only: no RTSTRUCT/SEG to build."""
    from tests.helpers.dicom_writer import grid_affine, phantom, write_series

    client, data_dir = service
    shape = (24, 28, 20)
    affine = grid_affine("axial", shape, (1.0, 1.0, 1.5))
    written = write_series(tmp_path / "t1", phantom(affine, shape), affine, description="t1_mprage")
    files = [(f"study/{p.name}", p.read_bytes()) for p in written.paths]
    job = wait_for(client, upload(client, files).json()["id"])
    assert job["status"] == "done", job
    output = data_dir / "jobs" / job["id"] / "output"
    for name in ("wmh_labels.nii.gz", "wmh_probability.nii.gz", "rtstruct.dcm", "seg.dcm"):
        (output / name).unlink(missing_ok=True)  # as the real pipeline leaves it when tasks are skipped
    for kind in ("rtstruct", "seg"):
        response = client.get(f"/api/jobs/{job['id']}/export/{kind}", headers=AUTH)
        assert response.status_code == 404, response.text
        assert "no lesion label map" in response.json()["detail"]
