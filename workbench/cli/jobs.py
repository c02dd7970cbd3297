"""`workbench jobs list|show|cancel|resume|workers`: the jobs every stage records in the store."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

import typer

from core.jobs import JobInfo, lease_seconds
from stores.jobs import get_job, job_shares, list_jobs, list_workers, request_cancel
from workbench.cli.common import echo_line, emit_json, emit_table, reader_engine_of, short_time

jobs_app = typer.Typer(help="List, inspect, cancel and resume jobs recorded in the store; list workers.",
                       no_args_is_help=True)


def _progress(done: int, total: Optional[int]) -> str:
    return f"{done}/{total}" if total else str(done)


def _state(job: JobInfo) -> str:
    if job.is_stalled(datetime.now(timezone.utc)):
        return "running (no heartbeat: its worker stopped?)"
    return job.state.value


@jobs_app.command("list")
def list_command(
    ctx: typer.Context,
    limit: int = typer.Option(50, min=1, max=10000, help="How many jobs, newest first."),
    kind: Optional[str] = typer.Option(None, help="Only jobs of this kind (mine, synth, ...)."),
    active: bool = typer.Option(False, "--active", help="Only queued or running jobs."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List jobs, newest first."""
    jobs = list_jobs(reader_engine_of(ctx), limit=limit, kind=kind, active_only=active)
    if as_json:
        emit_json(jobs)
        return
    emit_table(
        ["id", "kind", "state", "progress", "started", "title", "error"],
        [(j.id, j.kind, _state(j), _progress(j.done, j.total), short_time(j.started_at), j.title, j.error or "")
         for j in jobs],
    )


@jobs_app.command("show")
def show_command(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1, help="Job id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one job with its parameters, summary and the workers on it."""
    engine = reader_engine_of(ctx)
    job = get_job(engine, job_id)
    shares = job_shares(engine, job_id)
    if as_json:
        emit_json({**vars_of(job), "workers": shares})
        return
    lines = [
        f"job {job.id}: {job.title}",
        f"kind: {job.kind}",
        f"state: {_state(job)}" + (" (cancel requested)" if job.cancel_requested and job.is_active else ""),
        f"progress: {_progress(job.done, job.total)}",
        f"worker: {job.worker_id or ''}  heartbeat: {short_time(job.heartbeat_at)}  attempts: {job.attempts}",
        f"created: {short_time(job.created_at)}  started: {short_time(job.started_at)}  "
        f"finished: {short_time(job.finished_at)}",
    ]
    if job.pid:
        lines.append(f"process: {job.pid}")
    if job.log_path:
        lines.append(f"log: {job.log_path}")
    if job.error:
        lines.append(f"error: {job.error}")
    for key, value in sorted(job.params.items()):
        lines.append(f"param {key}: {value}")
    for key, value in sorted(job.summary.items()):
        lines.append(f"{key}: {value}")
    for share in shares:
        lines.append(f"{share.role} {share.worker_id}: " + ("finished" if share.finished_at else "working"))
    for line in lines:  # titles, paths, errors and params hold untrusted text: a line break in one is shown (␊)
        echo_line(line)


def vars_of(job: JobInfo) -> dict[str, object]:
    """A job as a JSON-ready mapping (its state as a plain string)."""
    from dataclasses import asdict

    values = asdict(job)
    values["state"] = job.state.value
    return values


@jobs_app.command("cancel")
def cancel_command(ctx: typer.Context, job_id: int = typer.Argument(..., min=1, help="Job id.")) -> None:
    """Stop a job: a queued one at once, a running one after its current item (what it did is kept)."""
    engine = reader_engine_of(ctx)
    before = get_job(engine, job_id)
    job = request_cancel(engine, job_id)
    if job.state == "running":
        typer.echo(f"job {job.id}: cancel requested")
    elif before.state == "queued":
        typer.echo(f"job {job.id}: cancelled before a worker started it")
    else:
        typer.echo(f"job {job.id}: already {job.state}")


@jobs_app.command("resume")
def resume_command(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1, help="A cancelled or failed job."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Queue a job that resumes a stopped one (its finished work is kept) for a worker."""
    from workbench.jobs.queue import resume

    job = resume(reader_engine_of(ctx), job_id)  # a missing store is an error, never created
    if as_json:
        emit_json({"job_id": job.id, "kind": job.kind, "state": job.state.value})
        return
    echo_line(f"job {job.id} {job.state}: {job.title}")


@jobs_app.command("workers")
def workers_command(
    ctx: typer.Context,
    all_workers: bool = typer.Option(False, "--all", help="Also workers that stopped or stopped heartbeating."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the workers serving this store (live ones: heartbeat within the lease)."""
    workers = list_workers(reader_engine_of(ctx), lease_s=None if all_workers else lease_seconds())
    if as_json:
        emit_json(workers)
        return
    emit_table(["id", "label", "kinds", "concurrency", "started", "heartbeat", "stopped"],
               [(w.id, w.label, ",".join(w.kinds) or "all", w.concurrency, short_time(w.started_at),
                 short_time(w.heartbeat_at), short_time(w.stopped_at)) for w in workers])
