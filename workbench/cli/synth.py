"""`workbench synth ...`: Commit-Instruct and Critic-Evol runs and their conversations (pairs: `workbench pairs`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.text import Text

from core.errors import WorkbenchError
from core.jobs import JobInfo
from core.llm.accounting import Price
from core.synthesis.driver import ItemFinished, SynthFinished, SynthProgress
from core.synthesis.instructions import read_instructions
from core.textsafe import one_line
from stores.synthesis.runs import add_instructions, all_instruction_ids, list_conversations
from workbench.cli.common import (
    DETACH_HELP,
    emit_json,
    emit_table,
    engine_of,
    fail,
    queue_detached,
    reader_engine_of,
    stderr_console,
)
from workbench.cli.progress import CommandProgress
from workbench.jobs.runner import drain
from workbench.jobs.synthesize import (
    SynthConfig,
    check_budget,
    check_budget_price,
    estimate_run,
    model_names,
    prepare_run,
    run_synthesis_job,
    summary_counters,
)

synth_app = typer.Typer(help="Turn commits and instructions into preference pairs with LLMs.", no_args_is_help=True)

SPEC_HELP = "Model spec: openai:MODEL@URL (key from $OPENAI_API_KEY or ?key_env=VAR), hf:PATH or vllm:SERVER_ID."
# Exit status of a run that finished but left failed items (1 is bad input, 2 a usage error).
EXIT_ITEMS_FAILED = 3


def progress_line(counters: dict[str, Any]) -> str:
    """One line of live counters."""
    return (
        f"in flight {counters['in_flight']}  done {counters['done']}  "
        f"pairs {counters['pairs']} / filtered {counters['filtered']} / failed {counters['failed']}  "
        f"requests {counters['requests']} (retries {counters['retries']}, cached {counters['cache_hits']})  "
        f"tokens {counters['tokens']:,}  cost ${counters['cost']:.4f}  {counters['rate']:.2f} items/s"
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
            f"({c['pairs']} pairs: {c['new_pairs']} new, {c['duplicate_pairs']} duplicates; "
            f"{c['filtered']} filtered, {c['failed']} failed); {c['requests']} requests "
            f"({c['retries']} retries), {c['answers']} answers, {c['cache_hits']} cache hits, "
            f"{c['tokens']:,} tokens, ${c['cost']:.4f}"
        )
    if final.stop_reason == "budget":
        stderr_console.print(Text(budget_line(final.counters, config.budget or ""), style="yellow"), soft_wrap=True)
    elif final.stop_reason == "cancelled":
        stderr_console.print(Text("cancelled; re-run the same command to resume", style="yellow"))
    if final.counters["failed"]:
        raise fail(final.counters["failure"], code=EXIT_ITEMS_FAILED)


def budget_line(counters: dict[str, Any], budget: str) -> str:
    """What reaching the budget cost: how far the answers that crossed it went over."""
    if counters["budget_overshoot_cost"] or "$" in budget or "usd" in budget.lower():
        spent = f"${counters['cost']:.4f} spent (${counters['budget_overshoot_cost']:.4f} over)"
    else:
        spent = f"{counters['tokens']:,} tokens spent ({counters['budget_overshoot_tokens']:,} over)"
    return (f"budget reached ({budget}): {spent}, by the answer that crossed it and the "
            f"{counters['budget_in_flight']} requests then in flight; no new requests were started; re-run to resume")


def _drive(engine: Any, config: SynthConfig) -> tuple[JobInfo, SynthFinished]:
    tty = sys.stderr.isatty()
    final: SynthFinished | None = None
    with CommandProgress("starting") as progress:

        def show(event: object) -> None:
            nonlocal final
            if isinstance(event, SynthProgress):
                counters = event.counters
                progress.update(counters["done"], description=progress_line(counters))
            elif isinstance(event, ItemFinished) and event.outcome == "failed" and not tty:
                line = f"item {event.item_id} failed: {one_line(event.reason, 300)}"
                stderr_console.print(Text(line), soft_wrap=True)
            elif isinstance(event, SynthFinished):
                final = event

        job = drain(run_synthesis_job(engine, config), show)
    if final is None:  # stopped before the driver's last word: report the job's counters
        stored = job.summary
        final = SynthFinished(str(stored.get("stop_reason") or job.state.value), summary_counters_of(stored))
    return job, final


def summary_counters_of(stored: dict[str, Any]) -> dict[str, Any]:
    """The counters of a stored synthesis summary, as the driver's events carry them."""
    from workbench.jobs.synthesize import SYNTH

    summary = SYNTH.load_summary(stored)
    if summary is None:
        from workbench.jobs.synthesize import SynthSummary

        summary = SynthSummary(config_key="")
    return summary_counters(summary)


def _prices(price_in: Optional[float], price_out: Optional[float], models: dict[str, str]) -> dict[str, Price]:
    if price_in is None and price_out is None:
        return {}
    return {name: Price(price_in or 0.0, price_out or 0.0) for name in models.values()}


def _config(ctx: typer.Context, config: SynthConfig, price_in: Optional[float], price_out: Optional[float]) -> SynthConfig:
    config.validate()
    prices = _prices(price_in, price_out, model_names(config, engine_of(ctx)))
    return SynthConfig(**{**config.__dict__, "prices": prices})


def _budget_option(value: str | None) -> str | None:
    """`--budget` is checked while options are parsed, so a bad one is a usage error (exit 2)."""
    if value is not None:
        try:
            check_budget(value)
        except WorkbenchError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


BUDGET_HELP = "Stop starting requests after this: 50000 / 50k tokens or $2.50."


@synth_app.command("commit-instruct")
def commit_instruct_command(
    ctx: typer.Context,
    critic: str = typer.Option(..., "--critic", help=SPEC_HELP),
    limit: Optional[int] = typer.Option(None, min=1, help="Use the first N mined commit files (by id)."),
    language: Optional[str] = typer.Option(None, help="Only commit files of this language."),
    concurrency: int = typer.Option(16, min=1, max=4096, help="Items (and requests) in flight at once."),
    budget: Optional[str] = typer.Option(None, help=BUDGET_HELP, callback=_budget_option),
    keep_comments: bool = typer.Option(False, "--keep-comments", help="Keep comments in the pairs' code."),
    price_in: Optional[float] = typer.Option(None, min=0, help="USD per 1M prompt tokens (default: built-in table, else 0)."),
    price_out: Optional[float] = typer.Option(None, min=0, help="USD per 1M completion tokens."),
    estimate_only: bool = typer.Option(False, "--estimate", help="Print the cost estimate and stop."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Explain each mined commit, keep the clear improvements, and write a pair from each.

    A second command on the same configuration (here or on another machine, same store) joins
    the running job and shares its commits.

    Exit status: 0 when every item ended as a pair or filtered; 3 when some items failed (one line on
    stderr says how many and why; re-running retries the LLM failures); 1 on bad input; 2 on a usage error.
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
    budget: Optional[str] = typer.Option(None, help=BUDGET_HELP, callback=_budget_option),
    keep_comments: bool = typer.Option(False, "--keep-comments", help="Keep comments in the pairs' code."),
    price_in: Optional[float] = typer.Option(None, min=0, help="USD per 1M prompt tokens."),
    price_out: Optional[float] = typer.Option(None, min=0, help="USD per 1M completion tokens."),
    estimate_only: bool = typer.Option(False, "--estimate", help="Print the cost estimate and stop."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Draft an answer to each instruction, then let a few-shot critic stop or improve it.

    Exit status: 0 when every item ended as a pair or filtered; 3 when some items failed (one line on
    stderr says how many and why; re-running retries the LLM failures); 1 on bad input; 2 on a usage error.
    """
    # Options, prices and the instruction file are checked before anything is stored.
    engine = engine_of(ctx)
    check_budget_price(engine, _config(ctx, SynthConfig("critic-evol", critic=critic, draft=draft, limit=limit,
                                                        concurrency=concurrency, budget=budget), price_in, price_out))
    records = read_instructions(instructions, field=field) if instructions is not None else None
    if records is not None:
        ids, added = add_instructions(engine, records, source=str(instructions))
        stderr_console.print(Text(one_line(f"{instructions}: {len(ids)} instructions ({added} new)")), soft_wrap=True)
    else:
        ids = all_instruction_ids(engine)
    config = SynthConfig("critic-evol", critic=critic, draft=draft, instruction_ids=tuple(ids), limit=limit,
                         concurrency=concurrency, budget=budget, strip_comments=not keep_comments)
    _run(ctx, _config(ctx, config, price_in, price_out), estimate_only=estimate_only, as_json=as_json, detach=detach)


@synth_app.command("conversations")
def conversations_command(
    ctx: typer.Context,
    limit: int = typer.Option(20, min=1, max=10000, help="How many exchanges, newest first."),
    item: Optional[int] = typer.Option(None, min=1, help="Only the exchanges of this item."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output, with messages."),
) -> None:
    """List recent LLM exchanges with their item's outcome."""
    rows = list_conversations(reader_engine_of(ctx), limit=limit, item_id=item)
    if as_json:
        emit_json(rows)
        return
    emit_table(["id", "item", "step", "model", "tokens", "latency", "cached", "state", "reason"],
               [(c.id, c.item_id, c.step, c.model, c.prompt_tokens + c.completion_tokens, f"{c.latency_s:.2f}",
                 "yes" if c.cached else "", c.item_state, c.item_reason[:80]) for c in rows])
