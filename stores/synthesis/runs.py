"""Synthesis data access: work items with claims, the response cache, conversations, pairs, instructions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Table, and_, case, func, update
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
from stores.claims import CLAIMED, PENDING, claim_rows, expired_before
from stores.curation.tables import PairRow
from stores.db import insert_or_ignore
from stores.mining.tables import BlobRow, CommitRow
from stores.synthesis.tables import ConversationRow, InstructionRow, ResponseCacheRow, SynthItemRow
from stores.tables import utcnow

_ITEMS: Table = SynthItemRow.__table__  # type: ignore[attr-defined]


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

def prepare_items(engine: Engine, method: str, key: str, subject_ids: Sequence[int], *,
                  reopen_failed: bool = True) -> int:
    """Add missing items for these subjects and reopen those that failed on a transport error; return how many were added.

    Safe to run from several processes at once: an item another one added first is skipped.
    Items claimed by a worker that stopped are not touched here: their lease runs out and any
    worker claims them again.
    """
    with engine.begin() as connection:
        existing = set(connection.execute(
            select(SynthItemRow.subject_id).where(SynthItemRow.config_key == key)).scalars())
        now = utcnow()
        rows = [{"method": method, "config_key": key, "subject_id": subject_id, "state": PENDING, "retryable": False,
                 "reason": "", "attempts": 0, "updated_at": now}
                for subject_id in dict.fromkeys(subject_ids) if subject_id not in existing]
        added = 0
        for start in range(0, len(rows), 500):
            result = connection.execute(insert_or_ignore(connection.dialect.name, _ITEMS), rows[start:start + 500])
            added += max(int(result.rowcount or 0), 0)
        if reopen_failed:
            connection.execute(
                update(_ITEMS)
                .where(_ITEMS.c.config_key == key, _ITEMS.c.state == "failed", _ITEMS.c.retryable.is_(True))
                .values(state=PENDING, retryable=False, reason="", updated_at=now)
            )
    return added


def item_counts(engine: Engine, key: str, *, lease_s: float | None = None,
                subject_ids: Sequence[int] | None = None) -> ItemCounts:
    """How many items of a configuration are in each state; with `lease_s`, expired claims count as
    pending; with `subject_ids`, only the items of those subjects (a run's scope, such as `--limit`)."""
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        state: Any = _ITEMS.c.state
        if lease_s is not None:
            expired = and_(_ITEMS.c.state == CLAIMED, _ITEMS.c.heartbeat_at < expired_before(connection, lease_s))
            state = case((expired, PENDING), else_=_ITEMS.c.state)
        where: Any = _ITEMS.c.config_key == key
        # One IN (...) list per chunk of the scope, as the claims do.
        chunks = ([where] if subject_ids is None else
                  [and_(where, _ITEMS.c.subject_id.in_(subject_ids[start:start + _SCOPE_CHUNK]))
                   for start in range(0, len(subject_ids), _SCOPE_CHUNK)])
        for condition in chunks:
            for name, n in connection.execute(select(state, func.count()).where(condition).group_by(state)).all():
                counts[str(name)] = counts.get(str(name), 0) + int(n)
    names = ("pending", "claimed", "pair", "filtered", "failed", "sampled")
    return ItemCounts(**{name: counts.get(name, 0) for name in names})


def release_claims(engine: Engine, key: str, worker_id: str) -> int:
    """Give back every item of a configuration that `worker_id` still holds; return how many."""
    with engine.begin() as connection:
        result = connection.execute(
            update(_ITEMS).where(_ITEMS.c.config_key == key, _ITEMS.c.worker_id == worker_id, _ITEMS.c.state == CLAIMED)
            .values(state=PENDING, updated_at=utcnow())
        )
        return int(result.rowcount or 0)


def pending_subject_ids(engine: Engine, key: str) -> list[int]:
    """Subjects of the items still to do (for estimates)."""
    with Session(engine) as session:
        return [int(i) for i in session.exec(
            select(SynthItemRow.subject_id).where(SynthItemRow.config_key == key,
                                                  col(SynthItemRow.state).in_(("pending", "claimed")))
        ).all()]


class SqlSynthesisStore:
    """The driver's SynthesisStore over the SQL store: claims with leases in small transactions, writes as it goes.

    Several workers may drive one configuration at once: each claims its own items, and an item
    is finished only by the worker that still holds it (one whose lease ran out and was claimed
    again by another worker writes nothing).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        job_id: int | None,
        method: str,
        key: str,
        load_subjects: Callable[[Engine, Sequence[int]], dict[int, Any]],
        worker_id: str = "",
        lease_s: float = 60.0,
        scope: Sequence[int] | None = None,
    ) -> None:
        self.engine = engine
        self.job_id = job_id
        self.method = method
        self.key = key
        self.source = method
        self.worker_id = worker_id
        self.lease_s = lease_s
        self._load_subjects = load_subjects
        # The subjects this run may touch (a --limit or an instruction file), in claim order; None: all.
        self._scope = sorted(set(scope)) if scope is not None else None
        self._scope_cursor = 0

    def _claim_ids(self, connection: Any, limit: int) -> list[int]:
        where = _ITEMS.c.config_key == self.key
        claim = partial(claim_rows, connection, _ITEMS, worker_id=self.worker_id, lease_s=self.lease_s,
                        extra_values={"job_id": self.job_id, "updated_at": utcnow()})
        if self._scope is None:
            return claim(where, limit=limit)
        found: list[int] = []
        # A cursor over the scope keeps each claim to one IN (...) list; it wraps around once, for the
        # items of earlier chunks whose worker's lease ran out since.
        wrapped = False
        while len(found) < limit:
            if self._scope_cursor >= len(self._scope):
                if wrapped or not self._scope:
                    break
                self._scope_cursor, wrapped = 0, True
            chunk = self._scope[self._scope_cursor:self._scope_cursor + _SCOPE_CHUNK]
            got = claim(and_(where, _ITEMS.c.subject_id.in_(chunk)), limit=limit - len(found))
            found += got
            if len(found) < limit:
                self._scope_cursor += len(chunk)
        return found

    def claim(self, limit: int) -> list[WorkItem]:
        """Claim up to `limit` items of this configuration within the run's scope (pending, or held by a
        worker whose lease ran out)."""
        with self.engine.begin() as connection:
            ids = self._claim_ids(connection, limit)
            claimed = connection.execute(
                select(SynthItemRow.id, SynthItemRow.subject_id).where(col(SynthItemRow.id).in_(ids))
                .order_by(col(SynthItemRow.id))
            ).all() if ids else []
        subjects = self._load_subjects(self.engine, [subject for _item, subject in claimed])
        items = []
        for item_id, subject_id in claimed:
            if subject_id in subjects:
                items.append(WorkItem(int(item_id), subjects[subject_id]))
            else:
                self.finish_item(int(item_id), Failed("its commit or instruction is gone from the store"), None)
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
            dialect = session.get_bind().dialect.name
            if not result.cached and not result.truncated:  # another worker may cache the same answer at once
                session.execute(insert_or_ignore(dialect, ResponseCacheRow.__table__).values(  # type: ignore[attr-defined]
                    key=key, model=model, prompt_version=prompt_version, text=result.text,
                    finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens, latency_s=result.latency_s, created_at=utcnow(),
                ))
            conversation = insert_or_ignore(dialect, ConversationRow.__table__).values(  # type: ignore[attr-defined]
                item_id=item_id, job_id=self.job_id, method=self.method, step=turn.step, role=turn.role,
                model=model, prompt_version=prompt_version, cache_key=key,
                messages_json=json.dumps(list(turn.messages), ensure_ascii=False), response=result.text,
                finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens, latency_s=result.latency_s, cached=result.cached,
                outcome="", created_at=utcnow(),
            )
            session.execute(conversation)  # a second worker on the same step (after a lost lease) adds nothing
            conversation_id = session.exec(
                select(ConversationRow.id).where(ConversationRow.item_id == item_id, ConversationRow.step == turn.step,
                                                 ConversationRow.cache_key == key)
            ).one()
            session.commit()
            return int(conversation_id)  # type: ignore[arg-type]

    def finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> PairStored | None:
        """Write the outcome (and the pair, once by content hash) in one transaction, if this worker still
        holds the item; "new" or "duplicate" for a pair, None otherwise."""
        return _once_more_on_conflict(lambda: self._finish_item(item_id, outcome, conversation_id))

    def _finish_item(self, item_id: int, outcome: Outcome, conversation_id: int | None) -> PairStored | None:
        stored: PairStored | None = None
        with Session(self.engine) as session:
            held = session.execute(  # also takes the row's write lock until the commit
                update(_ITEMS).where(_ITEMS.c.id == item_id, _ITEMS.c.state == CLAIMED, _ITEMS.c.worker_id == self.worker_id)
                .values(updated_at=utcnow())
            ).rowcount  # type: ignore[attr-defined]
            item = session.get(SynthItemRow, item_id)
            if item is None:
                raise NotFoundError(f"synthesis item {item_id} does not exist")
            if not held:
                session.rollback()
                return None  # its lease ran out and another worker has it: that one writes the outcome
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
        is_commit = self.method == "commit-instruct"
        now = utcnow()
        # Two workers may reach the same pair at once (the same change in two commits): one row wins.
        inserted = session.execute(insert_or_ignore(session.get_bind().dialect.name, PairRow.__table__).values(  # type: ignore[attr-defined]
            source=self.source, status="pending", instruction=pair.instruction, criteria=pair.criteria,
            chosen=pair.chosen, rejected=pair.rejected, feedback=pair.feedback,
            language=str(pair.meta.get("language", "python")),
            commit_id=item.subject_id if is_commit else None,
            instruction_id=None if is_commit else item.subject_id,
            conversation_id=conversation_id, job_id=self.job_id, content_hash=digest,
            meta_json=json.dumps({**pair.meta, "item_id": item.id}, ensure_ascii=False, default=str),
            created_at=now, updated_at=now,
        ))
        added = inserted.rowcount  # type: ignore[attr-defined]
        pair_id = session.exec(select(PairRow.id).where(PairRow.content_hash == digest)).one()
        return int(pair_id), "new" if added else "duplicate"  # type: ignore[arg-type]

    def release(self, item_id: int) -> None:
        """Put an unfinished item this worker holds back to pending."""
        with self.engine.begin() as connection:
            connection.execute(
                update(_ITEMS).where(_ITEMS.c.id == item_id, _ITEMS.c.state == CLAIMED, _ITEMS.c.worker_id == self.worker_id)
                .values(state=PENDING, updated_at=utcnow())
            )


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
