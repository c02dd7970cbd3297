"""Solutions: sample slots driven as synthesis items, execution claims and verdicts, pairs with lineage."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, func, true, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from core.curation.pairs import NewPair
from core.errors import NotFoundError
from core.execution.pairs import ExecutedSolution, SolutionPair
from core.execution.records import ExecutionTask, SolutionInfo
from core.execution.runtime import RuntimeStats
from core.execution.sampling import METHOD, SampleSubject
from core.execution.sandbox import ExecutionResult
from core.execution.solutions import read_answer
from core.jobs import lease_seconds
from core.synthesis.driver import PairStored
from core.synthesis.steps import Answered, Outcome
from stores.claims import CLAIMED, PENDING, claim_rows, expired_before
from stores.curation.pairs import import_pairs
from stores.curation.tables import PairRow
from stores.execution.problems import load_problems
from stores.execution.tables import CodePairLinkRow, CodeSampleConfigRow, CodeSolutionRow
from stores.synthesis.runs import SqlSynthesisStore, prepare_items
from stores.synthesis.tables import ConversationRow, SynthItemRow
from stores.tables import utcnow

_CHUNK = 500
_ITEMS: Table = SynthItemRow.__table__  # type: ignore[attr-defined]


def code_hash(code: str) -> str:
    """Identity of a solution's code: samples with the same code share one execution."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SampleConfig:
    """A sampling configuration as stored: its key, model name, prompt version and parameters."""

    key: str
    model: str
    prompt_version: str
    temperature: float
    top_p: float
    max_tokens: int
    seed: int


def sample_config_key(model: str, prompt_version: str, temperature: float, top_p: float, max_tokens: int,
                      seed: int) -> str:
    """The key of a sampling configuration: the same configuration on a problem reuses its slots."""
    text = json.dumps([METHOD, prompt_version, model, temperature, top_p, max_tokens, seed])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def prepare_samples(engine: Engine, config: SampleConfig, problem_ids: Sequence[int], samples_per_problem: int) -> list[int]:
    """Create the missing slots (and their synthesis items) for `samples_per_problem` samples of each
    problem, reopen stale ones, and return every slot id of the selection."""
    with Session(engine) as session:
        if session.get(CodeSampleConfigRow, config.key) is None:
            session.add(CodeSampleConfigRow(
                key=config.key, model=config.model, prompt_version=config.prompt_version,
                temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens, seed=config.seed,
            ))
            session.flush()
        slot_ids: list[int] = []
        for start in range(0, len(problem_ids), _CHUNK):
            chunk = list(problem_ids[start:start + _CHUNK])
            existing = {
                (int(pid), int(index)): int(sid)  # type: ignore[arg-type]
                for sid, pid, index in session.exec(
                    select(CodeSolutionRow.id, CodeSolutionRow.problem_id, CodeSolutionRow.sample_index)
                    .where(CodeSolutionRow.config_key == config.key, col(CodeSolutionRow.problem_id).in_(chunk))
                ).all()
            }
            for problem_id in chunk:
                for index in range(samples_per_problem):
                    if (problem_id, index) not in existing:
                        row = CodeSolutionRow(problem_id=problem_id, config_key=config.key, sample_index=index)
                        session.add(row)
                        session.flush()
                        existing[(problem_id, index)] = int(row.id)  # type: ignore[arg-type]
                    slot_ids.append(existing[(problem_id, index)])
        session.commit()
    prepare_items(engine, METHOD, config.key, slot_ids)
    return slot_ids


def get_sample_config(engine: Engine, key: str) -> SampleConfig:
    """A stored sampling configuration, or NotFoundError."""
    with Session(engine) as session:
        row = session.get(CodeSampleConfigRow, key)
        if row is None:
            raise NotFoundError(f"sampling configuration {key} does not exist")
        return SampleConfig(row.key, row.model, row.prompt_version, row.temperature, row.top_p, row.max_tokens, row.seed)


def load_sample_subjects(engine: Engine, slot_ids: Sequence[int]) -> dict[int, SampleSubject]:
    """Sample slots with their problems, keyed by slot id."""
    if not slot_ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(
            select(CodeSolutionRow.id, CodeSolutionRow.problem_id, CodeSolutionRow.sample_index)
            .where(col(CodeSolutionRow.id).in_(list(slot_ids)))
        ).all()
    problems = load_problems(engine, sorted({int(pid) for _s, pid, _i in rows}))
    return {
        int(sid): SampleSubject(int(sid), problems[int(pid)], int(index))  # type: ignore[arg-type]
        for sid, pid, index in rows if int(pid) in problems
    }


class SqlSampleStore(SqlSynthesisStore):
    """The synthesis driver's store for sampling: a sampled answer fills its slot and queues it to run.

    Several workers may sample one configuration at once, each claiming its own slots' items with
    a lease (`worker_id`, `lease_s`); `scope` limits the claims to a run's slots.
    """

    def __init__(self, engine: Engine, *, job_id: int | None, key: str, worker_id: str = "", lease_s: float = 60.0,
                 scope: Sequence[int] | None = None) -> None:
        super().__init__(engine, job_id=job_id, method=METHOD, key=key, load_subjects=load_sample_subjects,
                         worker_id=worker_id, lease_s=lease_s, scope=scope)

    def finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> PairStored | None:
        """Store a sampled answer and its code in the slot if this worker still holds the item, or
        record why the item failed."""
        if not isinstance(outcome, Answered):
            return super().finish_item(item_id, outcome, conversation_id)
        with Session(self.engine) as session:
            held = session.execute(  # also takes the row's write lock until the commit
                update(_ITEMS).where(_ITEMS.c.id == item_id, _ITEMS.c.state == CLAIMED,
                                     _ITEMS.c.worker_id == self.worker_id).values(updated_at=utcnow())
            ).rowcount  # type: ignore[attr-defined]
            item = session.get(SynthItemRow, item_id)
            if item is None:
                raise NotFoundError(f"sampling item {item_id} does not exist")
            if not held:
                session.rollback()
                return None  # its lease ran out and another worker has it: that one writes the answer
            slot = session.get(CodeSolutionRow, item.subject_id)
            if slot is None:
                raise NotFoundError(f"solution slot {item.subject_id} does not exist")
            problem = load_problems(self.engine, [slot.problem_id])[slot.problem_id]
            answer = read_answer(outcome.text, outcome.finish_reason, problem)
            slot.answer, slot.code, slot.code_hash = answer.text, answer.code, code_hash(answer.code)
            slot.finish_reason, slot.sampled, slot.conversation_id = answer.finish_reason, True, conversation_id
            slot.exec_state, slot.status, slot.detail = "pending", "", ""
            item.state, item.reason, item.conversation_id = "sampled", "", conversation_id
            item.job_id, item.updated_at = self.job_id, utcnow()
            session.add(slot)
            session.add(item)
            if conversation_id is not None:
                conversation = session.get(ConversationRow, conversation_id)
                if conversation is not None:
                    conversation.outcome = "sampled"
                    session.add(conversation)
            session.commit()
        return None


def sample_slot_ids(engine: Engine, key: str, problem_ids: Sequence[int], samples_per_problem: int) -> list[int]:
    """The slots a run of this configuration has on these problems (those created so far), without creating any."""
    slot_ids: list[int] = []
    with Session(engine) as session:
        for start in range(0, len(problem_ids), _CHUNK):
            chunk = list(problem_ids[start:start + _CHUNK])
            slot_ids += [int(sid) for sid in session.exec(  # type: ignore[arg-type]
                select(CodeSolutionRow.id).where(
                    CodeSolutionRow.config_key == key, col(CodeSolutionRow.problem_id).in_(chunk),
                    col(CodeSolutionRow.sample_index) < samples_per_problem,
                )
            ).all()]
    return sorted(slot_ids)


# ---- execution ------------------------------------------------------------------------------------

_SOLUTIONS: Table = CodeSolutionRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ExecutionScope:
    """Which solutions an execution or pairs run covers: one sampling configuration, some problems, or all."""

    config_key: str | None = None
    problem_ids: tuple[int, ...] | None = None


def _scoped(query, scope: ExecutionScope):  # type: ignore[no-untyped-def]
    if scope.config_key is not None:
        query = query.where(CodeSolutionRow.config_key == scope.config_key)
    if scope.problem_ids is not None:
        query = query.where(col(CodeSolutionRow.problem_id).in_(list(scope.problem_ids)))
    return query


def _in_scope(scope: ExecutionScope) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = true()
    if scope.config_key is not None:
        condition = and_(condition, _SOLUTIONS.c.config_key == scope.config_key)
    if scope.problem_ids is not None:
        condition = and_(condition, _SOLUTIONS.c.problem_id.in_(list(scope.problem_ids)))
    return condition


def open_executions(engine: Engine, scope: ExecutionScope, *, lease_s: float | None = None) -> tuple[int, int]:
    """Solutions in scope still to run: (claimable, held by a live worker). A claim whose worker
    stopped heartbeating (older than `lease_s`, default `core.jobs.lease_seconds()`) is claimable."""
    lease = lease_seconds() if lease_s is None else lease_s
    with engine.connect() as connection:
        held = and_(_SOLUTIONS.c.exec_state == CLAIMED,
                    _SOLUTIONS.c.exec_heartbeat_at >= expired_before(connection, lease))
        rows = connection.execute(
            select(held, func.count()).select_from(_SOLUTIONS)
            .where(_in_scope(scope), _SOLUTIONS.c.exec_state.in_((PENDING, CLAIMED))).group_by(held)
        ).all()
    counts = {bool(is_held): int(n) for is_held, n in rows}
    return counts.get(False, 0), counts.get(True, 0)


def claim_executions(engine: Engine, worker_id: str, limit: int, scope: ExecutionScope, *, job_id: int | None = None,
                     lease_s: float | None = None) -> list[ExecutionTask]:
    """Claim up to `limit` solutions in scope for `worker_id` (pending ones, or those whose worker's
    lease ran out), with their problems; no other worker gets them while its heartbeat renews them."""
    with engine.begin() as connection:
        ids = claim_rows(connection, _SOLUTIONS, _in_scope(scope), worker_id=worker_id, limit=limit,
                         lease_s=lease_seconds() if lease_s is None else lease_s, extra_values={"exec_job_id": job_id})
        slots = connection.execute(
            select(_SOLUTIONS.c.id, _SOLUTIONS.c.problem_id, _SOLUTIONS.c.code, _SOLUTIONS.c.code_hash)
            .where(_SOLUTIONS.c.id.in_(ids))
        ).all() if ids else []
    problems = load_problems(engine, sorted({int(row.problem_id) for row in slots}))
    return [ExecutionTask(int(row.id), int(row.problem_id), problems[int(row.problem_id)], row.code, row.code_hash)
            for row in sorted(slots, key=lambda row: int(row.id))]


def executed_twin(engine: Engine, problem_id: int, digest: str) -> CodeSolutionRow | None:
    """An executed solution of the same problem with the same code, whose verdict a twin can reuse."""
    with Session(engine) as session:
        row = session.exec(
            select(CodeSolutionRow).where(
                CodeSolutionRow.problem_id == problem_id, CodeSolutionRow.code_hash == digest,
                CodeSolutionRow.exec_state == "done",
            ).order_by(col(CodeSolutionRow.id)).limit(1)
        ).first()
        if row is not None:
            session.expunge(row)
        return row


def _finish_held(engine: Engine, solution_id: int, worker_id: str, values: dict[str, Any]) -> bool:
    """Write a verdict if `worker_id` still holds the solution; False when its lease ran out and
    another worker took it (that one writes the verdict)."""
    with engine.begin() as connection:
        result = connection.execute(
            update(_SOLUTIONS).where(_SOLUTIONS.c.id == solution_id, _SOLUTIONS.c.exec_state == CLAIMED,
                                     _SOLUTIONS.c.exec_worker_id == worker_id)
            .values(exec_state="done", executed_at=utcnow(), **values)
        )
        if result.rowcount:
            return True
        if connection.execute(select(_SOLUTIONS.c.id).where(_SOLUTIONS.c.id == solution_id)).first() is None:
            raise NotFoundError(f"solution {solution_id} does not exist")
        return False


def record_execution(engine: Engine, solution_id: int, result: ExecutionResult, stats: RuntimeStats,
                     isolation: str, *, worker_id: str) -> bool:
    """Store the sandbox's verdict and runtime of one solution `worker_id` holds; False (nothing
    written) when it no longer holds it."""
    return _finish_held(engine, solution_id, worker_id, {
        "status": result.status, "detail": result.detail[:2000], "runtime_median_s": stats.median_s,
        "runtime_cv": stats.cv, "runtime_runs": stats.runs, "stable": stats.stable,
        "samples_json": json.dumps(list(result.samples)), "isolation": isolation,
    })


def copy_execution(engine: Engine, solution_id: int, twin: CodeSolutionRow, *, worker_id: str) -> bool:
    """Give a solution `worker_id` holds the verdict and runtime of its executed twin (same problem,
    same code); False (nothing written) when it no longer holds it."""
    return _finish_held(engine, solution_id, worker_id, {
        name: getattr(twin, name) for name in ("status", "detail", "runtime_median_s", "runtime_cv", "runtime_runs",
                                               "stable", "samples_json", "isolation")
    })


def release_executions(engine: Engine, worker_id: str, solution_ids: Sequence[int] | None = None) -> int:
    """Put solutions `worker_id` holds back to pending (all of them when `solution_ids` is None): it
    stopped, or the sandbox failed; return how many."""
    condition = and_(_SOLUTIONS.c.exec_state == CLAIMED, _SOLUTIONS.c.exec_worker_id == worker_id)
    if solution_ids is not None:
        condition = and_(condition, _SOLUTIONS.c.id.in_(list(solution_ids)))
    with engine.begin() as connection:
        return int(connection.execute(update(_SOLUTIONS).where(condition).values(exec_state=PENDING)).rowcount or 0)


# ---- reading back and pairs -----------------------------------------------------------------------

def _info(row: CodeSolutionRow, model: str) -> SolutionInfo:
    return SolutionInfo(
        id=int(row.id), problem_id=row.problem_id, config_key=row.config_key, sample_index=row.sample_index,  # type: ignore[arg-type]
        model=model, code=row.code, finish_reason=row.finish_reason, exec_state=row.exec_state, status=row.status,
        detail=row.detail, runtime_median_s=row.runtime_median_s, runtime_cv=row.runtime_cv,
        runtime_runs=row.runtime_runs, stable=row.stable, isolation=row.isolation,
    )


def list_solutions(engine: Engine, *, problem_id: int | None = None, config_key: str | None = None,
                   status: str | None = None, limit: int = 200, after_id: int | None = None) -> list[SolutionInfo]:
    """One keyset page of sampled solutions by id, filtered by problem, configuration and verdict."""
    with Session(engine) as session:
        query = (select(CodeSolutionRow, CodeSampleConfigRow.model)
                 .join(CodeSampleConfigRow, col(CodeSampleConfigRow.key) == col(CodeSolutionRow.config_key))
                 .where(col(CodeSolutionRow.sampled)))
        if problem_id is not None:
            query = query.where(CodeSolutionRow.problem_id == problem_id)
        if config_key is not None:
            query = query.where(CodeSolutionRow.config_key == config_key)
        if status is not None:
            query = query.where(CodeSolutionRow.status == status)
        if after_id is not None:
            query = query.where(col(CodeSolutionRow.id) > after_id)
        return [_info(row, model) for row, model in session.exec(query.order_by(col(CodeSolutionRow.id)).limit(limit)).all()]


def executed_problem_ids(engine: Engine, scope: ExecutionScope) -> list[int]:
    """Problems in scope with at least one executed solution."""
    with Session(engine) as session:
        query = _scoped(select(CodeSolutionRow.problem_id).where(CodeSolutionRow.exec_state == "done"), scope)
        return sorted({int(pid) for pid in session.exec(query.distinct()).all()})


def executed_solutions(engine: Engine, problem_id: int, scope: ExecutionScope) -> list[ExecutedSolution]:
    """The executed solutions of one problem in scope, as pair building sees them."""
    with Session(engine) as session:
        rows = session.exec(_scoped(
            select(CodeSolutionRow).where(CodeSolutionRow.problem_id == problem_id, CodeSolutionRow.exec_state == "done"),
            scope,
        ).order_by(col(CodeSolutionRow.id))).all()
        return [
            ExecutedSolution(
                solution_id=int(r.id), code=r.code, status=r.status, truncated=r.finish_reason == "length",  # type: ignore[arg-type]
                median_s=r.runtime_median_s, stable=r.stable, detail=r.detail,
            )
            for r in rows
        ]


def store_pairs(engine: Engine, problem_id: int, pairs: Sequence[tuple[NewPair, SolutionPair]],
                *, job_id: int | None = None) -> tuple[int, int]:
    """Add pairs through the pairs table's import path and link each to its problem and solutions:
    (added, already stored). Re-running links pairs an interrupted run stored without links."""
    if not pairs:
        return 0, 0
    added, skipped = import_pairs(engine, [new for new, _pair in pairs], job_id=job_id)
    hashes = {new.content_hash: pair for new, pair in pairs}
    with Session(engine) as session:
        ids = dict(session.exec(select(PairRow.content_hash, PairRow.id).where(col(PairRow.content_hash).in_(list(hashes)))).all())
        linked = set(session.exec(select(CodePairLinkRow.pair_id).where(
            col(CodePairLinkRow.pair_id).in_([int(i) for i in ids.values() if i is not None]))).all())
        for digest, pair in hashes.items():
            pair_id = ids.get(digest)
            if pair_id is None or pair_id in linked:
                continue
            session.add(CodePairLinkRow(
                pair_id=pair_id, problem_id=problem_id, chosen_solution_id=pair.chosen.solution_id,
                rejected_solution_id=pair.rejected.solution_id, objective=pair.objective,
            ))
        session.commit()
    return added, skipped
