"""Queueing jobs for workers: what the TUI does for every job, and the CLI with `--detach`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from core.errors import OptionError
from core.jobs import JobInfo
from stores.jobs import enqueue_job, find_active_job, get_job
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
    job = existing or get_job(engine, enqueue_job(engine, kind.name, kind.title(params), kind.dump_params(params),
                                                  run_key=key))
    if start_worker:
        ensure_worker(engine, kind.name)
    return job


def resume(engine: Engine, job_id: int, *, start_worker: bool = True) -> JobInfo:
    """Queue a job that resumes a stopped (cancelled or failed) one with the same params."""
    job = get_job(engine, job_id)
    if job.is_active:
        raise OptionError(f"job {job_id} is still {job.state}; nothing to resume")
    kind = job_kind(job.kind)
    params = kind.load_params(job.params)
    if kind.resume_params is not None:
        params = kind.resume_params(params, job.summary)
    return enqueue(engine, kind.name, params, start_worker=start_worker)
