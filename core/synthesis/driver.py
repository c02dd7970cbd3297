"""The async driver: claims work items, walks each state machine, and reports events by time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

from core.errors import LLMError
from core.llm.accounting import Meter, cache_key
from core.llm.base import ChatBackend, ChatRequest, ChatResult
from core.synthesis.steps import Answered, Exchange, Failed, Filtered, Outcome, PairDraft, SynthesisMethod, Turn


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A claimed item: its id in the store and the subject the method works on."""

    item_id: int
    subject: Any


class SynthesisStore(Protocol):
    """Where the driver claims items, reads the response cache, and records every exchange and outcome."""

    def claim(self, limit: int) -> list[WorkItem]:
        """Claim up to `limit` pending items for this run."""
        ...

    def cached(self, key: str) -> ChatResult | None:
        """A stored answer for this cache key, if any."""
        ...

    def record_exchange(self, item_id: int, turn: Turn, model: str, prompt_version: str, key: str,
                        result: ChatResult) -> int:
        """Store one exchange (and its answer in the cache); return its conversation id."""
        ...

    def finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> None:
        """Record the item's one outcome (and its pair) in one transaction."""
        ...

    def release(self, item_id: int) -> None:
        """Give an unfinished item back (budget reached, cancelled) so a later run resumes it."""
        ...


@dataclass
class SynthCounters:
    """Live counters of one run."""

    claimed: int = 0
    done: int = 0
    pairs: int = 0
    answers: int = 0
    filtered: int = 0
    failed: int = 0
    released: int = 0
    in_flight: int = 0
    requests: int = 0
    cache_hits: int = 0
    tokens: int = 0
    cost: float = 0.0
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        """Items finished per second."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        """Plain values for a job summary or an event."""
        return {
            "done": self.done, "pairs": self.pairs, "answers": self.answers, "filtered": self.filtered,
            "failed": self.failed, "released": self.released, "in_flight": self.in_flight, "requests": self.requests,
            "cache_hits": self.cache_hits, "tokens": self.tokens, "cost": round(self.cost, 6),
            "elapsed_s": round(self.elapsed_s, 2), "rate": round(self.rate, 3),
        }


@dataclass(frozen=True, slots=True)
class SynthProgress:
    """Counters at a moment of the run (emitted at most every `progress_interval_s`)."""

    counters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ItemFinished:
    """One item reached its outcome."""

    item_id: int
    outcome: str  # pair | answer | filtered | failed
    reason: str


@dataclass(frozen=True, slots=True)
class SynthFinished:
    """The run ended: why (done, budget, cancelled) and the final counters."""

    stop_reason: str
    counters: dict[str, Any]
    usage_by_model: dict[str, dict[str, float]] = field(default_factory=dict)


SynthEvent = Union[SynthProgress, ItemFinished, SynthFinished]


class _Stop(Exception):
    """No new request may start (budget reached or cancel requested)."""


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
) -> AsyncIterator[SynthEvent]:
    """Run every pending item through `method` with at most `concurrency` items in flight.

    Answers already in the cache are replayed without a request, so a resumed run never pays twice.
    Once the budget is used up or `cancel()` is true, no new request starts; unfinished items go
    back to pending and the run ends with `SynthFinished(stop_reason="budget" | "cancelled")`.
    """
    meter = meter or Meter()
    counters = SynthCounters()
    started = clock()
    stop_reason = ""

    def should_stop() -> str:
        nonlocal stop_reason
        if not stop_reason:
            if meter.exhausted():
                stop_reason = "budget"
            elif cancel():
                stop_reason = "cancelled"
        return stop_reason

    async def ask(item: WorkItem, turn: Turn) -> tuple[ChatResult, int]:
        backend = backends[turn.role]
        key = cache_key(backend.model_name, method.prompt_version, turn.messages, turn.params)
        result = store.cached(key)
        if result is not None:
            counters.cache_hits += 1
            meter.cache_hits += 1
        else:
            if should_stop():
                raise _Stop
            counters.in_flight += 1
            try:
                result = await backend.chat(ChatRequest(turn.messages, turn.params))
            finally:
                counters.in_flight -= 1
            counters.requests += 1
            meter.add(backend.model_name, result)
        conversation_id = store.record_exchange(
            item.item_id, turn, backend.model_name, method.prompt_version, key, result
        )
        return result, conversation_id

    async def process(item: WorkItem) -> ItemFinished | None:
        exchanges: tuple[Exchange, ...] = ()
        conversation_id: int | None = None
        while True:
            try:
                step = method.next_step(item.subject, exchanges)
            except Exception as exc:  # a parser bug must not lose the item or stop the run
                step = Failed(f"internal error while parsing: {type(exc).__name__}: {exc}")
            if not isinstance(step, Turn):
                store.finish_item(item.item_id, step, conversation_id)
                reason = step.reason if isinstance(step, (Filtered, Failed)) else ""
                return ItemFinished(item.item_id, outcome_label(step), reason)
            try:
                result, conversation_id = await ask(item, step)
            except _Stop:
                store.release(item.item_id)
                counters.released += 1
                return None
            except LLMError as exc:
                outcome = Failed(f"llm error at step {step.step}: {exc}", retryable=True)
                store.finish_item(item.item_id, outcome, conversation_id)
                return ItemFinished(item.item_id, "failed", outcome.reason)
            exchanges = (*exchanges, Exchange(step, result.text, result.finish_reason))

    def count(finished: ItemFinished) -> None:
        counters.done += 1
        if finished.outcome == "pair":
            counters.pairs += 1
        elif finished.outcome == "answer":
            counters.answers += 1
        elif finished.outcome == "filtered":
            counters.filtered += 1
        else:
            counters.failed += 1

    def refresh() -> dict[str, Any]:
        counters.elapsed_s = clock() - started
        counters.tokens = meter.tokens
        counters.cost = meter.cost
        return counters.snapshot()

    tasks: set[asyncio.Task[ItemFinished | None]] = set()
    exhausted_queue = False
    last_progress = float("-inf")
    try:
        while True:
            free = concurrency - len(tasks)
            if free > 0 and not exhausted_queue and not should_stop():
                claimed = store.claim(free)
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
                    count(finished)
                    yield finished
            if clock() - last_progress >= progress_interval_s:
                last_progress = clock()
                yield SynthProgress(refresh())
    finally:
        for task in tasks:  # the caller stopped iterating: give unfinished items back
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    usage = {
        model: {"requests": u.requests, "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens, "cost": round(u.cost, 6)}
        for model, u in meter.by_model.items()
    }
    yield SynthFinished(stop_reason or "done", refresh(), usage)
