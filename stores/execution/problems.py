"""Problems with tests: store once by content hash, select, list with counts, read back."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import NotFoundError
from core.execution.problems import Problem, ProblemSelection
from core.execution.records import ProblemDetail, ProblemInfo, SolutionCounts
from stores.execution.tables import CodePairLinkRow, CodeProblemRow, CodeSolutionRow

_CHUNK = 500


def add_problems(engine: Engine, problems: Sequence[Problem]) -> tuple[list[int], int]:
    """Store problems once each (by content hash); return every one's id, in order, and how many were new."""
    ids: list[int] = []
    added = 0
    with Session(engine) as session:
        for start in range(0, len(problems), _CHUNK):
            chunk = problems[start:start + _CHUNK]
            hashes = [p.content_hash for p in chunk]
            known = dict(session.exec(
                select(CodeProblemRow.content_hash, CodeProblemRow.id).where(col(CodeProblemRow.content_hash).in_(hashes))
            ).all())
            for problem in chunk:
                digest = problem.content_hash
                if digest not in known:
                    row = CodeProblemRow(
                        task_id=problem.task_id, source=problem.source, prompt=problem.prompt,
                        entry_point=problem.entry_point, test=problem.test,
                        canonical_solution=problem.canonical_solution, content_hash=digest,
                    )
                    session.add(row)
                    session.flush()
                    known[digest] = row.id
                    added += 1
                ids.append(int(known[digest]))  # type: ignore[arg-type]
        session.commit()
    return ids, added


def _problem(row: CodeProblemRow) -> Problem:
    return Problem(task_id=row.task_id, prompt=row.prompt, entry_point=row.entry_point, test=row.test,
                   canonical_solution=row.canonical_solution, source=row.source)


def load_problems(engine: Engine, problem_ids: Sequence[int]) -> dict[int, Problem]:
    """Problems keyed by id."""
    found: dict[int, Problem] = {}
    with Session(engine) as session:
        for start in range(0, len(problem_ids), _CHUNK):
            chunk = list(problem_ids[start:start + _CHUNK])
            for row in session.exec(select(CodeProblemRow).where(col(CodeProblemRow.id).in_(chunk))).all():
                found[int(row.id)] = _problem(row)  # type: ignore[arg-type]
    return found


def select_problem_ids(engine: Engine, selection: ProblemSelection) -> list[int]:
    """Ids of the problems a selection names, by id."""
    selection.check()
    with Session(engine) as session:
        query = select(CodeProblemRow.id, CodeProblemRow.source, CodeProblemRow.task_id, CodeProblemRow.content_hash)
        if selection.source:
            query = query.where(CodeProblemRow.source == selection.source)
        rows = session.exec(query.order_by(col(CodeProblemRow.id))).all()
    kept = [int(pid) for pid, source, task_id, digest in rows if selection.keeps(source, task_id, digest)]  # type: ignore[arg-type]
    kept = kept[selection.offset:]
    return kept[: selection.limit] if selection.limit is not None else kept


def solution_counts(engine: Engine, problem_ids: Sequence[int] | None = None,
                    config_key: str | None = None) -> dict[int, SolutionCounts]:
    """Counts of sampled and executed solutions per problem (all problems when `problem_ids` is None)."""
    executed = col(CodeSolutionRow.exec_state) == "done"
    passed = executed & (col(CodeSolutionRow.status) == "passed")

    def total(condition: object) -> object:
        return func.sum(case((condition, 1), else_=0))  # type: ignore[arg-type]

    query = select(  # type: ignore[call-overload]
        CodeSolutionRow.problem_id,
        total(col(CodeSolutionRow.sampled)),
        total(executed),
        total(passed),
        total(executed & (col(CodeSolutionRow.status) == "failed")),
        total(executed & (col(CodeSolutionRow.status) == "timeout")),
        total(passed & col(CodeSolutionRow.stable)),
        total(passed & ~col(CodeSolutionRow.stable)),
        total(col(CodeSolutionRow.finish_reason) == "length"),
    ).group_by(col(CodeSolutionRow.problem_id))
    if problem_ids is not None:
        query = query.where(col(CodeSolutionRow.problem_id).in_(list(problem_ids)))
    if config_key is not None:
        query = query.where(CodeSolutionRow.config_key == config_key)
    with Session(engine) as session:
        rows = session.exec(query).all()
    return {int(row[0]): SolutionCounts(*(int(value or 0) for value in row[1:])) for row in rows}


def pair_counts(engine: Engine, problem_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Code-optimise pairs per problem."""
    query = select(CodePairLinkRow.problem_id, func.count()).group_by(col(CodePairLinkRow.problem_id))
    if problem_ids is not None:
        query = query.where(col(CodePairLinkRow.problem_id).in_(list(problem_ids)))
    with Session(engine) as session:
        return {int(pid): int(n) for pid, n in session.exec(query).all()}


def list_problems(engine: Engine, *, limit: int = 200, after_id: int | None = None,
                  source: str | None = None) -> list[ProblemInfo]:
    """One keyset page of problems by id, with solution and pair counts."""
    with Session(engine) as session:
        query = select(CodeProblemRow.id, CodeProblemRow.task_id, CodeProblemRow.source, CodeProblemRow.entry_point)
        if source:
            query = query.where(CodeProblemRow.source == source)
        if after_id is not None:
            query = query.where(col(CodeProblemRow.id) > after_id)
        rows = session.exec(query.order_by(col(CodeProblemRow.id)).limit(limit)).all()
    ids = [int(r[0]) for r in rows]  # type: ignore[arg-type]
    counts = solution_counts(engine, ids) if ids else {}
    pairs = pair_counts(engine, ids) if ids else {}
    return [
        ProblemInfo(id=int(pid), task_id=task_id, source=src, entry_point=entry,  # type: ignore[arg-type]
                    counts=counts.get(int(pid), SolutionCounts()), pairs=pairs.get(int(pid), 0))  # type: ignore[arg-type]
        for pid, task_id, src, entry in rows
    ]


def count_problems(engine: Engine) -> int:
    """How many problems are stored."""
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(CodeProblemRow)).one())


def get_problem(engine: Engine, problem_id: int) -> ProblemDetail:
    """One problem with its counts, or NotFoundError."""
    with Session(engine) as session:
        row = session.get(CodeProblemRow, problem_id)
        if row is None:
            raise NotFoundError(f"problem {problem_id} does not exist")
        problem, created_at = _problem(row), row.created_at
    return ProblemDetail(
        id=problem_id, problem=problem, counts=solution_counts(engine, [problem_id]).get(problem_id, SolutionCounts()),
        pairs=pair_counts(engine, [problem_id]).get(problem_id, 0), created_at=created_at,
    )
