"""Code-Optimise jobs (arXiv 2406.12502): sample solutions, run them in the sandbox, build pairs, and
evaluate a policy model on held-out problems.

Each is a registered job kind, run by any `workbench worker` or in the foreground of a CLI command.
Sampling and execution are shared kinds: their items (sample slots: problem x sample index; solutions
to run) are claimed with leases, so several workers split one run with no overlap, and a second
command on the same run joins it. A policy evaluation runs a sampling job and an execution job
inside its own, then scores what they stored. Generated code only ever runs in the sandbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import aclosing, closing
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Union

from sqlalchemy.engine import Engine

from core.errors import OptionError
from core.execution.metrics import PolicyMetrics, policy_metrics
from core.execution.pairs import OBJECTIVES, PairOptions, new_pair, select_pairs
from core.execution.problems import ProblemSelection
from core.execution.records import ExecutionTask
from core.execution.runtime import RuntimeStats, runtime_stats
from core.execution.sampling import POLICY_ROLE, PROMPT_VERSION, SolutionSampler
from core.execution.sandbox import (
    ExecutionResult,
    Isolation,
    SandboxJob,
    SandboxLimits,
    TimingPolicy,
    probe_isolation,
    run_in_sandbox,
)
from core.execution.solutions import solution_program
from core.jobs import JobCancelled, JobInfo, JobLost, JobReleased, JobState
from core.llm.accounting import Meter, parse_budget
from core.llm.base import SamplingParams
from core.llm.specs import make_backend, parse_spec
from core.synthesis.driver import SynthCounters, SynthEvent, run_synthesis
from stores.execution.evals import create_policy_eval, finish_policy_eval, policy_eval_of_job, problem_outcomes
from stores.execution.problems import load_problems, select_problem_ids
from stores.execution.solutions import (
    ExecutionScope,
    SampleConfig,
    SqlSampleStore,
    claim_executions,
    copy_execution,
    executed_problem_ids,
    executed_solutions,
    executed_twin,
    open_executions,
    prepare_samples,
    record_execution,
    release_executions,
    sample_config_key,
    sample_slot_ids,
    store_pairs,
)
from stores.synthesis.runs import item_counts, release_claims
from workbench.jobs.llm_servers import resolve_server
from workbench.jobs.ml import load_ml, needs_ml
from workbench.jobs.pipeline import StageFailed
from workbench.jobs.registry import JobKind, job_kind, register
from workbench.jobs.runner import JobContext, drain, run_async, run_foreground, wait_for_other_workers
from workbench.jobs.synthesize import ClaimedRunDrive, model_name_of


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _foreground(engine: Engine, kind_name: str, params: Any, cancel: Callable[[], bool] | None
                ) -> Generator[object, None, JobInfo]:
    """Run a job in the foreground (or join the one already running its run); yield its events.

    `cancel`, polled between events, stops it like a cancel from any front end.
    """
    kind = job_kind(kind_name)
    if kind.check is not None:
        kind.check(engine, params)
    stop = threading.Event()
    events = run_foreground(engine, kind.name, params, cancel=stop)
    while True:
        if cancel is not None and cancel():
            stop.set()
        try:
            event = next(events)
        except StopIteration as end:
            info: JobInfo = end.value
            return info
        yield event


# ---- sampling -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingRun:
    """A sampling run: N solutions per selected problem from a model spec (Code-Optimise samples 100)."""

    model: str
    selection: ProblemSelection = field(default_factory=ProblemSelection)
    samples_per_problem: int = 100
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0
    concurrency: int = 16
    budget: str | None = None

    def validate(self) -> None:
        """Raise OptionError for a run that cannot happen."""
        parse_spec(self.model)
        self.selection.check()
        if self.samples_per_problem < 1:
            raise OptionError("samples per problem must be at least 1")
        if self.samples_per_problem > 1 and self.temperature <= 0:
            raise OptionError("several samples per problem need a temperature above 0 (greedy answers are all alike)")
        if not 0.0 < self.top_p <= 1.0:
            raise OptionError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1 or self.concurrency < 1:
            raise OptionError("max tokens and concurrency must be at least 1")
        parse_budget(self.budget)


@dataclass(frozen=True, slots=True)
class PreparedSampling:
    """A sampling run's configuration, its problems and its slots, ready to drive."""

    config: SampleConfig
    problem_ids: tuple[int, ...]
    slot_ids: tuple[int, ...]


def sample_config(engine: Engine, run: SamplingRun) -> SampleConfig:
    """The stored configuration a run samples under (its key names the slots and cache entries)."""
    model = model_name_of(run.model, engine)
    key = sample_config_key(model, PROMPT_VERSION, run.temperature, run.top_p, run.max_tokens, run.seed)
    return SampleConfig(key, model, PROMPT_VERSION, run.temperature, run.top_p, run.max_tokens, run.seed)


def _selected_problems(engine: Engine, run: SamplingRun) -> list[int]:
    problem_ids = select_problem_ids(engine, run.selection)
    if not problem_ids:
        raise OptionError(f"no problems match ({run.selection.describe()}): import some with `workbench problems import`")
    return problem_ids


def prepare_sampling(engine: Engine, run: SamplingRun) -> PreparedSampling:
    """Validate, select the problems, and create (or reopen) their sample slots."""
    run.validate()
    problem_ids = _selected_problems(engine, run)
    config = sample_config(engine, run)
    slots = prepare_samples(engine, config, problem_ids, run.samples_per_problem)
    return PreparedSampling(config, tuple(problem_ids), tuple(slots))


def open_sampling(engine: Engine, run: SamplingRun) -> PreparedSampling:
    """A run's configuration, problems and the slots created so far, without writing (a helper joining it)."""
    problem_ids = _selected_problems(engine, run)
    config = sample_config(engine, run)
    return PreparedSampling(config, tuple(problem_ids),
                            tuple(sample_slot_ids(engine, config.key, problem_ids, run.samples_per_problem)))


@dataclass(frozen=True, slots=True)
class SampleSummary:
    """A sampling job's counters: the run's slots by state, and what this job did (every worker on it).

    `slots` are the run's sample slots (problems x samples), `sampled` those with an answer,
    `failed_items` those whose request failed (retried by the next run), `open` those still to do.
    `requests` counts every attempt, retries included; `failure` is one line on failed items.
    """

    config_key: str = ""
    problems: int = 0
    slots: int = 0
    sampled: int = 0
    failed_items: int = 0
    open: int = 0
    stop_reason: str = ""
    done: int = 0
    answered: int = 0
    failed: int = 0
    released: int = 0
    requests: int = 0
    retries: int = 0
    answers: int = 0
    cache_hits: int = 0
    truncated_answers: int = 0
    tokens: int = 0
    cost: float = 0.0
    elapsed_s: float = 0.0
    rate: float = 0.0
    failure: str = ""
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    usage_by_model: dict[str, dict[str, float]] = field(default_factory=dict)


_SAMPLE_ADDED = ("done", "answered", "failed", "released", "requests", "retries", "answers", "cache_hits",
                 "truncated_answers", "tokens", "cost")


def sample_counters(summary: SampleSummary) -> dict[str, Any]:
    """A summary's counters under the synthesis driver's names (what SynthProgress and SynthFinished carry)."""
    names = (*_SAMPLE_ADDED, "elapsed_s", "rate", "failure", "failed_by_kind")
    return {name: getattr(summary, name) for name in names}


def sample_job(ctx: JobContext, run: SamplingRun) -> Generator[SynthEvent, None, SampleSummary]:
    """Sample every open slot of a run through the synthesis driver (cache, budget, resume), as a job.

    The owner creates the slots; helpers claim the open ones alongside it, and the owner waits for
    the slots they hold before it ends. Budget reached: cancelled, saying so; re-running resumes.
    """
    drive = _Sampling(ctx, run)
    try:
        with closing(run_async(drive.events())) as events:
            yield from events
    finally:
        release_claims(ctx.engine, drive.prepared.config.key, ctx.worker_id)
    if drive.stop_reason == "budget":
        raise JobCancelled(f"budget reached ({drive.meter.budget.describe()}; spent {drive.summary.tokens:,} tokens)")
    if drive.stop_reason != "done":
        raise ctx.stop_exception()
    return drive.summary


class _Sampling(ClaimedRunDrive):
    """One worker's drive of a sampling run, with the driver's counters summed over its rounds."""

    def __init__(self, ctx: JobContext, run: SamplingRun) -> None:
        self.run = run
        self.prepared = prepare_sampling(ctx.engine, run) if ctx.is_owner else open_sampling(ctx.engine, run)
        super().__init__(ctx, self.prepared.config.key, self.prepared.slot_ids, Meter(budget=parse_budget(run.budget)),
                         summary_in_scope=True)
        self.summary = self._summary(None, fresh=True)

    def _summary(self, current: SynthCounters | None, stop_reason: str = "", *, fresh: bool = False) -> SampleSummary:
        rounds = [*self.rounds, *([current] if current is not None else [])]
        totals: dict[str, float] = {name: sum(getattr(c, name) for c in rounds) for name in _SAMPLE_ADDED}
        failed_by_kind: dict[str, int] = {}
        for counters in rounds:
            for kind, n in counters.failed_by_kind.items():
                failed_by_kind[kind] = failed_by_kind.get(kind, 0) + n
        failure = next((line for line in (c.failure_line() for c in rounds) if line), "")
        counts, helpers = self._stored_counts(fresh)
        for helper in helpers:  # the owner's summary adds what the helpers reported
            for name in _SAMPLE_ADDED:
                totals[name] += helper.get(name) or 0
            for kind, n in (helper.get("failed_by_kind") or {}).items():
                failed_by_kind[kind] = failed_by_kind.get(kind, 0) + int(n)
            failure = failure or str(helper.get("failure") or "")
        elapsed = sum(c.elapsed_s for c in rounds)
        return SampleSummary(
            config_key=self.prepared.config.key, problems=len(self.prepared.problem_ids), slots=counts.total,
            sampled=counts.sampled, failed_items=counts.failed, open=counts.pending + counts.claimed,
            stop_reason=stop_reason, **{name: int(totals[name]) for name in _SAMPLE_ADDED if name != "cost"},
            cost=round(float(totals["cost"]), 6), elapsed_s=round(elapsed, 2),
            rate=round(sum(c.done for c in rounds) / elapsed, 3) if elapsed else 0.0, failure=failure,
            failed_by_kind=failed_by_kind,
            usage_by_model={model: {"requests": u.requests, "prompt_tokens": u.prompt_tokens,
                                    "completion_tokens": u.completion_tokens, "cost": round(u.cost, 6)}
                            for model, u in self.meter.by_model.items()},
        )

    def _report(self, summary: SampleSummary, *, force: bool = False) -> None:
        self.summary = summary
        self.ctx.progress(summary.sampled + summary.failed_items, summary.slots, summary, force=force)

    async def events(self) -> AsyncIterator[SynthEvent]:
        """The driver's events over as many rounds as the run needs; one SynthFinished at the end."""
        if needs_ml(self.run.model):
            load_ml()
        config = self.prepared.config
        backend = make_backend(self.run.model, concurrency=self.run.concurrency,
                               resolve_server=lambda server_id: resolve_server(self.engine, server_id))
        sampler = SolutionSampler(SamplingParams(max_tokens=self.run.max_tokens, temperature=self.run.temperature,
                                                 top_p=self.run.top_p, seed=self.run.seed))
        store = SqlSampleStore(self.engine, job_id=self.ctx.job_id, key=config.key, worker_id=self.ctx.worker_id,
                               lease_s=self.ctx.lease_s, scope=self.prepared.slot_ids)
        rounds = self.drive(
            lambda counters: run_synthesis(sampler, store, {POLICY_ROLE: backend}, concurrency=self.run.concurrency,
                                           meter=self.meter, cancel=self.ctx.should_stop, counters=counters,
                                           keep_truncated=True),
            [backend])
        async with aclosing(rounds) as events:
            async for event in events:
                yield event

    def _event_counters(self, summary: SampleSummary) -> dict[str, Any]:
        return sample_counters(summary)


def _sample_key(engine: Engine, run: SamplingRun) -> str:
    # The same configuration on the same selection is one run; another selection is another run
    # (their slots may overlap: claims keep them apart).
    selection = {"selection": asdict(run.selection), "samples": run.samples_per_problem}
    return f"codeopt-sample:{sample_config(engine, run).key}:{_digest(selection)}"


def _check_sampling(engine: Engine, run: SamplingRun) -> None:
    run.validate()
    _selected_problems(engine, run)
    sample_config(engine, run)


def _sampling_has_work(engine: Engine, _job_id: int, run: SamplingRun, lease_s: float) -> bool:
    # A budget is one meter's: helpers with meters of their own would spend it several times over.
    if run.budget:
        return False
    prepared = open_sampling(engine, run)
    return item_counts(engine, prepared.config.key, lease_s=lease_s, subject_ids=prepared.slot_ids).pending > 0


CODEOPT_SAMPLE = register(JobKind(
    name="codeopt-sample", params_type=SamplingRun, summary_type=SampleSummary, run=sample_job,
    title=lambda run: f"sample {run.samples_per_problem} per problem with {run.model}", shared=True,
    run_key=_sample_key, check=_check_sampling, has_work=_sampling_has_work,
    resume_hint="re-run the same command to resume: sampled solutions are kept and answers already paid for "
                "are replayed from the cache (workbench jobs resume {job_id})",
))


def run_sampling_job(engine: Engine, run: SamplingRun, *, cancel: Callable[[], bool] | None = None
                     ) -> Generator[object, None, JobInfo]:
    """Sample a run in the foreground as a `codeopt-sample` job (or join the job already sampling it);
    yield its events (JobStarted, SynthProgress, SynthFinished) and return how the job ended."""
    return (yield from _foreground(engine, CODEOPT_SAMPLE.name, run, cancel))


# ---- execution ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionRun:
    """An execution run: the solutions in scope, worker threads (each drives one sandbox process),
    limits and timing policy; `isolation` None means the strongest the machine running it allows."""

    scope: ExecutionScope = field(default_factory=ExecutionScope)
    workers: int = 2
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    timing: TimingPolicy = field(default_factory=TimingPolicy)
    isolation: Isolation | None = None

    def validate(self) -> None:
        """Raise OptionError for values no run can have."""
        if self.workers < 1:
            raise OptionError("workers must be at least 1")
        if self.limits.timeout_s <= 0 or self.limits.memory_bytes < (64 << 20):
            raise OptionError("the timeout must be positive and the memory limit at least 64 MiB")


@dataclass(frozen=True, slots=True)
class ExecutionProgress:
    """Solutions this worker executed so far in this job, by verdict, of the run's `total`."""

    done: int
    total: int
    passed: int
    failed: int
    timeout: int
    reused: int
    rate: float


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """How an execution job ended: counts by verdict (every worker on it), runtime stability, the
    solutions it had to run when it started (`total`), isolation and speed."""

    stop_reason: str = ""
    executed: int = 0
    reused: int = 0
    passed: int = 0
    failed: int = 0
    timeout: int = 0
    stable: int = 0
    unstable: int = 0
    seconds: float = 0.0
    executions_per_s: float = 0.0
    isolation: str = ""
    total: int = 0


ExecutionEvent = Union[ExecutionProgress, ExecutionSummary]
_VERDICTS = ("executed", "reused", "passed", "failed", "timeout", "stable", "unstable")


@dataclass(frozen=True, slots=True)
class _Done:
    status: str
    stable: bool
    reused: bool


def execute_solution(engine: Engine, task: ExecutionTask, run: ExecutionRun, isolation: Isolation,
                     worker_id: str) -> _Done | None:
    """Run one claimed solution in the sandbox (or reuse its executed twin's verdict) and store the
    verdict; None when the claim was lost meanwhile (the worker that took it over stores its own)."""
    twin = executed_twin(engine, task.problem_id, task.code_hash)
    if twin is not None:
        if not copy_execution(engine, task.solution_id, twin, worker_id=worker_id):
            return None
        return _Done(twin.status, twin.stable, True)
    job = SandboxJob(solution_program(task.problem, task.code), task.problem.test, task.problem.entry_point)
    result: ExecutionResult = run_in_sandbox(job, limits=run.limits, timing=run.timing, isolation=isolation)
    stats = (runtime_stats(result.samples, cv_target=run.timing.cv_target, min_runs=run.timing.min_runs)
             if result.passed and run.timing.measure else RuntimeStats(None, None, 0, False))
    if not record_execution(engine, task.solution_id, result, stats, ",".join(result.layers), worker_id=worker_id):
        return None
    return _Done(result.status, stats.stable, False)


class _Tally:
    """One worker's verdicts in an execution job."""

    def __init__(self, total: int, isolation: str) -> None:
        self.total = total
        self.isolation = isolation
        self.counts = dict.fromkeys(_VERDICTS, 0)
        self.started = time.monotonic()

    @property
    def done(self) -> int:
        return self.counts["executed"] + self.counts["reused"]

    def add(self, outcome: _Done) -> None:
        self.counts["reused" if outcome.reused else "executed"] += 1
        if outcome.status in self.counts:
            self.counts[outcome.status] += 1
        if outcome.status == "passed":
            self.counts["stable" if outcome.stable else "unstable"] += 1

    def progress(self) -> ExecutionProgress:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        c = self.counts
        return ExecutionProgress(self.done, self.total, c["passed"], c["failed"], c["timeout"], c["reused"],
                                 round(self.done / elapsed, 3))

    def summary(self, stop_reason: str, helpers: Sequence[dict[str, Any]] = ()) -> ExecutionSummary:
        counts = dict(self.counts)
        for helper in helpers:  # the owner's summary adds what the helpers reported
            for name in _VERDICTS:
                counts[name] += int(helper.get(name) or 0)
        elapsed = time.monotonic() - self.started
        return ExecutionSummary(
            stop_reason=stop_reason, **counts, seconds=round(elapsed, 2),
            executions_per_s=round(self.counts["executed"] / elapsed, 3) if elapsed > 0 else 0.0,
            isolation=self.isolation, total=self.total,
        )


def execute_job(ctx: JobContext, run: ExecutionRun, *, progress_interval_s: float = 0.25
                ) -> Generator[ExecutionEvent, None, ExecutionSummary]:
    """Run every sampled, unexecuted solution in scope in the sandbox, `run.workers` at once, as a job.

    Solutions are claimed a few at a time with a lease, so other workers on the same job (or on
    another job whose scope overlaps) never run the same one. Yields progress about four times a
    second, then the summary. On a cancel, the sandboxes running finish and keep their verdicts. A
    sandbox that cannot start fails the job, and every unfinished claim is given back, so no
    verdict is recorded for a solution that did not run.
    """
    run.validate()
    engine = ctx.engine
    isolation = run.isolation if run.isolation is not None else probe_isolation()
    claimable, held = open_executions(engine, run.scope, lease_s=ctx.lease_s)
    tally = _Tally(claimable + held, isolation.describe())
    ctx.progress(0, tally.total, tally.summary(""), force=True)
    in_flight: dict[Future[_Done | None], ExecutionTask] = {}
    queue: list[ExecutionTask] = []
    claimed: list[int] = []
    last_progress = last_count = float("-inf")
    job_done = 0

    def fill() -> None:
        exhausted = False
        while len(in_flight) < run.workers:
            running = {(t.problem_id, t.code_hash) for t in in_flight.values()}
            # A sample whose code is running already waits for that verdict, then reuses it.
            index = next((i for i, t in enumerate(queue) if (t.problem_id, t.code_hash) not in running), None)
            if index is None:
                if exhausted:
                    return
                tasks = claim_executions(engine, ctx.worker_id, run.workers, run.scope, job_id=ctx.job_id,
                                         lease_s=ctx.lease_s)
                claimed.extend(task.solution_id for task in tasks)
                exhausted = not tasks
                queue.extend(tasks)
                continue
            task = queue.pop(index)
            in_flight[pool.submit(execute_solution, engine, task, run, isolation, ctx.worker_id)] = task

    stopped = False

    def others_hold_solutions() -> bool:
        nonlocal stopped
        try:
            return wait_for_other_workers(ctx, lambda: open_executions(engine, run.scope, lease_s=ctx.lease_s))
        except (JobCancelled, JobReleased, JobLost):
            stopped = True  # the job ends below, the way ctx says
            return False

    pool = ThreadPoolExecutor(max_workers=run.workers, thread_name_prefix="sandbox")
    try:
        while True:
            stopped = stopped or ctx.should_stop()
            if not stopped:
                fill()
            if not in_flight:
                if stopped or not ctx.is_owner or not others_hold_solutions():
                    break
                continue
            finished, _pending = wait(in_flight, timeout=progress_interval_s, return_when=FIRST_COMPLETED)
            for future in finished:
                in_flight.pop(future)
                outcome = future.result()  # a SandboxError ends the run; its claim is given back below
                if outcome is not None:
                    tally.add(outcome)
            now = time.monotonic()
            if now - last_progress >= progress_interval_s:
                last_progress = now
                if ctx.is_owner and now - last_count >= 1.0:  # every worker's verdicts, read from the store
                    last_count = now
                    job_done = max(0, tally.total - sum(open_executions(engine, run.scope, lease_s=ctx.lease_s)))
                ctx.progress(job_done if ctx.is_owner else tally.done, tally.total, tally.summary(""))
                yield tally.progress()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        release_executions(engine, ctx.worker_id, claimed)  # only those still claimed: run ones are done
        ctx.summary = tally.summary("interrupted")
    # A stop that came once every solution had its verdict has nothing left to stop.
    stop_reason = (ctx.stop_reason() or "cancelled") if stopped else "done"
    if ctx.is_owner and stop_reason == "done":
        ctx.wait_for_helpers()
    summary = tally.summary(stop_reason, ctx.helper_counters() if ctx.is_owner else [])
    ctx.progress(tally.total - sum(open_executions(engine, run.scope, lease_s=ctx.lease_s)) if ctx.is_owner
                 else tally.done, tally.total, summary, force=True)
    yield summary
    if stop_reason != "done":
        raise ctx.stop_exception()
    return summary


def _execution_key(_engine: Engine, run: ExecutionRun) -> str:
    return f"codeopt-execute:{_digest(asdict(run.scope))}"


def _check_execution(_engine: Engine, run: ExecutionRun) -> None:
    run.validate()


def _execution_has_work(engine: Engine, _job_id: int, run: ExecutionRun, lease_s: float) -> bool:
    return open_executions(engine, run.scope, lease_s=lease_s)[0] > 0


CODEOPT_EXECUTE = register(JobKind(
    name="codeopt-execute", params_type=ExecutionRun, summary_type=ExecutionSummary, run=execute_job,
    title=lambda run: "execute solutions in the sandbox" + (f" ({run.scope.config_key})" if run.scope.config_key else ""),
    shared=True, run_key=_execution_key, check=_check_execution, has_work=_execution_has_work,
    resume_hint="re-run the same command to resume: stored verdicts are kept (workbench jobs resume {job_id})",
))


def run_execution_job(engine: Engine, run: ExecutionRun, *, cancel: Callable[[], bool] | None = None
                      ) -> Generator[object, None, JobInfo]:
    """Execute a run's solutions in the foreground as a `codeopt-execute` job (or join the job already
    running them); yield its events (JobStarted, ExecutionProgress, then one ExecutionSummary)."""
    return (yield from _foreground(engine, CODEOPT_EXECUTE.name, run, cancel))


# ---- pairs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairsParams:
    """Which executed solutions give pairs (`scope`) and how (`options`)."""

    options: PairOptions = field(default_factory=PairOptions)
    scope: ExecutionScope = field(default_factory=ExecutionScope)


@dataclass(frozen=True, slots=True)
class PairsSummary:
    """What a pairs run found: problems looked at and kept, pairs per objective, new and known ones."""

    problems: int = 0
    eligible: int = 0
    correctness: int = 0
    efficiency: int = 0
    added: int = 0
    already_stored: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PairsProgress:
    """Problems looked at so far, and the pairs added."""

    done: int
    total: int
    added: int


def pairs_job(ctx: JobContext, params: PairsParams) -> Generator[PairsProgress, None, PairsSummary]:
    """Build correctness and efficiency pairs from the executed solutions in scope, problem by problem."""
    engine, options, scope = ctx.engine, params.options, params.scope
    problem_ids = executed_problem_ids(engine, scope)
    summary = PairsSummary(problems=len(problem_ids))
    ctx.progress(0, len(problem_ids), summary, force=True)
    problems = load_problems(engine, problem_ids)
    for index, problem_id in enumerate(problem_ids, start=1):
        ctx.check()
        selected = select_pairs(executed_solutions(engine, problem_id, scope), options)
        skipped = dict(summary.skipped)
        if selected.skipped_reason:
            reason = "too few passing" if selected.passing < options.min_passing else "too few failing"
            skipped[reason] = skipped.get(reason, 0) + 1
        made = [(new_pair(problems[problem_id], problem_id, pair, extra={"config_key": scope.config_key}), pair)
                for pair in selected.pairs]
        new, old = store_pairs(engine, problem_id, made, job_id=ctx.job_id)
        summary = replace(
            summary, eligible=summary.eligible + (not selected.skipped_reason),
            correctness=summary.correctness + sum(1 for _n, p in made if p.objective == "correctness"),
            efficiency=summary.efficiency + sum(1 for _n, p in made if p.objective == "efficiency"),
            added=summary.added + new, already_stored=summary.already_stored + old, skipped=skipped,
        )
        ctx.progress(index, len(problem_ids), summary)
        yield PairsProgress(index, len(problem_ids), summary.added)
    ctx.progress(len(problem_ids), len(problem_ids), summary, force=True)
    return summary


def _check_pairs(_engine: Engine, params: PairsParams) -> None:
    options = params.options
    unknown = [name for name in options.objectives if name not in OBJECTIVES]
    if unknown or not options.objectives:
        raise OptionError(f"unknown objective(s) {', '.join(unknown) or '(none)'}; use {', '.join(OBJECTIVES)}")
    if options.min_passing < 1 or options.min_failing < 0 or options.max_pairs < 1 or options.min_relative_gap < 0:
        raise OptionError("min passing and max pairs must be at least 1, min failing and the gap at least 0")


CODEOPT_PAIRS = register(JobKind(
    name="codeopt-pairs", params_type=PairsParams, summary_type=PairsSummary, run=pairs_job,
    title=lambda params: "code-optimise pairs" + (f" of {params.scope.config_key}" if params.scope.config_key else ""),
    run_key=lambda _engine, params: f"codeopt-pairs:{_digest(asdict(params.scope))}", check=_check_pairs,
    resume_hint="re-run the same command to resume: pairs already stored are kept once (workbench jobs resume {job_id})",
))


def run_pairs_job(engine: Engine, params: PairsParams, *, cancel: Callable[[], bool] | None = None
                  ) -> Generator[object, None, JobInfo]:
    """Build pairs in the foreground as a `codeopt-pairs` job; yield its events (JobStarted, PairsProgress)."""
    return (yield from _foreground(engine, CODEOPT_PAIRS.name, params, cancel))


def build_pairs(engine: Engine, options: PairOptions, scope: ExecutionScope | None = None) -> PairsSummary:
    """Build correctness and efficiency pairs from the executed solutions in scope as a `codeopt-pairs`
    job in the foreground; return what it found (so far, if it was cancelled)."""
    info = drain(run_pairs_job(engine, PairsParams(options, scope or ExecutionScope())))
    return CODEOPT_PAIRS.load_summary(info.summary) or PairsSummary()


# ---- policy evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyEvalRun:
    """A policy evaluation: sample on held-out problems, execute, and compute pass@k, runtime and length."""

    sampling: SamplingRun
    ks: tuple[int, ...] = (1, 10)
    execution: ExecutionRun = field(default_factory=ExecutionRun)

    def validate(self) -> None:
        """Raise OptionError for k values the sample count cannot estimate."""
        self.sampling.validate()
        self.execution.validate()
        if not self.ks or any(k < 1 or k > self.sampling.samples_per_problem for k in self.ks):
            raise OptionError(f"every k must be between 1 and the samples per problem "
                              f"({self.sampling.samples_per_problem}), got {list(self.ks)}")


@dataclass(frozen=True, slots=True)
class PolicyEvalSummary:
    """A policy evaluation job: its evaluation, the stage it reached, its stage jobs, and the metrics once done."""

    eval_id: int = 0
    config_key: str = ""
    stage: str = ""  # sample | execute | score | done
    sample_job: int | None = None
    execute_job: int | None = None
    metrics: PolicyMetrics | None = None


@dataclass(frozen=True, slots=True)
class PolicyEvalStarted:
    """The job evaluates into this evaluation (a new one, or its own after a takeover)."""

    eval_id: int


@dataclass(frozen=True, slots=True)
class PolicyEvalFinished:
    """The evaluation's id, how it ended and its metrics."""

    eval_id: int
    state: str
    metrics: PolicyMetrics | None


def _stage(ctx: JobContext, events: Generator[object, None, JobInfo], stage: str
           ) -> Generator[object, None, JobInfo]:
    info = yield from events
    if info.state == JobState.DONE:
        return info
    if ctx.should_stop():
        raise ctx.stop_exception()
    if info.state == JobState.CANCELLED:
        raise JobCancelled(f"its {stage} job {info.id} was cancelled ({info.error or 'no reason recorded'})")
    raise StageFailed(f"its {stage} job {info.id} ended {info.state}: {info.error or 'no error recorded'}")


def policy_eval_job(ctx: JobContext, run: PolicyEvalRun) -> Generator[object, None, PolicyEvalSummary]:
    """Evaluate a policy: a sampling job and an execution job inside this one, then pass@k, runtime
    and length from what they stored. A job taken over after its worker died goes on with its evaluation."""
    run.validate()
    engine = ctx.engine
    prepared = prepare_sampling(engine, run.sampling)
    eval_id = policy_eval_of_job(engine, ctx.job_id) or create_policy_eval(
        engine, job_id=ctx.job_id, model=prepared.config.model, config_key=prepared.config.key,
        samples_per_problem=run.sampling.samples_per_problem, ks=run.ks, problem_ids=prepared.problem_ids,
        selection=run.sampling.selection.describe(),
    )
    summary = PolicyEvalSummary(eval_id, prepared.config.key, "sample")
    ctx.progress(0, 3, summary, force=True)
    ending = "failed"
    try:
        yield PolicyEvalStarted(eval_id)
        ctx.check()
        sampled = yield from _stage(ctx, ctx.run_child(CODEOPT_SAMPLE.name, run.sampling), "sampling")
        summary = replace(summary, stage="execute", sample_job=sampled.id)
        ctx.progress(1, 3, summary, force=True)
        execution = replace(run.execution, scope=ExecutionScope(prepared.config.key, prepared.problem_ids))
        executed = yield from _stage(ctx, ctx.run_child(CODEOPT_EXECUTE.name, execution), "execution")
        summary = replace(summary, stage="score", execute_job=executed.id)
        ctx.progress(2, 3, summary, force=True)
        ctx.check()
        outcomes = problem_outcomes(engine, prepared.config.key, prepared.problem_ids, run.sampling.samples_per_problem)
        metrics = policy_metrics(outcomes, run.ks)
        finish_policy_eval(engine, eval_id, "done", metrics=metrics, outcomes=outcomes, ks=run.ks)
        ending = "done"
        summary = replace(summary, stage="done", metrics=metrics)
        ctx.progress(3, 3, summary, force=True)
    except (JobReleased, JobLost):
        ending = "running"  # the job goes on under another worker, with this evaluation
        raise
    except (JobCancelled, KeyboardInterrupt, GeneratorExit, asyncio.CancelledError):
        ending = "cancelled"
        raise
    finally:
        if ending in ("failed", "cancelled"):
            finish_policy_eval(engine, eval_id, ending)
    yield PolicyEvalFinished(eval_id, "done", metrics)
    return summary


def _eval_key(engine: Engine, run: PolicyEvalRun) -> str:
    return f"codeopt-eval:{_sample_key(engine, run.sampling)}:{_digest(list(run.ks))}"


def _check_eval(engine: Engine, run: PolicyEvalRun) -> None:
    run.validate()
    _check_sampling(engine, run.sampling)


CODEOPT_EVAL = register(JobKind(
    name="codeopt-eval", params_type=PolicyEvalRun, summary_type=PolicyEvalSummary, run=policy_eval_job,
    title=lambda run: f"pass@k of {run.sampling.model}", run_key=_eval_key, check=_check_eval,
    resume_hint="re-run the same command to resume: sampled and executed solutions are kept "
                "(workbench jobs resume {job_id})",
))


def run_policy_eval(engine: Engine, run: PolicyEvalRun, *, cancel: Callable[[], bool] | None = None
                    ) -> Generator[object, None, JobInfo]:
    """Evaluate a policy in the foreground as a `codeopt-eval` job; yield its events (its stage jobs'
    included) and PolicyEvalFinished once done, and return how the job ended."""
    return (yield from _foreground(engine, CODEOPT_EVAL.name, run, cancel))


def policy_eval_finished(info: JobInfo) -> PolicyEvalFinished:
    """How an evaluation job ended, as the event its foreground yields when it is done."""
    summary = CODEOPT_EVAL.load_summary(info.summary) or PolicyEvalSummary()
    return PolicyEvalFinished(summary.eval_id, info.state.value, summary.metrics)
