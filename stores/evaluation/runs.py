"""Evaluation runs: create, resume, record results in small transactions, score and re-score."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import NotFoundError
from core.evaluation.bench import Benchmark, JudgeItem, judge_items
from core.evaluation.judges import PARSER_VERSION, JudgeOutput, redecide
from core.evaluation.models import EvalResultInfo, EvalRunInfo, LeaderboardEntry
from core.evaluation.protocols import DEFAULT_PROTOCOL, get_protocol
from core.evaluation.scoring import RunScores, ScoredResult, score_run
from core.jobs import JobState, lease_seconds
from stores.db import insert_or_ignore
from stores.evaluation.tables import EvalResultRow, EvalRunRow
from stores.tables import JobRow, utcnow

JOB_KIND = "eval"
# Small enough that a kill loses a few seconds of work, large enough to fill a GPU batch.
DEFAULT_CHUNK = 64


def _run_state(job: JobRow | None) -> tuple[str, Any]:
    """A run's state is its latest job's (`created` before any); a running job whose worker stopped
    heartbeating reads `stalled` until a worker takes it over."""
    if job is None:
        return "created", None
    if job.state == JobState.RUNNING.value and job.heartbeat_at is not None:
        from datetime import timedelta

        if utcnow() - job.heartbeat_at > timedelta(seconds=lease_seconds()):
            return "stalled", job.finished_at
    return job.state, job.finished_at


def _to_info(row: EvalRunRow, done: int, job: JobRow | None) -> EvalRunInfo:
    assert row.id is not None
    state, finished_at = _run_state(job)
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
        state=state,
        total=row.total,
        done=done,
        job_id=row.job_id,
        created_at=row.created_at,
        finished_at=finished_at,
        objective_totals=json.loads(row.objective_totals_json or "{}"),
        protocol=row.protocol,
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
    protocol: str = DEFAULT_PROTOCOL,
) -> int:
    """Record a new run under `protocol` and return its id; its total is the number of items it will judge."""
    get_protocol(protocol)  # an unknown name fails before anything is stored
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
        protocol=protocol,
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
    """One run with its result count and its job's state, or NotFoundError."""
    with Session(engine) as session:
        row = session.get(EvalRunRow, run_id)
        if row is None:
            raise NotFoundError(f"evaluation run {run_id} does not exist")
        job = session.get(JobRow, row.job_id) if row.job_id is not None else None
        return _to_info(row, _done_counts(session, [run_id]).get(run_id, 0), job)


def list_runs(engine: Engine, *, limit: int = 200, before_id: int | None = None) -> list[EvalRunInfo]:
    """Newest runs first, one keyset page at a time."""
    with Session(engine) as session:
        query = select(EvalRunRow).order_by(col(EvalRunRow.id).desc()).limit(limit)
        if before_id is not None:
            query = query.where(col(EvalRunRow.id) < before_id)
        rows = session.exec(query).all()
        counts = _done_counts(session, [row.id for row in rows if row.id is not None])
        job_ids = [row.job_id for row in rows if row.job_id is not None]
        jobs = {job.id: job for job in session.exec(select(JobRow).where(col(JobRow.id).in_(job_ids))).all()}
        return [_to_info(row, counts.get(row.id or 0, 0), jobs.get(row.job_id)) for row in rows]


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
        statement = insert_or_ignore(session.get_bind().dialect.name, EvalResultRow.__table__).values(rows)  # type: ignore[attr-defined]
        result = session.execute(statement)
        session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


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


def leaderboard(engine: Engine, *, limit: int = 200, with_empty: bool = False) -> list[LeaderboardEntry]:
    """Runs with results (with `with_empty`, also runs that have none yet), best verifiable average first."""
    entries = [
        LeaderboardEntry(run=run, scores=run_scores(engine, run.id))
        for run in list_runs(engine, limit=limit)
        if run.done or with_empty
    ]
    entries.sort(key=lambda entry: -(entry.scores.verifiable_average or 0.0))
    return entries


def attach_job(engine: Engine, run_id: int, job_id: int) -> None:
    """Record the job that runs (or resumes) a run: the run's state is that job's from now on."""
    with Session(engine) as session:
        row = session.get(EvalRunRow, run_id)
        if row is None:
            raise NotFoundError(f"evaluation run {run_id} does not exist")
        row.job_id = job_id
        session.add(row)
        session.commit()
