"""A synthesis run as a job: pick subjects, prepare items, drive the method, record progress."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import DataError, OptionError
from core.jobs import JobCancelled, JobInfo
from core.llm.accounting import Budget, CostEstimate, Meter, Price, estimate_tokens, parse_budget, price_for
from core.llm.base import ChatBackend
from core.llm.specs import check_spec, make_backend, parse_spec
from core.mining.languages import extension_map
from core.synthesis.commit_instruct import CommitInstruct, explain_message
from core.synthesis.critic_evol import CriticEvol, critic_messages
from core.synthesis.driver import SynthCounters, SynthEvent, SynthFinished, SynthProgress, run_synthesis
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
from workbench.jobs.forms import whole_number
from workbench.jobs.llm_servers import resolve_server
from workbench.jobs.ml import load_ml, needs_ml
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, run_async, run_foreground

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
    names = {"critic": model_name_of(config.critic, engine)}
    if config.method == "critic-evol" and config.draft:
        names["draft"] = model_name_of(config.draft, engine)
    return names


def model_name_of(spec: str, engine: Engine) -> str:
    """The model name a spec's backend reports (what cache keys, accounting and lineage use)."""
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


def prepare_run(engine: Engine, config: SynthConfig, *, reopen_failed: bool = True) -> str:
    """Validate, create the items for the chosen subjects, reopen those that failed on a transport
    error (unless `reopen_failed` is off); return the config key."""
    config.validate()
    check_budget_price(engine, config)
    key = run_key(config, engine)
    subject_ids = selected_subjects(engine, config)
    if not subject_ids:
        if config.method == "commit-instruct":
            raise DataError("no mined commits in the store: run `workbench mine REPO` first")
        raise DataError("no instructions: pass --instructions FILE or import some first")
    prepare_items(engine, config.method, key, subject_ids, reopen_failed=reopen_failed)
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


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """A synthesis job's counters: its items by outcome, and the requests, tokens and cost behind them.

    `items_*` count the whole run (every worker's items); the other counters add up what each
    worker on the job did (core.synthesis.driver.SynthCounters). `requests` counts every HTTP
    attempt, retries included (`http_attempts` is the same count, under its older name).
    `failure` is the one line on failed items ("" when none failed).
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
    answered: int = 0
    new_pairs: int = 0
    duplicate_pairs: int = 0
    requests: int = 0
    http_attempts: int = 0
    retries: int = 0
    answers: int = 0
    cache_hits: int = 0
    truncated_answers: int = 0
    truncation_retries: int = 0
    tokens: int = 0
    cost: float = 0.0
    budget_in_flight: int = 0
    budget_overshoot_tokens: int = 0
    budget_overshoot_cost: float = 0.0
    elapsed_s: float = 0.0
    rate: float = 0.0
    failure: str = ""
    http_failures: dict[str, int] = field(default_factory=dict)
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    failure_examples: dict[str, str] = field(default_factory=dict)
    usage_by_model: dict[str, dict[str, float]] = field(default_factory=dict)


_ADDED = ("done", "pairs", "filtered", "failed", "released", "in_flight", "answered", "new_pairs", "duplicate_pairs",
          "requests", "retries", "answers", "cache_hits", "truncated_answers", "truncation_retries", "tokens", "cost",
          "budget_in_flight", "budget_overshoot_tokens", "budget_overshoot_cost")
_MERGED = ("http_failures", "failed_by_kind")  # counts by kind, added key by key


def synth_run_key(engine: Engine, config: SynthConfig) -> str:
    """The run a synthesis job advances: its configuration's items."""
    return f"synth:{run_key(config, engine)}"


def _check(engine: Engine, config: SynthConfig) -> None:
    config.validate()
    check_budget_price(engine, config)
    if config.method == "commit-instruct" and not select_commit_ids(engine, limit=1, language=config.language):
        raise DataError("no mined commits in the store: run `workbench mine REPO` first")
    if config.method == "critic-evol" and not config.instruction_ids:
        raise DataError("no instructions: pass --instructions FILE or import some first")


def _has_work(engine: Engine, _job_id: int, config: SynthConfig, lease_s: float) -> bool:
    # A budget is one meter's: helpers with their own meters would spend it several times over.
    if config.budget:
        return False
    return item_counts(engine, run_key(config, engine), lease_s=lease_s, subject_ids=run_scope(engine, config)).pending > 0


def run_synth(ctx: JobContext, config: SynthConfig) -> Generator[SynthEvent, None, SynthSummary]:
    """Drive a configuration's pending items through its method as a job (owner or helper).

    The owner prepares the items, and once it cannot claim more it waits for the items other
    workers hold, claiming again those whose lease runs out, so that the job ends when every
    item has its outcome. Budget reached: cancelled, saying so; re-running resumes. Items that
    failed make the job `failed` with one line (`synth_failure`), its counters kept.
    """
    drive = _Drive(ctx, config)
    try:
        with closing(run_async(drive.events())) as events:
            yield from events
    finally:
        release_claims(ctx.engine, drive.key, ctx.worker_id)
    if drive.stop_reason == "budget":
        summary = drive.summary
        spent = f"{summary.tokens:,} tokens" + (f", ${summary.cost:.4f}" if drive.meter.budget.max_cost is not None else "")
        raise JobCancelled(f"budget reached ({drive.meter.budget.describe()}; spent {spent}, "
                           f"{summary.budget_in_flight} requests were already in flight)"
                           + (f"; {summary.failure}" if summary.failure else ""))
    if drive.stop_reason != "done":
        raise ctx.stop_exception()
    return drive.summary


def synth_failure(summary: SynthSummary) -> str | None:
    """The job's error line when items failed (the run still ends with every counter kept)."""
    return summary.failure or None


class ClaimedRunDrive:
    """One worker's drive of a run whose items workers claim (synthesis, Code-Optimise sampling).

    Runs rounds of the synthesis driver (`claimed_rounds`), keeps their counters in `rounds`, reads
    the store's item counts of the run `key` at most every second, and ends with the job's summary
    stored and one SynthFinished. `scope` is the subject ids this job covers (None: all of the run);
    with `summary_in_scope` the summary counts the scope's items, otherwise the whole run's.
    Subclasses give `_summary`, `_report` and `_event_counters`.
    """

    summary: Any

    def __init__(self, ctx: JobContext, key: str, scope: Sequence[int] | None, meter: Meter, *,
                 summary_in_scope: bool) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.key = key
        self.scope = scope
        self.meter = meter
        self.stop_reason = ""
        self.rounds: list[SynthCounters] = []
        self._summary_in_scope = summary_in_scope
        self._counted: tuple[ItemCounts, list[dict[str, Any]]] = (ItemCounts(), [])
        self._counted_at = float("-inf")

    def _summary(self, current: SynthCounters | None, stop_reason: str = "", *, fresh: bool = False) -> Any:
        raise NotImplementedError

    def _report(self, summary: Any, *, force: bool = False) -> None:
        raise NotImplementedError

    def _event_counters(self, summary: Any) -> dict[str, Any]:
        """A summary's counters as the driver's events carry them."""
        raise NotImplementedError

    def _stored_counts(self, fresh: bool) -> tuple[ItemCounts, list[dict[str, Any]]]:
        """The run's item counts and the helpers' counters, read from the store at most every second."""
        if fresh or time.monotonic() - self._counted_at >= 1.0:
            helpers = self.ctx.helper_counters() if self.ctx.is_owner else []
            counts = item_counts(self.engine, self.key, subject_ids=self.scope if self._summary_in_scope else None)
            self._counted = (counts, helpers)
            self._counted_at = time.monotonic()
        return self._counted

    async def drive(self, start_round: Callable[[SynthCounters], AsyncGenerator[SynthEvent, None]],
                    backends: Iterable[ChatBackend]) -> AsyncGenerator[SynthEvent, None]:
        """The driver's events over as many rounds as the run needs; one SynthFinished at the end.
        The `backends` are closed when the rounds end, however they end."""
        self._report(self._summary(None), force=True)
        try:
            async with aclosing(claimed_rounds(self.ctx, start_round, self.rounds, self._progress,
                                               self._remaining)) as stream:
                async for event in stream:
                    if isinstance(event, SynthFinished):
                        self.stop_reason = event.stop_reason
                    else:
                        yield event
        finally:
            for backend in {id(b): b for b in backends}.values():
                await backend.aclose()
            self.summary = self._summary(None, self.stop_reason or "interrupted", fresh=True)
            self.ctx.summary = self.summary  # what the lifecycle stores if the job ends here
        if self.ctx.is_owner:
            await asyncio.to_thread(self.ctx.wait_for_helpers)
        self._report(self._summary(None, self.stop_reason, fresh=True), force=True)
        yield SynthFinished(self.stop_reason, self._event_counters(self.summary), self.summary.usage_by_model)

    async def _progress(self, counters: SynthCounters) -> SynthProgress:
        await asyncio.to_thread(self._report, self._summary(counters))
        return SynthProgress(self._event_counters(self.summary))

    def _remaining(self) -> tuple[int, int]:
        counts = item_counts(self.engine, self.key, lease_s=self.ctx.lease_s, subject_ids=self.scope)
        if counts.claimed and not counts.pending:
            self._report(self._summary(None, fresh=True))
        return counts.pending, counts.claimed


class _Drive(ClaimedRunDrive):
    """One worker's drive of a synthesis run, with the driver's counters summed over its rounds."""

    def __init__(self, ctx: JobContext, config: SynthConfig) -> None:
        self.config = config
        # A job taken over from a worker that died goes on where it was: what ended, ended once.
        key = (prepare_run(ctx.engine, config, reopen_failed=ctx.job.attempts <= 1) if ctx.is_owner
               else run_key(config, ctx.engine))
        super().__init__(ctx, key, run_scope(ctx.engine, config),
                         Meter(budget=parse_budget(config.budget), prices=config.prices), summary_in_scope=False)
        self.summary = SynthSummary(config_key=self.key)
        # Items of the scope already finished before this job (a --limit run over a bigger store).
        self._done_before = _finished_in_scope(self.engine, self.key, self.scope) if self.scope is not None else 0

    def _summary(self, current: SynthCounters | None, stop_reason: str = "", *, fresh: bool = False) -> SynthSummary:
        rounds = [*self.rounds, *([current] if current is not None else [])]
        own: dict[str, Any] = {name: sum(getattr(c, name) for c in rounds) for name in _ADDED if name != "in_flight"}
        own["in_flight"] = current.in_flight if current is not None else 0
        merged: dict[str, dict[str, int]] = {name: {} for name in _MERGED}
        examples: dict[str, str] = {}
        for counters in rounds:
            for name in _MERGED:
                for kind, n in getattr(counters, name).items():
                    merged[name][kind] = merged[name].get(kind, 0) + n
            for family, example in counters.failure_examples.items():
                examples.setdefault(family, example)
        totals = dict(own)
        final, helpers = self._stored_counts(fresh)
        for helper in helpers:  # the owner's summary adds what the helpers reported
            for name in _ADDED:
                totals[name] = totals.get(name, 0) + (helper.get(name) or 0)
            for name in _MERGED:
                for kind, n in (helper.get(name) or {}).items():
                    merged[name][kind] = merged[name].get(kind, 0) + int(n)
            for family, example in (helper.get("failure_examples") or {}).items():
                examples.setdefault(family, str(example))
        # The store's item counts, not the workers' counters: a killed worker's last counters never arrive.
        failure = SynthCounters(done=final.pair + final.filtered + final.failed, failed=final.failed,
                                failed_by_kind=merged["failed_by_kind"], failure_examples=examples).failure_line()
        elapsed = sum(c.elapsed_s for c in rounds)
        return SynthSummary(
            config_key=self.key, stop_reason=stop_reason, items_total=final.total, items_pair=final.pair,
            items_filtered=final.filtered, items_failed=final.failed, items_pending=final.pending + final.claimed,
            **{name: int(totals[name]) for name in _ADDED if not name.endswith("cost")},
            cost=round(float(totals["cost"]), 6), budget_overshoot_cost=round(float(totals["budget_overshoot_cost"]), 6),
            http_attempts=int(totals["requests"]), elapsed_s=round(elapsed, 2),
            rate=round(own["done"] / elapsed, 3) if elapsed else 0.0, failure=failure,
            http_failures=merged["http_failures"], failed_by_kind=merged["failed_by_kind"], failure_examples=examples,
            usage_by_model={model: {"requests": u.requests, "prompt_tokens": u.prompt_tokens,
                                    "completion_tokens": u.completion_tokens, "cost": round(u.cost, 6)}
                            for model, u in self.meter.by_model.items()},
        )

    def _report(self, summary: SynthSummary, *, force: bool = False) -> None:
        self.summary = summary
        if self.scope is None:
            done, total = summary.items_pair + summary.items_filtered + summary.items_failed, summary.items_total
        else:
            total = len(self.scope)
            done = min(total, self._done_before + summary.done)
        self.ctx.progress(done, total, summary, force=force)

    async def events(self) -> AsyncIterator[SynthEvent]:
        """The driver's events over as many rounds as the run needs; one SynthFinished at the end."""
        if any(needs_ml(spec) for spec in (self.config.critic, self.config.draft or "")):
            load_ml()
        backends = _backends(self.engine, self.config)
        method = make_method(self.config)
        store = SqlSynthesisStore(
            self.engine, job_id=self.ctx.job_id, method=self.config.method, key=self.key,
            load_subjects=load_commit_subjects if self.config.method == "commit-instruct" else load_instruction_subjects,
            worker_id=self.ctx.worker_id, lease_s=self.ctx.lease_s, scope=self.scope,
        )
        rounds = self.drive(
            lambda counters: run_synthesis(method, store, backends, concurrency=self.config.concurrency,
                                           meter=self.meter, cancel=self.ctx.should_stop, counters=counters),
            backends.values())
        async with aclosing(rounds) as events:
            async for event in events:
                yield event

    def _event_counters(self, summary: SynthSummary) -> dict[str, Any]:
        return summary_counters(summary)


async def claimed_rounds(ctx: JobContext, start_round: Callable[[SynthCounters], AsyncGenerator[SynthEvent, None]],
                         rounds: list[SynthCounters], progress: Callable[[SynthCounters], Awaitable[SynthProgress]],
                         remaining: Callable[[], tuple[int, int]]) -> AsyncGenerator[SynthEvent, None]:
    """Rounds of the synthesis driver over claimed items, for a job that workers share.

    Each round's counters are appended to `rounds` (an interrupted round's too). A round that ends
    `done` is followed by another when the job's owner finds items come back to claim (a helper's
    lease ran out); `remaining()` gives (claimable, held by others). Yields the driver's events, each
    progress event as `progress(counters)` makes it, and last the final round's SynthFinished.
    """
    counters: SynthCounters | None = None
    try:
        while True:
            finished: SynthFinished | None = None
            counters = SynthCounters()
            # Closed here, not by the loop's shutdown_asyncgens later: an interrupted round's outcomes
            # still being written must land in `counters` before the job's last summary is taken.
            async with aclosing(start_round(counters)) as stream:
                async for event in stream:
                    if isinstance(event, SynthProgress):
                        yield await progress(counters)
                    elif isinstance(event, SynthFinished):
                        finished = event
                    else:
                        yield event
            assert finished is not None
            rounds.append(counters)
            counters = None
            if finished.stop_reason != "done" or not ctx.is_owner or not await _items_came_back(ctx, remaining):
                yield finished
                return
    finally:
        if counters is not None:  # interrupted mid-round: what it did still counts
            rounds.append(counters)


async def _items_came_back(ctx: JobContext, remaining: Callable[[], tuple[int, int]]) -> bool:
    """Wait while other workers hold items of the run; True when some came back (a lease ran out)."""
    while not ctx.should_stop():
        claimable, held = remaining()
        if claimable:
            return True
        if not held:
            return False
        await asyncio.sleep(0.5)
    return True  # the next round sees the stop at once and ends the way it says


def summary_counters(summary: SynthSummary) -> dict[str, Any]:
    """A summary's counters as the driver's events carry them (SynthCounters.snapshot's names)."""
    names = (*_ADDED, *_MERGED, "http_attempts", "elapsed_s", "rate", "failure")
    return {name: getattr(summary, name) for name in names}


def _finished_in_scope(engine: Engine, key: str, scope: Sequence[int] | None) -> int:
    counts = item_counts(engine, key)
    if scope is None:
        return counts.pair + counts.filtered + counts.failed
    pending = set(pending_subject_ids(engine, key))
    return sum(1 for subject in scope if subject not in pending)


SYNTH = register(JobKind(
    name="synth", params_type=SynthConfig, summary_type=SynthSummary, run=run_synth,
    title=lambda config: f"{config.method} with {config.critic}", shared=True, run_key=synth_run_key,
    check=_check, has_work=_has_work, failure=synth_failure,
    resume_hint="re-run the same command to resume: answers already paid for are replayed from the cache "
                "(workbench jobs resume {job_id})",
))


def run_synthesis_job(engine: Engine, config: SynthConfig, *, cancel: Callable[[], bool] | None = None
                      ) -> Generator[object, None, JobInfo]:
    """Run a configuration in the foreground as a job (or join the job already running it); yield its events.

    `cancel`, polled between events, stops it like a cancel from any front end.
    """
    _check(engine, config)
    stop = threading.Event()
    with closing(run_foreground(engine, SYNTH.name, config, cancel=stop)) as events:
        while True:
            if cancel is not None and cancel():
                stop.set()
            try:
                event = next(events)
            except StopIteration as end:
                info: JobInfo = end.value
                return info
            yield event
