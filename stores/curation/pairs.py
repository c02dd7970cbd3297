"""Pairs: import, filtered keyset listing, detail, stats and review actions with undo."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col, select

from core.curation.pairs import (
    NewPair,
    PairDetail,
    PairStats,
    PairSummary,
    ReviewActionInfo,
    UndoOutcome,
    pair_problem,
)
from core.curation.rules import ACTION_STATUS, ANALYSIS_FIELDS, Condition
from core.errors import DataError, NotFoundError, OptionError
from stores.curation.tables import PairAnalysisRow, PairRow, ReviewActionRow, ReviewSessionRow
from stores.tables import utcnow

IMPORT_BATCH = 500
# The fields a `text~WORD` search looks in.
TEXT_FIELDS = ("instruction", "criteria", "chosen", "rejected", "feedback")


def _line_count(column: Any) -> Any:
    """Lines as str.splitlines counts them: line feeds, plus one for a last line without its own."""
    unterminated = case((or_(column == "", column.like("%\n")), 0), else_=1)
    return func.length(column) - func.length(func.replace(column, "\n", "")) + unterminated


# Lines of the longer side: what "length" means when sorting pairs.
PAIR_LINES = case(
    (_line_count(PairRow.chosen) > _line_count(PairRow.rejected), _line_count(PairRow.chosen)),
    else_=_line_count(PairRow.rejected),
)
# What the pair list can be sorted by (besides id): a name and the SQL it sorts on.
PAIR_SORTS: dict[str, Any] = {
    "id": PairRow.id, "status": PairRow.status, "source": PairRow.source,
    "cc_delta": PairAnalysisRow.cc_delta, "bandit_delta": PairAnalysisRow.bandit_delta,
    "contamination": PairAnalysisRow.contamination, "duplicate": PairAnalysisRow.duplicate,
    "lines": PAIR_LINES,
}


def import_pairs(engine: Engine, pairs: Iterable[NewPair], *, job_id: int | None = None) -> tuple[int, int]:
    """Store new pairs in batches, skipping ones whose content is already stored: (added, skipped).

    Every pair is checked first (`core.curation.pairs.pair_problem`): one whose sides are empty or
    the same code raises DataError and nothing is stored.
    """
    pairs = list(pairs)
    for index, pair in enumerate(pairs):
        problem = pair_problem(pair.chosen, pair.rejected)
        if problem:
            raise DataError(f"pair {index + 1} of {len(pairs)}: {problem}; nothing was imported")
    added = skipped = 0
    batch: list[NewPair] = []

    def flush() -> None:
        nonlocal added, skipped
        with Session(engine) as session:
            hashes = [pair.content_hash for pair in batch]
            known = set(session.exec(select(PairRow.content_hash).where(col(PairRow.content_hash).in_(hashes))).all())
            for pair in batch:
                if pair.content_hash in known:
                    skipped += 1
                    continue
                known.add(pair.content_hash)
                session.add(PairRow(
                    source=pair.source, instruction=pair.instruction, criteria=pair.criteria,
                    chosen=pair.chosen, rejected=pair.rejected, feedback=pair.feedback,
                    language=pair.language, commit_id=pair.commit_id, job_id=job_id, content_hash=pair.content_hash,
                    meta_json=json.dumps(pair.meta, ensure_ascii=False, default=str),
                ))
                added += 1
            session.commit()
        batch.clear()

    for pair in pairs:
        batch.append(pair)
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
    return added, skipped


def _column(name: str) -> Any:
    if name in ANALYSIS_FIELDS:
        return getattr(PairAnalysisRow, name)
    return getattr(PairRow, name)


def condition_clause(condition: Condition) -> ColumnElement[bool]:
    """The SQL test for one filter condition (`text` tests the instruction, criteria, codes and feedback)."""
    if condition.field == "text":
        clauses = [condition_clause(Condition(name, condition.op, condition.value)) for name in TEXT_FIELDS]
        return and_(*clauses) if condition.op == "!=" else or_(*clauses)
    column = _column(condition.field)
    value = condition.value
    if value is None:
        return column.is_(None) if condition.op == "=" else column.is_not(None)
    if condition.op == "~":
        escaped = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return func.lower(column).like(f"%{escaped.lower()}%", escape="\\")
    if condition.op == "=":
        return column == value
    if condition.op == "!=":
        return or_(column != value, column.is_(None))
    return {"<": column < value, "<=": column <= value, ">": column > value, ">=": column >= value}[condition.op]


def filtered(query: Select[Any], conditions: Sequence[Condition]) -> Select[Any]:
    """Join the analysis table and apply every condition to a query over pairs."""
    query = query.select_from(PairRow).outerjoin(PairAnalysisRow, col(PairAnalysisRow.pair_id) == col(PairRow.id))
    if conditions:
        query = query.where(and_(*(condition_clause(c) for c in conditions)))
    return query


def _parses_label(analysis: PairAnalysisRow | None) -> str:
    if analysis is None:
        return "?"
    return ("y" if analysis.chosen_parses else "n") + ("y" if analysis.rejected_parses else "n")


def list_pairs(
    engine: Engine, conditions: Sequence[Condition] = (), *, limit: int = 200, after_id: int | None = None,
    sort: str = "id", descending: bool = False, offset: int = 0,
) -> list[PairSummary]:
    """One page of pairs matching the filter.

    By id, pages are keyset pages (pass the last id seen as `after_id`); sorted by another of
    PAIR_SORTS (empty values last, ties by id), pages start at `offset`.
    """
    order = _order(sort, descending)
    with Session(engine) as session:
        query = filtered(
            sa_select(  # type: ignore[call-overload]
                PairRow.id, PairRow.source, PairRow.status, func.substr(PairRow.instruction, 1, 200),
                func.substr(PairRow.criteria, 1, 200), PAIR_LINES, PairAnalysisRow,
            ),
            conditions,
        ).order_by(*order).limit(limit)
        if after_id is not None:
            backwards = descending and sort == "id"
            query = query.where(col(PairRow.id) < after_id if backwards else col(PairRow.id) > after_id)
        if offset:
            query = query.offset(offset)
        rows = session.execute(query).all()
        return [
            PairSummary(
                id=pair_id, source=source, status=status, instruction=instruction, criteria=criteria,
                parses=_parses_label(analysis),
                cc_delta=analysis.cc_delta if analysis else None,
                bandit_delta=analysis.bandit_delta if analysis else None,
                contamination=analysis.contamination if analysis else None,
                duplicate=bool(analysis and analysis.duplicate),
                lines=int(lines or 0),
            )
            for pair_id, source, status, instruction, criteria, lines, analysis in rows
        ]


def _order(sort: str, descending: bool) -> list[Any]:
    if sort not in PAIR_SORTS:
        raise OptionError(f"cannot sort pairs by {sort!r}; use one of {', '.join(PAIR_SORTS)}")
    if sort == "id":
        return [col(PairRow.id).desc() if descending else col(PairRow.id)]
    key = PAIR_SORTS[sort]
    return [(key.desc() if descending else key.asc()).nulls_last(), col(PairRow.id)]


def pair_position(
    engine: Engine, conditions: Sequence[Condition], pair_id: int, *, sort: str = "id", descending: bool = False
) -> int | None:
    """How many pairs come before `pair_id` in the filtered, sorted list (None: it does not match)."""
    key = PAIR_SORTS["id"] if sort == "id" else PAIR_SORTS.get(sort)
    if key is None:
        raise OptionError(f"cannot sort pairs by {sort!r}; use one of {', '.join(PAIR_SORTS)}")
    with Session(engine) as session:
        found = session.execute(
            filtered(sa_select(key), conditions).where(col(PairRow.id) == pair_id)  # type: ignore[call-overload]
        ).first()
        if found is None:
            return None
        value = found[0]
        if sort == "id":
            before: Any = col(PairRow.id) > pair_id if descending else col(PairRow.id) < pair_id
        elif value is None:  # empty values sort last, by id
            before = or_(key.is_not(None), and_(key.is_(None), col(PairRow.id) < pair_id))
        else:
            ahead = key > value if descending else key < value
            before = or_(ahead, and_(key == value, col(PairRow.id) < pair_id))
        query = filtered(sa_select(func.count(col(PairRow.id))), conditions).where(before)
        return int(session.execute(query).scalar_one())


def count_pairs(engine: Engine, conditions: Sequence[Condition] = ()) -> int:
    """How many pairs match the filter."""
    with Session(engine) as session:
        return int(session.execute(filtered(sa_select(func.count(col(PairRow.id))), conditions)).scalar_one())


def matching_ids(engine: Engine, conditions: Sequence[Condition] = ()) -> list[int]:
    """Ids of every pair matching the filter, ascending."""
    with Session(engine) as session:
        return list(session.execute(filtered(sa_select(PairRow.id), conditions).order_by(col(PairRow.id))).scalars().all())  # type: ignore[call-overload]


def pair_instructions(engine: Engine, pair_ids: Sequence[int]) -> dict[int, str]:
    """The instruction of each of these pairs, keyed by pair id."""
    found: dict[int, str] = {}
    with Session(engine) as session:
        for start in range(0, len(pair_ids), IMPORT_BATCH):
            chunk = list(pair_ids[start:start + IMPORT_BATCH])
            found.update((int(pid), text) for pid, text in session.exec(  # type: ignore[misc]
                select(PairRow.id, PairRow.instruction).where(col(PairRow.id).in_(chunk))).all())
    return found


def analysis_dict(row: PairAnalysisRow) -> dict[str, Any]:
    """An analysis row as plain data, with bandit findings decoded."""
    data = row.model_dump()
    data["findings"] = json.loads(data.pop("findings_json") or "{}")
    return data


def get_pair(engine: Engine, pair_id: int) -> PairDetail:
    """One pair with its analysis, or NotFoundError."""
    with Session(engine) as session:
        row = session.get(PairRow, pair_id)
        if row is None:
            raise NotFoundError(f"pair {pair_id} does not exist")
        analysis = session.get(PairAnalysisRow, pair_id)
        assert row.id is not None
        return PairDetail(
            id=row.id, source=row.source, status=row.status, instruction=row.instruction,
            criteria=row.criteria, chosen=row.chosen, rejected=row.rejected, feedback=row.feedback,
            language=row.language, commit_id=row.commit_id, instruction_id=row.instruction_id,
            conversation_id=row.conversation_id, meta=json.loads(row.meta_json or "{}"),
            analysis=analysis_dict(analysis) if analysis else None,
        )


def pair_stats(engine: Engine) -> PairStats:
    """Counts by source and status, and how many pairs are analysed, duplicated or contaminated."""
    with Session(engine) as session:
        by_source = dict(session.exec(select(PairRow.source, func.count()).group_by(PairRow.source)).all())
        by_status = dict(session.exec(select(PairRow.status, func.count()).group_by(PairRow.status)).all())
        analysed = int(session.exec(select(func.count()).select_from(PairAnalysisRow)).one())
        duplicates = int(session.exec(select(func.count()).select_from(PairAnalysisRow).where(col(PairAnalysisRow.duplicate))).one())
        contaminated = int(session.exec(
            select(func.count()).select_from(PairAnalysisRow).where(col(PairAnalysisRow.contamination) >= 80)
        ).one())
        return PairStats(sum(by_source.values()), by_source, by_status, analysed, duplicates, contaminated)


def _record(
    session: Session, action: str, before: dict[int, dict[str, Any]], *,
    session_id: str | None = None, after: dict[int, dict[str, Any]] | None = None,
) -> int:
    row = ReviewActionRow(action=action, pair_count=len(before), before_json=json.dumps(before, ensure_ascii=False))
    session.add(row)
    session.flush()
    assert row.id is not None
    if session_id is not None:
        session.add(ReviewSessionRow(action_id=row.id, session_id=session_id,
                                     after_json=json.dumps(after or {}, ensure_ascii=False)))
    return row.id


def set_status(
    engine: Engine, pair_ids: Sequence[int], action: str, *, label: str | None = None, session_id: str | None = None,
) -> int:
    """Accept, reject, flag or reset pairs in one undoable step; return how many changed.

    With `session_id` (a TUI session), the step is that session's to undo.
    """
    status = ACTION_STATUS.get(action)
    if status is None:
        raise OptionError(f"unknown action {action!r}; use one of {', '.join(ACTION_STATUS)}")
    with Session(engine) as session:
        before: dict[int, dict[str, Any]] = {}
        now = utcnow()
        for start in range(0, len(pair_ids), 500):
            chunk = list(pair_ids[start:start + 500])
            for row in session.exec(select(PairRow).where(col(PairRow.id).in_(chunk))).all():
                if row.status != status:
                    assert row.id is not None
                    before[row.id] = {"status": row.status}
                    row.status, row.updated_at = status, now
                    session.add(row)
        if len(before) == 0 and len(pair_ids) == 1 and session.get(PairRow, pair_ids[0]) is None:
            raise NotFoundError(f"pair {pair_ids[0]} does not exist")
        if before:
            _record(session, label or action, before, session_id=session_id,
                    after={pair_id: {"status": status} for pair_id in before})
        session.commit()
        return len(before)


def _edit(engine: Engine, pair_id: int, action: str, change: dict[str, str], session_id: str | None,
          *, drop_analysis: bool = False) -> None:
    with Session(engine) as session:
        row = session.get(PairRow, pair_id)
        if row is None:
            raise NotFoundError(f"pair {pair_id} does not exist")
        before: dict[str, Any] = {key: getattr(row, key) for key in change}
        for key, value in change.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
        analysis = session.get(PairAnalysisRow, pair_id) if drop_analysis else None
        if analysis is not None:
            # The analysis describes the old text; kept with the action so that undo puts it back as it was.
            before[ANALYSIS_KEY] = _analysis_snapshot(analysis)
            session.delete(analysis)
        _record(session, action, {pair_id: before}, session_id=session_id, after={pair_id: change})
        session.commit()


# The key under which an action's `before` holds the analysis row it dropped (not a pairs column).
ANALYSIS_KEY = "__analysis__"


def _analysis_snapshot(analysis: PairAnalysisRow) -> dict[str, Any]:
    """Every stored column of an analysis row as JSON values (times as ISO 8601)."""
    values = analysis.model_dump()
    values["analysed_at"] = analysis.analysed_at.isoformat()
    return values


def _analysis_from_snapshot(values: dict[str, Any]) -> PairAnalysisRow:
    analysed_at = datetime.fromisoformat(values["analysed_at"])
    return PairAnalysisRow(**{**values, "analysed_at": analysed_at})


def flip_pair(engine: Engine, pair_id: int, *, session_id: str | None = None) -> None:
    """Swap chosen and rejected (undoable); the stored analysis (which describes the old order) is dropped
    with the swap and put back by its undo."""
    pair = get_pair(engine, pair_id)
    _edit(engine, pair_id, f"flip pair {pair_id}", {"chosen": pair.rejected, "rejected": pair.chosen}, session_id,
          drop_analysis=True)


def edit_criteria(engine: Engine, pair_id: int, criteria: str, *, session_id: str | None = None) -> None:
    """Replace a pair's criteria (undoable)."""
    if not criteria.strip():
        raise OptionError("criteria cannot be empty")
    _edit(engine, pair_id, f"edit criteria of pair {pair_id}", {"criteria": criteria}, session_id)


def undo_last(engine: Engine) -> str | None:
    """Revert the most recent review action not yet undone; return its name, or None if none."""
    with Session(engine) as session:
        action = session.exec(
            select(ReviewActionRow).where(col(ReviewActionRow.undone).is_(False)).order_by(col(ReviewActionRow.id).desc())
        ).first()
        if action is None:
            return None
        _restore(session, action, None)
        session.commit()
        return action.action


def last_session_action(engine: Engine, session_id: str) -> ReviewActionInfo | None:
    """The newest action of a session that is not undone yet (what its undo would revert), or None."""
    with Session(engine) as session:
        row = session.exec(
            select(ReviewActionRow)
            .join(ReviewSessionRow, col(ReviewSessionRow.action_id) == col(ReviewActionRow.id))
            .where(ReviewSessionRow.session_id == session_id, col(ReviewActionRow.undone).is_(False))
            .order_by(col(ReviewActionRow.id).desc())
        ).first()
        if row is None:
            return None
        assert row.id is not None
        return ReviewActionInfo(row.id, row.action, row.pair_count, row.created_at, row.undone)


def undo_action(engine: Engine, action_id: int) -> UndoOutcome:
    """Revert one action; pairs changed since by anyone (another session, the CLI) are left as they are.

    Raises NotFoundError for an unknown action and OptionError for one already undone.
    """
    with Session(engine) as session:
        action = session.get(ReviewActionRow, action_id)
        if action is None:
            raise NotFoundError(f"review action {action_id} does not exist")
        if action.undone:
            raise OptionError(f"{action.action} is already undone")
        owner = session.get(ReviewSessionRow, action_id)
        restored, skipped = _restore(session, action, json.loads(owner.after_json) if owner else None)
        session.commit()
        return UndoOutcome(action.action, restored, skipped)


def _restore(session: Session, action: ReviewActionRow, after: dict[str, dict[str, Any]] | None) -> tuple[int, int]:
    """Put back the values an action replaced; with `after`, only on pairs that still hold what it set."""
    before = json.loads(action.before_json)
    restored = skipped = 0
    for pair_id, values in before.items():
        row = session.get(PairRow, int(pair_id))
        if row is None:
            skipped += 1
            continue
        expected = (after or {}).get(str(pair_id))
        changed_since = expected is None or any(getattr(row, key) != value for key, value in expected.items())
        if after is not None and changed_since:
            skipped += 1
            continue
        dropped = values.pop(ANALYSIS_KEY, None)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
        if "chosen" in values or "rejected" in values:
            # An analysis made since describes the text being replaced; the one the action dropped describes
            # the text put back.
            analysis = session.get(PairAnalysisRow, int(pair_id))
            if analysis is not None:
                session.delete(analysis)
                session.flush()
            if dropped is not None:
                session.add(_analysis_from_snapshot(dropped))
        restored += 1
    action.undone = True
    session.add(action)
    return restored, skipped


def next_unreviewed(engine: Engine, conditions: Sequence[Condition] = (), *, after_id: int | None = None) -> int | None:
    """The id of the next pending pair matching the filter after `after_id` (wrapping round)."""
    pending = (*conditions, Condition("status", "=", "pending"))
    page = list_pairs(engine, pending, limit=1, after_id=after_id)
    if not page and after_id is not None:
        page = list_pairs(engine, pending, limit=1)
    return page[0].id if page else None


def status_counts(engine: Engine, conditions: Sequence[Condition] = ()) -> dict[str, int]:
    """How many pairs matching the filter have each status."""
    with Session(engine) as session:
        rows = session.execute(filtered(sa_select(PairRow.status, func.count()), conditions).group_by(PairRow.status)).all()  # type: ignore[call-overload]
        return {status: int(count) for status, count in rows}


def pair_source(engine: Engine, pair_id: int) -> str:
    """Plain-text lineage of a pair: its commit (sha, path, message) or its instruction and conversation."""
    from stores.mining.tables import CommitRow

    pair = get_pair(engine, pair_id)
    lines = [f"pair {pair.id} · source {pair.source}"]
    with Session(engine) as session:
        if pair.commit_id is not None:
            commit = session.get(CommitRow, pair.commit_id)
            if commit is None:
                lines.append(f"commit record {pair.commit_id} (no longer in the store)")
            else:
                lines += [f"commit {commit.sha} · {commit.path}", f"author {commit.author} · {commit.authored_at}",
                          "", commit.message]
    if pair.instruction_id is not None:
        lines.append(f"instruction {pair.instruction_id}")
    if pair.conversation_id is not None:
        lines.append(f"conversation {pair.conversation_id}")
    lines += ["", "instruction:", pair.instruction]
    if pair.meta:
        lines += ["", *(f"{key}: {value}" for key, value in sorted(pair.meta.items()))]
    return "\n".join(lines)
