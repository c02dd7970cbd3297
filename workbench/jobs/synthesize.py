"""A synthesis run as a job: pick subjects, prepare items, drive the method, record progress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import OptionError
from core.jobs import JobCancelled, JobInfo
from core.llm.accounting import CostEstimate, Meter, Price, estimate_tokens, parse_budget, price_for
from core.llm.base import ChatBackend, ChatRequest, ChatResult
from core.llm.specs import make_backend, parse_spec
from core.synthesis.commit_instruct import CommitInstruct, explain_message
from core.synthesis.critic_evol import CriticEvol, critic_messages
from core.synthesis.driver import SynthEvent, SynthFinished, SynthProgress, run_synthesis
from core.synthesis.records import ItemCounts
from core.synthesis.steps import SynthesisMethod
from stores.synthesis.runs import (
    SqlSynthesisStore,
    config_key,
    item_counts,
    load_commit_subjects,
    load_instruction_subjects,
    pending_subject_ids,
    prepare_items,
    release_claims,
    select_commit_ids,
)
from workbench.jobs.llm_servers import resolve_server
from workbench.jobs.ml import load_ml, needs_ml
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, run_foreground

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
        if self.concurrency < 1:
            raise OptionError("concurrency must be at least 1")
        parse_budget(self.budget)


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


def prepare_run(engine: Engine, config: SynthConfig, *, reopen_failed: bool = True) -> str:
    """Validate, create the items for the chosen subjects, reopen those that failed on a transport
    error (unless `reopen_failed` is off); return the config key."""
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
    prepare_items(engine, config.method, key, subject_ids, reopen_failed=reopen_failed)
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


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """A synthesis job's counters: its items by outcome, and the requests, tokens and cost behind them.

    `items_*` count the whole run (every worker's items); the other counters add up what each
    worker on the job did. `http_attempts` counts every request sent, retries included.
    """

    config_key: str
    stop_reason: str = ""
    items_total: int = 0
    items_pair: int = 0
    items_filtered: int = 0
    items_failed: int = 0
    items_pending: int = 0
    done: int = 0
    pairs: int = 0
    filtered: int = 0
    failed: int = 0
    released: int = 0
    in_flight: int = 0
    requests: int = 0
    http_attempts: int = 0
    cache_hits: int = 0
    tokens: int = 0
    cost: float = 0.0
    elapsed_s: float = 0.0
    rate: float = 0.0
    usage_by_model: dict[str, dict[str, float]] = field(default_factory=dict)


_ADDED = ("done", "pairs", "filtered", "failed", "released", "in_flight", "requests", "http_attempts", "cache_hits",
          "tokens", "cost")


class CountingBackend:
    """A backend that counts the HTTP attempts behind its chats (each chat, plus the client's retries)."""

    def __init__(self, backend: ChatBackend) -> None:
        self.backend = backend
        self.model_name = backend.model_name
        self.chats = 0

    @property
    def attempts(self) -> int:
        """Requests sent so far, retries included."""
        return self.chats + int(getattr(self.backend, "retries_done", 0))

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.chats += 1
        return await self.backend.chat(request)

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        self.chats += len(requests)
        return await self.backend.chat_many(requests)

    async def aclose(self) -> None:
        await self.backend.aclose()


def synth_run_key(engine: Engine, config: SynthConfig) -> str:
    """The run a synthesis job advances: its configuration's items."""
    return f"synth:{run_key(config, engine)}"


def _check(engine: Engine, config: SynthConfig) -> None:
    config.validate()
    if config.method == "commit-instruct" and not select_commit_ids(engine, limit=1, language=config.language):
        raise OptionError("no mined commits in the store: run `workbench mine REPO` first")
    if config.method == "critic-evol" and not config.instruction_ids:
        raise OptionError("no instructions: pass --instructions FILE or import some first")


def _has_work(engine: Engine, _job_id: int, config: SynthConfig, lease_s: float) -> bool:
    # A budget is one meter's: helpers with their own meters would spend it several times over.
    if config.budget:
        return False
    return item_counts(engine, run_key(config, engine), lease_s=lease_s).pending > 0


def run_synth(ctx: JobContext, config: SynthConfig) -> Generator[SynthEvent, None, SynthSummary]:
    """Drive a configuration's pending items through its method as a job (owner or helper).

    The owner prepares the items, and once it cannot claim more it waits for the items other
    workers hold, claiming again those whose lease runs out, so that the job ends when every
    item has its outcome. Budget reached: cancelled, saying so; re-running resumes.
    """
    drive = _Drive(ctx, config)
    loop = asyncio.new_event_loop()
    agen: Any = drive.events()
    step: asyncio.Task[SynthEvent] | None = None
    try:
        while True:
            step = loop.create_task(agen.__anext__())  # type: ignore[arg-type]
            try:
                event = loop.run_until_complete(step)
            except StopAsyncIteration:
                break
            step = None
            yield event
    finally:
        try:
            if step is not None and not step.done():  # interrupted inside a step (Ctrl-C)
                step.cancel()
                loop.run_until_complete(asyncio.gather(step, return_exceptions=True))
            else:
                loop.run_until_complete(agen.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            release_claims(ctx.engine, drive.key, ctx.worker_id)
    if drive.stop_reason == "budget":
        raise JobCancelled(f"budget reached ({drive.meter.budget.describe()})")
    if drive.stop_reason != "done":
        raise ctx.stop_exception()
    return drive.summary


class _Drive:
    """One worker's drive of a synthesis run, with counters summed over the driver's rounds."""

    def __init__(self, ctx: JobContext, config: SynthConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.engine = ctx.engine
        # A job taken over from a worker that died goes on where it was: what ended, ended once.
        self.key = (prepare_run(self.engine, config, reopen_failed=ctx.job.attempts <= 1) if ctx.is_owner
                    else run_key(config, self.engine))
        self.meter = Meter(budget=parse_budget(config.budget), prices=config.prices)
        self.stop_reason = ""
        self.rounds: dict[str, float] = {}
        self.summary = SynthSummary(config_key=self.key)
        self.backends: dict[str, CountingBackend] = {}
        self._counted: tuple[ItemCounts, list[dict[str, Any]]] = (ItemCounts(), [])
        self._counted_at = float("-inf")

    def _stored_counts(self, fresh: bool) -> tuple[ItemCounts, list[dict[str, Any]]]:
        """The run's item counts and the helpers' counters, read from the store at most every second."""
        if fresh or time.monotonic() - self._counted_at >= 1.0:
            helpers = self.ctx.helper_counters() if self.ctx.is_owner else []
            self._counted = (item_counts(self.engine, self.key), helpers)
            self._counted_at = time.monotonic()
        return self._counted

    def _summary(self, counters: Mapping[str, Any], stop_reason: str = "", *, fresh: bool = False) -> SynthSummary:
        own = {name: self.rounds.get(name, 0) + counters.get(name, 0) for name in _ADDED if name != "http_attempts"}
        own["http_attempts"] = sum(backend.attempts for backend in {id(b): b for b in self.backends.values()}.values())
        own["in_flight"] = counters.get("in_flight", 0)
        totals = dict(own)
        final, helpers = self._stored_counts(fresh)
        for helper in helpers:  # the owner's summary adds what the helpers reported
            for name in _ADDED:
                totals[name] = totals.get(name, 0) + (helper.get(name) or 0)
        elapsed = float(counters.get("elapsed_s", 0.0)) + self.rounds.get("elapsed_s", 0.0)
        return SynthSummary(
            config_key=self.key, stop_reason=stop_reason, items_total=final.total, items_pair=final.pair,
            items_filtered=final.filtered, items_failed=final.failed, items_pending=final.pending + final.claimed,
            done=int(totals["done"]), pairs=int(totals["pairs"]), filtered=int(totals["filtered"]),
            failed=int(totals["failed"]), released=int(totals["released"]), in_flight=int(totals["in_flight"]),
            requests=int(totals["requests"]), http_attempts=int(totals["http_attempts"]),
            cache_hits=int(totals["cache_hits"]), tokens=int(totals["tokens"]), cost=round(float(totals["cost"]), 6),
            elapsed_s=round(elapsed, 2), rate=round(own["done"] / elapsed, 3) if elapsed else 0.0,
            usage_by_model={model: {"requests": u.requests, "prompt_tokens": u.prompt_tokens,
                                    "completion_tokens": u.completion_tokens, "cost": round(u.cost, 6)}
                            for model, u in self.meter.by_model.items()},
        )

    def _report(self, summary: SynthSummary, *, force: bool = False) -> None:
        self.summary = summary
        done = summary.items_pair + summary.items_filtered + summary.items_failed
        self.ctx.progress(done, summary.items_total, summary, force=force)

    async def events(self) -> AsyncIterator[SynthEvent]:
        """The driver's events over as many rounds as the run needs; one SynthFinished at the end."""
        if any(needs_ml(spec) for spec in (self.config.critic, self.config.draft or "")):
            load_ml()
        self.backends = {role: CountingBackend(backend) for role, backend in _backends(self.engine, self.config).items()}
        method = make_method(self.config)
        store = SqlSynthesisStore(
            self.engine, job_id=self.ctx.job_id, method=self.config.method, key=self.key,
            load_subjects=load_commit_subjects if self.config.method == "commit-instruct" else load_instruction_subjects,
            worker_id=self.ctx.worker_id, lease_s=self.ctx.lease_s,
        )
        self._report(self._summary({}), force=True)
        try:
            while True:
                finished: SynthFinished | None = None
                async for event in run_synthesis(method, store, dict(self.backends), concurrency=self.config.concurrency,
                                                 meter=self.meter, cancel=self.ctx.should_stop):
                    if isinstance(event, SynthProgress):
                        self._report(self._summary(event.counters))
                        yield SynthProgress(summary_counters(self.summary))
                    elif isinstance(event, SynthFinished):
                        finished = event
                    else:
                        yield event
                assert finished is not None
                for name in (*_ADDED, "elapsed_s"):
                    if name not in ("in_flight", "http_attempts"):
                        self.rounds[name] = self.rounds.get(name, 0) + finished.counters.get(name, 0)
                self.stop_reason = finished.stop_reason
                if self.stop_reason != "done" or not self.ctx.is_owner or not await self._others_hold_items():
                    break
        finally:
            for backend in {id(b): b for b in self.backends.values()}.values():
                await backend.aclose()
        if self.ctx.is_owner:
            await asyncio.to_thread(self.ctx.wait_for_helpers)
        self._report(self._summary({}, self.stop_reason, fresh=True), force=True)
        yield SynthFinished(self.stop_reason, summary_counters(self.summary), self.summary.usage_by_model)

    async def _others_hold_items(self) -> bool:
        """Wait while other workers hold items; True when some came back (a lease ran out) to claim again."""
        while not self.ctx.should_stop():
            counts = item_counts(self.engine, self.key, lease_s=self.ctx.lease_s)
            if counts.pending:
                return True
            if not counts.claimed:
                return False
            self._report(self._summary({}, fresh=True))
            await asyncio.sleep(0.5)
        return True  # the next round sees the stop at once and ends the way it says


def summary_counters(summary: SynthSummary) -> dict[str, Any]:
    """A summary's counters as the driver's events carry them."""
    return {name: getattr(summary, name) for name in (*_ADDED, "elapsed_s", "rate")}


SYNTH = register(JobKind(
    name="synth", params_type=SynthConfig, summary_type=SynthSummary, run=run_synth,
    title=lambda config: f"{config.method} with {config.critic}", shared=True, run_key=synth_run_key,
    check=_check, has_work=_has_work,
    resume_hint="re-run the same command to resume: answers already paid for are replayed from the cache "
                "(workbench jobs resume {job_id})",
))


def run_synthesis_job(engine: Engine, config: SynthConfig) -> Generator[object, None, JobInfo]:
    """Run a configuration in the foreground as a job (or join the job already running it); yield its events."""
    _check(engine, config)
    return (yield from run_foreground(engine, SYNTH.name, config))
