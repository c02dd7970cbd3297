"""Plain data shared by every stage: jobs and store counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as stored: what it is, how far it got, and how it ended."""

    id: int
    kind: str
    title: str
    state: str
    params: dict[str, Any]
    done: int
    total: int | None
    pid: int | None
    host: str | None
    log_path: str | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None
    error: str | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def is_active(self) -> bool:
        """True while the job is queued or running."""
        return self.state in ("queued", "running")


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """Counts shown on the dashboard."""

    repositories: int
    commits: int
    jobs_running: int
    jobs_total: int
    extra: dict[str, int] = field(default_factory=dict)
