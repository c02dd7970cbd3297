"""Evaluation runner: judge the items a run still lacks as an `eval` job, committing chunk by chunk."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import BenchmarkError
from core.evaluation.bench import Benchmark, judge_items, load_benchmark
from core.evaluation.judges import Judge
from core.evaluation.models import EvalFinished, EvalProgress, EvalRunInfo
from core.evaluation.scoring import RunScores
from stores.evaluation.runs import (
    DEFAULT_CHUNK,
    JOB_KIND,
    completed_keys,
    get_run,
    record_results,
    run_scores,
    set_run_state,
)
from workbench.jobs.runner import JobHandle


def run_benchmark(engine: Engine, run: EvalRunInfo) -> Benchmark:
    """Reload a run's benchmark and check it is the version the run started on."""
    benchmark = load_benchmark(run.bench_dir, run.objectives)
    if benchmark.version != run.bench_version:
        raise BenchmarkError(
            f"benchmark at {run.bench_dir} is now {benchmark.version}, but run {run.id} used "
            f"{run.bench_version}; start a new run"
        )
    return benchmark


def run_evaluation(
    engine: Engine,
    run_id: int,
    judge: Judge,
    benchmark: Benchmark,
    *,
    chunk_size: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[EvalProgress | EvalFinished]:
    """Judge every item the run still lacks as an `eval` job, committing each chunk as it ends.

    The chunk size defaults to the judge's `preferred_chunk` (a few model batches) or 64.
    """
    chunk_size = chunk_size or int(getattr(judge, "preferred_chunk", DEFAULT_CHUNK))
    run = get_run(engine, run_id)
    items = judge_items(
        benchmark, objectives=run.objectives, orders=run.orders, limit=run.task_limit, strip=run.strip_comments,
        protocol=run.protocol,
    )
    done_keys = completed_keys(engine, run_id)
    pending = [item for item in items if item.key not in done_keys]
    # Sorting by size keeps chunks of similar length, so a batched judge pads little.
    pending.sort(key=lambda item: len(item.instruction) + len(item.code_a) + len(item.code_b))
    total_by_objective = dict(Counter(item.objective for item in items))
    done_by_objective = Counter(objective for objective, _task, _order in done_keys)
    done = len(done_keys)
    handle = JobHandle.start(
        engine, JOB_KIND, f"eval run {run_id}: {run.judge_spec}",
        {"run_id": run_id, "judge": run.judge_spec, "bench_version": run.bench_version, "protocol": run.protocol},
    )
    set_run_state(engine, run_id, "running", job_id=handle.job_id)
    state, error = "done", None
    try:
        handle.progress(done, len(items), force=True)
        for start in range(0, len(pending), chunk_size):
            if (cancel is not None and cancel.is_set()) or handle.cancel_requested():
                state = "stopped"
                break
            chunk = pending[start : start + chunk_size]
            outputs = judge.decide(chunk)
            record_results(engine, run_id, chunk, outputs)
            done += len(chunk)
            done_by_objective.update(item.objective for item in chunk)
            scores = run_scores(engine, run_id)
            handle.progress(done, len(items), summary=_summary(scores))
            yield EvalProgress(run_id, done, len(items), dict(done_by_objective), total_by_objective, scores)
    except (GeneratorExit, KeyboardInterrupt):
        state = "stopped"
        raise
    except BaseException as exc:
        state, error = "failed", (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise
    finally:
        scores = run_scores(engine, run_id)
        handle.finish(
            "cancelled" if state == "stopped" else state, error=error, summary=_summary(scores), done=done
        )
        set_run_state(engine, run_id, state)
    yield EvalFinished(run_id, state, scores, error)


def _summary(scores: RunScores) -> dict[str, Any]:
    summary: dict[str, Any] = {s.objective: round(100 * s.headline, 1) for s in scores.objectives}
    if scores.verifiable_average is not None:
        summary["verifiable average"] = round(100 * scores.verifiable_average, 1)
    return summary
