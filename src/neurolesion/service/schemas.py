"""Pydantic models of the API's answers (they make the published OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    """Liveness answer."""

    status: str
    version: str


class JobOut(BaseModel):
    """A job and where it stands."""

    id: str
    label: str
    status: str = Field(description="queued, running, done or failed")
    stage: str = Field(description="current pipeline stage")
    progress: float = Field(ge=0, le=1)
    error: str = Field(description="why it failed (the input's problem, or 'internal error: ...')")
    tasks: list[str] | None
    attempts: int
    created_at: str
    updated_at: str
    finished_at: str | None


class ReviewOut(BaseModel):
    """One saved correction: timings, Dice between AI and accepted, per lesion and for the case."""

    id: int
    job_id: str
    task: str
    review_seconds: float
    correction_seconds: float
    case_dice: float
    lesions: list[dict[str, Any]]
    created_at: str
    rows: list[dict[str, Any]] = Field(default_factory=list, description="accepted lesion rows of the task")


class JobDetail(JobOut):
    """A job with what the viewer needs."""

    sequences: list[str] = Field(description="input sequences available as images")
    reference: str | None = Field(description="sequence whose grid the label maps share")
    label_tasks: list[str]
    has_brain_mask: bool
    lesions: list[dict[str, Any]] = Field(description="current lesion table (accepted where corrected)")
    summary: dict[str, Any] | None
    corrected: bool
    reviews: list[ReviewOut]
