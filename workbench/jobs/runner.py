"""The one job lifecycle, shared by every kind, in a worker or in the foreground of a CLI command.

A runner is a generator `run(ctx, params)` that yields its stage's events and returns its typed
summary. `execute` turns how it ends into the job's state, the same way for every kind:

- it returns: `done` (or `failed` when the kind's `failure(summary)` gives a line: the work ran,
  but some of it failed);
- a cancel from any front end (`ctx.check()` raises JobCancelled), Ctrl-C (KeyboardInterrupt), or
  the caller dropping the generator: `cancelled`, with the last counters it reported and a hint
  on how to resume;
- its worker shuts down (JobReleased): back to `queued`, counters kept, for another worker;
- another worker took the job over (JobLost): nothing more is written;
- any other exception: `failed`, with one line saying why.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from contextlib import closing
from dataclasses import dataclass, is_dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from core.errors import OptionError, WorkbenchError
from core.jobs import JobCancelled, JobInfo, JobInterrupted, JobLost, JobReleased, JobState, lease_seconds
from stores.jobs import (
    claim_job,
    create_job,
    find_active_job,
    finish_job,
    get_job,
    heartbeat,
    is_cancel_requested,
    job_shares,
    join_job,
    record_share,
    release_job,
    update_job,
)
from workbench.jobs.registry import JobKind, job_kind

E = TypeVar("E")


def new_worker_id(prefix: str = "w") -> str:
    """A worker id unique across machines (no host name or pid in it: those are only labels)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def worker_label(role: str) -> str:
    """What a person sees for a worker: role, host and pid (never used to decide liveness)."""
    return f"{role} on {socket.gethostname()} pid {os.getpid()}"


def one_line(exc: BaseException) -> str:
    """An exception as the one line a job's error shows."""
    text = str(exc).strip().splitlines()
    if isinstance(exc, WorkbenchError) and text:
        return text[0]
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class JobStarted:
    """The job row exists (and this process works on it): front ends can show its id."""

    job_id: int
    kind: str
    role: str  # owner | helper


class JobContext:
    """A job as its runner sees it: cancel checks, throttled progress, and the summary so far.

    A worker's heartbeat thread (or the foreground's) sets the stop events; `check()` turns them
    into the exception the lifecycle maps to a state. A helper (a worker that joined a shared job)
    reports its counters to its own part of the job; the owner writes the job row.
    """

    def __init__(
        self,
        engine: Engine,
        job: JobInfo,
        *,
        worker_id: str,
        role: str = "owner",
        lease_s: float | None = None,
        parent: JobContext | None = None,
        resources: Mapping[str, Any] | None = None,
        cancel: threading.Event | None = None,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.job = job
        self.job_id = job.id
        self.worker_id = worker_id
        self.role = role
        self.lease_s = lease_s or lease_seconds()
        self.parent = parent
        # Objects a foreground caller already holds (a loaded judge); never stored, never in a worker.
        self.resources: Mapping[str, Any] = resources or {}
        self.cancel_event = cancel or threading.Event()
        self.release_event = threading.Event()
        self.lost_event = threading.Event()
        self.summary: Any = None
        self.done = job.done
        self.total = job.total
        self._min_interval = min_interval
        self._clock = clock
        self._last_write = float("-inf")
        self._last_poll = float("-inf")

    @property
    def is_owner(self) -> bool:
        """True for the worker that owns the job (and ends it); False for a helper."""
        return self.role == "owner"

    def _poll(self) -> None:
        # Read here too (at most once a second), not only by the heartbeat thread: the first check
        # of a job sees a cancel that came before it started.
        if self.cancel_event.is_set():
            return
        now = self._clock()
        if now - self._last_poll >= 1.0:
            self._last_poll = now
            if is_cancel_requested(self.engine, self.job_id):
                self.cancel_event.set()

    def stop_reason(self) -> str | None:
        """Why the runner should stop now (cancelled, released, lost), or None to go on."""
        self._poll()
        if self.lost_event.is_set():
            return "lost"
        if self.cancel_event.is_set() or (self.parent is not None and self.parent.stop_reason() == "cancelled"):
            return "cancelled"
        if self.release_event.is_set() or (self.parent is not None and self.parent.stop_reason() == "released"):
            return "released"
        return None

    def should_stop(self) -> bool:
        """True once the runner should stop starting new work."""
        return self.stop_reason() is not None

    def stop_exception(self) -> Exception:
        """The exception that ends the job the way `stop_reason` says (a cancel when none is set)."""
        reason = self.stop_reason()
        if reason == "lost":
            return JobLost(f"job {self.job_id} was taken over by another worker")
        if reason == "released":
            return JobReleased(f"job {self.job_id} goes back to the queue")
        return JobCancelled()

    def check(self) -> None:
        """Raise JobCancelled / JobReleased / JobLost when the runner should stop."""
        if self.should_stop():
            raise self.stop_exception()

    def progress(self, done: int | None = None, total: int | None = None, summary: Any = None, *,
                 force: bool = False) -> None:
        """Keep the latest counters, and write them at most every half second unless forced."""
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        if summary is not None:
            self.summary = summary
        now = self._clock()
        if not force and now - self._last_write < self._min_interval:
            return
        self._last_write = now
        self._write()

    def _write(self) -> None:
        stored = _summary_json(self.summary)
        if self.is_owner:
            if not update_job(self.engine, self.job_id, done=self.done, total=self.total, summary=stored,
                              worker_id=self.worker_id):
                self.lost_event.set()
        record_share(self.engine, self.job_id, self.worker_id, stored or {})

    def wait_for_helpers(self, poll_s: float = 0.2) -> None:
        """The owner waits until every helper has ended its part (or stopped heartbeating), so that
        the job's final summary counts all of their work."""
        while True:
            now = datetime.now(timezone.utc)
            working = [share for share in job_shares(self.engine, self.job_id)
                       if share.worker_id != self.worker_id and share.finished_at is None
                       and (now - share.heartbeat_at).total_seconds() < self.lease_s]
            if not working or self.should_stop():
                return
            time.sleep(poll_s)

    def helper_counters(self) -> list[dict[str, Any]]:
        """The counters of every other part of this job: other workers', and this worker's earlier parts."""
        return [share.counters for share in job_shares(self.engine, self.job_id)
                if share.worker_id != self.worker_id or share.finished_at is not None]

    def run_child(self, kind_name: str, params: Any) -> Generator[object, None, JobInfo]:
        """Run another job inside this one (a pipeline's stages), owned by the same worker; return its end."""
        kind = job_kind(kind_name)
        child_id = create_job(self.engine, kind.name, kind.title(params), kind.dump_params(params),
                              run_key=kind.run_key(self.engine, params) if kind.run_key else None,
                              worker_id=self.worker_id)
        return (yield from self.run_owned(child_id))

    def run_owned(self, job_id: int) -> Generator[object, None, JobInfo]:
        """Run a job this worker already owns (or a queued one, which it takes) inside this one; return its end."""
        job = get_job(self.engine, job_id)
        if job.worker_id != self.worker_id:
            taken = claim_job(self.engine, self.worker_id, None, lease_s=self.lease_s, job_id=job_id)
            if taken is None:
                raise OptionError(f"job {job_id} is {job.state} under another worker")
            job = taken
        kind = job_kind(job.kind)
        child = JobContext(self.engine, job, worker_id=self.worker_id, lease_s=self.lease_s, parent=self)
        with closing(_execute_with_heartbeat(child, kind, kind.load_params(job.params), reraise=False)) as events:
            return (yield from events)


def _summary_json(summary: Any) -> dict[str, Any] | None:
    if summary is None:
        return None
    if isinstance(summary, Mapping):
        return dict(summary)
    if is_dataclass(summary) and not isinstance(summary, type):
        from pydantic import TypeAdapter

        dumped = TypeAdapter(type(summary)).dump_python(summary, mode="json")
        assert isinstance(dumped, dict)
        return dumped
    raise TypeError(f"a job summary is a dataclass or a mapping, not {type(summary).__name__}")


def execute(ctx: JobContext, kind: JobKind[Any, Any], params: Any, *, reraise: bool = True
            ) -> Generator[object, None, JobInfo]:
    """Run one job (or a helper's part of one) through the lifecycle; yield its events, return how it ended.

    With `reraise`, the exception that failed or interrupted the job propagates after the job is
    ended (the foreground shows it); otherwise it is only recorded (a worker goes on).
    """
    join_job(ctx.engine, ctx.job_id, ctx.worker_id, ctx.role)
    state, error = JobState.DONE, None
    try:
        # Ctrl-C lands in whichever frame of the generator chain runs: closed here, the body's own
        # cleanup (writes in flight, final counters) runs before the job's end is stored below.
        with closing(kind.run(ctx, params)) as body:
            yield JobStarted(ctx.job_id, kind.name, ctx.role)
            ctx.summary = yield from body
        failure = kind.failure(ctx.summary) if kind.failure is not None and ctx.summary is not None else None
        if failure:
            state, error = JobState.FAILED, failure
    except JobCancelled as exc:
        state, error = JobState.CANCELLED, f"{str(exc) or 'cancelled'}; {resume_hint(kind, ctx)}"
    except JobReleased:
        state = JobState.QUEUED
    except JobLost:
        state = JobState.RUNNING  # another worker owns it now
    except KeyboardInterrupt:
        hint = resume_hint(kind, ctx)
        _end(ctx, JobState.CANCELLED, f"interrupted; {hint}")
        done = f"{ctx.done:,} of {ctx.total:,}" if ctx.total else f"{ctx.done:,}"
        raise JobInterrupted(f"interrupted: {kind.name} job {ctx.job_id} is cancelled with {done} done and its "
                             f"counters kept (workbench jobs show {ctx.job_id}); {hint}") from None
    except (GeneratorExit, asyncio.CancelledError):
        _end(ctx, JobState.CANCELLED, f"interrupted; {resume_hint(kind, ctx)}")
        raise
    except BaseException as exc:
        _end(ctx, JobState.FAILED, one_line(exc))
        if reraise or not isinstance(exc, Exception):
            raise
        return get_job(ctx.engine, ctx.job_id)
    _end(ctx, state, error)
    return get_job(ctx.engine, ctx.job_id)


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return key.upper()  # a field the job never reported reads as a placeholder (RUN_ID)


def resume_hint(kind: JobKind[Any, Any], ctx: JobContext) -> str:
    """The kind's hint with the job's id and the fields of its last summary (`{run_id}` for an eval run) filled in."""
    return kind.resume_hint.format_map(_Fields({**(_summary_json(ctx.summary) or {}), "job_id": ctx.job_id}))


def _end(ctx: JobContext, state: JobState, error: str | None) -> None:
    stored = _summary_json(ctx.summary)
    record_share(ctx.engine, ctx.job_id, ctx.worker_id, stored or {}, finished=True)
    if not ctx.is_owner or state == JobState.RUNNING:
        return
    if state == JobState.QUEUED:
        release_job(ctx.engine, ctx.job_id, ctx.worker_id, summary=stored, done=ctx.done)
        return
    finish_job(ctx.engine, ctx.job_id, state.value, error=error, summary=stored, done=ctx.done,
               worker_id=ctx.worker_id)


class Heartbeat:
    """A thread that renews a worker's leases and tells its job contexts when to stop.

    It reads the flags of the jobs in hand every `poll_s` (cancel requests reach a runner within
    about a second) and writes the heartbeat every third of the lease.
    """

    def __init__(self, engine: Engine, worker_id: str, *, lease_s: float | None = None, poll_s: float = 1.0) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.lease_s = lease_s or lease_seconds()
        self.poll_s = min(poll_s, self.lease_s / 3)
        self._contexts: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def add(self, ctx: JobContext) -> None:
        """Watch a job context: renew its job's lease and pass on the job's flags."""
        with self._lock:
            self._contexts[id(ctx)] = ctx

    def remove(self, ctx: JobContext) -> None:
        """Stop watching a job context."""
        with self._lock:
            self._contexts.pop(id(ctx), None)

    def contexts(self) -> list[JobContext]:
        """The job contexts in hand."""
        with self._lock:
            return list(self._contexts.values())

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat {self.worker_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def beat(self, *, write: bool = True) -> None:
        """Renew once (when `write`) and pass the jobs' flags to their contexts."""
        contexts = self.contexts()
        flags = heartbeat(self.engine, self.worker_id, write=write, job_ids={ctx.job_id for ctx in contexts})
        for ctx in contexts:
            state, owner, cancel = flags.get(ctx.job_id, (JobState.FAILED, None, False))
            if cancel:
                ctx.cancel_event.set()
            if ctx.is_owner and (state != JobState.RUNNING or owner != self.worker_id):
                ctx.lost_event.set()
            elif not ctx.is_owner and not state.is_active:
                ctx.release_event.set()  # the job ended: a helper has nothing left to do

    def _loop(self) -> None:
        last_write = time.monotonic()
        while not self._stop.wait(self.poll_s):
            write = time.monotonic() - last_write >= self.lease_s / 3
            try:
                self.beat(write=write)
            except Exception:  # noqa: BLE001  a busy store must not kill the heartbeat; the next beat retries
                self.errors += 1
                continue
            if write:
                last_write = time.monotonic()


def _execute_with_heartbeat(ctx: JobContext, kind: JobKind[Any, Any], params: Any, *, reraise: bool
                            ) -> Generator[object, None, JobInfo]:
    pulse = Heartbeat(ctx.engine, ctx.worker_id, lease_s=ctx.lease_s)
    pulse.add(ctx)
    pulse.start()
    try:
        with closing(execute(ctx, kind, params, reraise=reraise)) as events:
            return (yield from events)
    finally:
        pulse.stop()


def run_foreground(
    engine: Engine,
    kind_name: str,
    params: Any,
    *,
    lease_s: float | None = None,
    resources: Mapping[str, Any] | None = None,
    cancel: threading.Event | None = None,
) -> Generator[object, None, JobInfo]:
    """Run a job in this process (the CLI's foreground mode); yield its events, return its end.

    When a job of a shared kind already runs the same run (`run_key`), this process joins it as a
    helper instead of starting a rival job: two commands on one run share its items. A job of the
    same run whose worker stopped heartbeating is taken over and resumed. The job's exception (and
    Ctrl-C) propagate after the job is ended; setting `cancel` cancels it like any front end can.
    """
    kind = job_kind(kind_name)
    key = kind.run_key(engine, params) if kind.run_key else None
    worker_id = new_worker_id("fg")
    lease = lease_s or lease_seconds()
    existing = find_active_job(engine, kind.name, key) if key else None
    job: JobInfo | None = None
    role = "owner"
    if existing is not None:
        job = claim_job(engine, worker_id, None, lease_s=lease, job_id=existing.id)  # queued, or stalled
        if job is None and existing.state == JobState.RUNNING and kind.shared:
            job, role = existing, "helper"
        elif job is None:
            raise OptionError(f"job {existing.id} is already {existing.state} for this run; watch it with "
                              f"`workbench jobs show {existing.id}` or cancel it with `workbench jobs cancel {existing.id}`")
    if job is None:
        job_id = create_job(engine, kind.name, kind.title(params), kind.dump_params(params), run_key=key,
                            worker_id=worker_id)
        job = get_job(engine, job_id)
    ctx = JobContext(engine, job, worker_id=worker_id, role=role, lease_s=lease, resources=resources, cancel=cancel)
    run_params = params if role == "owner" and existing is None else kind.load_params(job.params)
    with closing(_execute_with_heartbeat(ctx, kind, run_params, reraise=True)) as events:
        return (yield from events)


def run_job_here(engine: Engine, job_id: int, *, lease_s: float | None = None) -> Generator[object, None, JobInfo]:
    """Run a queued job (or one whose worker stopped heartbeating) in this process; yield its events."""
    worker_id = new_worker_id("fg")
    job = claim_job(engine, worker_id, None, lease_s=lease_s or lease_seconds(), job_id=job_id)
    if job is None:
        current = get_job(engine, job_id)
        raise OptionError(f"job {job_id} is {current.state}" + (" under a live worker" if current.is_active else ""))
    kind = job_kind(job.kind)
    ctx = JobContext(engine, job, worker_id=worker_id, lease_s=lease_s)
    with closing(_execute_with_heartbeat(ctx, kind, kind.load_params(job.params), reraise=True)) as events:
        return (yield from events)


R = TypeVar("R")


def drain(events: Generator[Any, None, R], on_event: Callable[[Any], None] | None = None) -> R:
    """Consume a job's events (passing each to `on_event`) and return what the generator returns
    (how the job ended, for the runners' generators)."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if on_event is not None:
            try:
                on_event(event)
            except BaseException as exc:
                # Ctrl-C (or an error) while an event is shown: raised where the job waits, so that it ends
                # the way it would have inside (cancelled with its counters, or failed) before this goes on.
                try:
                    events.throw(exc)
                except StopIteration:
                    pass
                finally:
                    events.close()
                raise


def run_async(events: AsyncIterator[E]) -> Generator[E, None, None]:
    """Drive an async generator (a runner's LLM calls) on an event loop of its own; yield its events.

    A job's generator runs in a worker's thread or the foreground's, so it owns a loop rather
    than joining one. Interrupted inside a step (Ctrl-C) the step is cancelled; interrupted at a
    yield (an exception thrown in, the caller closing it) the async generator is closed; either
    way its `finally` blocks run before this returns.
    """
    loop = asyncio.new_event_loop()
    agen: Any = events
    step: asyncio.Task[E] | None = None
    try:
        while True:
            step = loop.create_task(agen.__anext__())
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


def wait_for_other_workers(ctx: JobContext, remaining: Callable[[], tuple[int, int]], *,
                           poll_s: float = 0.5) -> bool:
    """The owner of a shared job waits while other workers hold items.

    `remaining()` returns (claimable, held by others) counts. Returns True when items came back
    to claim (another worker's lease ran out), False when every item is finished. Raises the
    stop exception if the job should stop meanwhile.
    """
    while True:
        claimable, held = remaining()
        if not claimable and not held:
            return False  # finished: a cancel that comes now has nothing left to stop
        ctx.check()
        if claimable:
            return True
        time.sleep(poll_s)
