"""The FastAPI application of `neurolesion serve`: a thin adapter over the pipeline and the job store.

Every ``/api`` endpoint but ``/api/health`` needs ``Authorization: Bearer <token>``. The browser viewer
(static files, no patient data) is served from ``/``. OpenAPI schema: ``/openapi.json``, docs: ``/docs``.

Example:
    >>> from neurolesion.service.app import create_app
    >>> from neurolesion.service.settings import ServiceSettings
    >>> app = create_app(ServiceSettings(data_dir=Path("/tmp/nl"), token="secret"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

import neurolesion
from neurolesion.errors import InputError
from neurolesion.registry import check_sequence, expand_tasks
from neurolesion.service import exports, review
from neurolesion.service.schemas import Health, JobDetail, JobOut, ReviewOut
from neurolesion.service.settings import ServiceSettings
from neurolesion.service.store import JobStore
from neurolesion.service.uploads import UploadTooLarge, check_images, remove_tree, store_upload
from neurolesion.service.worker import JobRunner, job_paths

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

_NOT_BUILT = """<!doctype html><html><head><meta charset="utf-8"><title>neurolesion</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:4em auto">
<h1>neurolesion: front end not built</h1>
<p>The API runs (see <a href="/docs">/docs</a>), but the browser viewer has not been built.
Run <code>make web</code> (needs npm) in the repository, then restart <code>neurolesion serve</code>.</p>
</body></html>"""

_IMAGE_NAME = re.compile(r"[a-z][a-z0-9_]*(-[a-z0-9_]+)*")

_BEARER = HTTPBearer(auto_error=False)

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # the viewer's own scripts only; NiiVue needs blob/data URLs, WebAssembly and style attributes
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; worker-src 'self' blob:; connect-src 'self' data: blob:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


class _Limits(BaseHTTPMiddleware):
    """Refuse oversized request bodies before they are read; add security headers to every answer."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.method in ("POST", "PUT"):
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse({"detail": "Content-Length required"}, status_code=411)
            if not length.isdigit() or int(length) > self.max_bytes:
                return JSONResponse(
                    {"detail": f"upload larger than the limit of {self.max_bytes >> 20} MB"}, status_code=413
                )
        response = await call_next(request)
        for key, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _bad_input(exc: InputError) -> HTTPException:
    return HTTPException(status_code=413 if isinstance(exc, UploadTooLarge) else 400, detail=str(exc))


def _image_file(paths: dict[str, Path], name: str) -> Path:
    """The NIfTI behind an image name of the API: a sequence, ``labels-<task>`` (current),
    ``ai-labels-<task>``, ``probability-<task>`` or ``brain_mask``; nothing uploaded is ever served."""
    if not _IMAGE_NAME.fullmatch(name):
        raise HTTPException(status_code=404, detail=f"image {name!r}: not in this job")
    if name == "brain_mask":
        file = paths["output"] / "brain_mask.nii.gz"
    elif name.startswith("labels-"):
        file = review.current_labels_path(paths["root"], name.removeprefix("labels-"))
    elif name.startswith("ai-labels-"):
        file = paths["output"] / f"{name.removeprefix('ai-labels-')}_labels.nii.gz"
    elif name.startswith("probability-"):
        file = paths["output"] / f"{name.removeprefix('probability-')}_probability.nii.gz"
    else:
        file = paths["viewer"] / f"{name}.nii.gz"
    if not file.is_file():
        raise HTTPException(status_code=404, detail=f"image {name!r}: not in this job")
    return file


def _detail(store: JobStore, settings: ServiceSettings, job: dict[str, Any]) -> dict[str, Any]:
    paths = job_paths(settings.jobs_dir, job["id"])
    summary_file = paths["output"] / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    sequences = sorted(p.name.removesuffix(".nii.gz") for p in paths["viewer"].glob("*.nii.gz"))
    reference = (summary or {}).get("input", {}).get("reference") or (sequences[0] if sequences else None)
    label_tasks = sorted(
        p.name.removesuffix("_labels.nii.gz") for p in paths["output"].glob("*_labels.nii.gz")
    )
    return job | {
        "sequences": sequences,
        "reference": reference,
        "label_tasks": label_tasks,
        "has_brain_mask": (paths["output"] / "brain_mask.nii.gz").is_file(),
        "lesions": review.read_lesions(review.current_lesions_path(paths["root"])),
        "summary": summary,
        "corrected": exports.corrected(paths["root"]),
        "reviews": store.reviews(job["id"]),
    }


def _parse_request(files: list[UploadFile], tasks: str, sequences: str) -> dict[str, Any]:
    """Tasks and sequence overrides of an upload form, validated."""
    names = [t for t in tasks.replace(",", " ").split() if t]
    try:
        mapping = json.loads(sequences or "{}")
    except json.JSONDecodeError:
        raise InputError(f"sequences = {sequences!r}: expected a JSON object file name -> sequence") from None
    if not isinstance(mapping, dict):
        raise InputError(f"sequences = {sequences!r}: expected a JSON object file name -> sequence")
    uploaded = {f.filename or "" for f in files}
    unknown = set(mapping) - uploaded
    if unknown:
        raise InputError(
            f"sequences names {sorted(unknown)}, which were not uploaded; expected {sorted(uploaded)}"
        )
    overrides = {check_sequence(str(seq)): name for name, seq in mapping.items()}
    return {
        "tasks": expand_tasks(names) if names else None,
        "overrides": overrides,
        "only_overrides": bool(overrides) and set(mapping) == uploaded,
    }


def create_app(settings: ServiceSettings) -> FastAPI:
    """Build the application for `settings` (whose token must be set; see `settings.ensure_token`).

    Args:
        settings: the service settings.

    Returns:
        The FastAPI app; its lifespan starts the worker pool and resumes interrupted jobs.

    Raises:
        ValueError: the settings carry no token.
    """
    if not settings.token:
        raise ValueError("create_app: settings.token is empty; call ensure_token first")
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = JobRunner(
            store, settings.jobs_dir, settings.resolved_database_url, settings.pipeline, settings.concurrency
        )
        app.state.runner = runner
        resumed = runner.resume()
        if resumed:
            log.info("resumed %d queued job(s)", len(resumed))
        yield
        runner.shutdown()

    app = FastAPI(title="neurolesion", version=neurolesion.__version__, lifespan=lifespan)
    app.add_middleware(_Limits, max_bytes=settings.max_upload_mb << 20)

    def authorised(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), settings.token.encode()):
            raise HTTPException(
                status_code=401, detail="missing or wrong token", headers={"WWW-Authenticate": "Bearer"}
            )

    def job_or_404(job_id: str) -> dict[str, Any]:
        job = store.get(job_id) if job_id.isalnum() else None
        if job is None:
            raise HTTPException(status_code=404, detail=f"job {job_id!r}: no such job")
        return job

    @app.get("/api/health", response_model=Health)
    def health() -> dict[str, str]:
        """Liveness probe (no token needed)."""
        return {"status": "ok", "version": neurolesion.__version__}

    api = APIRouter(prefix="/api", dependencies=[Depends(authorised)])

    @api.get("/jobs", response_model=list[JobOut])
    def list_jobs() -> list[dict[str, Any]]:
        """Every job, newest first."""
        return store.jobs()

    @api.post("/jobs", response_model=JobOut, status_code=201)
    def create_job(
        request: Request,
        files: Annotated[list[UploadFile], File(description="DICOM zip or folder files, or NIfTI files")],
        label: Annotated[str, Form(max_length=200)] = "",
        tasks: Annotated[str, Form(description="task names, e.g. 'wmh cmb' (default: all possible)")] = "",
        sequences: Annotated[str, Form(description='JSON {"file name": "flair", ...}')] = "{}",
    ) -> dict[str, Any]:
        """Upload a study; it is queued and run by a worker process."""
        try:
            parsed = _parse_request(files, tasks, sequences)
        except InputError as exc:
            raise _bad_input(exc) from None
        job = store.create(label or Path(files[0].filename or "study").name.split(".")[0], parsed)
        paths = job_paths(settings.jobs_dir, job["id"])
        try:
            stored = store_upload(
                ((f.filename or "upload", f.file) for f in files),
                paths["input"],
                max_bytes=settings.max_upload_mb << 20,
                max_unzipped_bytes=settings.max_unzipped_mb << 20,
            )
            check_images(stored, paths["input"])
        except InputError as exc:
            remove_tree(paths["root"])
            store.update(job["id"], status="failed", error=str(exc))
            raise _bad_input(exc) from None
        request.app.state.runner.submit(job["id"])
        log.info("job %s: queued", job["id"])
        return job

    @api.get("/jobs/{job_id}", response_model=JobDetail)
    def get_job(job_id: str) -> dict[str, Any]:
        """A job with its sequences, label maps, current lesion table, summary and saved reviews."""
        return _detail(store, settings, job_or_404(job_id))

    @api.get("/jobs/{job_id}/events")
    async def job_events(job_id: str) -> StreamingResponse:
        """Server-sent events: the job each time its stage or progress changes, until it ends."""
        job_or_404(job_id)

        async def stream() -> AsyncIterator[str]:
            last, idle = None, 0.0
            while True:
                job = await asyncio.to_thread(store.get, job_id)
                if job is None:
                    return
                state = (job["status"], job["stage"], job["progress"])
                if state != last:
                    last, idle = state, 0.0
                    yield f"event: job\ndata: {json.dumps(job)}\n\n"
                elif idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                if job["status"] in ("done", "failed"):
                    return
                await asyncio.sleep(0.5)
                idle += 0.5

        return StreamingResponse(stream(), media_type="text/event-stream")

    @api.get("/jobs/{job_id}/images/{name}", response_class=FileResponse)
    def get_image(job_id: str, name: str) -> FileResponse:
        """A NIfTI for the viewer: a sequence name, labels-<task>, ai-labels-<task>, probability-<task>
        or brain_mask."""
        job_or_404(job_id)
        file = _image_file(job_paths(settings.jobs_dir, job_id), name)
        return FileResponse(file, media_type="application/octet-stream", filename=f"{name}.nii.gz")

    @api.get("/jobs/{job_id}/lesions")
    def get_lesions(job_id: str) -> list[dict[str, Any]]:
        """The current lesion table (accepted where corrected)."""
        job_or_404(job_id)
        return review.read_lesions(review.current_lesions_path(job_paths(settings.jobs_dir, job_id)["root"]))

    @api.put("/jobs/{job_id}/labels/{task}", response_model=ReviewOut)
    def save_labels(
        job_id: str,
        task: str,
        file: Annotated[UploadFile, File(description="corrected instance labels, NIfTI on the case grid")],
        review_seconds: Annotated[float, Form(ge=0, le=86400)],
        correction_seconds: Annotated[float, Form(ge=0, le=86400)],
        accepted: Annotated[str, Form(description="JSON list of AI lesion ids accepted")] = "[]",
    ) -> dict[str, Any]:
        """Save a corrected label map as the accepted version (the AI version is kept) and log the review."""
        job = job_or_404(job_id)
        if job["status"] != "done":
            raise HTTPException(
                status_code=409, detail=f"job {job_id}: {job['status']}; only finished jobs can be corrected"
            )
        try:
            ids = json.loads(accepted)
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise InputError(f"accepted = {accepted!r}: expected a JSON list of lesion ids")
            result = review.save_correction(
                job_paths(settings.jobs_dir, job_id)["root"], task, file.file.read(), ids
            )
        except (InputError, json.JSONDecodeError) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        record = {"review_seconds": review_seconds, "correction_seconds": correction_seconds} | result
        return store.add_review(job_id, task, record) | {"rows": result["rows"]}

    @api.get("/jobs/{job_id}/export/{kind}", response_class=FileResponse)
    def export(job_id: str, kind: str) -> FileResponse:
        """Download RTSTRUCT, SEG, NIfTI (zip), CSV or the report, of the accepted version when corrected."""
        job = job_or_404(job_id)
        if job["status"] != "done":
            raise HTTPException(
                status_code=409, detail=f"job {job_id}: {job['status']}; nothing to export yet"
            )
        root = job_paths(settings.jobs_dir, job_id)["root"]
        try:
            file = exports.export_file(root, kind, store.request(job_id))
        except InputError as exc:
            raise HTTPException(
                status_code=400 if kind not in exports.EXPORTS else 409, detail=str(exc)
            ) from None
        except (FileNotFoundError, ImportError) as exc:
            raise HTTPException(
                status_code=404, detail=f"{kind}: not available for this job ({exc})"
            ) from None
        except Exception as exc:
            log.error("job %s: export %s failed: %s", job_id, kind, type(exc).__name__)
            raise HTTPException(
                status_code=500, detail=f"{kind} could not be built: {type(exc).__name__}"
            ) from None
        if not file.is_file():
            raise HTTPException(
                status_code=404, detail=f"{kind}: the pipeline wrote no such output for this job"
            )
        name, media = exports.EXPORTS[kind]
        return FileResponse(file, media_type=media, filename=name, content_disposition_type="attachment")

    @api.get("/review-log.csv", response_class=FileResponse)
    def review_log(job_id: str | None = None) -> FileResponse:
        """Review timings and AI-versus-accepted Dice, one row per lesion (all jobs, or `job_id`'s)."""
        if job_id is not None:
            job_or_404(job_id)
        file = review.write_review_log(settings.data_dir / "review_log.csv", store.reviews(job_id))
        return FileResponse(file, media_type="text/csv", filename="review_log.csv")

    app.include_router(api)
    if (STATIC_DIR / "index.html").is_file():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="viewer")
    else:

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        def not_built() -> str:
            return _NOT_BUILT

    return app
