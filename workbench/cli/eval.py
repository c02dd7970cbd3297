"""`workbench eval run|list|show|leaderboard|export|rescore`: CodePrefBench scores of judges."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

import typer

from core.errors import OptionError
from core.evaluation.bench import parse_objectives, resolve_bench_dir
from core.evaluation.judges import check_judge_spec
from core.evaluation.models import EvalFinished, EvalProgress, EvalRunInfo
from core.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES, get_protocol
from core.evaluation.scoring import RunScores, format_accuracy
from core.outputs import check_output_file
from core.textsafe import one_line
from stores.evaluation.runs import get_run, leaderboard, list_results, list_runs, rescore_run, run_scores
from workbench.cli.common import (
    DETACH_HELP,
    echo_line,
    echo_text,
    emit_json,
    emit_table,
    engine_of,
    queue_detached,
    reader_engine_of,
    short_time,
    stderr_console,
    to_jsonable,
)
from workbench.cli.progress import CommandProgress
from workbench.jobs.evaluate import EvalParams, EvalRunStarted, evaluate
from workbench.jobs.runner import drain

ORDERS = ("both", "given")
EXPORT_FORMATS = ("json", "csv", "md")
eval_app = typer.Typer(help="Evaluate judges on CodePrefBench and compare runs.", no_args_is_help=True)


def _pct(value: Optional[float]) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def score_rows(scores: RunScores) -> list[tuple[str, ...]]:
    """One table row per objective: given-order and both-order accuracy ± band, consistency, ..."""
    rows: list[tuple[str, ...]] = [
        (
            s.objective,
            format_accuracy(s.given_accuracy, s.given_band),
            format_accuracy(s.both_accuracy, s.both_band),
            _pct(s.consistency),
            _pct(s.always_a),
            str(s.undecided),
            str(s.tasks),
            str(s.results),
        )
        for s in scores.objectives
    ]
    rows.append(("verifiable average", _pct(scores.verifiable_average), _pct(scores.verifiable_both_average),
                 "", "", "", "", ""))
    return rows


SCORE_COLUMNS = ["objective", "given order %", "both orders %", "consistency %", "always-A %", "undecided",
                 "tasks", "results"]


@eval_app.command("run")
def run_command(
    ctx: typer.Context,
    judge: Optional[str] = typer.Option(None, "--judge", help="pair-rm:PATH, baseline:always-a|always-b|shorter|longer|random\\[:SEED], or a chat model spec."),
    bench: Optional[str] = typer.Option(None, "--bench", help="Folder of the four *-alignment.jsonl.gz files (or set WORKBENCH_BENCH)."),
    objectives: Optional[list[str]] = typer.Option(None, "--objectives", help="Objectives to run (comma list); default all four."),
    orders: str = typer.Option("both", "--orders", help="both (default) or given (the paper's single order)."),
    protocol: str = typer.Option(DEFAULT_PROTOCOL, "--protocol", help=f"Judge input layout: {', '.join(PROTOCOL_NAMES)} (codefavor reproduces the paper's reference input)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N tasks of each objective."),
    keep_comments: bool = typer.Option(False, "--keep-comments", help="Do not strip comments for verifiable objectives."),
    resume: Optional[int] = typer.Option(None, "--resume", min=1, help="Continue run RUN where it stopped."),
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
    if orders not in ORDERS:
        raise OptionError(f"--orders must be {' or '.join(ORDERS)}, not {orders!r}")
    if resume is not None:
        engine = reader_engine_of(ctx)
        run = get_run(engine, resume)
        if judge and judge != run.judge_spec:
            raise OptionError(f"run {resume} uses judge {run.judge_spec!r}; leave out --judge to resume it")
        if protocol != DEFAULT_PROTOCOL and protocol != run.protocol:
            raise OptionError(f"run {resume} uses protocol {run.protocol!r}; leave out --protocol to resume it")
        check_judge_spec(run.judge_spec)
        params = EvalParams(run_id=resume, device=device, batch_size=batch_size, chunk_size=chunk_size)
    else:
        if not judge:
            raise OptionError("pass --judge SPEC (or --resume RUN)")
        # The judge, its model and the options are checked before the benchmark loads.
        check_judge_spec(judge)
        get_protocol(protocol)
        chosen = parse_objectives(objectives)
        folder = str(resolve_bench_dir(bench).expanduser().resolve())
        params = EvalParams(judge=judge, bench_dir=folder, objectives=tuple(chosen), orders=orders, limit=limit,
                            keep_comments=keep_comments, protocol=protocol, device=device, batch_size=batch_size,
                            chunk_size=chunk_size)
        engine = engine_of(ctx)
    if detach:
        queue_detached(ctx, "eval", params, as_json=as_json)
        return
    run_id: int | None = params.run_id
    finished: EvalFinished | None = None
    with CommandProgress("judging tasks") as progress:

        def show(event: object) -> None:
            nonlocal run_id, finished
            if isinstance(event, EvalRunStarted):
                run_id = event.run_id
                spec_text = judge or get_run(engine, run_id).judge_spec
                stderr_console.print(one_line(f"eval run {run_id}: {spec_text}"), markup=False, highlight=False,
                                     soft_wrap=True)
            elif isinstance(event, EvalProgress):
                progress.update(event.done, event.total, description=_objective_counts(event))
            elif isinstance(event, EvalFinished):
                finished = event

        drain(evaluate(engine, params), show)
    assert run_id is not None
    run = get_run(engine, run_id)
    if as_json:
        emit_json({"run": run, "scores": finished.scores if finished else run_scores(engine, run_id)})
        return
    echo_line(f"run {run.id}: {run.judge_spec} on {run.bench_version}, protocol {run.protocol} "
              f"({run.state}, {run.done}/{run.total})")
    emit_table(SCORE_COLUMNS, score_rows(run_scores(engine, run_id)))


def _objective_counts(event: EvalProgress) -> str:
    """Tasks judged per objective, for the progress line."""
    return "  ".join(f"{objective} {event.done_by_objective.get(objective, 0)}/{total}"
                     for objective, total in event.total_by_objective.items())


@eval_app.command("list")
def list_command(
    ctx: typer.Context,
    limit: int = typer.Option(50, min=1, max=10000, help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List evaluation runs, newest first."""
    runs = list_runs(reader_engine_of(ctx), limit=limit)
    if as_json:
        emit_json(runs)
        return
    emit_table(
        ["id", "judge", "protocol", "state", "progress", "orders", "benchmark", "created"],
        [(r.id, r.judge_spec, r.protocol, r.state, f"{r.done}/{r.total}", r.orders, r.bench_version,
          short_time(r.created_at)) for r in runs],
    )


@eval_app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., min=1, help="Run id."),
    results: bool = typer.Option(False, "--results", help="Also list every decision."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one run: judge, lineage, benchmark version and per-objective scores."""
    engine = reader_engine_of(ctx)
    run = get_run(engine, run_id)
    scores = run_scores(engine, run_id)
    if as_json:
        payload: dict = {"run": run, "scores": scores}
        if results:
            payload["results"] = list_results(engine, run_id, limit=1_000_000)
        emit_json(payload)
        return
    for line in (  # specs and paths are untrusted: a line break in one is shown (␊), not obeyed
        f"run {run.id}: {run.judge_spec} ({run.judge_kind})",
        f"protocol: {run.protocol}  state: {run.state}  progress: {run.done}/{run.total}  orders: {run.orders}",
        f"benchmark: {run.bench_version} at {run.bench_dir}",
        f"lineage: {json.dumps(run.lineage, sort_keys=True, ensure_ascii=True)}",
        f"parser: {run.parser_version}",
    ):
        echo_line(line)
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
        row: dict = {"run": entry.run.id, "judge": entry.run.judge_spec, "protocol": entry.run.protocol,
                     "orders": entry.run.orders, "benchmark": entry.run.bench_version, "state": entry.run.state}
        for score in entry.scores.objectives:
            row[score.objective] = _rounded(score.given_accuracy)
            row[f"{score.objective} ±"] = round(100 * score.given_band, 1)
            row[f"{score.objective} both"] = _rounded(score.both_accuracy)
            row[f"{score.objective} both ±"] = round(100 * score.both_band, 1)
            row[f"{score.objective} consistency"] = _rounded(score.consistency)
        row["verifiable average"] = _rounded(entry.scores.verifiable_average)
        row["verifiable average both"] = _rounded(entry.scores.verifiable_both_average)
        rows.append(row)
    return rows


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(100 * value, 1)


_OBJECTIVE_NAMES = ("correctness", "efficiency", "security", "human-preference")
LEADERBOARD_COLUMNS = [
    "run", "judge", "protocol", "orders",
    *(f"{name}{suffix}" for name in _OBJECTIVE_NAMES for suffix in ("", " ±", " both", " both ±", " consistency")),
    "verifiable average", "verifiable average both",
]


def leaderboard_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The printed leaderboard: per objective, `given ± band / both ± band (consistency)`."""
    columns = ["run", "judge", "protocol", *_OBJECTIVE_NAMES, "verifiable average"]
    table = []
    for row in rows:
        cells = [str(row["run"]), row["judge"], row["protocol"]]
        for name in _OBJECTIVE_NAMES:
            cells.append(_objective_cell(row, name))
        average = _cell(row.get("verifiable average"))
        both = row.get("verifiable average both")
        cells.append(f"{average} / {both}" if both is not None else average)
        table.append(cells)
    return columns, table


def _objective_cell(row: dict, name: str) -> str:
    if row.get(name) is None and row.get(f"{name} both") is None:
        return ""
    given = f"{_cell(row.get(name))} ± {_cell(row.get(f'{name} ±'))}" if row.get(name) is not None else "-"
    if row.get(f"{name} both") is None:
        return given
    consistency = _cell(row.get(f"{name} consistency"))
    return f"{given} / {row[f'{name} both']} ± {row[f'{name} both ±']} (c {consistency})"


@eval_app.command("leaderboard")
def leaderboard_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Compare runs per objective: given-order ± band / both orders ± band (order consistency)."""
    rows = leaderboard_rows(reader_engine_of(ctx))
    if as_json:
        emit_json(rows)
        return
    columns, table = leaderboard_table(rows)
    emit_table(columns, table)


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
    if fmt not in EXPORT_FORMATS:
        raise OptionError(f"unknown export format {fmt!r}; choose {', '.join(EXPORT_FORMATS)}")
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
        return json.dumps(records, indent=2, ensure_ascii=True) + "\n"
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
    run_ids: Optional[list[int]] = typer.Argument(None, min=1, help="Runs whose per-task results to export; none: the leaderboard."),
    fmt: str = typer.Option("md", "--format", "-f", help="json, csv or md (markdown table of scores)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Export the leaderboard (or runs' per-task results) as JSON, CSV or markdown."""
    if fmt not in EXPORT_FORMATS:
        raise OptionError(f"unknown export format {fmt!r}; choose {', '.join(EXPORT_FORMATS)}")
    if output is not None:
        check_output_file(output, what="--output")
    text = export_text(reader_engine_of(ctx), fmt, list(run_ids or []))
    if output is None:
        # A terminal reads stdout: model outputs in CSV or markdown have their controls made visible.
        echo_text(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise OptionError(f"cannot write {output}: {exc.strerror or exc}") from None
    stderr_console.print(one_line(f"wrote {output}"), markup=False, highlight=False, soft_wrap=True)


@eval_app.command("rescore")
def rescore_command(ctx: typer.Context, run_id: int = typer.Argument(..., min=1, help="Run id.")) -> None:
    """Re-derive decisions from stored raw outputs with the current parser (no model calls)."""
    engine = reader_engine_of(ctx)
    changed = rescore_run(engine, run_id)
    typer.echo(f"run {run_id}: {changed} decisions changed")
    emit_table(SCORE_COLUMNS, score_rows(run_scores(engine, run_id)))


def describe_run(run: EvalRunInfo) -> str:
    """One line naming a run."""
    return f"run {run.id}: {run.judge_spec} ({run.state}, {run.done}/{run.total})"
