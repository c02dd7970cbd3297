"""Evaluation runner: judge the items a run still lacks as an `eval` job, committing chunk by chunk.

An eval job is shared: its items (task x order) are work items that any number of workers claim
in chunks, so a run splits across machines and each item is judged once; a result row is unique
per run, task and order, so even a chunk judged again after a lost lease is stored once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import BenchmarkError, OptionError
from core.evaluation.bench import (
    OBJECTIVES,
    Benchmark,
    JudgeItem,
    judge_items,
    load_benchmark,
    parse_objectives,
    resolve_bench_dir,
)
from core.evaluation.judges import Judge, check_judge_spec, make_judge
from core.evaluation.models import EvalFinished, EvalProgress, EvalRunInfo
from core.evaluation.protocols import DEFAULT_PROTOCOL, get_protocol
from core.evaluation.scoring import RunScores
from core.jobs import JobInfo
from stores.claims import (
    add_work_items,
    claim_work_items,
    clear_work_items,
    complete_work_items,
    has_claimable_work,
    release_work_items,
    work_counts,
)
from stores.evaluation.runs import (
    DEFAULT_CHUNK,
    JOB_KIND,
    attach_job,
    completed_keys,
    create_run,
    get_run,
    record_results,
    run_scores,
)
from stores.jobs import update_job
from workbench.jobs.ml import load_ml, needs_ml
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, run_foreground, wait_for_other_workers


@dataclass(frozen=True, slots=True)
class EvalParams:
    """An eval job: resume run `run_id`, or start a run of `judge` on the benchmark with these options."""

    run_id: int | None = None
    judge: str | None = None
    bench_dir: str | None = None
    objectives: tuple[str, ...] | None = None
    orders: str = "both"
    limit: int | None = None
    keep_comments: bool = False
    protocol: str = DEFAULT_PROTOCOL
    device: str | None = None
    batch_size: int | None = None
    chunk_size: int | None = None
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvalSummary:
    """An eval job's run, how many of its items are judged, and the accuracy (%) per objective so far."""

    run_id: int
    done: int = 0
    total: int = 0
    accuracy: dict[str, float] = field(default_factory=dict)
    verifiable_average: float | None = None


@dataclass(frozen=True, slots=True)
class EvalRunStarted:
    """The job works on this run (a new one or the one it resumes)."""

    run_id: int


def run_benchmark(engine: Engine, run: EvalRunInfo) -> Benchmark:
    """Reload a run's benchmark and check it is the version the run started on."""
    benchmark = load_benchmark(run.bench_dir, run.objectives)
    if benchmark.version != run.bench_version:
        raise BenchmarkError(
            f"benchmark at {run.bench_dir} is now {benchmark.version}, but run {run.id} used "
            f"{run.bench_version}; start a new run"
        )
    return benchmark


def _scope(run_id: int) -> str:
    return f"eval:{run_id}"


def _item_key(item: JudgeItem) -> str:
    return "\t".join(item.key)


def run_eval(ctx: JobContext, params: EvalParams) -> Generator[object, None, EvalSummary]:
    """Judge what a run lacks; the owner creates the run (when new) and its work items, helpers share them.

    A judge and benchmark the caller already holds (`ctx.resources`: "judge", "benchmark") are used
    as they are; otherwise they are built here from the params, in the process running the job.
    """
    engine = ctx.engine
    judge: Judge | None = ctx.resources.get("judge")
    own_judge = judge is None
    try:
        if judge is None:
            spec = params.judge or get_run(engine, _require_run(params)).judge_spec
            if needs_ml(spec):
                load_ml()
            judge = make_judge(spec, device=params.device, batch_size=params.batch_size)
        run_id, benchmark = _open_run(ctx, params, judge)
        run = get_run(engine, run_id)
        items = judge_items(benchmark, objectives=run.objectives, orders=run.orders, limit=run.task_limit,
                            strip=run.strip_comments, protocol=run.protocol)
        by_key = {_item_key(item): item for item in items}
        scope = _scope(run_id)
        if ctx.is_owner:
            done_keys = completed_keys(engine, run_id)
            pending = [item for item in items if item.key not in done_keys]
            # Claimed in this order: chunks of similar length, so a batched judge pads little.
            pending.sort(key=lambda item: len(item.instruction) + len(item.code_a) + len(item.code_b))
            add_work_items(engine, scope, [_item_key(item) for item in pending])
        chunk_size = params.chunk_size or int(getattr(judge, "preferred_chunk", DEFAULT_CHUNK))
        total_by_objective = dict(Counter(item.objective for item in items))
        progress, summary = _progress(engine, run_id, len(items), total_by_objective)
        ctx.progress(summary.done, summary.total, summary, force=True)
        yield EvalRunStarted(run_id)
        try:
            while True:
                for chunk in _claimed_chunks(ctx, scope, by_key, chunk_size):
                    outputs = judge.decide(chunk)
                    record_results(engine, run_id, chunk, outputs)
                    complete_work_items(engine, scope, [_item_key(item) for item in chunk], ctx.worker_id)
                    progress, summary = _progress(engine, run_id, len(items), total_by_objective)
                    ctx.progress(summary.done, summary.total, summary)
                    yield progress
                if not ctx.is_owner or not wait_for_other_workers(ctx, lambda: _remaining(engine, scope, ctx)):
                    break
        finally:
            release_work_items(engine, scope, ctx.worker_id)
        progress, summary = _progress(engine, run_id, len(items), total_by_objective)
        ctx.progress(summary.done, summary.total, summary, force=True)
        if ctx.is_owner:
            clear_work_items(engine, scope)
        yield EvalFinished(run_id, "done", progress.scores)
        return summary
    finally:
        if own_judge and judge is not None:
            judge.close()


def _require_run(params: EvalParams) -> int:
    if params.run_id is None:
        raise OptionError("an eval job needs a judge spec or a run to resume")
    return params.run_id


def _open_run(ctx: JobContext, params: EvalParams, judge: Judge) -> tuple[int, Benchmark]:
    """The run this job judges, and its benchmark; the owner creates a new run and records it on the job."""
    engine = ctx.engine
    benchmark: Benchmark | None = ctx.resources.get("benchmark")
    if params.run_id is not None:
        run = get_run(engine, params.run_id)
        benchmark = benchmark or run_benchmark(engine, run)
        run_id = run.id
    else:
        objectives = params.objectives or OBJECTIVES
        benchmark = benchmark or load_benchmark(resolve_bench_dir(params.bench_dir), objectives)
        run_id = create_run(
            engine, judge_spec=judge.spec.text, judge_kind=judge.spec.kind, benchmark=benchmark,  # type: ignore[attr-defined]
            objectives=objectives, orders=params.orders, task_limit=params.limit,
            strip=False if params.keep_comments else None, lineage={**judge.lineage, **params.lineage},
            protocol=params.protocol,
        )
        # Helpers joining later, and a resume after a crash, read the run from the job's params.
        update_job(engine, ctx.job_id, params=EVAL.dump_params(replace(params, run_id=run_id)),
                   run_key=eval_run_key(run_id))
    if ctx.is_owner:
        attach_job(engine, run_id, ctx.job_id)
    return run_id, benchmark


def _claimed_chunks(ctx: JobContext, scope: str, by_key: dict[str, JudgeItem], size: int) -> Iterator[list[JudgeItem]]:
    while True:
        ctx.check()
        keys = claim_work_items(ctx.engine, scope, ctx.worker_id, size, ctx.lease_s)
        if not keys:
            return
        yield [by_key[key] for key in keys if key in by_key]


def _remaining(engine: Engine, scope: str, ctx: JobContext) -> tuple[int, int]:
    counts = work_counts(engine, scope, ctx.lease_s)
    return counts["pending"], counts["claimed"]


def _progress(engine: Engine, run_id: int, total: int, total_by_objective: dict[str, int]
              ) -> tuple[EvalProgress, EvalSummary]:
    done_keys = completed_keys(engine, run_id)
    scores = run_scores(engine, run_id)
    done_by_objective = dict(Counter(objective for objective, _task, _order in done_keys))
    progress = EvalProgress(run_id, len(done_keys), total, done_by_objective, total_by_objective, scores)
    return progress, _summary(run_id, len(done_keys), total, scores)


def _summary(run_id: int, done: int, total: int, scores: RunScores) -> EvalSummary:
    return EvalSummary(
        run_id=run_id, done=done, total=total,
        accuracy={s.objective: round(100 * s.headline, 1) for s in scores.objectives},
        verifiable_average=None if scores.verifiable_average is None else round(100 * scores.verifiable_average, 1),
    )


def eval_run_key(run_id: int) -> str:
    """The run key of the jobs that judge run `run_id`."""
    return _scope(run_id)


def _run_key(_engine: Engine, params: EvalParams) -> str | None:
    return eval_run_key(params.run_id) if params.run_id is not None else None


def _check(engine: Engine, params: EvalParams) -> None:
    if params.run_id is not None:
        run = get_run(engine, params.run_id)
        check_judge_spec(run.judge_spec)
        run_benchmark(engine, run)
        return
    if not params.judge:
        raise OptionError("pass --judge SPEC (or --resume RUN)")
    check_judge_spec(params.judge)
    get_protocol(params.protocol)
    if params.orders not in ("both", "given"):
        raise OptionError(f"unknown orders {params.orders!r}; use both or given")
    load_benchmark(resolve_bench_dir(params.bench_dir), parse_objectives(params.objectives))


def _has_work(engine: Engine, _job_id: int, params: EvalParams, lease_s: float) -> bool:
    return params.run_id is not None and has_claimable_work(engine, _scope(params.run_id), lease_s)


def _resume_params(params: EvalParams, summary: dict[str, Any]) -> EvalParams:
    run_id = params.run_id or summary.get("run_id")
    return replace(params, run_id=int(run_id)) if run_id is not None else params


EVAL = register(JobKind(
    name=JOB_KIND, params_type=EvalParams, summary_type=EvalSummary, run=run_eval,
    title=lambda params: f"eval run {params.run_id}" if params.judge is None else f"eval {params.judge}",
    shared=True, run_key=_run_key, check=_check, has_work=_has_work, resume_params=_resume_params,
    resume_hint="resume with `workbench eval run --resume {run_id}` (or workbench jobs resume {job_id})",
))


def run_evaluation(
    engine: Engine,
    run_id: int,
    judge: Judge,
    benchmark: Benchmark,
    *,
    chunk_size: int | None = None,
    cancel: threading.Event | None = None,
) -> Generator[object, None, JobInfo]:
    """Judge every item run `run_id` still lacks, in the foreground, with a judge this process holds.

    Yields EvalProgress after each committed chunk and EvalFinished when the run is complete; a
    set `cancel` event (or a cancel from any front end) ends the job cancelled after the chunk.
    """
    params = EvalParams(run_id=run_id, chunk_size=chunk_size)
    return (yield from run_foreground(engine, EVAL.name, params, resources={"judge": judge, "benchmark": benchmark},
                                      cancel=cancel))


def evaluate(engine: Engine, params: EvalParams) -> Generator[object, None, JobInfo]:
    """Run an eval job in the foreground from its params (the judge is built here); yield its events."""
    _check(engine, params)
    return (yield from run_foreground(engine, EVAL.name, params))
