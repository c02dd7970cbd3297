"""`workbench jobs list|show|cancel`: the jobs every stage records in the store."""

from __future__ import annotations

from typing import Optional

import typer

from stores.jobs import get_job, list_jobs, request_cancel
from workbench.cli.common import echo_text, emit_json, emit_table, reader_engine_of, short_time

jobs_app = typer.Typer(help="List, inspect and cancel jobs recorded in the store.", no_args_is_help=True)


def _progress(done: int, total: Optional[int]) -> str:
    return f"{done}/{total}" if total else str(done)


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
        [
            (j.id, j.kind, j.state, _progress(j.done, j.total), short_time(j.started_at), j.title, j.error or "")
            for j in jobs
        ],
    )


@jobs_app.command("show")
def show_command(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., help="Job id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one job with its parameters and summary."""
    job = get_job(reader_engine_of(ctx), job_id)
    if as_json:
        emit_json(job)
        return
    lines = [
        f"job {job.id}: {job.title}",
        f"kind: {job.kind}",
        f"state: {job.state}",
        f"progress: {_progress(job.done, job.total)}",
        f"pid: {job.pid or ''} on {job.host or ''}",
        f"created: {short_time(job.created_at)}  started: {short_time(job.started_at)}  "
        f"finished: {short_time(job.finished_at)}",
    ]
    if job.log_path:
        lines.append(f"log: {job.log_path}")
    if job.error:
        lines.append(f"error: {job.error}")
    for key, value in sorted(job.params.items()):
        lines.append(f"param {key}: {value}")
    for key, value in sorted(job.summary.items()):
        lines.append(f"{key}: {value}")
    echo_text("\n".join(lines))


@jobs_app.command("cancel")
def cancel_command(ctx: typer.Context, job_id: int = typer.Argument(..., help="Job id.")) -> None:
    """Ask a running job to stop (it finishes its current item and records what it did)."""
    job = request_cancel(reader_engine_of(ctx), job_id)
    typer.echo(f"job {job.id}: {'cancel requested' if job.is_active else 'already ' + job.state}")
