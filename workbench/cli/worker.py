"""`workbench worker`: run queued jobs from this store until stopped (any number of them, on any machine)."""

from __future__ import annotations

from typing import Optional

import typer

from workbench.cli.common import engine_of, state, stderr_console

worker_app = typer.Typer()


@worker_app.command("worker")
def worker_command(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(None, "--db", help="The store (as the root --db): a path or postgresql+psycopg://..."),
    kinds: Optional[str] = typer.Option(None, "--kinds", help="Only these job kinds, comma-separated (synth,eval)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=256, help="Jobs run at once."),
    lease: Optional[float] = typer.Option(None, "--lease", min=1.0,
                                          help="Seconds a heartbeat stays valid (default $WORKBENCH_LEASE_S or 60)."),
    idle_exit: Optional[float] = typer.Option(None, "--idle-exit", min=0.0, help="Exit after this long with no job."),
) -> None:
    """Run queued jobs and help with shared ones (synthesis, evaluation, analysis) until Ctrl-C or SIGTERM.

    Jobs it was running go back to the queue for another worker when it stops; jobs of a worker
    that died are taken over once its heartbeat is older than the lease.
    """
    from workbench.jobs.worker import run_worker

    if db is not None:
        state(ctx).db = db
    chosen = [kind.strip() for kind in (kinds or "").split(",") if kind.strip()] or None
    ran = run_worker(engine_of(ctx), kinds=chosen, concurrency=concurrency, lease_s=lease, idle_exit_s=idle_exit)
    stderr_console.print(f"worker stopped after {ran} job(s)", markup=False)
