"""The async driver: claims work items, walks each state machine, and reports events by time."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar, Union

from core.errors import LLMError
from core.llm.accounting import Meter, cache_key
from core.llm.base import TRUNCATED_REASONS, CallStats, ChatBackend, ChatRequest, ChatResult
from core.synthesis.steps import Answered, Exchange, Failed, Filtered, Outcome, PairDraft, SynthesisMethod, Turn
from core.textsafe import one_line

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A claimed item: its id in the store and the subject the method works on."""

    item_id: int
    subject: Any


PairStored = Literal["new", "duplicate"]


class SynthesisStore(Protocol):
    """Where the driver claims items, reads the response cache, and records every exchange and outcome.

    Its methods block (SQL); the driver calls them in worker threads, never on the event loop.
    """

    def claim(self, limit: int) -> list[WorkItem]:
        """Claim up to `limit` pending items for this run."""
        ...

    def cached(self, key: str) -> ChatResult | None:
        """A stored final answer for this cache key, if any (never a truncated one)."""
        ...

    def record_exchange(self, item_id: int, turn: Turn, model: str, prompt_version: str, key: str,
                        result: ChatResult) -> int:
        """Store one exchange (and, unless truncated, its answer in the cache); return its conversation id."""
        ...

    def finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> PairStored | None:
        """Record the item's one outcome (and its pair) in one transaction; say whether the pair was new."""
        ...

    def release(self, item_id: int) -> None:
        """Give an unfinished item back (budget reached, cancelled) so a later run resumes it."""
        ...


# Item failures by cause, as counted in `failed_by_kind` (LLM errors add the request's kind: llm:timeout).
FAILURE_LABELS = {"llm": ("LLM request failed", "LLM requests failed"),
                  "truncated": ("answer cut at max_tokens", "answers cut at max_tokens"),
                  "answer": ("unusable answer", "unusable answers"),
                  "internal": ("internal error", "internal errors")}


@dataclass
class SynthCounters:
    """Live counters of one run; every field is per run.

    `requests` are HTTP attempts (or local generations) including retries, `answers` the answers
    paid for, `cache_hits` answers replayed from the cache. `pairs` counts items that ended in a
    pair: `new_pairs` were stored, `duplicate_pairs` already existed (same content hash);
    `answered` items whose product is one answer (arena answers and verdicts).
    `failed_by_kind` counts failed items by cause (llm:KIND, truncated, answer, internal);
    `http_failures` failed attempts by kind (see core.llm.base.CallStats). `budget_in_flight` is
    how many requests were still in flight when the budget was reached, `budget_overshoot_*` what
    they spent beyond it.
    """

    claimed: int = 0
    done: int = 0
    pairs: int = 0
    answered: int = 0
    new_pairs: int = 0
    duplicate_pairs: int = 0
    filtered: int = 0
    failed: int = 0
    released: int = 0
    in_flight: int = 0
    requests: int = 0
    retries: int = 0
    answers: int = 0
    cache_hits: int = 0
    truncated_answers: int = 0
    truncation_retries: int = 0
    tokens: int = 0
    cost: float = 0.0
    elapsed_s: float = 0.0
    budget_in_flight: int = 0
    budget_overshoot_tokens: int = 0
    budget_overshoot_cost: float = 0.0
    http_failures: dict[str, int] = field(default_factory=dict)
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    failure_examples: dict[str, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Items finished per second."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count_failure(self, kind: str, reason: str) -> None:
        """Count one failed item of this kind, keeping the first reason as an example."""
        self.failed_by_kind[kind] = self.failed_by_kind.get(kind, 0) + 1
        self.failure_examples.setdefault(kind.split(":")[0], reason)

    def failure_line(self) -> str:
        """One line on how many items failed and why; "" when none did."""
        if not self.failed:
            return ""
        families: dict[str, int] = {}
        for kind, count in self.failed_by_kind.items():
            family = kind.split(":")[0]
            families[family] = families.get(family, 0) + count
        parts = []
        for family, count in sorted(families.items(), key=lambda entry: -entry[1]):
            label = FAILURE_LABELS.get(family, (family, family))[0 if count == 1 else 1]
            example = one_line(self.failure_examples.get(family, ""), 200)
            parts.append(f"{count} {label} ({'e.g. ' if count > 1 else ''}{example})")
        return f"{self.failed} of {self.done} items failed: " + "; ".join(parts)

    def snapshot(self) -> dict[str, Any]:
        """Plain values for a job summary or an event."""
        values = asdict(self)
        values.pop("failure_examples")
        values["cost"] = round(self.cost, 6)
        values["budget_overshoot_cost"] = round(self.budget_overshoot_cost, 6)
        values["elapsed_s"] = round(self.elapsed_s, 2)
        values["rate"] = round(self.rate, 3)
        values["failure"] = self.failure_line()
        return values


@dataclass(frozen=True, slots=True)
class SynthProgress:
    """Counters at a moment of the run (emitted at most every `progress_interval_s`)."""

    counters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ItemFinished:
    """One item reached its outcome; `kind` says why a failed item failed (see SynthCounters)."""

    item_id: int
    outcome: str  # pair | answer | filtered | failed
    reason: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class SynthFinished:
    """The run ended: why (done, budget, cancelled) and the final counters."""

    stop_reason: str
    counters: dict[str, Any]
    usage_by_model: dict[str, dict[str, float]] = field(default_factory=dict)


SynthEvent = Union[SynthProgress, ItemFinished, SynthFinished]


class _Stop(Exception):
    """No new request may start (budget reached or cancel requested)."""


class _Truncated(Exception):
    """Every attempt at a turn was cut at max_tokens."""

    def __init__(self, max_tokens: int, attempts: int, conversation_id: int) -> None:
        super().__init__(f"the answer was cut at max_tokens={max_tokens} after {attempts} attempts")
        self.conversation_id = conversation_id


def outcome_label(outcome: Outcome) -> str:
    """pair, answer, filtered or failed."""
    if isinstance(outcome, PairDraft):
        return "pair"
    if isinstance(outcome, Answered):
        return "answer"
    return "filtered" if isinstance(outcome, Filtered) else "failed"


async def run_synthesis(
    method: SynthesisMethod,
    store: SynthesisStore,
    backends: Mapping[str, ChatBackend],
    *,
    concurrency: int = 16,
    meter: Meter | None = None,
    cancel: Callable[[], bool] = lambda: False,
    progress_interval_s: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    counters: SynthCounters | None = None,
    truncation_retries: int = 2,
    store_threads: int = 4,
    keep_truncated: bool = False,
) -> AsyncGenerator[SynthEvent, None]:
    """Run every pending item through `method` with at most `concurrency` items in flight.

    Answers already in the cache are replayed without a request, so a resumed run never pays twice.
    An answer cut at max_tokens is kept as a conversation but never cached, and the turn is asked
    again with twice the max_tokens, `truncation_retries` times; then the item fails (retryable,
    so a later run tries again) and never becomes a pair. Once the budget is used up or `cancel()`
    is true, no new request starts; unfinished items go back to pending and the run ends with
    `SynthFinished(stop_reason="budget" | "cancelled")`. Store calls run in `store_threads` worker
    threads, so a store that is slow or locked never stalls the requests in flight. Pass
    `counters` to read them even if the run is interrupted. With `keep_truncated` a cut answer is
    the item's answer like any other (sampling for execution: a cut solution is a failing sample,
    and asking again until it fits would bias pass@k upwards).
    """
    meter = meter or Meter()
    counters = counters if counters is not None else SynthCounters()
    started = clock()
    stop_reason = ""
    unique_backends = list({id(b): b for b in backends.values()}.values())
    stats_at_start = [_stats_of(backend) for backend in unique_backends]
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=store_threads, thread_name_prefix="synth-store")

    async def off_loop(function: Callable[..., _T], *args: Any) -> _T:
        return await loop.run_in_executor(executor, functools.partial(function, *args))

    def sync_usage() -> None:
        attempts = retries = 0
        failures: dict[str, int] = {}
        for backend, before in zip(unique_backends, stats_at_start):
            now = _stats_of(backend)
            attempts += now.attempts - before.attempts
            retries += now.retries - before.retries
            for kind, count in now.failures.items():
                delta = count - before.failures.get(kind, 0)
                if delta:
                    failures[kind] = failures.get(kind, 0) + delta
        counters.requests, counters.retries, counters.http_failures = attempts, retries, failures
        counters.tokens, counters.cost = meter.tokens, meter.cost

    def should_stop() -> str:
        nonlocal stop_reason
        if not stop_reason:
            if meter.exhausted():
                stop_reason = "budget"
                counters.budget_in_flight = counters.in_flight
            elif cancel():
                stop_reason = "cancelled"
        return stop_reason

    async def ask(item: WorkItem, turn: Turn) -> tuple[ChatResult, int]:
        backend = backends[turn.role]
        params = turn.params
        for attempt in range(truncation_retries + 1):
            asked = replace(turn, params=params)
            key = cache_key(backend.model_name, method.prompt_version, turn.messages, params)
            result = await off_loop(store.cached, key)
            if result is not None and not result.truncated:
                counters.cache_hits += 1
                meter.cache_hits += 1
            else:
                if should_stop():
                    raise _Stop
                counters.in_flight += 1
                try:
                    result = await backend.chat(ChatRequest(turn.messages, params))
                finally:
                    counters.in_flight -= 1
                    sync_usage()
                counters.answers += 1
                meter.add(backend.model_name, result)
                sync_usage()
            conversation_id = await off_loop(
                store.record_exchange, item.item_id, asked, backend.model_name, method.prompt_version, key, result
            )
            if not result.truncated or keep_truncated:
                return result, conversation_id
            counters.truncated_answers += 1
            if attempt == truncation_retries:
                raise _Truncated(params.max_tokens, attempt + 1, conversation_id)
            counters.truncation_retries += 1
            params = replace(params, max_tokens=params.max_tokens * 2)
        raise AssertionError("unreachable")

    pending_writes: set[asyncio.Future[PairStored | None]] = set()

    def count(written: asyncio.Future[PairStored | None], finished: ItemFinished) -> None:
        # Counted when the outcome is in the store, even if the run was interrupted meanwhile.
        pending_writes.discard(written)
        if written.cancelled() or written.exception() is not None:
            return
        counters.done += 1
        if finished.outcome == "pair":
            counters.pairs += 1
            stored = written.result()
            counters.new_pairs += stored == "new"
            counters.duplicate_pairs += stored == "duplicate"
        elif finished.outcome == "answer":
            counters.answered += 1
        elif finished.outcome == "filtered":
            counters.filtered += 1
        else:
            counters.failed += 1
            counters.count_failure(finished.kind, finished.reason)

    async def finish(item: WorkItem, outcome: Outcome, conversation_id: int | None, kind: str = "") -> ItemFinished:
        if isinstance(outcome, Failed):
            finished = ItemFinished(item.item_id, "failed", outcome.reason, kind or "answer")
        else:
            finished = ItemFinished(item.item_id, outcome_label(outcome),
                                    outcome.reason if isinstance(outcome, Filtered) else "")
        written = loop.run_in_executor(executor, functools.partial(store.finish_item, item.item_id, outcome,
                                                                   conversation_id))
        pending_writes.add(written)
        written.add_done_callback(functools.partial(count, finished=finished))
        await asyncio.shield(written)
        return finished

    async def process(item: WorkItem) -> ItemFinished | None:
        exchanges: tuple[Exchange, ...] = ()
        conversation_id: int | None = None
        while True:
            try:
                step = method.next_step(item.subject, exchanges)
            except Exception as exc:  # a parser bug must not lose the item or stop the run
                return await finish(item, Failed(f"internal error while parsing: {type(exc).__name__}: {exc}"),
                                    conversation_id, "internal")
            if isinstance(step, (PairDraft, Answered)) and not keep_truncated and any(e.finish_reason in TRUNCATED_REASONS for e in exchanges):
                return await finish(item, Failed("an answer was cut at max_tokens", retryable=True),
                                    conversation_id, "truncated")
            if not isinstance(step, Turn):
                return await finish(item, step, conversation_id)
            try:
                result, conversation_id = await ask(item, step)
            except _Stop:
                await off_loop(store.release, item.item_id)
                counters.released += 1
                return None
            except _Truncated as exc:
                outcome = Failed(f"step {step.step}: {exc}", retryable=True)
                return await finish(item, outcome, exc.conversation_id, "truncated")
            except LLMError as exc:
                outcome = Failed(f"llm error at step {step.step}: {exc}", retryable=True)
                return await finish(item, outcome, conversation_id, "llm:" + getattr(exc, "kind", "error"))
            except Exception as exc:  # a backend bug fails this item, never the run
                outcome = Failed(f"unexpected {type(exc).__name__} at step {step.step}: {exc}", retryable=True)
                return await finish(item, outcome, conversation_id, "internal")
            exchanges = (*exchanges, Exchange(step, result.text, result.finish_reason))

    def refresh() -> dict[str, Any]:
        counters.elapsed_s = clock() - started
        sync_usage()
        if stop_reason == "budget":
            budget = meter.budget
            if budget.max_tokens is not None:
                counters.budget_overshoot_tokens = max(0, meter.tokens - budget.max_tokens)
            if budget.max_cost is not None:
                counters.budget_overshoot_cost = max(0.0, meter.cost - budget.max_cost)
        return counters.snapshot()

    tasks: set[asyncio.Task[ItemFinished | None]] = set()
    exhausted_queue = False
    last_progress = float("-inf")
    try:
        while True:
            free = concurrency - len(tasks)
            if free > 0 and not exhausted_queue and not should_stop():
                claimed = await off_loop(store.claim, free)
                counters.claimed += len(claimed)
                if len(claimed) < free:
                    exhausted_queue = True
                tasks.update(asyncio.create_task(process(item)) for item in claimed)
            if not tasks:
                break
            done, tasks = await asyncio.wait(tasks, timeout=progress_interval_s,
                                             return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                finished = task.result()
                if finished is not None:
                    yield finished
            if clock() - last_progress >= progress_interval_s:
                last_progress = clock()
                yield SynthProgress(refresh())
    finally:
        for task in tasks:  # the caller stopped iterating: give unfinished items back
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if pending_writes:  # outcomes being written when the run stopped: let them land and be counted
            await asyncio.gather(*pending_writes, return_exceptions=True)
        executor.shutdown(wait=False)
    usage = {
        model: {"requests": u.requests, "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens, "cost": round(u.cost, 6)}
        for model, u in meter.by_model.items()
    }
    yield SynthFinished(stop_reason or "done", refresh(), usage)


def _stats_of(backend: ChatBackend) -> CallStats:
    # Test doubles and older backends may keep no stats: they count as sending nothing.
    stats = getattr(backend, "stats", None)
    return stats.copy() if isinstance(stats, CallStats) else CallStats()
