"""`workbench eval run|list|show|leaderboard|export|rescore`: CodePrefBench scores of judges."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from core.errors import OptionError
from core.evaluation.bench import parse_objectives, resolve_bench_dir
from core.evaluation.judges import parse_judge_spec
from core.evaluation.models import EvalFinished, EvalProgress, EvalRunInfo
from core.evaluation.scoring import RunScores
from stores.evaluation.runs import get_run, leaderboard, list_results, list_runs, rescore_run, run_scores
from workbench.cli.common import (
    DETACH_HELP,
    emit_json,
    emit_table,
    engine_of,
    queue_detached,
    short_time,
    stderr_console,
    to_jsonable,
)
from workbench.jobs.evaluate import EvalParams, EvalRunStarted, evaluate
from workbench.jobs.runner import drain

eval_app = typer.Typer(help="Evaluate judges on CodePrefBench and compare runs.", no_args_is_help=True)


def _pct(value: Optional[float]) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def score_rows(scores: RunScores) -> list[tuple[str, ...]]:
    """One table row per objective: accuracy ± band, consistency, always-A, undecided."""
    rows: list[tuple[str, ...]] = [
        (
            s.objective,
            f"{_pct(s.accuracy)} ± {_pct(s.band)}",
            _pct(s.consistency),
            _pct(s.always_a),
            str(s.undecided),
            str(s.tasks),
            str(s.results),
        )
        for s in scores.objectives
    ]
    rows.append(("verifiable average", _pct(scores.verifiable_average), "", "", "", "", ""))
    return rows


SCORE_COLUMNS = ["objective", "accuracy %", "consistency %", "always-A %", "undecided", "tasks", "results"]


@eval_app.command("run")
def run_command(
    ctx: typer.Context,
    judge: Optional[str] = typer.Option(None, "--judge", help="pair-rm:PATH, baseline:always-a|always-b|shorter|longer|random\\[:SEED], or a chat model spec."),
    bench: Optional[str] = typer.Option(None, "--bench", help="Folder of the four *-alignment.jsonl.gz files (or set WORKBENCH_BENCH)."),
    objectives: Optional[list[str]] = typer.Option(None, "--objectives", help="Objectives to run (comma list); default all four."),
    orders: str = typer.Option("both", "--orders", help="both (default) or given (the paper's single order)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N tasks of each objective."),
    keep_comments: bool = typer.Option(False, "--keep-comments", help="Do not strip comments for verifiable objectives."),
    resume: Optional[int] = typer.Option(None, "--resume", help="Continue run RUN where it stopped."),
    device: Optional[str] = typer.Option(None, "--device", help="Device for pair-rm judges (cuda, cpu)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Prompts per model batch (pair-rm)."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", min=1, help="Results committed per transaction (default: 4 model batches, or 64)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP + " Other workers may join and share the run."),
) -> None:
    """Run (or resume) an evaluation as a job; progress on stderr, scores on stdout.

    The run's items are shared: more workers (`workbench worker --kinds eval`, or this command
    with `--resume RUN` elsewhere) join it, and each task and order is judged once.
    """
    engine = engine_of(ctx)
    if resume is not None:
        run = get_run(engine, resume)
        if judge and judge != run.judge_spec:
            raise OptionError(f"run {resume} uses judge {run.judge_spec!r}; leave out --judge to resume it")
        params = EvalParams(run_id=resume, device=device, batch_size=batch_size, chunk_size=chunk_size)
    else:
        if not judge:
            raise OptionError("pass --judge SPEC (or --resume RUN)")
        parse_judge_spec(judge)
        chosen = parse_objectives(objectives)
        folder = str(resolve_bench_dir(bench).expanduser().resolve())
        params = EvalParams(judge=judge, bench_dir=folder, objectives=tuple(chosen), orders=orders, limit=limit,
                            keep_comments=keep_comments, device=device, batch_size=batch_size, chunk_size=chunk_size)
    if detach:
        queue_detached(ctx, "eval", params, as_json=as_json)
        return
    progress = _ProgressLine()
    run_id: int | None = params.run_id
    finished: EvalFinished | None = None

    def show(event: object) -> None:
        nonlocal run_id, finished
        if isinstance(event, EvalRunStarted):
            run_id = event.run_id
            stderr_console.print(f"eval run {run_id}: {judge or get_run(engine, run_id).judge_spec}", markup=False,
                                 highlight=False, soft_wrap=True)
        elif isinstance(event, EvalProgress):
            progress.show(event)
        elif isinstance(event, EvalFinished):
            finished = event

    drain(evaluate(engine, params), show)
    assert run_id is not None
    run = get_run(engine, run_id)
    if as_json:
        emit_json({"run": run, "scores": finished.scores if finished else run_scores(engine, run_id)})
        return
    typer.echo(f"run {run.id}: {run.judge_spec} on {run.bench_version} ({run.state}, {run.done}/{run.total})")
    emit_table(SCORE_COLUMNS, score_rows(run_scores(engine, run_id)))


class _ProgressLine:
    """Progress on stderr: rewritten in place on a terminal, one line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = float("-inf")

    def show(self, event: EvalProgress) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 5 and event.done < event.total:
            return
        self.last = now
        parts = [f"{o} {event.done_by_objective.get(o, 0)}/{t}" for o, t in event.total_by_objective.items()]
        line = f"{event.done}/{event.total}  " + "  ".join(parts)
        stderr_console.print(line, markup=False, highlight=False, soft_wrap=True, end="\r" if self.tty else "\n")


@eval_app.command("list")
def list_command(
    ctx: typer.Context,
    limit: int = typer.Option(50, min=1, max=10000, help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List evaluation runs, newest first."""
    runs = list_runs(engine_of(ctx), limit=limit)
    if as_json:
        emit_json(runs)
        return
    emit_table(
        ["id", "judge", "state", "progress", "orders", "benchmark", "created"],
        [(r.id, r.judge_spec, r.state, f"{r.done}/{r.total}", r.orders, r.bench_version, short_time(r.created_at)) for r in runs],
    )


@eval_app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="Run id."),
    results: bool = typer.Option(False, "--results", help="Also list every decision."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one run: judge, lineage, benchmark version and per-objective scores."""
    engine = engine_of(ctx)
    run = get_run(engine, run_id)
    scores = run_scores(engine, run_id)
    if as_json:
        payload: dict = {"run": run, "scores": scores}
        if results:
            payload["results"] = list_results(engine, run_id, limit=1_000_000)
        emit_json(payload)
        return
    typer.echo(
        f"run {run.id}: {run.judge_spec} ({run.judge_kind})\n"
        f"state: {run.state}  progress: {run.done}/{run.total}  orders: {run.orders}\n"
        f"benchmark: {run.bench_version} at {run.bench_dir}\n"
        f"lineage: {json.dumps(run.lineage, sort_keys=True)}\n"
        f"parser: {run.parser_version}"
    )
    emit_table(SCORE_COLUMNS, score_rows(scores))
    if results:
        emit_table(
            ["objective", "task", "order", "gt", "decision", "latency s", "raw"],
            [
                (r.objective, r.task_id, r.order, r.gt, r.decision, f"{r.latency_s:.3f}", r.raw_output[:80])
                for r in list_results(engine, run_id, limit=1_000_000)
            ],
        )


def leaderboard_rows(engine: object) -> list[dict]:
    """Leaderboard rows as plain dicts (percentages), shared by leaderboard and export."""
    rows = []
    for entry in leaderboard(engine):  # type: ignore[arg-type]
        row: dict = {"run": entry.run.id, "judge": entry.run.judge_spec, "orders": entry.run.orders,
                     "benchmark": entry.run.bench_version, "state": entry.run.state}
        for score in entry.scores.objectives:
            row[score.objective] = round(100 * score.accuracy, 1)
            row[f"{score.objective} ±"] = round(100 * score.band, 1)
            row[f"{score.objective} consistency"] = (
                None if score.consistency is None else round(100 * score.consistency, 1)
            )
        row["verifiable average"] = (
            None if entry.scores.verifiable_average is None else round(100 * entry.scores.verifiable_average, 1)
        )
        rows.append(row)
    return rows


LEADERBOARD_COLUMNS = ["run", "judge", "orders", "correctness", "efficiency", "security",
                       "verifiable average", "human-preference"]


@eval_app.command("leaderboard")
def leaderboard_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Compare runs: accuracy per objective, best verifiable average first."""
    rows = leaderboard_rows(engine_of(ctx))
    if as_json:
        emit_json(rows)
        return
    emit_table(LEADERBOARD_COLUMNS, [[_cell(row.get(c)) for c in LEADERBOARD_COLUMNS] for row in rows])


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _markdown(rows: list[dict], columns: list[str]) -> str:
    def escape(value: object) -> str:
        return _cell(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(escape(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def export_text(engine: object, fmt: str, run_ids: list[int]) -> str:
    """The leaderboard (or the given runs' results) as JSON, CSV or a markdown table."""
    if fmt not in ("json", "csv", "md"):
        raise OptionError(f"unknown export format {fmt!r}; choose json, csv or md")
    if run_ids and fmt != "md":
        records = [
            {"run": run_id, **to_jsonable(result)}
            for run_id in run_ids
            for result in list_results(engine, get_run(engine, run_id).id, limit=1_000_000)  # type: ignore[arg-type]
        ]
        columns = ["run", "objective", "task_id", "order", "gt", "decision", "latency_s",
                   "prompt_tokens", "completion_tokens", "raw_output"]
    else:
        rows = leaderboard_rows(engine)
        records = [row for row in rows if not run_ids or row["run"] in run_ids]
        columns = LEADERBOARD_COLUMNS
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return _markdown(records, columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


@eval_app.command("export")
def export_command(
    ctx: typer.Context,
    run_ids: Optional[list[int]] = typer.Argument(None, help="Runs whose per-task results to export; none: the leaderboard."),
    fmt: str = typer.Option("md", "--format", "-f", help="json, csv or md (markdown table of scores)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Export the leaderboard (or runs' per-task results) as JSON, CSV or markdown."""
    text = export_text(engine_of(ctx), fmt, list(run_ids or []))
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"cannot write {output}: {exc.strerror or exc}") from None
    stderr_console.print(f"wrote {output}", markup=False, highlight=False, soft_wrap=True)


@eval_app.command("rescore")
def rescore_command(ctx: typer.Context, run_id: int = typer.Argument(..., help="Run id.")) -> None:
    """Re-derive decisions from stored raw outputs with the current parser (no model calls)."""
    engine = engine_of(ctx)
    changed = rescore_run(engine, run_id)
    typer.echo(f"run {run_id}: {changed} decisions changed")
    emit_table(SCORE_COLUMNS, score_rows(run_scores(engine, run_id)))


def describe_run(run: EvalRunInfo) -> str:
    """One line naming a run."""
    return f"run {run.id}: {run.judge_spec} ({run.state}, {run.done}/{run.total})"
