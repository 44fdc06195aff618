"""Settings of `neurolesion serve`: a frozen dataclass, loadable from YAML, validated on load.

The access token is either given (configuration) or generated on first start and kept in
``<data_dir>/token`` (mode 600), so restarts keep the same token.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neurolesion.errors import InputError

#: Where jobs, uploads, results and the SQLite database live unless configured.
DEFAULT_DATA_DIR = Path.home() / ".neurolesion" / "service"


@dataclass(frozen=True)
class ServiceSettings:
    """Configuration of the web service.

    Args:
        data_dir: folder holding the database (SQLite default), the token file and one folder per job.
        database_url: SQLAlchemy URL; empty means ``sqlite:///<data_dir>/jobs.sqlite``. PostgreSQL works
            the same (``postgresql+psycopg://user@host/db``).
        host: interface to bind; 127.0.0.1 keeps it on this computer.
        port: TCP port.
        token: bearer token every endpoint but ``/api/health`` requires; empty means generated on first
            start and stored in ``<data_dir>/token``.
        concurrency: jobs run at once (each in its own worker process); more are queued.
        max_upload_mb: limit on the bytes of one upload request.
        max_unzipped_mb: limit on what the zips of one upload may expand to.
        pipeline: ``module:function`` run for each job; the function has the signature of
            `neurolesion.pipeline.segment`.

    Raises:
        InputError: a value out of range.

    Example:
        >>> s = ServiceSettings(data_dir=Path("/tmp/nl"), concurrency=2)
        >>> s.resolved_database_url
        'sqlite:////tmp/nl/jobs.sqlite'
    """

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8765
    token: str = ""
    concurrency: int = 1
    max_upload_mb: int = 2048
    max_unzipped_mb: int = 8192
    pipeline: str = "neurolesion.pipeline:segment"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.extra:
            raise InputError(
                f"serve settings: unknown key(s) {sorted(self.extra)}; expected "
                f"{[f.name for f in dataclasses.fields(self) if f.name != 'extra']}"
            )
        for name in ("port", "concurrency", "max_upload_mb", "max_unzipped_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or (name == "port" and value > 65535):
                raise InputError(f"serve settings: {name} = {value!r}; expected a positive integer")
        if ":" not in self.pipeline:
            raise InputError(f"serve settings: pipeline = {self.pipeline!r}; expected 'module:function'")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside `data_dir`."""
        return self.database_url or f"sqlite:///{self.data_dir / 'jobs.sqlite'}"

    @property
    def jobs_dir(self) -> Path:
        """Folder holding one sub-folder per job."""
        return self.data_dir / "jobs"


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> ServiceSettings:
    """Settings from a YAML file (optional) with keyword overrides (None values ignored).

    Args:
        path: YAML mapping of `ServiceSettings` fields.
        **overrides: fields given on the command line; they win over the file.

    Returns:
        The validated settings.

    Raises:
        InputError: unreadable file, not a mapping, unknown key or bad value.

    Example:
        >>> load_settings(None, port=9000).port
        9000
    """
    values: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{file}: cannot read serve settings ({exc}); expected a YAML mapping") from None
        if not isinstance(loaded, dict):
            raise InputError(f"{file}: serve settings are a {type(loaded).__name__}; expected a YAML mapping")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(ServiceSettings)} - {"extra"}
    extra = {k: v for k, v in values.items() if k not in known}
    return ServiceSettings(**{k: v for k, v in values.items() if k in known}, extra=extra)


def ensure_token(settings: ServiceSettings) -> tuple[ServiceSettings, bool]:
    """Settings whose token is set: the configured one, the stored one, or a new one (stored, mode 600).

    Returns:
        (settings with the token, True when a new token was generated).
    """
    if settings.token:
        return settings, False
    file = settings.data_dir / "token"
    if file.is_file() and file.read_text().strip():
        return dataclasses.replace(settings, token=file.read_text().strip()), False
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return dataclasses.replace(settings, token=token), True
