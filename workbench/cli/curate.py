"""`workbench curate analyse|apply RULES|dedupe`: analysis, rules in bulk and duplicate clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from core.curation.dedupe import DEFAULT_NEAR_THRESHOLD
from core.curation.rules import filter_spec, load_rules
from stores.curation.analyses import apply_rules
from workbench.cli.common import DETACH_HELP, emit_json, emit_table, engine_of, queue_detached
from workbench.cli.progress import CommandProgress
from workbench.jobs.curate import AnalyseParams, DedupeParams, analyse_store, dedupe_store
from workbench.jobs.runner import drain

curate_app = typer.Typer(help="Analyse pairs, apply curation rules, and cluster duplicates.", no_args_is_help=True)


@curate_app.command("analyse")
def analyse_command(
    ctx: typer.Context,
    workers: int = typer.Option(2, min=1, max=64, help="Worker processes."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Analyse every pair not analysed yet (or changed since): parse, radon, bandit, diff."""
    if detach:
        queue_detached(ctx, "analyse", AnalyseParams(workers=workers))
        return
    last: Any = None
    with CommandProgress("analysing pairs") as progress:

        def show(event: Any) -> None:
            nonlocal last
            last = event
            progress.update(event.done, event.total)

        drain(analyse_store(engine_of(ctx), workers=workers), show)
    if last is None:
        typer.echo("nothing to analyse: every pair is up to date")
    else:
        rate = last.done / last.elapsed if last.elapsed else 0.0
        typer.echo(f"analysed {last.done} pairs in {last.elapsed:.1f}s ({rate:.0f} pairs/s)")


@curate_app.command("apply")
def apply_command(
    ctx: typer.Context,
    rules_file: Path = typer.Argument(..., help="YAML rule file (see recipes/curation-default.yaml)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count the pairs each rule matches."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Apply rules in order (accept / reject / flag / pending); later rules win. Undo from the TUI."""
    rules = load_rules(rules_file)
    counts = apply_rules(engine_of(ctx), rules, dry_run=dry_run)
    if as_json:
        emit_json([{"rule": r.name, "action": r.action, "where": filter_spec(r.conditions), "pairs": n,
                    "dry_run": dry_run} for r, n in counts])
        return
    emit_table(["rule", "action", "where", "would match" if dry_run else "applied to"],
               [(r.name, r.action, " ".join(filter_spec(r.conditions)), n) for r, n in counts])


@curate_app.command("dedupe")
def dedupe_command(
    ctx: typer.Context,
    near: Optional[float] = typer.Option(DEFAULT_NEAR_THRESHOLD, min=0, max=100,
                                         help="Near-duplicate ratio threshold (0-100)."),
    exact_only: bool = typer.Option(False, "--exact-only", help="Only exact duplicates after normalisation."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Cluster duplicate pairs and mark all but the lowest id of each cluster as duplicate."""
    if detach:
        queue_detached(ctx, "dedupe", DedupeParams(None if exact_only else near), as_json=as_json)
        return
    summary = dedupe_store(engine_of(ctx), near_threshold=None if exact_only else near)
    if as_json:
        emit_json(summary)
        return
    typer.echo(f"{summary.pairs} analysed pairs: {summary.clusters} clusters "
               f"({summary.exact_clusters} exact, {summary.near_clusters} near), {summary.duplicates} duplicates marked")
    if summary.unanalysed:
        typer.echo(f"warning: {summary.unanalysed} pairs are not analysed yet; run `workbench curate analyse`", err=True)
