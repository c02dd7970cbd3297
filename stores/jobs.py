"""Jobs: create, report progress, cancel and list the units of work every front end can watch."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import NotFoundError
from core.models import JobInfo
from core.processes import process_alive
from stores.tables import JobRow, utcnow

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "cancelled")


def _to_info(row: JobRow) -> JobInfo:
    assert row.id is not None
    return JobInfo(
        id=row.id,
        kind=row.kind,
        title=row.title,
        state=row.state,
        params=json.loads(row.params_json or "{}"),
        done=row.done,
        total=row.total,
        pid=row.pid,
        host=row.host,
        log_path=row.log_path,
        created_at=row.created_at,
        started_at=row.started_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        error=row.error,
        summary=json.loads(row.summary_json or "{}"),
    )


def create_job(
    engine: Engine,
    kind: str,
    title: str,
    params: dict[str, Any] | None = None,
    *,
    state: str = "running",
    pid: int | None = None,
    log_path: str | None = None,
) -> int:
    """Insert a job row owned by `pid` (this process by default) and return its id."""
    now = utcnow()
    row = JobRow(
        kind=kind,
        title=title,
        state=state,
        params_json=json.dumps(params or {}, default=str, sort_keys=True),
        pid=os.getpid() if pid is None else pid,
        host=socket.gethostname(),
        log_path=log_path,
        started_at=now if state == "running" else None,
        updated_at=now,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def update_job(
    engine: Engine,
    job_id: int,
    *,
    done: int | None = None,
    total: int | None = None,
    summary: dict[str, Any] | None = None,
    state: str | None = None,
    pid: int | None = None,
    log_path: str | None = None,
) -> None:
    """Record progress (and optionally a new state, pid or log path) for a job."""
    with Session(engine) as session:
        row = session.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        if done is not None:
            row.done = done
        if total is not None:
            row.total = total
        if summary is not None:
            row.summary_json = json.dumps(summary, default=str, sort_keys=True)
        if pid is not None:
            row.pid = pid
        if log_path is not None:
            row.log_path = log_path
        if state is not None:
            row.state = state
            if state == "running" and row.started_at is None:
                row.started_at = utcnow()
        row.updated_at = utcnow()
        session.add(row)
        session.commit()


def finish_job(
    engine: Engine,
    job_id: int,
    state: str,
    *,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
    done: int | None = None,
) -> None:
    """Mark a job done, failed or cancelled, with its error line and final summary."""
    if state not in FINAL_STATES:
        raise ValueError(f"not a final job state: {state}")
    with Session(engine) as session:
        row = session.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        row.state = state
        row.error = error
        if summary is not None:
            row.summary_json = json.dumps(summary, default=str, sort_keys=True)
        if done is not None:
            row.done = done
        row.finished_at = row.updated_at = utcnow()
        session.add(row)
        session.commit()


def request_cancel(engine: Engine, job_id: int) -> JobInfo:
    """Ask a running job to stop; it sees the flag at its next progress check."""
    with Session(engine) as session:
        row = session.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        if row.state in ACTIVE_STATES:
            row.cancel_requested = True
            row.updated_at = utcnow()
            session.add(row)
            session.commit()
            session.refresh(row)
        return _to_info(row)


def is_cancel_requested(engine: Engine, job_id: int) -> bool:
    """True once someone asked the job to stop."""
    with Session(engine) as session:
        row = session.get(JobRow, job_id)
        return bool(row and row.cancel_requested)


def reap_dead_jobs(engine: Engine) -> int:
    """Mark running jobs of this host whose process is gone as failed; return how many."""
    host = socket.gethostname()
    reaped = 0
    with Session(engine) as session:
        rows = session.exec(
            select(JobRow).where(col(JobRow.state).in_(ACTIVE_STATES), JobRow.host == host)
        ).all()
        for row in rows:
            if row.pid is not None and not process_alive(row.pid):
                row.state = "failed"
                row.error = "the job's process ended without finishing (killed?); re-run to resume"
                row.finished_at = utcnow()
                session.add(row)
                reaped += 1
        if reaped:
            session.commit()
    return reaped


def get_job(engine: Engine, job_id: int) -> JobInfo:
    """Return one job or raise NotFoundError."""
    reap_dead_jobs(engine)
    with Session(engine) as session:
        row = session.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        return _to_info(row)


def list_jobs(
    engine: Engine,
    *,
    limit: int = 200,
    before_id: int | None = None,
    kind: str | None = None,
    active_only: bool = False,
) -> list[JobInfo]:
    """Newest jobs first, one keyset page at a time (pass the last id seen as `before_id`)."""
    reap_dead_jobs(engine)
    with Session(engine) as session:
        query = select(JobRow).order_by(col(JobRow.id).desc()).limit(limit)
        if before_id is not None:
            query = query.where(col(JobRow.id) < before_id)
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        if active_only:
            query = query.where(col(JobRow.state).in_(ACTIVE_STATES))
        return [_to_info(row) for row in session.exec(query).all()]


def count_jobs(engine: Engine, *, active_only: bool = False) -> int:
    """How many jobs there are (or how many are queued or running)."""
    with Session(engine) as session:
        query = select(func.count()).select_from(JobRow)
        if active_only:
            query = query.where(col(JobRow.state).in_(ACTIVE_STATES))
        return int(session.exec(query).one())


