"""Queueing jobs for workers: what the TUI does for every job, and the CLI with `--detach`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import WorkbenchError
from core.jobs import JobInfo, JobState
from stores.jobs import enqueue_job, find_active_job, get_job, list_jobs
from workbench.jobs.registry import job_kind
from workbench.jobs.worker import ensure_worker


def enqueue(engine: Engine, kind_name: str, params: Any, *, start_worker: bool = True) -> JobInfo:
    """Check the params, queue a job of `kind_name`, and start a detached worker if none runs that kind.

    A job already queued or running on the same run is returned instead of a rival one. Raises
    the domain error of bad params before anything is written.
    """
    kind = job_kind(kind_name)
    if kind.check is not None:
        kind.check(engine, params)
    key = kind.run_key(engine, params) if kind.run_key else None
    existing = find_active_job(engine, kind.name, key) if key else None
    job = existing or enqueue_job(engine, kind.name, kind.title(params), kind.dump_params(params), run_key=key)
    if start_worker:
        ensure_worker(engine, kind.name)
    return job


def resume(engine: Engine, job_id: int, *, start_worker: bool = True) -> JobInfo:
    """Queue a job that resumes a stopped (cancelled or failed) one with the same params.

    Raises WorkbenchError (exit 1) and queues nothing for a job that is done (its work is complete),
    queued (a worker will start it) or running (a worker has it; a stalled one is taken over by the
    next worker).
    """
    job = get_job(engine, job_id)
    if job.state == JobState.DONE:
        raise WorkbenchError(f"job {job_id} is done: nothing to resume (run the command again for new work)")
    if job.state == JobState.QUEUED:
        raise WorkbenchError(f"job {job_id} is queued: nothing to resume, a worker will start it "
                             "(`workbench worker` if none runs)")
    if job.state == JobState.RUNNING and job.is_stalled(datetime.now(timezone.utc)):
        raise WorkbenchError(f"job {job_id} is running, but its worker stopped heartbeating: nothing to resume, "
                             "the next worker takes it over (`workbench worker`), or cancel it "
                             f"(`workbench jobs cancel {job_id}`)")
    if job.state == JobState.RUNNING:
        raise WorkbenchError(f"job {job_id} is running: nothing to resume; to stop it, `workbench jobs cancel {job_id}`")
    kind = job_kind(job.kind)
    params = kind.load_params(job.params)
    if kind.resume_params is not None:
        params = kind.resume_params(params, job.summary)
    # Resuming twice gives the job the first resume queued, not a second one (kinds without a run key too).
    stored = kind.dump_params(params)
    for active in list_jobs(engine, kind=kind.name, active_only=True):
        if active.params == stored:
            if start_worker:
                ensure_worker(engine, kind.name)
            return active
    return enqueue(engine, kind.name, params, start_worker=start_worker)
