"""Running jobs: one worker process per job, at most `concurrency` at once, the rest queued.

Each job runs in a fresh spawned process (so its memory is returned when it ends),
which converts the input sequences for the viewer, calls the pipeline and records progress by stage in
the job store. The service logs jobs by id only, never a file or patient name, nor an error message
(which may quote them).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from neurolesion.errors import InputError
from neurolesion.service.store import JobStore

log = logging.getLogger(__name__)

#: Least seconds between two progress writes of the same stage.
PROGRESS_INTERVAL = 0.5


def job_paths(jobs_dir: Path, job_id: str) -> dict[str, Path]:
    """The folders of one job: input (uploads), viewer (NIfTI of each sequence), output, review.

    Example:
        >>> job_paths(Path("/data/jobs"), "abc")["output"]
        PosixPath('/data/jobs/abc/output')
    """
    root = jobs_dir / job_id
    return {name: root / name for name in ("input", "viewer", "output", "review")} | {"root": root}


def load_pipeline(spec: str) -> Callable[..., Any]:
    """The function named by ``module:function`` (by default `neurolesion.pipeline.segment`)."""
    module_name, _, func_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def prepare_viewer(input: Path | None, overrides: dict[str, Path], viewer: Path) -> dict[str, str]:
    """Write each input sequence as NIfTI on its native grid for the browser viewer.

    Returns:
        sequence -> file name inside `viewer`, plus ``"reference"`` -> the reference sequence.

    Raises:
        InputError: the upload holds nothing usable (as `neurolesion.io.case.load_case`).
    """
    from neurolesion.io.case import load_case
    from neurolesion.io.nifti import save_nifti

    case = load_case(input, overrides=overrides or None)
    files = {seq: save_nifti(vol, viewer / f"{seq}.nii.gz").name for seq, vol in case.images.items()}
    return files | {"reference": case.reference}


def upload_input(inputs: Path) -> Path:
    """What to hand the pipeline: the uploaded file when it is one NIfTI file, else the upload folder."""
    files = [p for p in inputs.rglob("*") if p.is_file()]
    if len(files) == 1 and files[0].name.lower().endswith((".nii", ".nii.gz")):
        return files[0]
    return inputs


def _progress_writer(store: JobStore, job_id: str) -> Callable[[str, float], None]:
    last: dict[str, float] = {"time": 0.0}
    stage_seen: dict[str, str] = {"stage": ""}

    def progress(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == stage_seen["stage"] and now - last["time"] < PROGRESS_INTERVAL and fraction < 1:
            return
        last["time"], stage_seen["stage"] = now, stage
        store.update(job_id, stage=str(stage)[:100], progress=max(0.0, min(1.0, float(fraction))))

    return progress


def run_job(job_id: str, jobs_dir: str, database_url: str, pipeline: str) -> str:
    """Run one job to its end in this (worker) process; the outcome is written to the store.

    Args:
        job_id: the job.
        jobs_dir: folder of job folders.
        database_url: the store's URL.
        pipeline: ``module:function`` with the signature of `neurolesion.pipeline.segment`.

    Returns:
        The final status, "done" or "failed".
    """
    store = JobStore(database_url)
    request = store.request(job_id)
    attempts = int((store.get(job_id) or {}).get("attempts", 0)) + 1
    store.update(job_id, status="running", stage="reading the study", progress=0.0, attempts=attempts)
    paths = job_paths(Path(jobs_dir), job_id)
    inputs = paths["input"]
    overrides = {seq: inputs / name for seq, name in (request.get("overrides") or {}).items()}
    source = None if request.get("only_overrides") else upload_input(inputs)
    try:
        prepare_viewer(source, overrides, paths["viewer"])
        segment = load_pipeline(pipeline)
        segment(
            source,
            paths["output"],
            tasks=request.get("tasks") or None,
            overrides=overrides or None,
            progress=_progress_writer(store, job_id),
        )
    except InputError as exc:
        log.info("job %s: input refused", job_id)
        store.update(job_id, status="failed", error=str(exc).replace(str(inputs), "upload"))
        return "failed"
    except Exception as exc:
        # the frames, not the message: a message may quote uploaded file names or header values
        trace = "".join(traceback.format_tb(exc.__traceback__))
        log.error("job %s: internal error %s\n%s", job_id, type(exc).__name__, trace)
        store.update(job_id, status="failed", error=f"internal error: {type(exc).__name__}")
        return "failed"
    store.update(job_id, status="done", stage="done", progress=1.0)
    log.info("job %s: done", job_id)
    return "done"


class JobRunner:
    """Runs queued jobs, each in its own spawned process, at most `concurrency` at once.

    A job whose process dies (out of memory, killed) is marked failed, never lost; on shutdown running
    processes are stopped and their jobs stay "running" in the store, so the next start re-queues them.

    Args:
        store: the server's store.
        jobs_dir: folder of job folders.
        database_url: the store's URL, for the workers.
        pipeline: ``module:function`` run for each job.
        concurrency: jobs run at once.
    """

    def __init__(
        self, store: JobStore, jobs_dir: Path, database_url: str, pipeline: str, concurrency: int
    ) -> None:
        self.store = store
        self.args = (str(jobs_dir), database_url, pipeline)
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.running: dict[str, BaseProcess] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._context = multiprocessing.get_context("spawn")
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(concurrency)]
        for thread in self._threads:
            thread.start()

    def submit(self, job_id: str) -> None:
        """Queue one job (its record must exist in the store)."""
        self.queue.put(job_id)

    def _loop(self) -> None:
        while (job_id := self.queue.get()) is not None:
            process = self._context.Process(target=run_job, args=(job_id, *self.args), name=f"job-{job_id}")
            with self._lock:
                if self._stopping:
                    return
                process.start()
                self.running[job_id] = process
            process.join()
            with self._lock:
                self.running.pop(job_id, None)
                if self._stopping:
                    return
            if process.exitcode != 0:
                log.error("job %s: worker process ended with exit code %s", job_id, process.exitcode)
                self.store.update(
                    job_id,
                    status="failed",
                    error=f"worker process ended with exit code {process.exitcode} (out of memory?)",
                )

    def resume(self) -> list[str]:
        """Re-queue what a previous server left queued or running; returns the ids queued."""
        ids = self.store.recover()
        for job_id in ids:
            self.submit(job_id)
        return ids

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop: running worker processes are terminated (their jobs resume at the next start)."""
        with self._lock:
            self._stopping = True
            processes = list(self.running.values())
        for _ in self._threads:
            self.queue.put(None)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout)
