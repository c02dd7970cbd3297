"""`workbench synth ...`: Commit-Instruct and Critic-Evol runs and their conversations (pairs: `workbench pairs`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.live import Live
from rich.text import Text

from core.jobs import JobInfo
from core.llm.accounting import Price
from core.synthesis.driver import ItemFinished, SynthFinished, SynthProgress
from core.synthesis.instructions import read_instructions
from stores.synthesis.runs import add_instructions, all_instruction_ids, list_conversations
from workbench.cli.common import DETACH_HELP, emit_json, emit_table, engine_of, queue_detached, stderr_console
from workbench.jobs.runner import drain
from workbench.jobs.synthesize import SynthConfig, estimate_run, model_names, prepare_run, run_synthesis_job

synth_app = typer.Typer(help="Turn commits and instructions into preference pairs with LLMs.", no_args_is_help=True)

SPEC_HELP = "Model spec: openai:MODEL@URL (key from $OPENAI_API_KEY or ?key_env=VAR), hf:PATH or vllm:SERVER_ID."


def progress_line(counters: dict[str, Any]) -> str:
    """One line of live counters."""
    return (
        f"in flight {counters['in_flight']}  done {counters['done']}  "
        f"pairs {counters['pairs']} / filtered {counters['filtered']} / failed {counters['failed']}  "
        f"requests {counters['requests']} (cached {counters['cache_hits']})  tokens {counters['tokens']:,}  "
        f"cost ${counters['cost']:.4f}  {counters['rate']:.2f} items/s"
    )


def _run(ctx: typer.Context, config: SynthConfig, *, estimate_only: bool, as_json: bool, detach: bool = False) -> None:
    engine = engine_of(ctx)
    if detach and not estimate_only:
        queue_detached(ctx, "synth", config, as_json=as_json)
        return
    key = prepare_run(engine, config)
    estimate = estimate_run(engine, config, key)
    stderr_console.print(Text(estimate.describe()), soft_wrap=True)
    if estimate_only:
        if as_json:
            emit_json(estimate)
        return
    if estimate.items == 0:
        stderr_console.print(Text("nothing to do: every item of this configuration has its outcome"))
    job, final = _drive(engine, config)
    summary = {"job_id": job.id, "state": job.state.value, "stop_reason": final.stop_reason, **final.counters,
               "usage": final.usage_by_model}
    if as_json:
        emit_json(summary)
    else:
        c = final.counters
        typer.echo(
            f"job {job.id}: {final.stop_reason}: {c['done']} items this run "
            f"({c['pairs']} pairs, {c['filtered']} filtered, {c['failed']} failed); "
            f"{c['requests']} requests, {c['cache_hits']} cache hits, {c['tokens']:,} tokens, ${c['cost']:.4f}"
        )
    if final.stop_reason == "budget":
        stderr_console.print(Text("budget reached: no new requests were started; re-run to resume", style="yellow"))
    elif final.stop_reason == "cancelled":
        stderr_console.print(Text("cancelled; re-run the same command to resume", style="yellow"))


def _drive(engine: Any, config: SynthConfig) -> tuple[JobInfo, SynthFinished]:
    tty = sys.stderr.isatty()
    last_line = 0.0
    final: SynthFinished | None = None
    live = Live(Text(""), console=stderr_console, refresh_per_second=4, transient=False) if tty else None
    if live is not None:
        live.start()

    def show(event: object) -> None:
        nonlocal last_line, final
        if isinstance(event, SynthProgress):
            line = progress_line(event.counters)
            if live is not None:
                live.update(Text(line))
            elif time.monotonic() - last_line >= 2.0:
                last_line = time.monotonic()
                stderr_console.print(Text(line), soft_wrap=True)
        elif isinstance(event, ItemFinished) and event.outcome == "failed" and not tty:
            stderr_console.print(Text(f"item {event.item_id} failed: {event.reason}"), soft_wrap=True)
        elif isinstance(event, SynthFinished):
            final = event
            if live is not None:
                live.update(Text(progress_line(event.counters)))

    try:
        job = drain(run_synthesis_job(engine, config), show)
    finally:
        if live is not None:
            live.stop()
    if final is None:  # stopped before the driver's last word: report the job's counters
        stored = job.summary
        final = SynthFinished(str(stored.get("stop_reason") or job.state.value), summary_counters_of(stored))
    return job, final


def summary_counters_of(stored: dict[str, Any]) -> dict[str, Any]:
    """The counters of a stored synthesis summary, as the driver's events carry them."""
    names = ("done", "pairs", "filtered", "failed", "released", "in_flight", "requests", "http_attempts",
             "cache_hits", "tokens", "cost", "elapsed_s", "rate")
    return {name: stored.get(name, 0) for name in names}


def _prices(price_in: Optional[float], price_out: Optional[float], models: dict[str, str]) -> dict[str, Price]:
    if price_in is None and price_out is None:
        return {}
    return {name: Price(price_in or 0.0, price_out or 0.0) for name in models.values()}


def _config(ctx: typer.Context, config: SynthConfig, price_in: Optional[float], price_out: Optional[float]) -> SynthConfig:
    config.validate()
    prices = _prices(price_in, price_out, model_names(config, engine_of(ctx)))
    return SynthConfig(**{**config.__dict__, "prices": prices})


@synth_app.command("commit-instruct")
def commit_instruct_command(
    ctx: typer.Context,
    critic: str = typer.Option(..., "--critic", help=SPEC_HELP),
    limit: Optional[int] = typer.Option(None, min=1, help="Use the first N mined commit files (by id)."),
    language: Optional[str] = typer.Option(None, help="Only commit files of this language."),
    concurrency: int = typer.Option(16, min=1, max=4096, help="Items (and requests) in flight at once."),
    budget: Optional[str] = typer.Option(None, help="Stop starting requests after this: 50000 / 50k tokens or $2.50."),
    keep_comments: bool = typer.Option(False, "--keep-comments", help="Keep comments in the pairs' code."),
    price_in: Optional[float] = typer.Option(None, help="USD per 1M prompt tokens (default: built-in table, else 0)."),
    price_out: Optional[float] = typer.Option(None, help="USD per 1M completion tokens."),
    estimate_only: bool = typer.Option(False, "--estimate", help="Print the cost estimate and stop."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Explain each mined commit, keep the clear improvements, and write a pair from each.

    A second command on the same configuration (here or on another machine, same store) joins
    the running job and shares its commits.
    """
    config = SynthConfig("commit-instruct", critic=critic, limit=limit, language=language, concurrency=concurrency,
                         budget=budget, strip_comments=not keep_comments)
    _run(ctx, _config(ctx, config, price_in, price_out), estimate_only=estimate_only, as_json=as_json, detach=detach)


@synth_app.command("critic-evol")
def critic_evol_command(
    ctx: typer.Context,
    draft: str = typer.Option(..., "--draft", help="Model that answers the instructions. " + SPEC_HELP),
    critic: str = typer.Option(..., "--critic", help="Model that critiques and improves. " + SPEC_HELP),
    instructions: Optional[Path] = typer.Option(None, help="JSONL/CSV of instructions (imported first); default: all stored."),
    field: Optional[str] = typer.Option(None, help="Column holding the instruction text."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use the first N instructions."),
    concurrency: int = typer.Option(16, min=1, max=4096, help="Items (and requests) in flight at once."),
    budget: Optional[str] = typer.Option(None, help="Stop starting requests after this: 50000 / 50k tokens or $2.50."),
    keep_comments: bool = typer.Option(False, "--keep-comments", help="Keep comments in the pairs' code."),
    price_in: Optional[float] = typer.Option(None, help="USD per 1M prompt tokens."),
    price_out: Optional[float] = typer.Option(None, help="USD per 1M completion tokens."),
    estimate_only: bool = typer.Option(False, "--estimate", help="Print the cost estimate and stop."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Draft an answer to each instruction, then let a few-shot critic stop or improve it."""
    engine = engine_of(ctx)
    if instructions is not None:
        ids, added = add_instructions(engine, read_instructions(instructions, field=field), source=str(instructions))
        stderr_console.print(Text(f"{instructions}: {len(ids)} instructions ({added} new)"), soft_wrap=True)
    else:
        ids = all_instruction_ids(engine)
    config = SynthConfig("critic-evol", critic=critic, draft=draft, instruction_ids=tuple(ids), limit=limit,
                         concurrency=concurrency, budget=budget, strip_comments=not keep_comments)
    _run(ctx, _config(ctx, config, price_in, price_out), estimate_only=estimate_only, as_json=as_json, detach=detach)


@synth_app.command("conversations")
def conversations_command(
    ctx: typer.Context,
    limit: int = typer.Option(20, min=1, max=10000, help="How many exchanges, newest first."),
    item: Optional[int] = typer.Option(None, help="Only the exchanges of this item."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output, with messages."),
) -> None:
    """List recent LLM exchanges with their item's outcome."""
    rows = list_conversations(engine_of(ctx), limit=limit, item_id=item)
    if as_json:
        emit_json(rows)
        return
    emit_table(["id", "item", "step", "model", "tokens", "latency", "cached", "state", "reason"],
               [(c.id, c.item_id, c.step, c.model, c.prompt_tokens + c.completion_tokens, f"{c.latency_s:.2f}",
                 "yes" if c.cached else "", c.item_state, c.item_reason[:80]) for c in rows])
