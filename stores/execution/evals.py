"""Policy evaluations: the run, its per-problem outcomes and the aggregated metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import NotFoundError
from core.execution.metrics import PolicyMetrics, ProblemOutcome, pass_at_k
from core.execution.records import PolicyEvalInfo
from stores.execution.tables import CodePairLinkRow, CodeSolutionRow, PolicyEvalProblemRow, PolicyEvalRow
from stores.tables import utcnow


def _info(row: PolicyEvalRow) -> PolicyEvalInfo:
    return PolicyEvalInfo(
        id=int(row.id), job_id=row.job_id, model=row.model, config_key=row.config_key,  # type: ignore[arg-type]
        samples_per_problem=row.samples_per_problem, ks=tuple(json.loads(row.ks_json)),
        problem_ids=tuple(json.loads(row.problem_ids_json)), selection=row.selection, state=row.state,
        metrics=json.loads(row.metrics_json or "{}"), seen_problems=row.seen_problems,
        created_at=row.created_at, finished_at=row.finished_at,
    )


def seen_problem_count(engine: Engine, problem_ids: Sequence[int]) -> int:
    """How many of these problems already gave code-optimise pairs (so are not held out from training)."""
    with Session(engine) as session:
        return len(set(session.exec(
            select(CodePairLinkRow.problem_id).where(col(CodePairLinkRow.problem_id).in_(list(problem_ids)))
        ).all()))


def create_policy_eval(engine: Engine, *, job_id: int | None, model: str, config_key: str, samples_per_problem: int,
                       ks: Sequence[int], problem_ids: Sequence[int], selection: str) -> int:
    """Record a new policy evaluation (running) and return its id."""
    with Session(engine) as session:
        row = PolicyEvalRow(
            job_id=job_id, model=model, config_key=config_key, samples_per_problem=samples_per_problem,
            ks_json=json.dumps(list(ks)), problem_ids_json=json.dumps(list(problem_ids)), selection=selection,
            seen_problems=seen_problem_count(engine, problem_ids),
        )
        session.add(row)
        session.commit()
        return int(row.id)  # type: ignore[arg-type]


def policy_eval_of_job(engine: Engine, job_id: int) -> int | None:
    """The evaluation a job records into (a job taken over after its worker died goes on with it), or None."""
    with Session(engine) as session:
        found = session.exec(select(PolicyEvalRow.id).where(PolicyEvalRow.job_id == job_id)
                             .order_by(col(PolicyEvalRow.id))).first()
        return int(found) if found is not None else None


def problem_outcomes(engine: Engine, config_key: str, problem_ids: Sequence[int],
                     samples_per_problem: int | None = None) -> list[ProblemOutcome]:
    """Executed samples of a configuration per problem (the first `samples_per_problem` of each, when
    given): counts, runtimes of passing ones, code lengths."""
    query = (
        select(CodeSolutionRow.problem_id, CodeSolutionRow.status, CodeSolutionRow.runtime_median_s, CodeSolutionRow.code)
        .where(CodeSolutionRow.config_key == config_key, col(CodeSolutionRow.problem_id).in_(list(problem_ids)),
               CodeSolutionRow.exec_state == "done")
    )
    if samples_per_problem is not None:
        query = query.where(col(CodeSolutionRow.sample_index) < samples_per_problem)
    with Session(engine) as session:
        rows = session.exec(query.order_by(col(CodeSolutionRow.id))).all()
    by_problem: dict[int, list[tuple[str, float | None, str]]] = {pid: [] for pid in problem_ids}
    for pid, status, runtime, code in rows:
        by_problem[int(pid)].append((status, runtime, code))
    outcomes = []
    for pid in problem_ids:
        entries = by_problem[pid]
        outcomes.append(ProblemOutcome(
            problem_id=pid, task_id="", samples=len(entries), passed=sum(1 for s, _r, _c in entries if s == "passed"),
            passing_runtimes_s=tuple(r for s, r, _c in entries if s == "passed" and r is not None),
            code_lengths=tuple(len(c) for _s, _r, c in entries),
            code_lines=tuple(len([line for line in c.splitlines() if line.strip()]) for _s, _r, c in entries),
        ))
    return outcomes


def finish_policy_eval(engine: Engine, eval_id: int, state: str, *, metrics: PolicyMetrics | None = None,
                       outcomes: Sequence[ProblemOutcome] = (), ks: Sequence[int] = ()) -> None:
    """Record how the evaluation ended, its metrics and its per-problem outcomes."""
    with Session(engine) as session:
        row = session.get(PolicyEvalRow, eval_id)
        if row is None:
            raise NotFoundError(f"policy evaluation {eval_id} does not exist")
        row.state, row.finished_at = state, utcnow()
        if metrics is not None:
            data = asdict(metrics)
            data["pass_at"] = {str(k): v for k, v in metrics.pass_at.items()}
            row.metrics_json = json.dumps(data)
        session.add(row)
        for outcome in outcomes:
            pass_at = {str(k): pass_at_k(outcome.samples, outcome.passed, k) for k in ks if outcome.samples >= k}
            runtimes = outcome.passing_runtimes_s
            lengths = outcome.code_lengths
            session.merge(PolicyEvalProblemRow(
                eval_id=eval_id, problem_id=outcome.problem_id, samples=outcome.samples, passed=outcome.passed,
                pass_at_json=json.dumps(pass_at),
                mean_runtime_s=sum(runtimes) / len(runtimes) if runtimes else None,
                mean_length_chars=sum(lengths) / len(lengths) if lengths else None,
            ))
        session.commit()


def list_policy_evals(engine: Engine, *, limit: int = 100) -> list[PolicyEvalInfo]:
    """Newest policy evaluations first."""
    with Session(engine) as session:
        rows = session.exec(select(PolicyEvalRow).order_by(col(PolicyEvalRow.id).desc()).limit(limit)).all()
        return [_info(row) for row in rows]


def get_policy_eval(engine: Engine, eval_id: int) -> PolicyEvalInfo:
    """One policy evaluation, or NotFoundError."""
    with Session(engine) as session:
        row = session.get(PolicyEvalRow, eval_id)
        if row is None:
            raise NotFoundError(f"policy evaluation {eval_id} does not exist")
        return _info(row)
