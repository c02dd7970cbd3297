"""`workbench mine PATH`: mine a git history into the store, with progress on stderr."""

from __future__ import annotations

import threading
from typing import Optional

import typer

from core.mining.languages import DEFAULT_LANGUAGES
from workbench.cli.common import DETACH_HELP, emit_json, engine_of, queue_detached
from workbench.cli.progress import CommandProgress


def mine_command(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="Local git repository to mine."),
    rev: Optional[str] = typer.Option(None, "--rev", help="A rev or a range such as v1.0..main (default HEAD)."),
    all_branches: bool = typer.Option(False, "--all-branches", help="Walk every local and remote branch."),
    language: list[str] = typer.Option(list(DEFAULT_LANGUAGES), "--language", "-l",
                                       help="Languages to keep, by extension (repeat for several)."),
    max_file_bytes: int = typer.Option(1_000_000, min=1, help="Skip files larger than this."),
    max_files_per_commit: int = typer.Option(100, min=1, help="Skip commits touching more files than this (of any type)."),
    keep_whitespace_only: bool = typer.Option(False, help="Keep changes that only touch whitespace."),
    keep_duplicates: bool = typer.Option(False, help="Keep changes whose old and new file were already stored."),
    license: list[str] = typer.Option([], "--license",
                                      help="Allowed SPDX ids (repeat); 'permissive' = MIT, Apache-2.0, BSD, ISC."),
    max_commits: Optional[int] = typer.Option(None, min=1, help="Walk at most this many commits."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Mine PATH: one record per changed file per non-merge commit; re-running resumes."""
    # Deferred: GitPython is not needed to open the TUI or other commands.
    from core.mining.events import MineFinished, MineProgress, MineStarted
    from core.mining.mine import MineOptions
    from workbench.jobs.mine import MineJobStarted, MineParams, run_mine_job
    from workbench.jobs.runner import drain

    options = MineOptions(
        rev=rev, all_branches=all_branches, languages=tuple(language), max_file_bytes=max_file_bytes,
        max_files_per_commit=max_files_per_commit, skip_whitespace_only=not keep_whitespace_only,
        skip_duplicates=not keep_duplicates, licenses=tuple(license), max_commits=max_commits,
    )
    if detach:
        from pathlib import Path

        queue_detached(ctx, "mine", MineParams(str(Path(path).expanduser().resolve()), options), as_json=as_json)
        return
    engine = engine_of(ctx)
    job_id: int | None = None
    finished: MineFinished | None = None
    license_id: str | None = None
    cancel = threading.Event()
    with CommandProgress("starting", total=max_commits) as progress:

        def show(event: object) -> None:
            nonlocal job_id, license_id, finished
            if isinstance(event, MineJobStarted):
                job_id = event.job_id
            elif isinstance(event, MineStarted):
                license_id = event.license
            elif isinstance(event, MineProgress):
                progress.update(event.commits_seen, description=f"{event.records_kept:,} records · commits")
            elif isinstance(event, MineFinished):
                finished = event

        try:
            drain(run_mine_job(engine, path, options, cancel=cancel), show)  # Ctrl-C: cancelled, resumable
        except KeyboardInterrupt:
            cancel.set()
            raise
    assert finished is not None and job_id is not None
    summary = {
        "job_id": job_id,
        "path": path,
        "license": license_id,
        "commits_seen": finished.commits_seen,
        "changes_seen": finished.changes_seen,
        "records": finished.records_kept,
        "skipped": finished.skipped,
        "seconds": round(finished.elapsed_s, 2),
        "state": "cancelled" if finished.cancelled else "done",
    }
    if as_json:
        emit_json(summary)
        return
    skipped = ", ".join(f"{reason} {count:,}" for reason, count in sorted(finished.skipped.items())) or "nothing"
    typer.echo(f"job {job_id}: {finished.records_kept:,} records from {finished.changes_seen:,} file changes in "
               f"{finished.commits_seen:,} commits in {finished.elapsed_s:.1f}s (license {license_id or 'unknown'}); "
               f"file changes skipped: {skipped}")
