"""Jobs, workers and their leases: enqueue, claim, heartbeat, finish, cancel and list.

Reads never write. Liveness is a heartbeat: a worker renews the jobs it owns, its part in shared
jobs and the items it claimed; a running job whose heartbeat is older than the lease is taken
over by the next worker that claims a job (`claim_job`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col

from core.errors import NotFoundError
from core.jobs import ACTIVE_STATES, FINAL_STATES, MAX_ATTEMPTS, JobInfo, JobShare, JobState, WorkerInfo
from stores.claims import expired_before, now_expr, renew_claims
from stores.tables import JobRow, JobWorkerRow, WorkerRow, utcnow

_JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
_WORKERS: Table = WorkerRow.__table__  # type: ignore[attr-defined]
_SHARES: Table = JobWorkerRow.__table__  # type: ignore[attr-defined]


def _json(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), default=str, sort_keys=True)


def _to_info(row: Any) -> JobInfo:
    return JobInfo(
        id=int(row.id), kind=row.kind, title=row.title, state=JobState(row.state),
        params=json.loads(row.params_json or "{}"), run_key=row.run_key, done=row.done, total=row.total,
        pid=row.pid, log_path=row.log_path, worker_id=row.worker_id, heartbeat_at=row.heartbeat_at,
        attempts=row.attempts, cancel_requested=bool(row.cancel_requested), created_at=row.created_at,
        started_at=row.started_at, updated_at=row.updated_at, finished_at=row.finished_at, error=row.error,
        summary=json.loads(row.summary_json or "{}"),
    )


def create_job(
    engine: Engine,
    kind: str,
    title: str,
    params: Mapping[str, Any] | None = None,
    *,
    state: str = JobState.RUNNING.value,
    pid: int | None = None,
    log_path: str | None = None,
    run_key: str | None = None,
    worker_id: str | None = None,
) -> int:
    """Insert a job (running and owned by `worker_id`, or queued for any worker) and return its id."""
    if state not in (JobState.QUEUED.value, JobState.RUNNING.value):
        raise ValueError(f"a new job is queued or running, not {state}")
    now = utcnow()
    running = state == JobState.RUNNING.value
    row = JobRow(
        kind=kind, title=title, state=state, params_json=_json(params), run_key=run_key, pid=pid, log_path=log_path,
        worker_id=worker_id if running else None, heartbeat_at=now if running else None,
        attempts=1 if running else 0, started_at=now if running else None, updated_at=now,
    )
    return _insert_job(engine, row).id


def enqueue_job(engine: Engine, kind: str, title: str, params: Mapping[str, Any], *,
                run_key: str | None = None) -> JobInfo:
    """Queue a job for any worker that runs `kind`; return it as queued (a worker may claim it at once,
    so reading it back could already say running)."""
    now = utcnow()
    return _insert_job(engine, JobRow(kind=kind, title=title, state=JobState.QUEUED.value, params_json=_json(params),
                                      run_key=run_key, attempts=0, updated_at=now))


def _insert_job(engine: Engine, row: JobRow) -> JobInfo:
    with Session(engine) as session:
        session.add(row)
        session.flush()  # the id and the columns' defaults, read before any worker can change the row
        info = _to_info(row)
        session.commit()
        return info


def claim_job(
    engine: Engine,
    worker_id: str,
    kinds: Collection[str] | None,
    *,
    lease_s: float,
    job_id: int | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> JobInfo | None:
    """Take the oldest queued job of `kinds` (all when None), or a running one whose lease ran out.

    With `job_id`, take that job only. A job whose workers died `max_attempts` times is failed
    instead of started again. Returns the job now owned by `worker_id`, or None.
    """
    with engine.begin() as connection:
        stale = and_(_JOBS.c.state == JobState.RUNNING.value,
                     or_(_JOBS.c.heartbeat_at.is_(None), _JOBS.c.heartbeat_at < expired_before(connection, lease_s)))
        takeable = or_(_JOBS.c.state == JobState.QUEUED.value, stale)
        where = [takeable]
        if job_id is not None:
            where.append(_JOBS.c.id == job_id)
        if kinds is not None:
            where.append(_JOBS.c.kind.in_(list(kinds)))
        _fail_worn_out(connection, and_(stale, *where[1:]), max_attempts)
        chosen = select(_JOBS.c.id).where(*where).order_by(_JOBS.c.id).limit(1).with_for_update(skip_locked=True)
        now = now_expr(connection)
        claimed = connection.execute(
            update(_JOBS).where(_JOBS.c.id == chosen.scalar_subquery())
            .values(state=JobState.RUNNING.value, worker_id=worker_id, heartbeat_at=now, updated_at=now,
                    attempts=_JOBS.c.attempts + 1, started_at=func.coalesce(_JOBS.c.started_at, now))
            .returning(*_JOBS.c)
        ).first()
        return _to_info(claimed) if claimed is not None else None


def _fail_worn_out(connection: Connection, stale: Any, max_attempts: int) -> None:
    now = now_expr(connection)
    connection.execute(
        update(_JOBS).where(stale, _JOBS.c.attempts >= max_attempts)
        .values(state=JobState.FAILED.value, finished_at=now, updated_at=now, worker_id=None,
                error=f"its worker stopped without ending it {max_attempts} times (killed or out of memory?); "
                      "see the worker's log, then re-run it")
    )


def fail_stalled_jobs(engine: Engine, known_kinds: Collection[str], *, lease_s: float) -> int:
    """End failed the running jobs of kinds no worker here knows whose heartbeat ran out; return how many.

    Such a job was run in the foreground of a process that died; no worker can resume it.
    """
    with engine.begin() as connection:
        now = now_expr(connection)
        result = connection.execute(
            update(_JOBS).where(
                _JOBS.c.state == JobState.RUNNING.value, _JOBS.c.kind.not_in(list(known_kinds)),
                or_(_JOBS.c.heartbeat_at.is_(None), _JOBS.c.heartbeat_at < expired_before(connection, lease_s)),
            ).values(state=JobState.FAILED.value, finished_at=now, updated_at=now,
                     error="its process stopped without ending it (killed?); re-run it to resume")
        )
        return int(result.rowcount or 0)


def update_job(
    engine: Engine,
    job_id: int,
    *,
    done: int | None = None,
    total: int | None = None,
    summary: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    pid: int | None = None,
    log_path: str | None = None,
    run_key: str | None = None,
    worker_id: str | None = None,
) -> bool:
    """Record progress (and new params, a pid, log path or run key); with `worker_id`, only while that worker owns the job.

    Returns False when the job is not running under `worker_id` any more (another worker took it over).
    """
    values: dict[str, Any] = {}
    for name, value in (("done", done), ("total", total), ("pid", pid), ("log_path", log_path), ("run_key", run_key)):
        if value is not None:
            values[name] = value
    if summary is not None:
        values["summary_json"] = _json(summary)
    if params is not None:
        values["params_json"] = _json(params)
    with engine.begin() as connection:
        values["updated_at"] = now_expr(connection)
        condition = [_JOBS.c.id == job_id]
        if worker_id is not None:
            condition += [_JOBS.c.worker_id == worker_id, _JOBS.c.state == JobState.RUNNING.value]
        result = connection.execute(update(_JOBS).where(*condition).values(**values))
        if result.rowcount == 0 and worker_id is None:
            raise NotFoundError(f"job {job_id} does not exist")
        return bool(result.rowcount)


def finish_job(
    engine: Engine,
    job_id: int,
    state: str,
    *,
    error: str | None = None,
    summary: Mapping[str, Any] | None = None,
    done: int | None = None,
    worker_id: str | None = None,
) -> bool:
    """End a job done, failed or cancelled, with its error line and final summary.

    With `worker_id`, only while that worker owns the running job; returns whether it was ended.
    """
    if state not in FINAL_STATES:
        raise ValueError(f"not a final job state: {state}")
    values: dict[str, Any] = {"state": state, "error": error}
    if summary is not None:
        values["summary_json"] = _json(summary)
    if done is not None:
        values["done"] = done
    with engine.begin() as connection:
        values["finished_at"] = values["updated_at"] = now_expr(connection)
        condition = [_JOBS.c.id == job_id]
        if worker_id is not None:
            condition += [_JOBS.c.worker_id == worker_id, _JOBS.c.state == JobState.RUNNING.value]
        result = connection.execute(update(_JOBS).where(*condition).values(**values))
        if result.rowcount == 0 and worker_id is None:
            raise NotFoundError(f"job {job_id} does not exist")
        return bool(result.rowcount)


def release_job(engine: Engine, job_id: int, worker_id: str, *, summary: Mapping[str, Any] | None = None,
                done: int | None = None) -> bool:
    """Put a running job back in the queue (its worker is shutting down); its counters stay."""
    values: dict[str, Any] = {"state": JobState.QUEUED.value, "worker_id": None, "heartbeat_at": None}
    if summary is not None:
        values["summary_json"] = _json(summary)
    if done is not None:
        values["done"] = done
    with engine.begin() as connection:
        values["updated_at"] = now_expr(connection)
        result = connection.execute(
            update(_JOBS).where(_JOBS.c.id == job_id, _JOBS.c.worker_id == worker_id,
                                _JOBS.c.state == JobState.RUNNING.value).values(**values))
        return bool(result.rowcount)


def request_cancel(engine: Engine, job_id: int) -> JobInfo:
    """Ask a job to stop: a queued one is cancelled at once, a running one sees the flag within a second or two."""
    with engine.begin() as connection:
        row = connection.execute(select(_JOBS).where(_JOBS.c.id == job_id)).first()
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        now = now_expr(connection)
        if row.state == JobState.QUEUED.value:
            connection.execute(update(_JOBS).where(_JOBS.c.id == job_id, _JOBS.c.state == JobState.QUEUED.value).values(
                state=JobState.CANCELLED.value, cancel_requested=True, finished_at=now, updated_at=now,
                error="cancelled before a worker started it"))
        elif row.state == JobState.RUNNING.value:
            connection.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(cancel_requested=True, updated_at=now))
        row = connection.execute(select(_JOBS).where(_JOBS.c.id == job_id)).one()
        return _to_info(row)


def is_cancel_requested(engine: Engine, job_id: int) -> bool:
    """True once someone asked the job to stop."""
    with engine.connect() as connection:
        return bool(connection.execute(select(_JOBS.c.cancel_requested).where(_JOBS.c.id == job_id)).scalar())


def get_job(engine: Engine, job_id: int) -> JobInfo:
    """Return one job or raise NotFoundError."""
    with engine.connect() as connection:
        row = connection.execute(select(_JOBS).where(_JOBS.c.id == job_id)).first()
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
    query = select(_JOBS).order_by(_JOBS.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(_JOBS.c.id < before_id)
    if kind is not None:
        query = query.where(_JOBS.c.kind == kind)
    if active_only:
        query = query.where(_JOBS.c.state.in_(ACTIVE_STATES))
    with engine.connect() as connection:
        return [_to_info(row) for row in connection.execute(query).all()]


def count_jobs(engine: Engine, *, active_only: bool = False) -> int:
    """How many jobs there are (or how many are queued or running)."""
    with Session(engine) as session:
        query = select(func.count()).select_from(JobRow)
        if active_only:
            query = query.where(col(JobRow.state).in_(ACTIVE_STATES))
        return int(session.exec(query).one())  # type: ignore[call-overload]


def find_active_job(engine: Engine, kind: str, run_key: str) -> JobInfo | None:
    """The queued or running job of `kind` that advances `run_key`, if any (the oldest)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(_JOBS).where(_JOBS.c.kind == kind, _JOBS.c.run_key == run_key, _JOBS.c.state.in_(ACTIVE_STATES))
            .order_by(_JOBS.c.id).limit(1)
        ).first()
    return _to_info(row) if row is not None else None


# ---- workers --------------------------------------------------------------------------------------

def register_worker(engine: Engine, worker_id: str, *, label: str, kinds: Collection[str] | None,
                    concurrency: int) -> None:
    """Record a worker as started (its heartbeat begins now)."""
    with engine.begin() as connection:
        now = now_expr(connection)
        connection.execute(_WORKERS.insert().values(
            id=worker_id, label=label, kinds=",".join(sorted(kinds or ())), concurrency=concurrency,
            started_at=now, heartbeat_at=now, stopped_at=None))


def heartbeat(engine: Engine, worker_id: str, *, write: bool = True,
              job_ids: Collection[int] = ()) -> dict[int, tuple[JobState, str | None, bool]]:
    """Renew everything `worker_id` holds (itself, the jobs it owns, its parts in jobs, its claimed items).

    With `write=False` nothing is renewed: only `job_ids` are read back. Returns, for each of
    `job_ids`, its state, owning worker and whether a cancel was asked for, so the worker can tell
    its runners to stop (cancelled, ended by another worker, or taken over).
    """
    from stores.claims import claim_tables

    with engine.begin() as connection:
        if write:
            now = now_expr(connection)
            connection.execute(update(_WORKERS).where(_WORKERS.c.id == worker_id).values(heartbeat_at=now))
            connection.execute(update(_JOBS).where(_JOBS.c.worker_id == worker_id,
                                                   _JOBS.c.state == JobState.RUNNING.value).values(heartbeat_at=now))
            connection.execute(update(_SHARES).where(_SHARES.c.worker_id == worker_id, _SHARES.c.finished_at.is_(None))
                               .values(heartbeat_at=now))
            for table in claim_tables():
                renew_claims(connection, table, worker_id)
        if not job_ids:
            return {}
        rows = connection.execute(select(_JOBS.c.id, _JOBS.c.state, _JOBS.c.worker_id, _JOBS.c.cancel_requested)
                                  .where(_JOBS.c.id.in_(list(job_ids)))).all()
    return {int(row.id): (JobState(row.state), row.worker_id, bool(row.cancel_requested)) for row in rows}


def stop_worker(engine: Engine, worker_id: str) -> None:
    """Record that a worker stopped."""
    with engine.begin() as connection:
        connection.execute(update(_WORKERS).where(_WORKERS.c.id == worker_id).values(stopped_at=now_expr(connection)))


def list_workers(engine: Engine, *, lease_s: float | None = None, limit: int = 100) -> list[WorkerInfo]:
    """Workers newest first; with `lease_s`, only those running now (not stopped, heartbeat within the lease)."""
    query = select(_WORKERS).order_by(_WORKERS.c.started_at.desc()).limit(limit)
    with engine.connect() as connection:
        if lease_s is not None:
            query = query.where(_WORKERS.c.stopped_at.is_(None),
                                _WORKERS.c.heartbeat_at >= expired_before(connection, lease_s))
        rows = connection.execute(query).all()
    return [WorkerInfo(id=row.id, label=row.label, kinds=tuple(k for k in row.kinds.split(",") if k),
                       concurrency=row.concurrency, started_at=row.started_at, heartbeat_at=row.heartbeat_at,
                       stopped_at=row.stopped_at) for row in rows]


# ---- each worker's part in a job ------------------------------------------------------------------

def join_job(engine: Engine, job_id: int, worker_id: str, role: str) -> None:
    """Record that `worker_id` starts a part in `job_id` (as its owner or as a helper).

    A worker that comes back to a job (a helper taking it over) starts a new part: the counters
    of its earlier part stay, and the job's summary adds them up.
    """
    with engine.begin() as connection:
        now = now_expr(connection)
        connection.execute(update(_SHARES).where(_SHARES.c.job_id == job_id, _SHARES.c.worker_id == worker_id,
                                                 _SHARES.c.finished_at.is_(None)).values(finished_at=now))
        connection.execute(_SHARES.insert().values(job_id=job_id, worker_id=worker_id, role=role, counters_json="{}",
                                                   heartbeat_at=now, started_at=now))


def record_share(engine: Engine, job_id: int, worker_id: str, counters: Mapping[str, Any], *,
                 finished: bool = False) -> None:
    """Store the counters of `worker_id`'s current part in a job (and end that part when `finished`)."""
    with engine.begin() as connection:
        now = now_expr(connection)
        values: dict[str, Any] = {"counters_json": _json(counters), "heartbeat_at": now}
        if finished:
            values["finished_at"] = now
        connection.execute(update(_SHARES).where(_SHARES.c.job_id == job_id, _SHARES.c.worker_id == worker_id,
                                                 _SHARES.c.finished_at.is_(None)).values(**values))


def job_shares(engine: Engine, job_id: int) -> list[JobShare]:
    """Every worker's part in a job, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(_SHARES).where(_SHARES.c.job_id == job_id).order_by(_SHARES.c.id)).all()
    return [JobShare(worker_id=row.worker_id, role=row.role, counters=json.loads(row.counters_json or "{}"),
                     heartbeat_at=row.heartbeat_at, finished_at=row.finished_at) for row in rows]


def joinable_jobs(engine: Engine, kinds: Collection[str], worker_id: str, *, lease_s: float) -> list[JobInfo]:
    """Running jobs of these (shared) kinds, alive and not cancelled, that `worker_id` is not working on."""
    if not kinds:
        return []
    with engine.connect() as connection:
        mine = select(_SHARES.c.job_id).where(_SHARES.c.worker_id == worker_id, _SHARES.c.finished_at.is_(None))
        rows = connection.execute(
            select(_JOBS).where(
                _JOBS.c.kind.in_(list(kinds)), _JOBS.c.state == JobState.RUNNING.value,
                _JOBS.c.cancel_requested.is_(False), _JOBS.c.heartbeat_at >= expired_before(connection, lease_s),
                _JOBS.c.worker_id != worker_id, _JOBS.c.id.not_in(mine),
            ).order_by(_JOBS.c.id)
        ).all()
    return [_to_info(row) for row in rows]
