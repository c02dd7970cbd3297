"""`workbench synth mutate` and `workbench synth commit-signal`: pairs from mined code without an LLM."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any, Optional

import typer

from core.synthesis.mutation import OfflineFinished, OfflineProgress
from core.textsafe import one_line
from workbench.cli.common import engine_of, stderr_console, to_jsonable
from workbench.cli.progress import CommandProgress
from workbench.jobs.mutate import (
    MutationConfig,
    OfflineEvent,
    parse_objectives,
    run_commit_signal_job,
    run_mutation_job,
)
from workbench.jobs.runner import drain


def _finish(events: Generator[OfflineEvent, None, None], label: str, as_json: bool) -> None:
    finished: OfflineFinished | None = None
    with CommandProgress(label) as progress:

        def show(event: OfflineEvent) -> None:
            nonlocal finished
            if isinstance(event, OfflineProgress):
                progress.update(event.done, event.total)
            else:
                finished = event

        drain(events, show)  # Ctrl-C while an event is shown still ends the job the way it would inside
    assert finished is not None
    counters: dict[str, Any] = finished.counters
    if as_json:
        typer.echo(json.dumps(to_jsonable(finished), indent=2, ensure_ascii=True))
    else:
        typer.echo(one_line(
            f"job {finished.job_id}: {finished.state}: {finished.done}/{finished.total} commit records; "
            f"{counters['stored']} pairs stored ({counters['already_stored']} already stored)"
        ))
        for key in ("pairs_by_kind", "dropped_by_reason"):
            for name, count in (counters.get(key) or {}).items():
                typer.echo(one_line(f"  {key.split('_by_')[0]} {name}: {count}"))
    if finished.error:
        stderr_console.print(one_line(f"warning: {finished.error}"), markup=False, highlight=False)


def mutate_command(
    ctx: typer.Context,
    objective: Optional[list[str]] = typer.Option(None, "--objective", help="correctness, security or efficiency (repeat or comma list); default all three."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N Python commit records (by id)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the choice of rule and site (same seed, same pairs)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
) -> None:
    """Pair mined Python functions (better) with variants made worse on purpose by rules (source `mutation`)."""
    config = MutationConfig(objectives=parse_objectives(objective), limit=limit, seed=seed)
    config.validate()
    _finish(run_mutation_job(engine_of(ctx), config), "commit records", as_json)


def commit_signal_command(
    ctx: typer.Context,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N Python commit records (by id)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
) -> None:
    """Pair functions whose commit removed a bandit finding, the new code chosen (source `commit-signal`)."""
    _finish(run_commit_signal_job(engine_of(ctx), limit=limit), "commit records", as_json)
