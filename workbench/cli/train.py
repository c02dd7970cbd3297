"""`workbench train RECIPE | list | show | logs | cancel | checkpoints` and `workbench pipeline`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from core.training.recipes import load_train_recipe
from core.training.runs import TrainRunInfo
from stores.training.runs import (
    cancel_train_run,
    get_train_run,
    list_checkpoints,
    list_metrics,
    list_pair_draws,
    list_train_runs,
    read_log_tail,
)
from workbench.cli.common import (
    DETACH_HELP,
    echo_line,
    emit_json,
    emit_table,
    engine_of,
    queue_detached,
    reader_engine_of,
    short_time,
    stderr_console,
)
from workbench.jobs.train import start_training


class TrainGroup(TyperGroup):
    """`workbench train RECIPE` starts a run; a known subcommand name goes to that subcommand."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["start", *args]
        return super().parse_args(ctx, args)


train_app = typer.Typer(
    cls=TrainGroup, no_args_is_help=True,
    help="Train pairwise preference models as detached runs: `workbench train RECIPE`, then watch them.",
)


def _figure(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _progress(run: TrainRunInfo) -> str:
    return f"{run.step}/{run.total_steps}" if run.total_steps else str(run.step)


@train_app.command("start")
def start_command(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="Training recipe (YAML), e.g. recipes/train/smollm2-135m-cpu-smoke.yaml."),
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs per node (0: CPU or the one visible GPU)."),
    nodes: int = typer.Option(1, "--nodes", min=1, help="Nodes (needs DeepSpeed and --hostfile)."),
    hostfile: Optional[Path] = typer.Option(None, "--hostfile", help="DeepSpeed hostfile for multi-node runs."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Queue the trainer for RECIPE as a run that outlives this terminal (a worker runs it, started if none does)."""
    train_recipe = load_train_recipe(recipe)  # checked before the store opens
    run = start_training(engine_of(ctx), train_recipe, gpus=gpus, nodes=nodes, hostfile=hostfile)
    if as_json:
        emit_json(run)
        return
    echo_line(f"training run {run.job_id} {run.state}: {run.run_dir}")
    stderr_console.print(f"watch it with: workbench train show {run.job_id} / logs {run.job_id} --follow", markup=False)


@train_app.command("list")
def list_command(
    ctx: typer.Context,
    limit: int = typer.Option(50, min=1, max=10000, help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List training runs, newest first."""
    runs = list_train_runs(reader_engine_of(ctx), limit=limit)
    if as_json:
        emit_json(runs)
        return
    emit_table(
        ["id", "name", "state", "step", "loss", "lr", "tokens/s", "started", "run dir"],
        [(r.job_id, r.name, r.state, _progress(r), _figure(r.latest.get("loss")), _figure(r.latest.get("lr")),
          _figure(r.latest.get("tokens_per_s"), 5), short_time(r.created_at), r.run_dir) for r in runs],
    )


@train_app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., min=1, help="Run id (its job id)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output, with every logged step."),
) -> None:
    """Show a run: state, latest figures, checkpoints and lineage."""
    engine = reader_engine_of(ctx)
    run = get_train_run(engine, run_id)
    checkpoints = list_checkpoints(engine, job_id=run_id)
    draws = list_pair_draws(engine, run_id)
    if as_json:
        emit_json({"run": run, "metrics": list_metrics(engine, run_id), "checkpoints": checkpoints,
                   "pair_draws": draws})
        return
    lines = [
        f"run {run.job_id}: {run.name} ({run.state})",
        f"recipe: {run.recipe_path}",
        f"datasets: {', '.join(run.datasets)}",
        f"folder: {run.run_dir}",
        f"command: {' '.join(run.command)}",
        f"progress: {_progress(run)} steps",
    ]
    if run.lineage.get("base_model"):
        revision = run.lineage.get("base_revision") or "unknown"
        lines.append(f"base model: {run.lineage['base_model']} @ {revision} ({run.lineage.get('base_revision_kind')})")
    epochs = sorted({draw["epoch"] for draw in draws})
    for epoch in epochs:
        drawn = [draw for draw in draws if draw["epoch"] == epoch]
        lines.append(f"pairs drawn at epoch {epoch}: {len(drawn)} groups, rows "
                     + ", ".join(str(draw["row"]) for draw in drawn[:20]) + (" ..." if len(drawn) > 20 else ""))
    lines += [f"{key}: {_figure(value)}" for key, value in sorted(run.latest.items())]
    if run.exit_code is not None:
        lines.append(f"exit status: {run.exit_code}")
    if run.error:
        lines.append(f"error: {run.error}")
    lines += [f"checkpoint: {c.path} ({'verified' if c.verified else 'NOT verified: ' + c.problems})" for c in checkpoints]
    for line in lines:  # names, paths and errors are untrusted: a line break in one is shown (␊), not obeyed
        echo_line(line)


@train_app.command("logs")
def logs_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., min=1, help="Run id (its job id)."),
    lines: int = typer.Option(50, "--lines", "-n", min=1, max=10000, help="How many lines from the end."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until the run ends."),
) -> None:
    """Print the end of a run's log (the trainer's stdout and stderr)."""
    engine = reader_engine_of(ctx)
    run = get_train_run(engine, run_id)
    shown = read_log_tail(run.log_path, max_lines=lines)
    for line in shown:
        echo_line(line)
    while follow and run.is_active:
        time.sleep(1.0)
        run = get_train_run(engine, run_id)
        tail = read_log_tail(run.log_path, max_lines=200)
        overlap = next((i for i in range(len(tail), 0, -1) if tail[:i] == shown[-i:]), 0)
        for line in tail[overlap:]:
            echo_line(line)
        shown = tail
        sys.stdout.flush()


@train_app.command("cancel")
def cancel_command(ctx: typer.Context, run_id: int = typer.Argument(..., min=1, help="Run id (its job id).")) -> None:
    """Stop a run: the trainer saves a checkpoint to resume from and exits."""
    run = cancel_train_run(reader_engine_of(ctx), run_id)
    typer.echo(f"run {run.job_id}: {'cancel requested' if run.is_active else 'already ' + run.state}")


@train_app.command("checkpoints")
def checkpoints_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List checkpoints from runs and merges, with verification and lineage."""
    checkpoints = list_checkpoints(reader_engine_of(ctx))
    if as_json:
        emit_json(checkpoints)
        return
    emit_table(
        ["id", "kind", "run", "step", "verified", "path", "lineage"],
        [(c.id, c.kind, c.job_id or "", c.step if c.step is not None else "", "yes" if c.verified else "NO",
          c.path, ", ".join(f"{k}={v}" for k, v in sorted(c.lineage.items()))) for c in checkpoints],
    )


pipeline_app = typer.Typer()


@pipeline_app.command("pipeline")
def pipeline_command(
    ctx: typer.Context,
    pipeline: Path = typer.Argument(..., help="A pipeline file (recipes/pipeline/*.yaml) or one training recipe."),
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs per training run."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Run the stages the file names (sources, curate, export, train, merge, eval) one after another, storing
    the lineage in a pipeline job."""
    from core.pipeline import check_pipeline, load_pipeline
    from workbench.jobs.pipeline import PipelineParams, run_pipeline
    from workbench.jobs.runner import drain

    spec = load_pipeline(pipeline)
    check_pipeline(spec)  # before the store opens
    if detach:
        queue_detached(ctx, "pipeline", PipelineParams(file=str(Path(spec.source_path).resolve()), gpus=gpus))
        return
    drain(run_pipeline(engine_of(ctx), spec, gpus=gpus), lambda step: echo_line(f"{step.stage}: {step.message}"))
