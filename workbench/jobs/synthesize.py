"""A synthesis run as a job: pick subjects, prepare items, drive the method, record progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import DataError, OptionError
from core.llm.accounting import Budget, CostEstimate, Meter, Price, estimate_tokens, parse_budget, price_for
from core.llm.base import ChatBackend
from core.llm.specs import check_spec, make_backend, parse_spec
from core.mining.languages import extension_map
from core.synthesis.commit_instruct import CommitInstruct, explain_message
from core.synthesis.critic_evol import CriticEvol, critic_messages
from core.synthesis.driver import SynthCounters, SynthEvent, SynthFinished, SynthProgress, run_synthesis
from core.synthesis.steps import SynthesisMethod
from stores.synthesis.runs import (
    SqlSynthesisStore,
    config_key,
    item_counts,
    load_commit_subjects,
    load_instruction_subjects,
    pending_subject_ids,
    prepare_items,
    select_commit_ids,
)
from workbench.jobs.forms import whole_number
from workbench.jobs.llm_servers import resolve_server
from workbench.jobs.runner import JobHandle

METHODS = ("commit-instruct", "critic-evol")
MAX_CONCURRENCY = 4096
# Completion tokens expected per item, for estimates before a run: (commit-instruct, critic-evol).
_EXPECTED_COMPLETION = {"commit-instruct": 1200, "critic-evol": 900}
_ESTIMATE_SAMPLE = 500


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines a synthesis run; the same config re-run resumes the same items."""

    method: str
    critic: str
    draft: str | None = None
    limit: int | None = None
    language: str | None = None
    instruction_ids: tuple[int, ...] | None = None
    concurrency: int = 16
    budget: str | None = None
    strip_comments: bool = True
    prices: Mapping[str, Price] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise OptionError for a config that cannot run, before any data is read or request sent:
        the method, the model specs with their keys and local paths, the limit, concurrency and budget."""
        if self.method not in METHODS:
            raise OptionError(f"unknown synthesis method {self.method!r} (use {' or '.join(METHODS)})")
        if not self.critic.strip():
            raise OptionError("give a critic model spec (--critic SPEC), e.g. openai:MODEL@http://HOST:PORT/v1")
        check_spec(self.critic)
        if self.method == "critic-evol":
            if not self.draft:
                raise OptionError("critic-evol needs --draft SPEC for the model that answers instructions")
            check_spec(self.draft)
        if self.language is not None:
            extension_map((self.language,))
        if self.limit is not None and self.limit < 1:
            raise OptionError(f"limit must be a whole number of 1 or more, not {self.limit}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise OptionError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, not {self.concurrency}")
        check_budget(self.budget)


def check_budget(text: str | None) -> Budget:
    """Read a `--budget` value (tokens such as 50k, or dollars such as $2.50); it must be above zero.

    Raises OptionError, the same for the CLI option and the TUI field.
    """
    budget = parse_budget(text)
    if budget.max_tokens == 0 or budget.max_cost == 0:
        raise OptionError(f"budget {text!r}: must be more than zero")
    return budget


def config_from_form(
    method: str,
    *,
    critic: str,
    draft: str = "",
    limit: str = "",
    concurrency: str = "",
    budget: str = "",
    instruction_ids: tuple[int, ...] | None = None,
) -> SynthConfig:
    """A validated SynthConfig from a form's text fields (the TUI's Synthesis screen); raises
    OptionError with the message the CLI gives for the same value."""
    config = SynthConfig(
        method, critic=critic.strip(), draft=draft.strip() or None, limit=whole_number(limit, "limit"),
        concurrency=whole_number(concurrency, "concurrency") or 16, budget=budget.strip() or None,
        instruction_ids=instruction_ids,
    )
    config.validate()
    return config


def make_method(config: SynthConfig) -> SynthesisMethod:
    """The state machine a config names."""
    if config.method == "commit-instruct":
        return CommitInstruct(strip_comments=config.strip_comments)
    return CriticEvol(strip_comments=config.strip_comments)


def model_names(config: SynthConfig, engine: Engine) -> dict[str, str]:
    """Role -> model name (what cache keys and accounting use)."""
    names = {"critic": _model_name(config.critic, engine)}
    if config.method == "critic-evol" and config.draft:
        names["draft"] = _model_name(config.draft, engine)
    return names


def _model_name(spec: str, engine: Engine) -> str:
    parsed = parse_spec(spec)
    if parsed.kind == "vllm":
        return resolve_server(engine, parsed.target)[1]
    if parsed.kind == "hf":  # the name TransformersChatBackend reports
        cap = parsed.options.get("max_tokens")
        return (Path(parsed.target).name or parsed.target) + (f"[max_tokens={cap}]" if cap else "")
    return parsed.target


def run_key(config: SynthConfig, engine: Engine) -> str:
    """The configuration key of a run's items."""
    method = make_method(config)
    return config_key(config.method, method.prompt_version, model_names(config, engine), config.strip_comments)


def check_budget_price(engine: Engine, config: SynthConfig) -> None:
    """Refuse a dollar budget when a model of the run has no price: it could never be reached."""
    if parse_budget(config.budget).max_cost is None:
        return
    for role, name in model_names(config, engine).items():
        price = price_for(name, config.prices)
        if price.input_per_m <= 0 and price.output_per_m <= 0:
            raise OptionError(
                f"budget {config.budget!r} is in dollars, but the {role} model {name!r} has no price: "
                "pass --price-in/--price-out (USD per 1M tokens) or give the budget in tokens (e.g. 2M)"
            )


def selected_subjects(engine: Engine, config: SynthConfig) -> list[int]:
    """The subjects a config names: the first `limit` mined commit files, or its instructions."""
    if config.method == "commit-instruct":
        return select_commit_ids(engine, limit=config.limit, language=config.language)
    subject_ids = list(dict.fromkeys(config.instruction_ids or []))
    return subject_ids[: config.limit] if config.limit is not None else subject_ids


def run_scope(engine: Engine, config: SynthConfig) -> list[int] | None:
    """The subjects a run may claim: the selection when the config narrows it, None for every item."""
    if config.method == "commit-instruct" and config.limit is None and config.language is None:
        return None
    return selected_subjects(engine, config)


def prepare_run(engine: Engine, config: SynthConfig) -> str:
    """Validate, create the items for the chosen subjects, reopen stale ones; return the config key."""
    config.validate()
    check_budget_price(engine, config)
    key = run_key(config, engine)
    subject_ids = selected_subjects(engine, config)
    if not subject_ids:
        if config.method == "commit-instruct":
            raise DataError("no mined commits in the store: run `workbench mine REPO` first")
        raise DataError("no instructions: pass --instructions FILE or import some first")
    prepare_items(engine, config.method, key, subject_ids)
    return key


def estimate_run(engine: Engine, config: SynthConfig, key: str) -> CostEstimate:
    """Expected requests, tokens and cost of the items this run would do, before any request."""
    pending = pending_subject_ids(engine, key)
    scope = run_scope(engine, config)
    if scope is not None:
        in_scope = set(scope)
        pending = [subject for subject in pending if subject in in_scope]
    sample = pending[:_ESTIMATE_SAMPLE]
    names = model_names(config, engine)
    prompt_tokens = 0
    if config.method == "commit-instruct":
        for subject in load_commit_subjects(engine, sample).values():
            first = estimate_tokens(explain_message(subject))
            prompt_tokens += 3 * first + 1000  # the conversation is re-sent at each of the three steps
        requests_per_item = 3
    else:
        for instruction in load_instruction_subjects(engine, sample).values():
            prompt_tokens += estimate_tokens(instruction.text) + 30
            prompt_tokens += sum(estimate_tokens(m["content"]) for m in critic_messages(instruction.text, "x" * 1200, "python"))
        requests_per_item = 2
    scale = len(pending) / len(sample) if sample else 0.0
    prompt_total = int(prompt_tokens * scale)
    completion_total = _EXPECTED_COMPLETION[config.method] * len(pending)
    price = price_for(names["critic"], config.prices)
    return CostEstimate(
        items=len(pending), requests=requests_per_item * len(pending), prompt_tokens=prompt_total,
        completion_tokens=completion_total, cost=price.cost(prompt_total, completion_total),
    )


def _backends(engine: Engine, config: SynthConfig) -> dict[str, ChatBackend]:
    def resolver(server_id: str) -> tuple[str, str]:
        return resolve_server(engine, server_id)

    backends = {"critic": make_backend(config.critic, concurrency=config.concurrency, resolve_server=resolver)}
    if config.method == "critic-evol" and config.draft:
        backends["draft"] = (
            backends["critic"] if config.draft == config.critic
            else make_backend(config.draft, concurrency=config.concurrency, resolve_server=resolver)
        )
    return backends


async def run_synthesis_job(
    engine: Engine,
    config: SynthConfig,
    *,
    cancel: Callable[[], bool] = lambda: False,
    key: str | None = None,
) -> AsyncIterator[tuple[int, SynthEvent]]:
    """Run a config as a job, yielding (job id, event); finishes the job row however the run ends.

    The job ends `done`, or `failed` when any item failed (its error is the one-line reason, as
    `SynthCounters.failure_line`), or `cancelled` (budget reached, cancel, interrupt); its summary
    keeps the run's counters in every case.
    """
    key = key or prepare_run(engine, config)
    scope = run_scope(engine, config)
    counts = item_counts(engine, key)
    params: dict[str, Any] = {k: v for k, v in asdict(config).items() if k not in ("prices", "instruction_ids")}
    params["config_key"] = key
    title = f"{config.method} with {_model_name(config.critic, engine)}"
    job = JobHandle.start(engine, "synth", title, params)
    method = make_method(config)
    store = SqlSynthesisStore(
        engine, job_id=job.job_id, method=config.method, key=key,
        load_subjects=load_commit_subjects if config.method == "commit-instruct" else load_instruction_subjects,
        scope=scope,
    )
    meter = Meter(budget=parse_budget(config.budget), prices=config.prices)
    counters = SynthCounters()
    total = len(scope) if scope is not None else counts.total
    already_done = _finished_in_scope(engine, key, scope)
    backends: dict[str, ChatBackend] = {}
    final_state = "failed"
    error: str | None = "the run stopped before it finished"
    stop_reason = "interrupted"
    usage: dict[str, dict[str, float]] = {}
    cancel_seen = False

    async def watch_cancel() -> None:
        nonlocal cancel_seen
        while not cancel_seen:  # polled in a thread: the store read never blocks the event loop
            cancel_seen = await asyncio.to_thread(job.cancel_requested)
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch_cancel())
    events: AsyncGenerator[SynthEvent, None] | None = None
    try:
        backends = _backends(engine, config)
        events = run_synthesis(
            method, store, backends, concurrency=config.concurrency, meter=meter, counters=counters,
            cancel=lambda: cancel() or cancel_seen,
        )
        async for event in events:
            if isinstance(event, SynthProgress):
                await asyncio.to_thread(job.progress, already_done + event.counters["done"], total, event.counters)
            elif isinstance(event, SynthFinished):
                stop_reason, usage = event.stop_reason, event.usage_by_model
                final_state, error = _ending(event.stop_reason, counters, meter)
            yield job.job_id, event
    except (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit):
        if final_state == "failed" and error == "the run stopped before it finished":
            final_state, error = "cancelled", "interrupted; re-run to resume"
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise
    finally:
        watcher.cancel()
        if events is not None:  # stop the requests in flight first, so the counters include them
            await events.aclose()
        final = item_counts(engine, key)
        summary = {**counters.snapshot(), "usage": usage, "stop_reason": stop_reason,
                   "items_total": final.total, "items_pair": final.pair, "items_filtered": final.filtered,
                   "items_failed": final.failed, "items_pending": final.pending + final.claimed}
        job.finish(final_state, error=error, summary=summary, done=final.pair + final.filtered + final.failed)
        for backend in {id(b): b for b in backends.values()}.values():
            await backend.aclose()


def _ending(stop_reason: str, counters: SynthCounters, meter: Meter) -> tuple[str, str | None]:
    """The job's final state and error line for how the run stopped."""
    failure = counters.failure_line()
    if stop_reason == "budget":
        spent = f"{meter.tokens:,} tokens" + (f", ${meter.cost:.4f}" if meter.budget.max_cost is not None else "")
        note = (f"budget reached ({meter.budget.describe()}; spent {spent}, "
                f"{counters.budget_in_flight} requests were already in flight); re-run to resume")
        return "cancelled", note + (f"; {failure}" if failure else "")
    if stop_reason == "cancelled":
        return "cancelled", "cancelled; re-run to resume" + (f"; {failure}" if failure else "")
    if failure:
        return "failed", failure
    return "done", None


def _finished_in_scope(engine: Engine, key: str, scope: list[int] | None) -> int:
    counts = item_counts(engine, key)
    if scope is None:
        return counts.pair + counts.filtered + counts.failed
    pending = set(pending_subject_ids(engine, key))
    return sum(1 for subject in scope if subject not in pending)
