"""Shared tables of the store (jobs) and its clock convention; each stage keeps its own tables module."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware UTC now, the one clock convention of the store (SQLModel refuses naive times)."""
    return datetime.now(timezone.utc)


class JobRow(SQLModel, table=True):
    """A unit of pipeline work that any front end on any session can watch.

    `worker_id` and `heartbeat_at` name the worker that owns a running job and when it last said
    so; a job whose heartbeat is older than the lease may be taken over by any worker.
    `run_key` names the work the job advances (a synthesis configuration, an eval run) so that a
    second command on the same run joins the job instead of competing with it.
    """

    __tablename__ = "jobs"

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    title: str
    state: str = Field(default="queued", index=True)  # core.jobs.JobState
    params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    run_key: Optional[str] = Field(default=None, index=True)
    done: int = 0
    total: Optional[int] = None
    pid: Optional[int] = None  # a child process the job supervises (trainer, vllm), for its log line
    log_path: Optional[str] = None
    cancel_requested: bool = False
    worker_id: Optional[str] = Field(default=None, index=True)
    heartbeat_at: Optional[datetime] = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    summary_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class WorkerRow(SQLModel, table=True):
    """A worker process: its id, which job kinds it runs, and its heartbeat.

    The label (host and pid) is for people reading `workbench jobs workers`; liveness is the
    heartbeat alone, so workers on other machines count the same.
    """

    __tablename__ = "workers"

    id: str = Field(primary_key=True)
    label: str = ""
    kinds: str = ""  # comma-separated job kinds; empty: every kind
    concurrency: int = 1
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    stopped_at: Optional[datetime] = None


class JobWorkerRow(SQLModel, table=True):
    """One part a worker took in a job (the owner's, or a helper's in a shared job), with its counters.

    A worker has one unfinished part per job at a time; one that comes back starts another.
    """

    __tablename__ = "job_workers"

    id: Optional[int] = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    worker_id: str
    role: str = "owner"  # owner | helper
    counters_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    heartbeat_at: datetime = Field(default_factory=utcnow)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None


class WorkItemRow(SQLModel, table=True):
    """An item of a shared job (an eval task in one order, a pair to analyse) that workers claim.

    `scope` names the job's work (`eval:12`, `analyse:7`); a claim carries the worker id and a
    heartbeat, and one older than the lease can be claimed again by any worker.
    """

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("scope", "item_key", name="uq_work_item"),
        Index("ix_work_items_claim", "scope", "state", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    scope: str
    item_key: str
    state: str = "pending"  # pending | claimed | done
    worker_id: Optional[str] = Field(default=None, index=True)
    heartbeat_at: Optional[datetime] = None
    attempts: int = 0


__all__ = ["JobRow", "JobWorkerRow", "WorkItemRow", "WorkerRow", "utcnow"]
