"""Curation data: pair analyses (metrics, findings, duplicates, contamination) and bulk rules."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.curation.analysis import PairAnalysis, PairCode, findings_to_json, text_hash
from core.curation.rules import Rule
from stores.curation.pairs import count_pairs, matching_ids, set_status
from stores.curation.tables import PairAnalysisRow, PairRow


def stale_pairs(engine: Engine, chunk: int) -> Iterator[list[PairCode]]:
    """Pairs whose stored analysis is missing or older than their text, `chunk` at a time."""
    last_id = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(
                sa_select(PairRow.id, PairRow.chosen, PairRow.rejected, PairAnalysisRow.content_hash)  # type: ignore[call-overload]
                .outerjoin(PairAnalysisRow, col(PairAnalysisRow.pair_id) == col(PairRow.id))
                .where(col(PairRow.id) > last_id)
                .order_by(col(PairRow.id))
                .limit(chunk * 10)
            ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        todo = []
        for pair_id, chosen, rejected, stored in rows:
            key = text_hash(f"{chosen}\x00{rejected}")
            if stored != key:
                todo.append(PairCode(pair_id, chosen, rejected, key))
        for start in range(0, len(todo), chunk):
            yield todo[start:start + chunk]


def stale_pair_ids(engine: Engine, page: int = 1000) -> list[int]:
    """Ids of the pairs whose stored analysis is missing or older than their text."""
    return [code.pair_id for chunk in stale_pairs(engine, page) for code in chunk]


def pair_codes(engine: Engine, pair_ids: Sequence[int]) -> list[PairCode]:
    """The code of these pairs (those still stored), with the content hash their analysis will carry."""
    if not pair_ids:
        return []
    with Session(engine) as session:
        rows = session.execute(
            sa_select(PairRow.id, PairRow.chosen, PairRow.rejected)  # type: ignore[call-overload]
            .where(col(PairRow.id).in_(list(pair_ids))).order_by(col(PairRow.id))
        ).all()
    return [PairCode(pair_id, chosen, rejected, text_hash(f"{chosen}\x00{rejected}")) for pair_id, chosen, rejected in rows]


def _analysis_row(result: PairAnalysis) -> PairAnalysisRow:
    deltas = result.deltas
    return PairAnalysisRow(
        pair_id=result.pair_id, content_hash=result.content_hash,
        chosen_parses=result.chosen.parses, rejected_parses=result.rejected.parses,
        chosen_cc=result.chosen.cyclomatic, rejected_cc=result.rejected.cyclomatic, cc_delta=deltas["cc_delta"],
        chosen_mi=result.chosen.maintainability, rejected_mi=result.rejected.maintainability,
        mi_delta=deltas["mi_delta"],
        chosen_loc=result.chosen.loc, rejected_loc=result.rejected.loc, loc_delta=int(deltas["loc_delta"]),
        chosen_volume=result.chosen.halstead_volume, rejected_volume=result.rejected.halstead_volume,
        volume_delta=deltas["volume_delta"],
        chosen_bandit=len(result.chosen.findings), rejected_bandit=len(result.rejected.findings),
        bandit_delta=int(deltas["bandit_delta"]),
        findings_json=json.dumps({"chosen": findings_to_json(result.chosen.findings),
                                  "rejected": findings_to_json(result.rejected.findings)}),
        diff_size=result.diff_size, length_ratio=result.length_ratio, identical=result.identical,
        chosen_norm_hash=result.chosen_norm_hash, rejected_norm_hash=result.rejected_norm_hash,
    )




def store_analyses(engine: Engine, results: Sequence[PairAnalysis]) -> None:
    """Insert or refresh the analyses of some pairs in one transaction."""
    with Session(engine) as session:
        for result in results:
            existing = session.get(PairAnalysisRow, result.pair_id)
            row = _analysis_row(result)
            if existing is not None:
                # keep dedupe and contamination results: they depend on content hashes, refreshed by their jobs
                for key, value in row.model_dump().items():
                    if key not in ("dup_cluster", "duplicate") and not key.startswith("contamination"):
                        setattr(existing, key, value)
                session.add(existing)
            else:
                session.add(row)
        session.commit()


def apply_rules(
    engine: Engine, rules: Sequence[Rule], *, dry_run: bool = False, session_id: str | None = None,
) -> list[tuple[Rule, int]]:
    """Apply rules in order (later rules win); returns how many pairs each rule matches or changed.

    Each rule is one undoable step; with `session_id` (a TUI session) the steps are that session's.
    """
    counts = []
    for rule in rules:
        if dry_run:
            counts.append((rule, count_pairs(engine, rule.conditions)))
        else:
            ids = matching_ids(engine, rule.conditions)
            set_status(engine, ids, rule.action, label=f"rule {rule.name}", session_id=session_id)
            counts.append((rule, len(ids)))
    return counts


def analysis_rows(engine: Engine, *, after_id: int = 0, limit: int = 5000) -> list[tuple[int, str, str]]:
    """(pair id, chosen norm hash, rejected norm hash) of analysed pairs, a keyset page at a time."""
    with Session(engine) as session:
        return list(session.exec(
            select(PairAnalysisRow.pair_id, PairAnalysisRow.chosen_norm_hash, PairAnalysisRow.rejected_norm_hash)
            .where(col(PairAnalysisRow.pair_id) > after_id).order_by(col(PairAnalysisRow.pair_id)).limit(limit)
        ).all())


def store_analysis_values(engine: Engine, values: dict[int, dict[str, Any]]) -> None:
    """Write some analysis columns (dedupe, contamination) for many pairs in one transaction."""
    with Session(engine) as session:
        for pair_id, changes in values.items():
            session.execute(update(PairAnalysisRow).where(col(PairAnalysisRow.pair_id) == pair_id).values(**changes))
        session.commit()



def analysed_pages(engine: Engine, page: int = 2000) -> Iterator[list[tuple[int, str, str, str, str]]]:
    """(id, chosen, rejected, chosen norm hash, rejected norm hash) of analysed pairs, a page at a time."""
    last_id = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(
                sa_select(PairRow.id, PairRow.chosen, PairRow.rejected,  # type: ignore[call-overload]
                          PairAnalysisRow.chosen_norm_hash, PairAnalysisRow.rejected_norm_hash)
                .join(PairAnalysisRow, col(PairAnalysisRow.pair_id) == col(PairRow.id))
                .where(col(PairRow.id) > last_id).order_by(col(PairRow.id)).limit(page)
            ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        yield [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]


def unanalysed_count(engine: Engine) -> int:
    """How many pairs have no analysis yet."""
    from sqlalchemy import func

    with Session(engine) as session:
        return int(session.execute(
            sa_select(func.count()).select_from(PairRow)
            .outerjoin(PairAnalysisRow, col(PairAnalysisRow.pair_id) == col(PairRow.id))
            .where(col(PairAnalysisRow.pair_id).is_(None))
        ).scalar_one())










