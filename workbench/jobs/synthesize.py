"""A synthesis run as a job: pick subjects, prepare items, drive the method, record progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import OptionError
from core.llm.accounting import CostEstimate, Meter, Price, estimate_tokens, parse_budget, price_for
from core.llm.base import ChatBackend
from core.llm.specs import make_backend, parse_spec
from core.synthesis.commit_instruct import CommitInstruct, explain_message
from core.synthesis.critic_evol import CriticEvol, critic_messages
from core.synthesis.driver import SynthEvent, SynthFinished, SynthProgress, run_synthesis
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
from workbench.jobs.llm_servers import resolve_server
from workbench.jobs.runner import JobHandle

METHODS = ("commit-instruct", "critic-evol")
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
        """Raise OptionError for a config that cannot run."""
        if self.method not in METHODS:
            raise OptionError(f"unknown synthesis method {self.method!r} (use {' or '.join(METHODS)})")
        parse_spec(self.critic)
        if self.method == "critic-evol":
            if not self.draft:
                raise OptionError("critic-evol needs --draft SPEC for the model that answers instructions")
            parse_spec(self.draft)
        if self.limit is not None and self.limit < 1:
            raise OptionError(f"limit must be a whole number of 1 or more, not {self.limit}")
        if self.concurrency < 1:
            raise OptionError("concurrency must be at least 1")
        parse_budget(self.budget)


def _whole_number(text: str, name: str) -> int | None:
    value = text.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise OptionError(f"{name} must be a whole number, not {value!r}") from None


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
        method, critic=critic.strip(), draft=draft.strip() or None, limit=_whole_number(limit, "limit"),
        concurrency=_whole_number(concurrency, "concurrency") or 16, budget=budget.strip() or None,
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


def prepare_run(engine: Engine, config: SynthConfig) -> str:
    """Validate, create the items for the chosen subjects, reopen stale ones; return the config key."""
    config.validate()
    key = run_key(config, engine)
    if config.method == "commit-instruct":
        subject_ids = select_commit_ids(engine, limit=config.limit, language=config.language)
        if not subject_ids:
            raise OptionError("no mined commits in the store: run `workbench mine REPO` first")
    else:
        subject_ids = list(config.instruction_ids or [])
        if config.limit is not None:
            subject_ids = subject_ids[: config.limit]
        if not subject_ids:
            raise OptionError("no instructions: pass --instructions FILE or import some first")
    prepare_items(engine, config.method, key, subject_ids)
    return key


def estimate_run(engine: Engine, config: SynthConfig, key: str) -> CostEstimate:
    """Expected requests, tokens and cost of the items still pending, before any request."""
    pending = pending_subject_ids(engine, key)
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
    """Run a config as a job, yielding (job id, event); finishes the job row however the run ends."""
    key = key or prepare_run(engine, config)
    counts = item_counts(engine, key)
    params: dict[str, Any] = {k: v for k, v in asdict(config).items() if k not in ("prices", "instruction_ids")}
    params["config_key"] = key
    title = f"{config.method} with {_model_name(config.critic, engine)}"
    job = JobHandle.start(engine, "synth", title, params)
    method = make_method(config)
    store = SqlSynthesisStore(
        engine, job_id=job.job_id, method=config.method, key=key,
        load_subjects=load_commit_subjects if config.method == "commit-instruct" else load_instruction_subjects,
    )
    meter = Meter(budget=parse_budget(config.budget), prices=config.prices)
    already_done = counts.pair + counts.filtered + counts.failed
    backends: dict[str, ChatBackend] = {}
    final_state = "failed"
    error: str | None = "the run stopped before it finished"
    summary: dict[str, Any] = {}
    try:
        backends = _backends(engine, config)
        events = run_synthesis(
            method, store, backends, concurrency=config.concurrency, meter=meter,
            cancel=lambda: cancel() or job.cancel_requested(),
        )
        async for event in events:
            if isinstance(event, SynthProgress):
                job.progress(already_done + event.counters["done"], counts.total, event.counters)
            elif isinstance(event, SynthFinished):
                final = item_counts(engine, key)
                summary = {**event.counters, "usage": event.usage_by_model, "stop_reason": event.stop_reason,
                           "items_total": final.total, "items_pair": final.pair,
                           "items_filtered": final.filtered, "items_failed": final.failed,
                           "items_pending": final.pending + final.claimed}
                if event.stop_reason == "done":
                    final_state, error = "done", None
                elif event.stop_reason == "budget":
                    final_state = "cancelled"
                    error = f"budget reached ({meter.budget.describe()}); re-run to resume"
                else:
                    final_state, error = "cancelled", "cancelled; re-run to resume"
            yield job.job_id, event
    except (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit):
        if final_state == "failed":
            final_state, error = "cancelled", "interrupted; re-run to resume"
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise
    finally:
        final = item_counts(engine, key)
        job.finish(final_state, error=error, summary=summary or {"stop_reason": "interrupted"},
                   done=final.pair + final.filtered + final.failed)
        for backend in {id(b): b for b in backends.values()}.values():
            await backend.aclose()
