"""Jobs: the one state machine every stage shares, leases, and how a job's end is told to it.

queued -> running -> done | failed | cancelled. A worker that stops without ending a job (killed,
machine lost) leaves it running with a heartbeat that ages; once older than the lease, any
worker may take it over and resume it (stages resume by construction: committed work stays).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

LEASE_ENV_VAR = "WORKBENCH_LEASE_S"
DEFAULT_LEASE_S = 60.0
# A job whose worker died this many times is failed rather than started once more.
MAX_ATTEMPTS = 3


class JobState(str, Enum):
    """Where a job is in its one lifecycle."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_active(self) -> bool:
        """Queued or running: the job may still change."""
        return self in (JobState.QUEUED, JobState.RUNNING)


ACTIVE_STATES = (JobState.QUEUED.value, JobState.RUNNING.value)
FINAL_STATES = (JobState.DONE.value, JobState.FAILED.value, JobState.CANCELLED.value)


def lease_seconds() -> float:
    """How long a heartbeat stays valid: `WORKBENCH_LEASE_S` or 60 s (tests use a few seconds)."""
    try:
        value = float(os.environ.get(LEASE_ENV_VAR, DEFAULT_LEASE_S))
    except ValueError:
        return DEFAULT_LEASE_S
    return value if value > 0 else DEFAULT_LEASE_S


class JobCancelled(Exception):
    """A runner stopped because a cancel was asked for, or a limit it was given (a budget) was reached.

    The message, when there is one, says which limit; the job's error line adds how to resume.
    """


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a foreground job: it is stored `cancelled`; the message names the job, how far it
    got and how to resume. A KeyboardInterrupt still, so that every handler of Ctrl-C sees it as one."""


class JobReleased(Exception):
    """A runner stopped because its worker is shutting down: the job goes back to the queue."""


class JobLost(Exception):
    """Another worker took the job over (this worker's lease ran out): stop without writing more."""


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as stored: what it is, who runs it, how far it got, and how it ended.

    `params` and `summary` are the stored JSON of the kind's typed parameters and summary
    (`workbench.jobs.registry` reads them back into their types).
    """

    id: int
    kind: str
    title: str
    state: JobState
    params: dict[str, Any]
    run_key: str | None
    done: int
    total: int | None
    pid: int | None
    log_path: str | None
    worker_id: str | None
    heartbeat_at: datetime | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None
    error: str | None
    summary: dict[str, Any]

    @property
    def is_active(self) -> bool:
        """True while the job is queued or running."""
        return self.state.is_active

    def is_stalled(self, now: datetime, lease_s: float | None = None) -> bool:
        """Running, but its worker's heartbeat is older than the lease (a worker may take it over)."""
        if self.state != JobState.RUNNING or self.heartbeat_at is None:
            return self.state == JobState.RUNNING
        return now - self.heartbeat_at > timedelta(seconds=lease_s or lease_seconds())


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process as stored: the kinds it runs and its last heartbeat."""

    id: str
    label: str
    kinds: tuple[str, ...]
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None

    def runs(self, kind: str) -> bool:
        """True when this worker takes jobs of `kind`."""
        return not self.kinds or kind in self.kinds


@dataclass(frozen=True, slots=True)
class JobShare:
    """One worker's part in a job, with the counters it reported."""

    worker_id: str
    role: str
    counters: dict[str, Any]
    heartbeat_at: datetime
    finished_at: datetime | None
