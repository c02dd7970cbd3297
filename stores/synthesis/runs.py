"""Synthesis data access: work items with claims, the response cache, conversations, pairs, instructions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.errors import NotFoundError
from core.llm.base import TRUNCATED_REASONS, ChatResult
from core.llm.reasoning import split_reasoning
from core.synthesis.commit_instruct import CommitSubject
from core.synthesis.critic_evol import InstructionSubject
from core.synthesis.driver import PairStored, WorkItem
from core.synthesis.records import ConversationInfo, InstructionRecord, ItemCounts
from core.synthesis.steps import Failed, Filtered, Outcome, PairDraft, Turn
from stores.curation.tables import PairRow
from stores.jobs import ACTIVE_STATES, reap_dead_jobs
from stores.mining.tables import BlobRow, CommitRow
from stores.synthesis.tables import ConversationRow, InstructionRow, ResponseCacheRow, SynthItemRow
from stores.tables import JobRow, utcnow


def _hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def config_key(method: str, prompt_version: str, models: dict[str, str], strip_comments: bool) -> str:
    """Identify one synthesis configuration: the same config on the same subject is one item."""
    return _hash(method, prompt_version, json.dumps(sorted(models.items())), str(strip_comments))[:24]


def pair_hash(source: str, instruction: str, criteria: str, chosen: str, rejected: str) -> str:
    """The content hash that makes pair inserts idempotent."""
    return _hash(source, instruction, criteria, chosen, rejected)


# ---- subjects -------------------------------------------------------------------------------------

def select_commit_ids(engine: Engine, *, limit: int | None = None, language: str | None = None) -> list[int]:
    """The first `limit` mined commit files by id (optionally of one language)."""
    with Session(engine) as session:
        query = select(CommitRow.id).order_by(col(CommitRow.id))
        if language:
            query = query.where(CommitRow.language == language)
        if limit is not None:
            query = query.limit(limit)
        return [int(i) for i in session.exec(query).all() if i is not None]


def load_commit_subjects(engine: Engine, commit_ids: Sequence[int]) -> dict[int, CommitSubject]:
    """Commit files with both texts, keyed by commit id."""
    if not commit_ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(select(CommitRow).where(col(CommitRow.id).in_(list(commit_ids)))).all()
        blob_ids = {row.old_blob for row in rows} | {row.new_blob for row in rows}
        blobs = {b.sha: b.text for b in session.exec(select(BlobRow).where(col(BlobRow.sha).in_(blob_ids))).all()}
        return {
            int(row.id): CommitSubject(  # type: ignore[arg-type]
                commit_id=int(row.id),  # type: ignore[arg-type]
                message=row.message, path=row.path, language=row.language,
                old_text=blobs.get(row.old_blob, ""), new_text=blobs.get(row.new_blob, ""),
            )
            for row in rows
        }


def load_instruction_subjects(engine: Engine, instruction_ids: Sequence[int]) -> dict[int, InstructionSubject]:
    """Instructions keyed by id."""
    if not instruction_ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(select(InstructionRow).where(col(InstructionRow.id).in_(list(instruction_ids)))).all()
        return {int(r.id): InstructionSubject(int(r.id), r.text, r.language) for r in rows}  # type: ignore[arg-type]


def add_instructions(engine: Engine, records: Sequence[InstructionRecord], *, source: str = "") -> tuple[list[int], int]:
    """Store instructions once each (by content hash); return all their ids and how many were new."""
    ids: list[int] = []
    added = 0
    with Session(engine) as session:
        for record in records:
            digest = _hash(record.language, record.text)
            existing = session.exec(select(InstructionRow.id).where(InstructionRow.content_hash == digest)).first()
            if existing is not None:
                ids.append(int(existing))
                continue
            row = InstructionRow(text=record.text, language=record.language, source=source,
                                 external_id=record.external_id, content_hash=digest)
            session.add(row)
            session.flush()
            ids.append(int(row.id))  # type: ignore[arg-type]
            added += 1
        session.commit()
    return list(dict.fromkeys(ids)), added


def list_instructions(engine: Engine, *, limit: int = 200, after_id: int | None = None) -> list[tuple[int, str, str]]:
    """(id, language, text) of stored instructions, one keyset page at a time."""
    with Session(engine) as session:
        query = select(InstructionRow).order_by(col(InstructionRow.id)).limit(limit)
        if after_id is not None:
            query = query.where(col(InstructionRow.id) > after_id)
        return [(int(r.id), r.language, r.text) for r in session.exec(query).all()]  # type: ignore[arg-type]


def all_instruction_ids(engine: Engine) -> list[int]:
    """Every stored instruction id."""
    with Session(engine) as session:
        return [int(i) for i in session.exec(select(InstructionRow.id).order_by(col(InstructionRow.id))).all() if i is not None]


_T = TypeVar("_T")
_SCOPE_CHUNK = 500  # subject ids per IN (...) list, well under every database's parameter limit

# ---- work items -----------------------------------------------------------------------------------

def prepare_items(engine: Engine, method: str, key: str, subject_ids: Sequence[int]) -> int:
    """Add missing items for these subjects and reopen stale ones; return how many were added.

    Stale: claimed by a job that no longer runs (killed), or failed on a transport error.
    """
    reap_dead_jobs(engine)
    added = 0
    with Session(engine) as session:
        existing = set(session.exec(select(SynthItemRow.subject_id).where(SynthItemRow.config_key == key)).all())
        for subject_id in subject_ids:
            if subject_id not in existing:
                session.add(SynthItemRow(method=method, config_key=key, subject_id=subject_id))
                existing.add(subject_id)
                added += 1
        active = select(JobRow.id).where(col(JobRow.state).in_(ACTIVE_STATES))
        session.exec(  # type: ignore[call-overload]
            update(SynthItemRow)
            .where(col(SynthItemRow.config_key) == key, col(SynthItemRow.state) == "claimed")
            .where((col(SynthItemRow.job_id).is_(None)) | (col(SynthItemRow.job_id).not_in(active)))
            .values(state="pending", updated_at=utcnow())
        )
        session.exec(  # type: ignore[call-overload]
            update(SynthItemRow)
            .where(col(SynthItemRow.config_key) == key, col(SynthItemRow.state) == "failed",
                   col(SynthItemRow.retryable).is_(True))
            .values(state="pending", retryable=False, reason="", updated_at=utcnow())
        )
        session.commit()
    return added


def item_counts(engine: Engine, key: str) -> ItemCounts:
    """How many items of a configuration are in each state."""
    with Session(engine) as session:
        rows = session.exec(
            select(SynthItemRow.state, func.count()).where(SynthItemRow.config_key == key).group_by(SynthItemRow.state)
        ).all()
    counts = {state: int(n) for state, n in rows}
    return ItemCounts(**{name: counts.get(name, 0) for name in ("pending", "claimed", "pair", "filtered", "failed")})


def pending_subject_ids(engine: Engine, key: str) -> list[int]:
    """Subjects of the items still to do (for estimates)."""
    with Session(engine) as session:
        return [int(i) for i in session.exec(
            select(SynthItemRow.subject_id).where(SynthItemRow.config_key == key,
                                                  col(SynthItemRow.state).in_(("pending", "claimed")))
        ).all()]


class SqlSynthesisStore:
    """The driver's SynthesisStore over the SQL store: claims in small transactions, writes as it goes."""

    def __init__(
        self,
        engine: Engine,
        *,
        job_id: int | None,
        method: str,
        key: str,
        load_subjects: Callable[[Engine, Sequence[int]], dict[int, Any]],
        scope: Sequence[int] | None = None,
    ) -> None:
        self.engine = engine
        self.job_id = job_id
        self.method = method
        self.key = key
        self.source = method
        self._load_subjects = load_subjects
        # The subjects this run may touch (a --limit or an instruction file), in claim order; None: all.
        self._scope = sorted(set(scope)) if scope is not None else None
        self._scope_cursor = 0

    def _candidates(self, session: Session, limit: int) -> list[tuple[int, int]]:
        query = (select(SynthItemRow.id, SynthItemRow.subject_id)
                 .where(SynthItemRow.config_key == self.key, SynthItemRow.state == "pending")
                 .order_by(col(SynthItemRow.id)))
        if self._scope is None:
            return [(int(i), int(s)) for i, s in session.exec(query.limit(limit)).all()]
        found: list[tuple[int, int]] = []
        # Items in scope leave "pending" only through this run's claims, so a cursor over the scope suffices.
        while len(found) < limit and self._scope_cursor < len(self._scope):
            chunk = self._scope[self._scope_cursor:self._scope_cursor + _SCOPE_CHUNK]
            in_chunk = query.where(col(SynthItemRow.subject_id).in_(chunk))
            rows = sorted(((int(i), int(s)) for i, s in session.exec(in_chunk)), key=lambda row: row[1])
            needed = limit - len(found)
            if len(rows) <= needed:
                found += rows
                self._scope_cursor += len(chunk)
            else:
                found += rows[:needed]
                self._scope_cursor += chunk.index(rows[needed - 1][1]) + 1
        return found

    def claim(self, limit: int) -> list[WorkItem]:
        """Claim up to `limit` pending items of this configuration (within the run's scope) for this job."""
        with Session(self.engine) as session:
            candidates = self._candidates(session, limit)
            claimed: list[tuple[int, int]] = []
            for item_id, subject_id in candidates:
                result = session.exec(  # type: ignore[call-overload]
                    update(SynthItemRow)
                    .where(col(SynthItemRow.id) == item_id, col(SynthItemRow.state) == "pending")
                    .values(state="claimed", job_id=self.job_id, attempts=SynthItemRow.attempts + 1,
                            updated_at=utcnow())
                )
                if result.rowcount == 1:  # another worker may have taken it first
                    claimed.append((int(item_id), int(subject_id)))
            session.commit()
        subjects = self._load_subjects(self.engine, [s for _i, s in claimed])
        items = []
        for item_id, subject_id in claimed:
            if subject_id in subjects:
                items.append(WorkItem(item_id, subjects[subject_id]))
            else:
                self.finish_item(item_id, Failed("its commit or instruction is gone from the store"), None)
        return items

    def cached(self, key: str) -> ChatResult | None:
        """A cached final answer for this key; a truncated one (cached by older versions) is a miss."""
        with Session(self.engine) as session:
            row = session.get(ResponseCacheRow, key)
            if row is None or row.finish_reason in TRUNCATED_REASONS:
                return None
            # Answers cached before reasoning was set aside may still hold <think> blocks.
            text, reasoning = split_reasoning(row.text)
            return ChatResult(text=text, prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
                              latency_s=row.latency_s, finish_reason=row.finish_reason, cached=True,
                              reasoning=reasoning)

    def record_exchange(self, item_id: int, turn: Turn, model: str, prompt_version: str, key: str,
                        result: ChatResult) -> int:
        """Store the exchange and, unless it was cut at max_tokens, cache its answer; return the conversation id."""
        return _once_more_on_conflict(lambda: self._record_exchange(item_id, turn, model, prompt_version, key, result))

    def _record_exchange(self, item_id: int, turn: Turn, model: str, prompt_version: str, key: str,
                         result: ChatResult) -> int:
        with Session(self.engine) as session:
            if not result.cached and not result.truncated and session.get(ResponseCacheRow, key) is None:
                session.add(ResponseCacheRow(
                    key=key, model=model, prompt_version=prompt_version, text=result.text,
                    finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens, latency_s=result.latency_s,
                ))
            existing = session.exec(
                select(ConversationRow).where(ConversationRow.item_id == item_id, ConversationRow.step == turn.step,
                                              ConversationRow.cache_key == key)
            ).first()
            if existing is not None:
                session.commit()
                return int(existing.id)  # type: ignore[arg-type]
            row = ConversationRow(
                item_id=item_id, job_id=self.job_id, method=self.method, step=turn.step, role=turn.role,
                model=model, prompt_version=prompt_version, cache_key=key,
                messages_json=json.dumps(list(turn.messages), ensure_ascii=False), response=result.text,
                finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens, latency_s=result.latency_s, cached=result.cached,
            )
            session.add(row)
            session.commit()
            return int(row.id)  # type: ignore[arg-type]

    def finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> PairStored | None:
        """Write the outcome (and the pair, once by content hash) in one transaction; "new" or "duplicate" for a pair."""
        return _once_more_on_conflict(lambda: self._finish_item(item_id, outcome, conversation_id))

    def _finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> PairStored | None:
        stored: PairStored | None = None
        with Session(self.engine) as session:
            item = session.get(SynthItemRow, item_id)
            if item is None:
                raise NotFoundError(f"synthesis item {item_id} does not exist")
            pair_id: int | None = None
            if isinstance(outcome, PairDraft):
                pair_id, stored = self._insert_pair(session, item, outcome, conversation_id)
                item.state, item.reason = "pair", ""
            elif isinstance(outcome, Filtered):
                item.state, item.reason = "filtered", outcome.reason
            elif isinstance(outcome, Failed):
                item.state, item.reason, item.retryable = "failed", outcome.reason, outcome.retryable
            else:  # synthesis methods end in pairs; a bare answer is an arena outcome
                item.state, item.reason = "failed", "the method returned an answer instead of a pair"
            item.pair_id = pair_id
            item.conversation_id = conversation_id
            item.job_id = self.job_id
            item.updated_at = utcnow()
            session.add(item)
            if conversation_id is not None:
                conversation = session.get(ConversationRow, conversation_id)
                if conversation is not None:
                    conversation.outcome = item.state
                    session.add(conversation)
            session.commit()
        return stored

    def _insert_pair(self, session: Session, item: SynthItemRow, pair: PairDraft,
                     conversation_id: int | None) -> tuple[int, PairStored]:
        digest = pair_hash(self.source, pair.instruction, pair.criteria, pair.chosen, pair.rejected)
        existing = session.exec(select(PairRow.id).where(PairRow.content_hash == digest)).first()
        if existing is not None:
            return int(existing), "duplicate"
        is_commit = self.method == "commit-instruct"
        row = PairRow(
            source=self.source, instruction=pair.instruction, criteria=pair.criteria, chosen=pair.chosen,
            rejected=pair.rejected, feedback=pair.feedback,
            language=str(pair.meta.get("language", "python")),
            commit_id=item.subject_id if is_commit else None,
            instruction_id=None if is_commit else item.subject_id,
            conversation_id=conversation_id, job_id=self.job_id, content_hash=digest,
            meta_json=json.dumps({**pair.meta, "item_id": item.id}, ensure_ascii=False, default=str),
        )
        session.add(row)
        session.flush()
        return int(row.id), "new"  # type: ignore[arg-type]

    def release(self, item_id: int) -> None:
        """Put an unfinished item back to pending."""
        with Session(self.engine) as session:
            session.exec(  # type: ignore[call-overload]
                update(SynthItemRow).where(col(SynthItemRow.id) == item_id, col(SynthItemRow.state) == "claimed")
                .values(state="pending", updated_at=utcnow())
            )
            session.commit()


def _once_more_on_conflict(write: Callable[[], _T]) -> _T:
    """Run a write transaction; if a concurrent writer inserted the same unique row first, run it again.

    Items finish in several threads and workers: two may carry the same pair or cached answer. The
    second attempt sees the first writer's row and reuses it.
    """
    try:
        return write()
    except IntegrityError:
        return write()


# ---- reading back ---------------------------------------------------------------------------------

def list_conversations(engine: Engine, *, limit: int = 50, item_id: int | None = None,
                       job_id: int | None = None) -> list[ConversationInfo]:
    """Newest exchanges first, with their item's state and reason."""
    with Session(engine) as session:
        query = (select(ConversationRow, SynthItemRow)
                 .join(SynthItemRow, col(SynthItemRow.id) == col(ConversationRow.item_id))
                 .order_by(col(ConversationRow.id).desc()).limit(limit))
        if item_id is not None:
            query = query.where(ConversationRow.item_id == item_id)
        if job_id is not None:
            query = query.where(ConversationRow.job_id == job_id)
        return [
            ConversationInfo(
                id=int(c.id), item_id=c.item_id, method=c.method, step=c.step, model=c.model,  # type: ignore[arg-type]
                prompt_version=c.prompt_version, messages=json.loads(c.messages_json), response=c.response,
                finish_reason=c.finish_reason, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                latency_s=c.latency_s, cached=c.cached, outcome=c.outcome, item_state=i.state,
                item_reason=i.reason, created_at=c.created_at,
            )
            for c, i in session.exec(query).all()
        ]
