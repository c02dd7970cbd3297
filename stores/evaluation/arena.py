"""Arena data access: sets and questions, answers per model, runs and their judgements, scores."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import DataError, NotFoundError, OptionError
from core.evaluation.arena import (
    ORDERS,
    ArenaPairing,
    ArenaSetFile,
    ArenaSubject,
    ImportedAnswer,
    pairing,
)
from core.evaluation.arena_models import (
    ArenaAnswerInfo,
    ArenaEntry,
    ArenaJudgementInfo,
    ArenaQuestionInfo,
    ArenaRunInfo,
    ArenaSetInfo,
)
from core.evaluation.arena_scoring import ArenaScores, ScoredJudgement, score_arena
from core.llm.base import ChatResult
from core.synthesis.driver import WorkItem
from core.synthesis.steps import Answered, Failed, Outcome, Turn
from stores.evaluation.tables import (
    ArenaAnswerRow,
    ArenaJudgementRow,
    ArenaQuestionRow,
    ArenaRunRow,
    ArenaSetRow,
)
from stores.jobs import ACTIVE_STATES
from stores.synthesis.tables import ResponseCacheRow
from stores.tables import JobRow, utcnow

ANSWER_JOB_KIND = "arena-answer"
JUDGE_JOB_KIND = "arena-judge"
FINAL_RUN_STATES = ("done", "stopped", "failed")


# ---- sets and questions ----------------------------------------------------------------------------

def add_arena_set(
    engine: Engine, name: str, source: str, set_file: ArenaSetFile, *, baseline_model: str = "baseline"
) -> tuple[int, bool]:
    """Store a set once (by content): its questions and the baseline answers it carries.

    Returns (set id, whether it was new). Raises OptionError when `name` is taken by a set with
    other questions.
    """
    if not name.strip():
        raise OptionError("an arena set needs a non-empty name")
    with Session(engine) as session:
        existing = session.exec(select(ArenaSetRow).where(ArenaSetRow.content_hash == set_file.content_hash)).first()
        if existing is not None:
            assert existing.id is not None
            return existing.id, False
        if session.exec(select(ArenaSetRow.id).where(ArenaSetRow.name == name)).first() is not None:
            raise OptionError(f"an arena set named {name!r} already holds other questions; pass --name NEW_NAME")
        set_row = ArenaSetRow(name=name, source=source, content_hash=set_file.content_hash,
                              question_count=len(set_file.questions))
        session.add(set_row)
        session.flush()
        assert set_row.id is not None
        for position, question in enumerate(set_file.questions):
            row = ArenaQuestionRow(set_id=set_row.id, position=position, external_id=question.external_id,
                                   question=question.question, category=question.category, language=question.language)
            session.add(row)
            if question.baseline_answer is not None:
                session.flush()
                assert row.id is not None
                session.add(ArenaAnswerRow(
                    question_id=row.id, model=baseline_model, source="set", text=question.baseline_answer,
                    lineage_json=json.dumps({"set": name, "file": source}, sort_keys=True),
                ))
        session.commit()
        return set_row.id, True


def _set_row(session: Session, ref: str | int) -> ArenaSetRow:
    text = str(ref).strip()
    row = session.get(ArenaSetRow, int(text)) if text.isdigit() else None
    if row is None:
        row = session.exec(select(ArenaSetRow).where(ArenaSetRow.name == text)).first()
    if row is None:
        raise NotFoundError(f"arena set {text!r} does not exist (see `workbench arena sets`)")
    return row


def _set_info(session: Session, row: ArenaSetRow) -> ArenaSetInfo:
    assert row.id is not None
    questions = select(ArenaQuestionRow.id).where(ArenaQuestionRow.set_id == row.id)
    categories = session.exec(
        select(ArenaQuestionRow.category, func.count()).where(ArenaQuestionRow.set_id == row.id)
        .group_by(ArenaQuestionRow.category)
    ).all()
    languages = session.exec(
        select(ArenaQuestionRow.language, func.count()).where(ArenaQuestionRow.set_id == row.id)
        .group_by(ArenaQuestionRow.language)
    ).all()
    models = session.exec(
        select(ArenaAnswerRow.model, func.count()).where(col(ArenaAnswerRow.question_id).in_(questions))
        .group_by(ArenaAnswerRow.model)
    ).all()
    return ArenaSetInfo(
        id=row.id, name=row.name, source=row.source, content_hash=row.content_hash, questions=row.question_count,
        categories=dict(sorted((c, int(n)) for c, n in categories)),
        languages=dict(sorted((lang, int(n)) for lang, n in languages)),
        models=dict(sorted((m, int(n)) for m, n in models)), created_at=row.created_at,
    )


def get_arena_set(engine: Engine, ref: str | int) -> ArenaSetInfo:
    """A set by id or name, with counts per category, language and answering model."""
    with Session(engine) as session:
        return _set_info(session, _set_row(session, ref))


def list_arena_sets(engine: Engine, *, limit: int = 200, after_id: int | None = None) -> list[ArenaSetInfo]:
    """Sets by id, one keyset page at a time."""
    with Session(engine) as session:
        query = select(ArenaSetRow).order_by(col(ArenaSetRow.id)).limit(limit)
        if after_id is not None:
            query = query.where(col(ArenaSetRow.id) > after_id)
        return [_set_info(session, row) for row in session.exec(query).all()]


def list_arena_questions(
    engine: Engine, set_id: int, *, limit: int = 500, after_position: int | None = None
) -> list[ArenaQuestionInfo]:
    """A set's questions in file order, one keyset page at a time."""
    with Session(engine) as session:
        query = select(ArenaQuestionRow).where(ArenaQuestionRow.set_id == set_id)
        if after_position is not None:
            query = query.where(col(ArenaQuestionRow.position) > after_position)
        rows = session.exec(query.order_by(col(ArenaQuestionRow.position)).limit(limit)).all()
        return [
            ArenaQuestionInfo(id=int(r.id), set_id=r.set_id, position=r.position,  # type: ignore[arg-type]
                              external_id=r.external_id, question=r.question, category=r.category,
                              language=r.language)
            for r in rows
        ]


# ---- answers ---------------------------------------------------------------------------------------

def _answer_info(row: ArenaAnswerRow) -> ArenaAnswerInfo:
    assert row.id is not None
    return ArenaAnswerInfo(
        id=row.id, question_id=row.question_id, model=row.model, source=row.source, text=row.text,
        finish_reason=row.finish_reason, prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens, latency_s=row.latency_s, lineage=json.loads(row.lineage_json),
    )


def import_answers(
    engine: Engine, set_id: int, model: str, answers: Sequence[ImportedAnswer], *, source: str,
    job_id: int | None = None,
) -> tuple[int, int]:
    """Store a model's answers once per question: (added, already stored). Nothing is stored when an
    answer names a question the set lacks (DataError)."""
    if not model.strip():
        raise OptionError("answers need a non-empty model name")
    with Session(engine) as session:
        ids = dict(session.exec(
            select(ArenaQuestionRow.external_id, ArenaQuestionRow.id).where(ArenaQuestionRow.set_id == set_id)
        ).all())
        unknown = [a.external_id for a in answers if a.external_id not in ids]
        if unknown:
            raise DataError(f"{source}: {len(unknown)} answer(s) name questions the set lacks, "
                              f"first {unknown[0]!r}")
        stored = set(session.exec(
            select(ArenaAnswerRow.question_id).where(ArenaAnswerRow.model == model,
                                                     col(ArenaAnswerRow.question_id).in_(list(ids.values())))
        ).all())
        added = 0
        lineage = json.dumps({"file": source}, sort_keys=True)
        for answer in answers:
            question_id = ids[answer.external_id]
            if question_id in stored:
                continue
            stored.add(question_id)
            session.add(ArenaAnswerRow(question_id=question_id, model=model, source="imported", text=answer.text,
                                       lineage_json=lineage, job_id=job_id))
            added += 1
        session.commit()
    return added, len(answers) - added


def missing_answers(engine: Engine, set_id: int, model: str, *, limit: int | None = None) -> list[ArenaSubject]:
    """Questions of a set that `model` has not answered yet, in file order (the first `limit` questions)."""
    with Session(engine) as session:
        query = select(ArenaQuestionRow).where(ArenaQuestionRow.set_id == set_id).order_by(
            col(ArenaQuestionRow.position))
        if limit is not None:
            query = query.limit(limit)
        questions = session.exec(query).all()
        answered = set(session.exec(
            select(ArenaAnswerRow.question_id).where(
                ArenaAnswerRow.model == model,
                col(ArenaAnswerRow.question_id).in_([q.id for q in questions]))
        ).all())
        return [ArenaSubject(int(q.id), q.question, q.language)  # type: ignore[arg-type]
                for q in questions if q.id not in answered]


def store_answer(
    engine: Engine, question_id: int, model: str, text: str, *, finish_reason: str, prompt_tokens: int,
    completion_tokens: int, latency_s: float, cached: bool, lineage: dict[str, Any], job_id: int | None,
) -> bool:
    """Store a generated answer unless the model already has one for the question; True if stored."""
    with Session(engine) as session:
        if session.exec(select(ArenaAnswerRow.id).where(
                ArenaAnswerRow.question_id == question_id, ArenaAnswerRow.model == model)).first() is not None:
            return False
        session.add(ArenaAnswerRow(
            question_id=question_id, model=model, source="generated", text=text, finish_reason=finish_reason,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_s=latency_s, cached=cached,
            lineage_json=json.dumps(lineage, sort_keys=True, default=str), job_id=job_id,
        ))
        session.commit()
        return True


def list_answers(
    engine: Engine, set_id: int, model: str, *, limit: int = 500, after_id: int | None = None
) -> list[ArenaAnswerInfo]:
    """A model's answers on a set, by id, one keyset page at a time."""
    with Session(engine) as session:
        questions = select(ArenaQuestionRow.id).where(ArenaQuestionRow.set_id == set_id)
        query = select(ArenaAnswerRow).where(ArenaAnswerRow.model == model,
                                             col(ArenaAnswerRow.question_id).in_(questions))
        if after_id is not None:
            query = query.where(col(ArenaAnswerRow.id) > after_id)
        return [_answer_info(r) for r in session.exec(query.order_by(col(ArenaAnswerRow.id)).limit(limit)).all()]


# ---- runs ------------------------------------------------------------------------------------------

def _run_info(session: Session, row: ArenaRunRow, done: int) -> ArenaRunInfo:
    assert row.id is not None
    state = row.state
    # A run whose process died (kill -9) still says running; its job says otherwise.
    if state == "running" and row.job_id is not None:
        job = session.get(JobRow, row.job_id)
        if job is not None and job.state not in ACTIVE_STATES:
            state = "interrupted"
    set_row = session.get(ArenaSetRow, row.set_id)
    return ArenaRunInfo(
        id=row.id, set_id=row.set_id, set_name=set_row.name if set_row else "", candidate=row.candidate,
        baseline=row.baseline, judge_spec=row.judge_spec, judge_kind=row.judge_kind, orders=row.orders,
        prompt_version=row.prompt_version, parser_version=row.parser_version,
        lineage=json.loads(row.lineage_json or "{}"), state=state, total=row.total, done=done,
        job_id=row.job_id, created_at=row.created_at, finished_at=row.finished_at,
    )


def _done_counts(session: Session, run_ids: Sequence[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    rows = session.exec(
        select(ArenaJudgementRow.run_id, func.count()).where(col(ArenaJudgementRow.run_id).in_(list(run_ids)))
        .group_by(ArenaJudgementRow.run_id)
    ).all()
    return {int(run_id): int(count) for run_id, count in rows}


def open_run(
    engine: Engine, *, set_id: int, candidate: str, baseline: str, judge_spec: str, judge_kind: str,
    orders: str, prompt_version: str, parser_version: str, lineage: dict[str, Any],
) -> int:
    """The run of this set, candidate, baseline, judge and orders: created once, resumed after."""
    if orders not in ("both", "given"):
        raise OptionError(f"orders must be 'both' or 'given', not {orders!r}")
    if candidate == baseline:
        raise OptionError(f"the candidate and the baseline are both {candidate!r}; judge two different models")
    with Session(engine) as session:
        row = session.exec(select(ArenaRunRow).where(
            ArenaRunRow.set_id == set_id, ArenaRunRow.candidate == candidate, ArenaRunRow.baseline == baseline,
            ArenaRunRow.judge_spec == judge_spec, ArenaRunRow.orders == orders,
        )).first()
        if row is None:
            row = ArenaRunRow(set_id=set_id, candidate=candidate, baseline=baseline, judge_spec=judge_spec,
                              judge_kind=judge_kind, orders=orders, prompt_version=prompt_version,
                              parser_version=parser_version,
                              lineage_json=json.dumps(lineage, sort_keys=True, default=str))
            session.add(row)
            session.commit()
        assert row.id is not None
        return row.id


def get_arena_run(engine: Engine, run_id: int) -> ArenaRunInfo:
    """One run with its judgement count, or NotFoundError."""
    with Session(engine) as session:
        row = session.get(ArenaRunRow, run_id)
        if row is None:
            raise NotFoundError(f"arena run {run_id} does not exist (see `workbench arena runs`)")
        return _run_info(session, row, _done_counts(session, [run_id]).get(run_id, 0))


def list_arena_runs(
    engine: Engine, *, set_id: int | None = None, limit: int = 200, before_id: int | None = None
) -> list[ArenaRunInfo]:
    """Newest runs first (optionally of one set), one keyset page at a time."""
    with Session(engine) as session:
        query = select(ArenaRunRow).order_by(col(ArenaRunRow.id).desc()).limit(limit)
        if set_id is not None:
            query = query.where(ArenaRunRow.set_id == set_id)
        if before_id is not None:
            query = query.where(col(ArenaRunRow.id) < before_id)
        rows = session.exec(query).all()
        counts = _done_counts(session, [int(r.id) for r in rows if r.id is not None])
        return [_run_info(session, row, counts.get(int(row.id or 0), 0)) for row in rows]


def set_run_state(engine: Engine, run_id: int, state: str, *, job_id: int | None = None,
                  total: int | None = None) -> None:
    """Record a run's state (and its job and total); final states stamp the finish time."""
    with Session(engine) as session:
        row = session.get(ArenaRunRow, run_id)
        if row is None:
            raise NotFoundError(f"arena run {run_id} does not exist")
        row.state = state
        if job_id is not None:
            row.job_id = job_id
        if total is not None:
            row.total = total
        row.finished_at = utcnow() if state in FINAL_RUN_STATES else None
        session.add(row)
        session.commit()


def run_pairings(engine: Engine, run_id: int) -> tuple[list[ArenaPairing], int, int]:
    """The run's (question, order) pairings still to judge, how many it has in all, and how many
    questions lack the candidate's or the baseline's answer (those are not judged)."""
    with Session(engine) as session:
        run = session.get(ArenaRunRow, run_id)
        if run is None:
            raise NotFoundError(f"arena run {run_id} does not exist")
        questions = session.exec(select(ArenaQuestionRow).where(ArenaQuestionRow.set_id == run.set_id)
                                 .order_by(col(ArenaQuestionRow.position))).all()
        answers: dict[tuple[int, str], tuple[int, str]] = {}
        for answer in session.exec(select(ArenaAnswerRow).where(
                col(ArenaAnswerRow.model).in_([run.candidate, run.baseline]),
                col(ArenaAnswerRow.question_id).in_([q.id for q in questions]))).all():
            answers[(answer.question_id, answer.model)] = (int(answer.id), answer.text)  # type: ignore[arg-type]
        done = set(session.exec(select(ArenaJudgementRow.question_id, ArenaJudgementRow.judge_order)
                                .where(ArenaJudgementRow.run_id == run_id)).all())
        orders = ORDERS if run.orders == "both" else ("given",)
        pending: list[ArenaPairing] = []
        total = missing = 0
        for question in questions:
            assert question.id is not None
            candidate = answers.get((question.id, run.candidate))
            baseline = answers.get((question.id, run.baseline))
            if candidate is None or baseline is None:
                missing += 1
                continue
            for order in orders:
                total += 1
                if (question.id, order) not in done:
                    pending.append(pairing(question.id, order, question.question, question.category,
                                           question.language, candidate, baseline))
        return pending, total, missing


def record_judgement(
    engine: Engine, run_id: int, item: ArenaPairing, *, position_verdict: str, verdict: str, raw_output: str,
    latency_s: float = 0.0, prompt_tokens: int = 0, completion_tokens: int = 0, cached: bool = False,
) -> bool:
    """Store one judgement unless the run already has it (a question is never judged twice in an order)."""
    return record_judgements(engine, run_id, [(item, position_verdict, verdict, raw_output, latency_s,
                                                prompt_tokens, completion_tokens, cached)]) == 1


JudgementValues = tuple[ArenaPairing, str, str, str, float, int, int, bool]


def record_judgements(engine: Engine, run_id: int, values: Sequence[JudgementValues]) -> int:
    """Store judgements in one transaction, skipping any the run already has; return how many were new."""
    with Session(engine) as session:
        added = _insert_judgements(session, run_id, values)
        session.commit()
        return added


def _insert_judgements(session: Session, run_id: int, values: Sequence[JudgementValues]) -> int:
    rows = [
        {"run_id": run_id, "question_id": item.question_id, "judge_order": item.order,
         "candidate_side": item.candidate_side, "candidate_answer_id": item.candidate_answer_id,
         "baseline_answer_id": item.baseline_answer_id, "position_verdict": position, "verdict": verdict,
         "raw_output": raw, "latency_s": latency, "prompt_tokens": prompt_tokens,
         "completion_tokens": completion_tokens, "cached": cached, "created_at": utcnow()}
        for item, position, verdict, raw, latency, prompt_tokens, completion_tokens, cached in values
    ]
    if not rows:
        return 0
    # Both dialects spell "skip rows that hit the unique key" the same way; only the import differs.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Any = postgresql.insert(ArenaJudgementRow).values(rows).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(ArenaJudgementRow).values(rows).on_conflict_do_nothing()
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def _judgement_query(run_id: int) -> Any:
    return (
        select(ArenaJudgementRow, ArenaQuestionRow)
        .join(ArenaQuestionRow, col(ArenaQuestionRow.id) == col(ArenaJudgementRow.question_id))
        .where(ArenaJudgementRow.run_id == run_id)
    )


def scored_judgements(engine: Engine, run_id: int) -> list[ScoredJudgement]:
    """What scoring needs of every judgement of a run (no raw outputs)."""
    with Session(engine) as session:
        query = (
            sa_select(col(ArenaJudgementRow.question_id), col(ArenaQuestionRow.category),
                      col(ArenaQuestionRow.language), col(ArenaJudgementRow.judge_order),
                      col(ArenaJudgementRow.verdict))
            .join(ArenaQuestionRow, col(ArenaQuestionRow.id) == col(ArenaJudgementRow.question_id))
            .where(col(ArenaJudgementRow.run_id) == run_id)
        )
        return [ScoredJudgement(int(q), c, lang, o, v) for q, c, lang, o, v in session.execute(query).all()]


def arena_scores(engine: Engine, run_id: int) -> ArenaScores:
    """Scores of a run from its stored judgements."""
    return score_arena(scored_judgements(engine, run_id))


def list_judgements(
    engine: Engine, run_id: int, *, limit: int = 500, after_id: int | None = None
) -> list[ArenaJudgementInfo]:
    """A run's judgements in insertion order, one keyset page at a time."""
    with Session(engine) as session:
        query = _judgement_query(run_id)
        if after_id is not None:
            query = query.where(col(ArenaJudgementRow.id) > after_id)
        rows = session.exec(query.order_by(col(ArenaJudgementRow.id)).limit(limit)).all()
        return [
            ArenaJudgementInfo(
                id=int(j.id), run_id=j.run_id, question_id=j.question_id, external_id=q.external_id,
                category=q.category, language=q.language, order=j.judge_order, candidate_side=j.candidate_side,
                position_verdict=j.position_verdict, verdict=j.verdict, raw_output=j.raw_output,
                latency_s=j.latency_s, prompt_tokens=j.prompt_tokens, completion_tokens=j.completion_tokens,
                cached=j.cached,
            )
            for j, q in rows
        ]


def arena_leaderboard(engine: Engine, *, set_id: int | None = None, limit: int = 200) -> list[ArenaEntry]:
    """Runs with judgements and their scores, best win rate first."""
    entries = [ArenaEntry(run, arena_scores(engine, run.id))
               for run in list_arena_runs(engine, set_id=set_id, limit=limit) if run.done]
    entries.sort(key=lambda entry: (-entry.scores.overall.win_rate, entry.run.id))
    return entries


def verdict_counts(engine: Engine, run_id: int) -> Counter[str]:
    """How many judgements of a run have each verdict."""
    with Session(engine) as session:
        rows = session.exec(select(ArenaJudgementRow.verdict, func.count())
                            .where(ArenaJudgementRow.run_id == run_id).group_by(ArenaJudgementRow.verdict)).all()
        return Counter({verdict: int(count) for verdict, count in rows})


# ---- the synthesis driver's store protocol, for chat-model answers and judges ----------------------

class _QueueStore:
    """Pending items in memory (what is stored is done), the shared response cache, one write per item."""

    def __init__(self, engine: Engine, subjects: dict[int, Any]) -> None:
        self.engine = engine
        self._subjects = subjects
        self._pending = list(subjects)
        self._exchanges: dict[int, tuple[str, str, str, ChatResult]] = {}
        self.failures: list[str] = []

    def claim(self, limit: int) -> list[WorkItem]:
        """Take up to `limit` pending items in order."""
        taken, self._pending = self._pending[:limit], self._pending[limit:]
        return [WorkItem(item_id, self._subjects[item_id]) for item_id in taken]

    def release(self, item_id: int) -> None:
        """Put an unfinished item back; a later run finds it still missing."""
        self._exchanges.pop(item_id, None)
        self._pending.insert(0, item_id)

    def cached(self, key: str) -> ChatResult | None:
        """A cached answer for this key."""
        with Session(self.engine) as session:
            row = session.get(ResponseCacheRow, key)
            if row is None:
                return None
            return ChatResult(text=row.text, prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
                              latency_s=row.latency_s, finish_reason=row.finish_reason, cached=True)

    def record_exchange(self, item_id: int, turn: Turn, model: str, prompt_version: str, key: str,
                        result: ChatResult) -> int:
        """Keep the answer until the item's outcome is written with it in one transaction."""
        self._exchanges[item_id] = (model, prompt_version, key, result)
        return item_id

    def _cache(self, session: Session, item_id: int) -> ChatResult:
        model, prompt_version, key, result = self._exchanges.pop(item_id)
        if not result.cached and session.get(ResponseCacheRow, key) is None:
            session.add(ResponseCacheRow(
                key=key, model=model, prompt_version=prompt_version, text=result.text,
                finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens, latency_s=result.latency_s,
            ))
        return result

    def _fail(self, item_id: int, outcome: Outcome) -> None:
        self._exchanges.pop(item_id, None)
        self.failures.append(outcome.reason if isinstance(outcome, Failed) else "no answer")


class ArenaAnswerStore(_QueueStore):
    """Stores each generated answer of one model (with the cache entry it came from) as it finishes."""

    def __init__(self, engine: Engine, subjects: Sequence[ArenaSubject], *, model: str, lineage: dict[str, Any],
                 job_id: int | None) -> None:
        super().__init__(engine, {subject.question_id: subject for subject in subjects})
        self.model = model
        self.lineage = lineage
        self.job_id = job_id
        self.stored = 0

    def finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> None:
        """Write an answer and its cache entry in one transaction; a failure is only counted."""
        if not isinstance(outcome, Answered):
            self._fail(item_id, outcome)
            return
        with Session(self.engine) as session:
            result = self._cache(session, item_id)
            exists = session.exec(select(ArenaAnswerRow.id).where(
                ArenaAnswerRow.question_id == item_id, ArenaAnswerRow.model == self.model)).first()
            if exists is None:
                session.add(ArenaAnswerRow(
                    question_id=item_id, model=self.model, source="generated", text=outcome.text,
                    finish_reason=outcome.finish_reason, prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens, latency_s=result.latency_s, cached=result.cached,
                    lineage_json=json.dumps(self.lineage, sort_keys=True, default=str), job_id=self.job_id,
                ))
                self.stored += 1
            session.commit()


class ArenaJudgeStore(_QueueStore):
    """Stores each verdict of a chat-model judge (with its cache entry) as it finishes."""

    def __init__(self, engine: Engine, run_id: int, pairings: Sequence[ArenaPairing]) -> None:
        super().__init__(engine, dict(enumerate(pairings)))
        self.run_id = run_id
        self.stored = 0

    def finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> None:
        """Write a judgement and its cache entry in one transaction; a failure is only counted."""
        if not isinstance(outcome, Answered):
            self._fail(item_id, outcome)
            return
        item: ArenaPairing = self._subjects[item_id]
        with Session(self.engine) as session:
            result = self._cache(session, item_id)
            self.stored += _insert_judgements(session, self.run_id, [(
                item, str(outcome.meta["position_verdict"]), str(outcome.meta["verdict"]), outcome.text,
                result.latency_s, result.prompt_tokens, result.completion_tokens, result.cached,
            )])
            session.commit()
