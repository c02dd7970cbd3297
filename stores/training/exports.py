"""Exports with lineage: the pairs to export, and the record of each export and its manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.curation.rules import Condition, parse_filter
from core.errors import DataError, NotFoundError
from core.training.export import ExportPair
from stores.curation.pairs import filtered
from stores.curation.tables import PairRow
from stores.training.tables import ExportRow

# What an export takes unless told otherwise, in the CLI and the TUI alike: every pair a curator has
# not turned down. Not "accepted only": synthesized pairs start pending and a pipeline exports before
# anyone reviews them, so accepted-only would export nothing on a fresh store.
DEFAULT_EXPORT_FILTER = "status!=rejected status!=flagged duplicate!=true"


def export_conditions(conditions: Sequence[Condition]) -> tuple[Condition, ...]:
    """The filter an export uses: the given conditions, plus the default's on every field they leave open.

    So `criteria~secure` still leaves rejected, flagged and duplicate pairs out, while
    `status=rejected` exports exactly the rejected ones.
    """
    given = tuple(conditions)
    constrained = {condition.field for condition in given}
    defaults = tuple(c for c in parse_filter(DEFAULT_EXPORT_FILTER) if c.field not in constrained)
    return given + defaults


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """A recorded export."""

    id: int
    out_dir: str
    formats: str
    pair_count: int
    pair_ids_hash: str
    created_at: datetime
    manifest: dict[str, Any]


def export_pairs(engine: Engine, conditions: Sequence[Condition], page: int = 1000) -> Iterator[ExportPair]:
    """The pairs matching the filter, in id order, read a page at a time."""
    last_id = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(
                filtered(sa_select(PairRow.id, PairRow.source, PairRow.instruction, PairRow.criteria,  # type: ignore[call-overload]
                                PairRow.chosen, PairRow.rejected, PairRow.feedback, PairRow.meta_json), conditions)
                .where(col(PairRow.id) > last_id).order_by(col(PairRow.id)).limit(page)
            ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        for pair_id, source, instruction, criteria, chosen, rejected, feedback, meta_json in rows:
            yield ExportPair(pair_id, source, instruction, criteria, chosen, rejected, feedback, _group_of(meta_json))


def _group_of(meta_json: str) -> str:
    """The pair's `meta.group` as text ("" when it names none or the meta is not an object)."""
    try:
        meta = json.loads(meta_json or "{}")
    except ValueError:
        return ""
    group = meta.get("group") if isinstance(meta, dict) else None
    return "" if group is None or isinstance(group, bool) else str(group)




def record_export(
    engine: Engine, out_dir: Path, formats: Sequence[str], filter_spec: Any, pair_ids_hash: str,
    manifest: dict[str, Any], *, job_id: int | None = None,
) -> ExportInfo:
    """Store a written export with its manifest and return it."""
    with Session(engine) as session:
        row = ExportRow(out_dir=str(out_dir.resolve()), formats=",".join(formats),
                        filter_json=json.dumps(filter_spec), pair_ids_hash=pair_ids_hash,
                        pair_count=manifest["pair_count"], manifest_json=json.dumps(manifest), job_id=job_id)
        session.add(row)
        session.commit()
        session.refresh(row)
        return _to_info(row)


def get_export(engine: Engine, export_id: int) -> ExportInfo:
    """One recorded export, or NotFoundError."""
    with Session(engine) as session:
        row = session.get(ExportRow, export_id)
        if row is None:
            raise NotFoundError(f"export {export_id} does not exist")
        return _to_info(row)


def export_folder(engine: Engine, export_id: int) -> str | None:
    """The folder an export was written to, or None if there is no such export.

    Raises DataError when a later export replaced it in that folder (`export --force`): the folder
    holds other pairs now, and training on it under this export's id would record a wrong lineage.
    """
    with Session(engine) as session:
        row = session.get(ExportRow, export_id)
        if row is None:
            return None
        newer = session.exec(select(ExportRow.id).where(ExportRow.out_dir == row.out_dir,
                                                        col(ExportRow.id) > export_id)
                             .order_by(col(ExportRow.id).desc()).limit(1)).first()
        if newer is not None:
            raise DataError(f"export {export_id} was replaced by export {newer} in {row.out_dir}: "
                            f"use export {newer}, or export those pairs again")
        return row.out_dir


def _to_info(row: ExportRow) -> ExportInfo:
    assert row.id is not None
    return ExportInfo(row.id, row.out_dir, row.formats, row.pair_count, row.pair_ids_hash, row.created_at,
                      json.loads(row.manifest_json))


def list_exports(engine: Engine, *, limit: int = 50) -> list[ExportInfo]:
    """Newest exports first, each folder's current one only (one a later export replaced is left out)."""
    with Session(engine) as session:
        current = select(func.max(ExportRow.id)).group_by(ExportRow.out_dir)
        rows = session.exec(select(ExportRow).where(col(ExportRow.id).in_(current))
                            .order_by(col(ExportRow.id).desc()).limit(limit)).all()
        return [_to_info(row) for row in rows]
