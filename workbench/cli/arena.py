"""`workbench arena ...`: arena sets, candidate answers, judging against a baseline, scores (CodeArena)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Optional

import typer

from core.errors import OptionError
from core.evaluation.arena import read_arena_answers, read_arena_questions
from core.evaluation.arena_models import ArenaFinished, ArenaProgress, ArenaSetInfo
from core.evaluation.arena_report import (
    BREAKDOWN_COLUMNS,
    JUDGEMENT_COLUMNS,
    LEADERBOARD_COLUMNS,
    breakdown_rows,
    judgement_rows,
    leaderboard_rows,
    percent,
    render,
)
from core.evaluation.arena_scoring import ArenaScores
from core.textsafe import one_line, visible
from stores.evaluation.arena import (
    add_arena_set,
    arena_leaderboard,
    arena_scores,
    get_arena_run,
    get_arena_set,
    import_answers,
    list_answers,
    list_arena_questions,
    list_arena_runs,
    list_arena_sets,
    list_judgements,
)
from workbench.cli.common import emit_table, engine_of, stderr_console, to_jsonable
from workbench.jobs.arena import AnswerConfig, ArenaEvent, JudgeConfig, run_answer_job, run_judge_job

arena_app = typer.Typer(
    help="Arena evaluation (CodeArena): candidate answers judged against a baseline's, win rates per category.",
    no_args_is_help=True,
)
SPEC_HELP = "Model spec: openai:MODEL@URL, hf:PATH or vllm:SERVER_ID."
JUDGE_HELP = ("Judge: a chat model spec (openai:MODEL@URL, hf:PATH, vllm:ID), pair-rm:PATH, or "
              "baseline:shorter|longer|always-a|always-b|random\\[:SEED].")


def _emit_json(value: Any) -> None:
    # ASCII escapes keep ESC, C1, NUL and bidirectional controls out of the bytes on stdout.
    typer.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=True))


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    emit_table(columns, [[one_line("" if cell is None else str(cell)) for cell in row] for row in rows])


def _say(text: str) -> None:
    stderr_console.print(one_line(text), markup=False, highlight=False, soft_wrap=True)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


# ---- sets -----------------------------------------------------------------------------------------

@arena_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSONL: id, question, category, language, optional baseline_answer."),
    name: Optional[str] = typer.Option(None, "--name", help="The set's name (default: the file name without .jsonl)."),
    baseline_name: str = typer.Option("baseline", "--baseline-name", help="Model name the file's baseline answers are stored under."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Import an arena set; the same questions are stored once."""
    engine = engine_of(ctx)
    set_file = read_arena_questions(file)  # every line is checked before anything is written
    set_id, created = add_arena_set(engine, name or file.stem, str(file), set_file, baseline_model=baseline_name)
    info = get_arena_set(engine, set_id)
    if as_json:
        _emit_json({"set": info, "created": created})
        return
    verb = "imported" if created else "already stored as"
    typer.echo(one_line(f"{verb} set {info.id} {info.name!r}: {info.questions} questions in "
                        f"{len(info.categories)} categories and {len(info.languages)} languages; "
                        f"baseline answers: {info.models.get(baseline_name, 0)}"))


def _set_rows(sets: Sequence[ArenaSetInfo]) -> list[list[Any]]:
    return [[s.id, s.name, s.questions, len(s.categories), len(s.languages),
             ", ".join(f"{m} ({n})" for m, n in s.models.items()), s.source] for s in sets]


@arena_app.command("sets")
def sets_command(
    ctx: typer.Context,
    limit: int = typer.Option(200, min=1, max=100000, help="How many sets."),
    after: Optional[int] = typer.Option(None, min=0, help="Start after this set id (keyset paging)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List arena sets."""
    sets = list_arena_sets(engine_of(ctx), limit=limit, after_id=after)
    if as_json:
        _emit_json(sets)
        return
    _table(["id", "name", "questions", "categories", "languages", "answers by model", "source"], _set_rows(sets))


@arena_app.command("show")
def show_command(
    ctx: typer.Context,
    set_ref: str = typer.Argument(..., help="Set id or name."),
    questions: bool = typer.Option(False, "--questions", help="Also list the questions."),
    limit: int = typer.Option(500, min=1, max=100000, help="How many questions with --questions."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show a set: its counts per category, language and answering model (and its questions)."""
    engine = engine_of(ctx)
    info = get_arena_set(engine, set_ref)
    rows = list_arena_questions(engine, info.id, limit=limit) if questions else []
    if as_json:
        _emit_json({"set": info, **({"questions": rows} if questions else {})})
        return
    typer.echo(one_line(f"set {info.id}: {info.name} ({info.questions} questions) from {info.source}"))
    _table(["kind", "name", "count"],
           [["category", c, n] for c, n in info.categories.items()]
           + [["language", lang, n] for lang, n in info.languages.items()]
           + [["answers", m, n] for m, n in info.models.items()])
    if questions:
        _table(["id", "category", "language", "question"],
               [[q.external_id, q.category, q.language, one_line(q.question, 80)] for q in rows])


# ---- answers --------------------------------------------------------------------------------------

@arena_app.command("answer")
def answer_command(
    ctx: typer.Context,
    set_ref: str = typer.Argument(..., help="Set id or name."),
    model: str = typer.Option(..., "--model", help=SPEC_HELP),
    name: Optional[str] = typer.Option(None, "--name", help="Store the answers under this model name (default: the spec's model)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
    concurrency: int = typer.Option(16, min=1, max=4096, help="Requests in flight at once."),
    budget: Optional[str] = typer.Option(None, help="Stop starting requests after this: 50000 / 50k tokens or $2.50."),
    max_tokens: int = typer.Option(2048, "--max-tokens", min=1, help="Longest answer in tokens."),
    temperature: float = typer.Option(0.0, min=0.0, help="Sampling temperature."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
) -> None:
    """Generate a model's answers to a set's questions; re-running fills in only what is missing."""
    config = AnswerConfig(set_ref, model, name=name, limit=limit, concurrency=concurrency, budget=budget,
                          max_tokens=max_tokens, temperature=temperature)
    config.validate()
    finished = asyncio.run(_drive(run_answer_job(engine_of(ctx), config), "answers"))
    _report(finished, "answers", as_json)


@arena_app.command("import-answers")
def import_answers_command(
    ctx: typer.Context,
    set_ref: str = typer.Argument(..., help="Set id or name."),
    file: Path = typer.Argument(..., help="JSONL: id (the question's) and answer."),
    model: str = typer.Option(..., "--model", help="Model name to store the answers under."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Import a model's answers; answers already stored for that model are kept."""
    engine = engine_of(ctx)
    info = get_arena_set(engine, set_ref)
    answers = read_arena_answers(file)
    added, skipped = import_answers(engine, info.id, model, answers, source=str(file))
    if as_json:
        _emit_json({"set": info.id, "model": model, "added": added, "already_stored": skipped})
        return
    typer.echo(one_line(f"imported {added} answers of {model} ({skipped} already stored)"))


@arena_app.command("answers")
def answers_command(
    ctx: typer.Context,
    set_ref: str = typer.Argument(..., help="Set id or name."),
    model: str = typer.Option(..., "--model", help="Model name."),
    limit: int = typer.Option(200, min=1, max=100000, help="How many answers."),
    after: Optional[int] = typer.Option(None, min=0, help="Start after this answer id (keyset paging)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List a model's stored answers on a set, with their lineage."""
    engine = engine_of(ctx)
    info = get_arena_set(engine, set_ref)
    rows = list_answers(engine, info.id, model, limit=limit, after_id=after)
    if as_json:
        _emit_json(rows)
        return
    _table(["id", "question", "source", "finish", "tokens", "latency s", "answer"],
           [[a.id, a.question_id, a.source, a.finish_reason, a.prompt_tokens + a.completion_tokens,
             f"{a.latency_s:.2f}", one_line(a.text, 60)] for a in rows])


# ---- judging --------------------------------------------------------------------------------------

@arena_app.command("judge")
def judge_command(
    ctx: typer.Context,
    set_ref: str = typer.Argument(..., help="Set id or name."),
    candidate: str = typer.Option(..., "--candidate", help="Model whose answers are judged."),
    judge: str = typer.Option(..., "--judge", help=JUDGE_HELP),
    baseline: str = typer.Option("baseline", "--baseline", help="Model whose answers the candidate's are compared with."),
    orders: str = typer.Option("both", "--orders", help="both (default: each question twice, answers swapped) or given."),
    concurrency: int = typer.Option(16, min=1, max=4096, help="Judge requests in flight at once (chat judges)."),
    budget: Optional[str] = typer.Option(None, help="Stop starting judge requests after this: 50k tokens or $2.50."),
    device: Optional[str] = typer.Option(None, "--device", help="Device for pair-rm judges (cuda, cpu)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Prompts per model batch (pair-rm)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary and scores on stdout."),
) -> None:
    """Judge a candidate against the baseline on a set; re-running the same command resumes the run."""
    config = JudgeConfig(set_ref, candidate, judge, baseline=baseline, orders=orders, concurrency=concurrency,
                         budget=budget, device=device, batch_size=batch_size)
    config.validate()
    engine = engine_of(ctx)
    finished = asyncio.run(_drive(run_judge_job(engine, config), "judgements"))
    run_id = int(finished.counters["run_id"])
    scores = arena_scores(engine, run_id)
    run = get_arena_run(engine, run_id)
    if as_json:
        _emit_json({"job": finished, "run": run, "scores": scores})
    else:
        _say(_finish_line(finished, "judgements"))
        typer.echo(one_line(f"run {run.id}: {run.candidate} vs {run.baseline} by {run.judge_spec} "
                            f"({run.state}, {run.done}/{run.total})"))
        _print_scores(run.id, run.candidate, scores)
    _warn(finished)


async def _drive(events: AsyncIterator[ArenaEvent], noun: str) -> ArenaFinished:
    tty = sys.stderr.isatty()
    last = float("-inf")
    finished: ArenaFinished | None = None
    async for event in events:
        if isinstance(event, ArenaProgress):
            now = time.monotonic()
            if now - last >= (0.25 if tty else 5.0):
                last = now
                line = f"{noun} {event.done}/{event.total}  failed {event.counters.get('failed', 0)}  " \
                       f"requests {event.counters.get('requests', 0)} (cached {event.counters.get('cache_hits', 0)})"
                stderr_console.print(line, markup=False, highlight=False, soft_wrap=True, end="\r" if tty else "\n")
        else:
            finished = event
    assert finished is not None
    if tty:
        stderr_console.print("")
    return finished


def _finish_line(finished: ArenaFinished, noun: str) -> str:
    counters = finished.counters
    return (f"job {finished.job_id}: {finished.stop_reason}: {finished.done}/{finished.total} {noun}; "
            f"{counters.get('requests', 0)} requests, {counters.get('cache_hits', 0)} cache hits, "
            f"{counters.get('tokens', 0):,} tokens, {counters.get('failed', 0)} failed")


def _report(finished: ArenaFinished, noun: str, as_json: bool) -> None:
    if as_json:
        _emit_json(finished)
    else:
        typer.echo(one_line(_finish_line(finished, noun)))
    _warn(finished)


def _warn(finished: ArenaFinished) -> None:
    if finished.error:
        _say(f"warning: {finished.error}")


# ---- runs and scores ------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    shown = percent(value)
    return "" if shown is None else f"{shown:.1f}"


def _print_scores(run_id: int, candidate: str, scores: ArenaScores) -> None:
    low, high = scores.interval
    overall = scores.overall
    consistency = _pct(scores.consistency)
    typer.echo(one_line(
        f"win rate {_pct(overall.win_rate)}% (95% CI {_pct(low)}-{_pct(high)}), "
        f"{overall.wins} wins / {overall.ties} ties / {overall.losses} losses / {overall.undecided} undecided; "
        f"order consistency {consistency + '%' if consistency else 'n/a'} over {scores.paired_questions} questions"
    ))
    rows = breakdown_rows(run_id, candidate, scores)
    columns = ["group", "name", "judgements", "wins", "ties", "losses", "undecided", "win %", "tie %", "loss %",
               "win rate %"]
    _table(columns, [[_cell(row[c]) for c in columns] for row in rows])


@arena_app.command("runs")
def runs_command(
    ctx: typer.Context,
    set_ref: Optional[str] = typer.Option(None, "--set", help="Only runs on this set (id or name)."),
    limit: int = typer.Option(200, min=1, max=100000, help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List arena runs, newest first."""
    engine = engine_of(ctx)
    set_id = get_arena_set(engine, set_ref).id if set_ref else None
    runs = list_arena_runs(engine, set_id=set_id, limit=limit)
    if as_json:
        _emit_json(runs)
        return
    _table(["id", "set", "candidate", "baseline", "judge", "orders", "state", "progress"],
           [[r.id, r.set_name, r.candidate, r.baseline, r.judge_spec, r.orders, r.state, f"{r.done}/{r.total}"]
            for r in runs])


@arena_app.command("scores")
def scores_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., min=1, help="Run id."),
    judgements: bool = typer.Option(False, "--judgements", help="Also list every judgement."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """A run's win / tie / loss rates overall, per category and per language, with the win rate's CI."""
    engine = engine_of(ctx)
    run = get_arena_run(engine, run_id)
    scores = arena_scores(engine, run_id)
    listed = list_judgements(engine, run_id, limit=1_000_000) if judgements else []
    if as_json:
        _emit_json({"run": run, "scores": scores, **({"judgements": listed} if judgements else {})})
        return
    typer.echo(one_line(f"run {run.id} on {run.set_name}: {run.candidate} vs {run.baseline} by {run.judge_spec} "
                        f"({run.state}, {run.done}/{run.total}, orders {run.orders})"))
    _print_scores(run.id, run.candidate, scores)
    if judgements:
        _table(["question", "category", "order", "position", "verdict", "latency s", "raw"],
               [[j.external_id, j.category, j.order, j.position_verdict, j.verdict, f"{j.latency_s:.3f}",
                 one_line(j.raw_output, 60)] for j in listed])


@arena_app.command("leaderboard")
def leaderboard_command(
    ctx: typer.Context,
    set_ref: Optional[str] = typer.Option(None, "--set", help="Only runs on this set (id or name)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Compare candidates: win rate against the baseline with its 95% interval, best first."""
    engine = engine_of(ctx)
    set_id = get_arena_set(engine, set_ref).id if set_ref else None
    rows = leaderboard_rows(arena_leaderboard(engine, set_id=set_id))
    if as_json:
        _emit_json(rows)
        return
    columns = ["run", "set", "candidate", "baseline", "judge", "judgements", "win rate %", "ci low %", "ci high %",
               "win %", "tie %", "loss %", "consistency %"]
    _table(columns, [[_cell(row[c]) for c in columns] for row in rows])


@arena_app.command("export")
def export_command(
    ctx: typer.Context,
    run_ids: Optional[list[int]] = typer.Argument(None, min=1, help="Runs to export per category and language; none: the leaderboard."),
    fmt: str = typer.Option("md", "--format", "-f", help="md, csv or json."),
    judgements: bool = typer.Option(False, "--judgements", help="Export the runs' judgements instead of their scores."),
    set_ref: Optional[str] = typer.Option(None, "--set", help="Leaderboard of this set only."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Export the leaderboard, runs' breakdowns or their judgements as markdown, CSV or JSON."""
    engine = engine_of(ctx)
    if fmt not in ("md", "csv", "json"):
        raise OptionError(f"unknown export format {fmt!r}; choose md, csv or json")
    if judgements and not run_ids:
        raise OptionError("--judgements needs the run ids to export")
    rows: list[dict[str, Any]] = []
    if run_ids:
        for run_id in run_ids:
            run = get_arena_run(engine, run_id)
            if judgements:
                rows += judgement_rows(list_judgements(engine, run.id, limit=1_000_000))
            else:
                rows += breakdown_rows(run.id, run.candidate, arena_scores(engine, run.id))
        columns = JUDGEMENT_COLUMNS if judgements else BREAKDOWN_COLUMNS
    else:
        set_id = get_arena_set(engine, set_ref).id if set_ref else None
        rows, columns = leaderboard_rows(arena_leaderboard(engine, set_id=set_id)), LEADERBOARD_COLUMNS
    text = render(rows, columns, fmt)
    if output is None:
        typer.echo(visible(text), nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"cannot write {output}: {exc.strerror or exc}") from None
    _say(f"wrote {output}")
