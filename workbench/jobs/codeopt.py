"""Code-Optimise runners (arXiv 2406.12502): sample solutions, run them in the sandbox, build pairs,
and evaluate a policy model on held-out problems. Each is a job with progress, cancel and one ending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Union

from sqlalchemy.engine import Engine

from core.errors import OptionError
from core.execution.metrics import PolicyMetrics, policy_metrics
from core.execution.pairs import PairOptions, new_pair, select_pairs
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
from core.llm.accounting import Meter, parse_budget
from core.llm.base import ChatBackend, SamplingParams
from core.llm.specs import make_backend, parse_spec
from core.synthesis.driver import SynthEvent, SynthFinished, SynthProgress, run_synthesis
from stores.execution.evals import create_policy_eval, finish_policy_eval, problem_outcomes
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
    pending_executions,
    prepare_samples,
    record_execution,
    release_execution,
    reopen_stale_executions,
    sample_config_key,
    store_pairs,
)
from stores.synthesis.runs import item_counts
from workbench.jobs.llm_servers import resolve_server
from workbench.jobs.runner import JobHandle
from workbench.jobs.synthesize import model_name_of

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


def prepare_sampling(engine: Engine, run: SamplingRun) -> PreparedSampling:
    """Validate, select the problems, and create (or reopen) their sample slots."""
    run.validate()
    problem_ids = select_problem_ids(engine, run.selection)
    if not problem_ids:
        raise OptionError(f"no problems match ({run.selection.describe()}): import some with `workbench problems import`")
    model = model_name_of(run.model, engine)
    key = sample_config_key(model, PROMPT_VERSION, run.temperature, run.top_p, run.max_tokens, run.seed)
    config = SampleConfig(key, model, PROMPT_VERSION, run.temperature, run.top_p, run.max_tokens, run.seed)
    slots = prepare_samples(engine, config, problem_ids, run.samples_per_problem)
    return PreparedSampling(config, tuple(problem_ids), tuple(slots))


def _backend(engine: Engine, spec: str, concurrency: int) -> ChatBackend:
    return make_backend(spec, concurrency=concurrency, resolve_server=lambda server_id: resolve_server(engine, server_id))


async def run_sampling_job(
    engine: Engine,
    run: SamplingRun,
    *,
    cancel: Callable[[], bool] = lambda: False,
    prepared: PreparedSampling | None = None,
) -> AsyncIterator[tuple[int, SynthEvent]]:
    """Sample every open slot through the synthesis driver (cache, budget, resume), yielding (job id, event)."""
    prepared = prepared or prepare_sampling(engine, run)
    config = prepared.config
    before = item_counts(engine, config.key)
    params: dict[str, Any] = {k: v for k, v in asdict(run).items() if k != "selection"}
    params.update(selection=run.selection.describe(), config_key=config.key, problems=len(prepared.problem_ids))
    job = JobHandle.start(engine, "codeopt-sample", f"sample {run.samples_per_problem} per problem with {config.model}", params)
    sampler = SolutionSampler(SamplingParams(max_tokens=run.max_tokens, temperature=run.temperature,
                                             top_p=run.top_p, seed=run.seed))
    store = SqlSampleStore(engine, job_id=job.job_id, key=config.key)
    meter = Meter(budget=parse_budget(run.budget))
    backend: ChatBackend | None = None
    final_state = "failed"
    error: str | None = "the run stopped before it finished"
    summary: dict[str, Any] = {}
    try:
        backend = _backend(engine, run.model, run.concurrency)
        events = run_synthesis(sampler, store, {POLICY_ROLE: backend}, concurrency=run.concurrency, meter=meter,
                               cancel=lambda: cancel() or job.cancel_requested(), keep_truncated=True)
        async for event in events:
            if isinstance(event, SynthProgress):
                job.progress(before.sampled + event.counters["done"], before.total, event.counters)
            elif isinstance(event, SynthFinished):
                after = item_counts(engine, config.key)
                summary = {**event.counters, "usage": event.usage_by_model, "stop_reason": event.stop_reason,
                           "config_key": config.key, "slots": after.total, "sampled": after.sampled,
                           "failed_items": after.failed, "open": after.pending + after.claimed}
                if event.stop_reason == "done":
                    final_state, error = "done", None
                elif event.stop_reason == "budget":
                    final_state, error = "cancelled", f"budget reached ({meter.budget.describe()}); re-run to resume"
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
        job.finish(final_state, error=error, summary=summary or {"stop_reason": "interrupted"},
                   done=item_counts(engine, config.key).sampled)
        if backend is not None:
            await backend.aclose()


# ---- execution ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionRun:
    """An execution run: the solutions in scope, worker threads (each drives one sandbox process),
    limits and timing policy; `isolation` None means the strongest the machine allows."""

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
    """Solutions executed so far in this run, by verdict."""

    done: int
    total: int
    passed: int
    failed: int
    timeout: int
    reused: int
    rate: float


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """How an execution run ended: counts by verdict, runtime stability, isolation and speed."""

    stop_reason: str
    executed: int
    reused: int
    passed: int
    failed: int
    timeout: int
    stable: int
    unstable: int
    seconds: float
    executions_per_s: float
    isolation: str


ExecutionEvent = Union[ExecutionProgress, ExecutionSummary]


@dataclass(frozen=True, slots=True)
class _Done:
    status: str
    stable: bool
    reused: bool


def execute_solution(engine: Engine, task: ExecutionTask, run: ExecutionRun, isolation: Isolation) -> _Done:
    """Run one claimed solution (or reuse its executed twin's verdict) and store the verdict."""
    twin = executed_twin(engine, task.problem_id, task.code_hash)
    if twin is not None:
        copy_execution(engine, task.solution_id, twin)
        return _Done(twin.status, twin.stable, True)
    job = SandboxJob(solution_program(task.problem, task.code), task.problem.test, task.problem.entry_point)
    result: ExecutionResult = run_in_sandbox(job, limits=run.limits, timing=run.timing, isolation=isolation)
    stats = (runtime_stats(result.samples, cv_target=run.timing.cv_target, min_runs=run.timing.min_runs)
             if result.passed and run.timing.measure else RuntimeStats(None, None, 0, False))
    record_execution(engine, task.solution_id, result, stats, ",".join(result.layers))
    return _Done(result.status, stats.stable, False)


def run_execution_job(
    engine: Engine,
    run: ExecutionRun,
    *,
    cancel: Callable[[], bool] = lambda: False,
    progress_interval_s: float = 0.25,
) -> Iterator[ExecutionEvent]:
    """Run every pending solution in scope in the sandbox with `run.workers` at once; yield progress
    about four times a second, then the summary. A sandbox that cannot start fails the job and
    gives every unfinished claim back, so no verdict is recorded for a solution that did not run."""
    run.validate()
    reopen_stale_executions(engine)
    isolation = run.isolation if run.isolation is not None else probe_isolation()
    total = pending_executions(engine, run.scope)
    job = JobHandle.start(engine, "codeopt-execute", f"execute {total} solutions in the sandbox",
                          {"workers": run.workers, "limits": asdict(run.limits), "timing": asdict(run.timing),
                           "isolation": isolation.describe(), "config_key": run.scope.config_key})
    counts = {"passed": 0, "failed": 0, "timeout": 0, "stable": 0, "unstable": 0, "reused": 0}
    done = 0
    started = time.monotonic()
    last_progress = float("-inf")
    stop_reason = "done"
    in_flight: dict[Future[_Done], ExecutionTask] = {}
    queue: list[ExecutionTask] = []
    exhausted = False
    state = "failed"
    error: str | None = "the run stopped before it finished"

    def snapshot() -> ExecutionProgress:
        elapsed = max(time.monotonic() - started, 1e-9)
        return ExecutionProgress(done, total, counts["passed"], counts["failed"], counts["timeout"], counts["reused"],
                                 round(done / elapsed, 3))

    pool = ThreadPoolExecutor(max_workers=run.workers, thread_name_prefix="sandbox")
    try:
        while True:
            if cancel() or job.cancel_requested():
                stop_reason = "cancelled"
                break
            while len(in_flight) < run.workers:
                running = {(t.problem_id, t.code_hash) for t in in_flight.values()}
                # A sample whose code is running already waits for that verdict, then reuses it.
                index = next((i for i, t in enumerate(queue) if (t.problem_id, t.code_hash) not in running), None)
                if index is None:
                    if exhausted:
                        break
                    claimed = claim_executions(engine, job.job_id, run.workers * 4, run.scope)
                    exhausted = not claimed
                    queue.extend(claimed)
                    continue
                task = queue.pop(index)
                in_flight[pool.submit(execute_solution, engine, task, run, isolation)] = task
            if not in_flight:
                break
            finished, _pending = wait(in_flight, timeout=progress_interval_s, return_when=FIRST_COMPLETED)
            for future in finished:
                task = in_flight.pop(future)
                try:
                    outcome = future.result()
                except Exception:  # a SandboxError ends the run: this solution did not run
                    release_execution(engine, task.solution_id)
                    raise
                done += 1
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                counts["reused"] += outcome.reused
                if outcome.status == "passed":
                    counts["stable" if outcome.stable else "unstable"] += 1
            if time.monotonic() - last_progress >= progress_interval_s:
                last_progress = time.monotonic()
                progress = snapshot()
                job.progress(done, total, asdict(progress))
                yield progress
        for future in list(in_flight):  # cancelled: let the running sandboxes finish and keep their verdicts
            try:
                outcome = future.result()
                done += 1
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
            except Exception:
                release_execution(engine, in_flight[future].solution_id)
            in_flight.pop(future)
        state, error = ("done", None) if stop_reason == "done" else ("cancelled", "cancelled; re-run to resume")
    except GeneratorExit:
        state, error = "cancelled", "interrupted; re-run to resume"
        raise
    except KeyboardInterrupt:
        state, error = "cancelled", "interrupted; re-run to resume"
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for future, task in in_flight.items():
            if future.cancelled() or not future.done() or future.exception() is not None:
                release_execution(engine, task.solution_id)
        for task in queue:
            release_execution(engine, task.solution_id)
        elapsed = time.monotonic() - started
        summary = ExecutionSummary(
            stop_reason=stop_reason if state != "failed" else "failed", executed=done - counts["reused"],
            reused=counts["reused"], passed=counts["passed"], failed=counts["failed"], timeout=counts["timeout"],
            stable=counts["stable"], unstable=counts["unstable"], seconds=round(elapsed, 2),
            executions_per_s=round((done - counts["reused"]) / elapsed, 3) if elapsed > 0 else 0.0,
            isolation=isolation.describe(),
        )
        job.finish(state, error=error, summary=asdict(summary), done=done)
    yield summary


# ---- pairs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairsSummary:
    """What a pairs run found: problems looked at and kept, pairs per objective, new and known ones."""

    problems: int
    eligible: int
    correctness: int
    efficiency: int
    added: int
    already_stored: int
    skipped: dict[str, int]


def build_pairs(engine: Engine, options: PairOptions, scope: ExecutionScope | None = None) -> PairsSummary:
    """Build correctness and efficiency pairs from the executed solutions in scope, as a job."""
    scope = scope or ExecutionScope()
    problem_ids = executed_problem_ids(engine, scope)
    job = JobHandle.start(engine, "codeopt-pairs", f"code-optimise pairs from {len(problem_ids)} problems",
                          {**asdict(options), "config_key": scope.config_key})
    eligible = correctness = efficiency = added = known = 0
    skipped: dict[str, int] = {}
    try:
        problems = load_problems(engine, problem_ids)
        for index, problem_id in enumerate(problem_ids, start=1):
            selected = select_pairs(executed_solutions(engine, problem_id, scope), options)
            if selected.skipped_reason:
                reason = "too few passing" if selected.passing < options.min_passing else "too few failing"
                skipped[reason] = skipped.get(reason, 0) + 1
            else:
                eligible += 1
            made = [(new_pair(problems[problem_id], problem_id, pair, extra={"config_key": scope.config_key}), pair)
                    for pair in selected.pairs]
            correctness += sum(1 for _n, p in made if p.objective == "correctness")
            efficiency += sum(1 for _n, p in made if p.objective == "efficiency")
            new, old = store_pairs(engine, problem_id, made, job_id=job.job_id)
            added += new
            known += old
            job.progress(index, len(problem_ids))
    except BaseException as exc:
        job.finish("cancelled" if isinstance(exc, KeyboardInterrupt) else "failed",
                   error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    summary = PairsSummary(len(problem_ids), eligible, correctness, efficiency, added, known, skipped)
    job.finish("done", summary=asdict(summary), done=len(problem_ids))
    return summary


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
class PolicyEvalFinished:
    """The evaluation's id, how it ended and its metrics."""

    eval_id: int
    state: str
    metrics: PolicyMetrics | None


PolicyEvalEvent = Union[tuple[str, SynthEvent], ExecutionEvent, PolicyEvalFinished]


async def run_policy_eval(
    engine: Engine, run: PolicyEvalRun, *, cancel: Callable[[], bool] = lambda: False,
) -> AsyncIterator[PolicyEvalEvent]:
    """Evaluate a policy as a job: sampling and execution events as they come, then the metrics."""
    run.validate()
    prepared = prepare_sampling(engine, run.sampling)
    job = JobHandle.start(engine, "codeopt-eval", f"pass@k of {prepared.config.model}",
                          {"model": run.sampling.model, "ks": list(run.ks), "selection": run.sampling.selection.describe(),
                           "samples_per_problem": run.sampling.samples_per_problem, "config_key": prepared.config.key})
    eval_id = create_policy_eval(
        engine, job_id=job.job_id, model=prepared.config.model, config_key=prepared.config.key,
        samples_per_problem=run.sampling.samples_per_problem, ks=run.ks, problem_ids=prepared.problem_ids,
        selection=run.sampling.selection.describe(),
    )
    stop = lambda: cancel() or job.cancel_requested()
    state = "failed"
    error: str | None = "the evaluation stopped before it finished"
    metrics: PolicyMetrics | None = None
    try:
        sampled_all = False
        async for _job_id, event in run_sampling_job(engine, run.sampling, cancel=stop, prepared=prepared):
            if isinstance(event, SynthFinished):
                sampled_all = event.stop_reason == "done"
            yield ("sample", event)
        if not sampled_all:
            state, error = "cancelled", "sampling stopped; re-run to resume"
        else:
            scope = ExecutionScope(prepared.config.key, prepared.problem_ids)
            execution = ExecutionRun(scope, run.execution.workers, run.execution.limits, run.execution.timing,
                                     run.execution.isolation)
            finished: ExecutionSummary | None = None
            # Sampling is over, so nothing else waits on this event loop while the sandboxes run.
            for item in run_execution_job(engine, execution, cancel=stop):
                if isinstance(item, ExecutionSummary):
                    finished = item
                yield item
            if finished is None or finished.stop_reason != "done":
                state, error = "cancelled", "execution stopped; re-run to resume"
            else:
                outcomes = problem_outcomes(engine, prepared.config.key, prepared.problem_ids,
                                            run.sampling.samples_per_problem)
                metrics = policy_metrics(outcomes, run.ks)
                finish_policy_eval(engine, eval_id, "done", metrics=metrics, outcomes=outcomes, ks=run.ks)
                state, error = "done", None
    except (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit):
        state, error = "cancelled", "interrupted; re-run to resume"
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise
    finally:
        if state != "done":
            finish_policy_eval(engine, eval_id, state)
        job.finish(state, error=error, summary={"eval_id": eval_id, **(asdict(metrics) if metrics else {})})
    yield PolicyEvalFinished(eval_id, state, metrics)
