"""Evaluation runs: create, resume, record results in small transactions, score and re-score."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.evaluation.bench import Benchmark, JudgeItem, judge_items, load_benchmark
from core.errors import BenchmarkError, NotFoundError
from core.evaluation.models import EvalFinished, EvalProgress, EvalResultInfo, EvalRunInfo, LeaderboardEntry
from core.evaluation.judges import PARSER_VERSION, Judge, JudgeOutput, redecide
from core.evaluation.scoring import RunScores, ScoredResult, score_run
from stores.eval_tables import EvalResultRow, EvalRunRow
from stores.jobs import ACTIVE_STATES, JobHandle, reap_dead_jobs
from stores.tables import JobRow, utcnow

JOB_KIND = "eval"
# Small enough that a kill loses a few seconds of work, large enough to fill a GPU batch.
DEFAULT_CHUNK = 64


def _visible_state(session: Session, row: EvalRunRow) -> str:
    # A run whose job process died (kill -9, power loss) still says running; its job says why not.
    if row.state == "running" and row.job_id is not None:
        job = session.get(JobRow, row.job_id)
        if job is not None and job.state not in ACTIVE_STATES:
            return "interrupted"
    return row.state


def _to_info(row: EvalRunRow, done: int, state: str | None = None) -> EvalRunInfo:
    assert row.id is not None
    return EvalRunInfo(
        id=row.id,
        judge_spec=row.judge_spec,
        judge_kind=row.judge_kind,
        bench_dir=row.bench_dir,
        bench_version=row.bench_version,
        objectives=tuple(json.loads(row.objectives_json or "[]")),
        orders=row.orders,
        task_limit=row.task_limit,
        strip_comments=row.strip_comments,
        lineage=json.loads(row.lineage_json or "{}"),
        parser_version=row.parser_version,
        state=state or row.state,
        total=row.total,
        done=done,
        job_id=row.job_id,
        created_at=row.created_at,
        finished_at=row.finished_at,
        objective_totals=json.loads(row.objective_totals_json or "{}"),
    )


def _result_info(row: EvalResultRow) -> EvalResultInfo:
    assert row.id is not None
    return EvalResultInfo(
        id=row.id,
        run_id=row.run_id,
        objective=row.objective,
        task_id=row.task_id,
        order=row.task_order,
        gt=row.gt,
        decision=row.decision,
        raw_output=row.raw_output,
        latency_s=row.latency_s,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
    )


def create_run(
    engine: Engine,
    *,
    judge_spec: str,
    judge_kind: str,
    benchmark: Benchmark,
    objectives: Sequence[str],
    orders: str = "both",
    task_limit: int | None = None,
    strip: bool | None = None,
    lineage: dict[str, Any] | None = None,
) -> int:
    """Record a new run and return its id; its total is the number of items it will judge."""
    items = judge_items(benchmark, objectives=objectives, orders=orders, limit=task_limit, strip=False)
    totals = Counter(item.objective for item in items)
    row = EvalRunRow(
        judge_spec=judge_spec,
        judge_kind=judge_kind,
        bench_dir=benchmark.directory,
        bench_version=benchmark.version,
        objectives_json=json.dumps(list(objectives)),
        orders=orders,
        task_limit=task_limit,
        strip_comments=strip,
        lineage_json=json.dumps(lineage or {}, sort_keys=True, default=str),
        parser_version=PARSER_VERSION,
        total=len(items),
        objective_totals_json=json.dumps(dict(totals)),
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def _done_counts(session: Session, run_ids: Sequence[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    query = (
        select(EvalResultRow.run_id, func.count())
        .where(col(EvalResultRow.run_id).in_(run_ids))
        .group_by(EvalResultRow.run_id)
    )
    return {int(run_id): int(count) for run_id, count in session.exec(query).all()}


def get_run(engine: Engine, run_id: int) -> EvalRunInfo:
    """One run with its result count, or NotFoundError."""
    reap_dead_jobs(engine)
    with Session(engine) as session:
        row = session.get(EvalRunRow, run_id)
        if row is None:
            raise NotFoundError(f"evaluation run {run_id} does not exist")
        return _to_info(row, _done_counts(session, [run_id]).get(run_id, 0), _visible_state(session, row))


def list_runs(engine: Engine, *, limit: int = 200, before_id: int | None = None) -> list[EvalRunInfo]:
    """Newest runs first, one keyset page at a time."""
    reap_dead_jobs(engine)
    with Session(engine) as session:
        query = select(EvalRunRow).order_by(col(EvalRunRow.id).desc()).limit(limit)
        if before_id is not None:
            query = query.where(col(EvalRunRow.id) < before_id)
        rows = session.exec(query).all()
        counts = _done_counts(session, [row.id for row in rows if row.id is not None])
        return [_to_info(row, counts.get(row.id or 0, 0), _visible_state(session, row)) for row in rows]


def completed_keys(engine: Engine, run_id: int) -> set[tuple[str, str, str]]:
    """(objective, task_id, order) of every result the run already has."""
    with Session(engine) as session:
        query = select(EvalResultRow.objective, EvalResultRow.task_id, EvalResultRow.task_order).where(
            EvalResultRow.run_id == run_id
        )
        return {(o, t, r) for o, t, r in session.exec(query).all()}


def record_results(engine: Engine, run_id: int, items: Sequence[JudgeItem], outputs: Sequence[JudgeOutput]) -> int:
    """Insert one batch in one transaction, skipping items already stored; return how many were new."""
    if len(items) != len(outputs):
        raise ValueError("a judge returned a different number of outputs than items")
    rows = [
        {
            "run_id": run_id,
            "objective": item.objective,
            "task_id": item.task_id,
            "task_order": item.order,
            "gt": item.gt,
            "decision": output.decision,
            "raw_output": output.raw,
            "latency_s": output.latency_s,
            "prompt_tokens": output.prompt_tokens,
            "completion_tokens": output.completion_tokens,
            "created_at": utcnow(),
        }
        for item, output in zip(items, outputs)
    ]
    if not rows:
        return 0
    with Session(engine) as session:
        statement = _insert_ignoring_duplicates(session.get_bind().dialect.name, rows)
        result = session.execute(statement)
        session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


def _insert_ignoring_duplicates(dialect: str, rows: list[dict[str, Any]]) -> Any:
    # Both dialects spell "skip rows that hit the unique key" the same way; only the import differs.
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(EvalResultRow).values(rows).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(EvalResultRow).values(rows).on_conflict_do_nothing()


def scored_results(engine: Engine, run_id: int) -> list[ScoredResult]:
    """What scoring needs of every result of a run (no raw outputs)."""
    with Session(engine) as session:
        query = sa_select(
            col(EvalResultRow.objective), col(EvalResultRow.task_id), col(EvalResultRow.task_order),
            col(EvalResultRow.gt), col(EvalResultRow.decision),
        ).where(col(EvalResultRow.run_id) == run_id)
        return [ScoredResult(o, t, r, g, d) for o, t, r, g, d in session.execute(query).all()]


def run_scores(engine: Engine, run_id: int) -> RunScores:
    """Scores of a run from its stored decisions."""
    return score_run(scored_results(engine, run_id))


def list_results(
    engine: Engine,
    run_id: int,
    *,
    objective: str | None = None,
    limit: int = 500,
    after_id: int | None = None,
) -> list[EvalResultInfo]:
    """Results of a run in insertion order, one keyset page at a time."""
    with Session(engine) as session:
        query = select(EvalResultRow).where(EvalResultRow.run_id == run_id)
        if objective is not None:
            query = query.where(EvalResultRow.objective == objective)
        if after_id is not None:
            query = query.where(col(EvalResultRow.id) > after_id)
        query = query.order_by(col(EvalResultRow.id)).limit(limit)
        return [_result_info(row) for row in session.exec(query).all()]


def task_results(engine: Engine, run_id: int, objective: str, task_id: str) -> list[EvalResultInfo]:
    """Both orders of one task in a run (given first)."""
    with Session(engine) as session:
        query = select(EvalResultRow).where(
            EvalResultRow.run_id == run_id,
            EvalResultRow.objective == objective,
            EvalResultRow.task_id == task_id,
        )
        rows = sorted(session.exec(query).all(), key=lambda row: row.task_order != "given")
        return [_result_info(row) for row in rows]


def rescore_run(engine: Engine, run_id: int) -> int:
    """Re-derive every decision from its stored raw output with the current parser; return changes."""
    run = get_run(engine, run_id)
    changed = 0
    with Session(engine) as session:
        rows = session.exec(select(EvalResultRow).where(EvalResultRow.run_id == run_id)).all()
        for row in rows:
            decision = redecide(run.judge_kind, row.raw_output, row.decision)
            if decision != row.decision:
                row.decision = decision
                session.add(row)
                changed += 1
        run_row = session.get(EvalRunRow, run_id)
        assert run_row is not None
        run_row.parser_version = PARSER_VERSION
        session.add(run_row)
        session.commit()
    return changed


def leaderboard(engine: Engine, *, limit: int = 200) -> list[LeaderboardEntry]:
    """Runs with results, best verifiable average first."""
    entries = [
        LeaderboardEntry(run=run, scores=run_scores(engine, run.id))
        for run in list_runs(engine, limit=limit)
        if run.done
    ]
    entries.sort(key=lambda entry: -(entry.scores.verifiable_average or 0.0))
    return entries


def _set_run_state(engine: Engine, run_id: int, state: str, *, job_id: int | None = None) -> None:
    with Session(engine) as session:
        row = session.get(EvalRunRow, run_id)
        if row is None:
            raise NotFoundError(f"evaluation run {run_id} does not exist")
        row.state = state
        if job_id is not None:
            row.job_id = job_id
        row.finished_at = utcnow() if state in ("done", "stopped", "failed") else None
        session.add(row)
        session.commit()


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
        benchmark, objectives=run.objectives, orders=run.orders, limit=run.task_limit, strip=run.strip_comments
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
        {"run_id": run_id, "judge": run.judge_spec, "bench_version": run.bench_version},
    )
    _set_run_state(engine, run_id, "running", job_id=handle.job_id)
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
        _set_run_state(engine, run_id, state)
    yield EvalFinished(run_id, state, scores, error)


def _summary(scores: RunScores) -> dict[str, Any]:
    summary: dict[str, Any] = {s.objective: round(100 * s.accuracy, 1) for s in scores.objectives}
    if scores.verifiable_average is not None:
        summary["verifiable average"] = round(100 * scores.verifiable_average, 1)
    return summary
