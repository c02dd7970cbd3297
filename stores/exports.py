"""Exports with lineage: stream filtered pairs to core.training.export and record the manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.training.export import ExportOptions, ExportPair, write_export
from core.curation.rules import Condition, filter_spec
from stores.curation_tables import ExportRow
from stores.jobs import JobHandle
from stores.pairs import count_pairs, filtered
from stores.tables import PairRow, utcnow

DEFAULT_EXPORT_FILTER = "status!=rejected status!=flagged duplicate!=true"


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


def _export_pairs(engine: Engine, conditions: Sequence[Condition], page: int = 1000) -> Iterator[ExportPair]:
    last_id = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(
                filtered(sa_select(PairRow.id, PairRow.source, PairRow.instruction, PairRow.criteria,  # type: ignore[call-overload]
                                PairRow.chosen, PairRow.rejected, PairRow.feedback), conditions)
                .where(col(PairRow.id) > last_id).order_by(col(PairRow.id)).limit(page)
            ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        for row in rows:
            yield ExportPair(*row)  # type: ignore[arg-type]


def export_store(
    engine: Engine, conditions: Sequence[Condition], out_dir: Path, options: ExportOptions,
) -> ExportInfo:
    """Export the pairs matching the filter as a job; store and return the export with its manifest."""
    options.check()
    spec = filter_spec(tuple(conditions))
    total = count_pairs(engine, conditions)
    job = JobHandle.start(engine, "export", f"Export {total} pairs to {out_dir}",
                          {"out_dir": str(out_dir), "filter": spec, "formats": list(options.formats)})
    try:
        manifest = write_export(
            _export_pairs(engine, conditions), out_dir, options, filter_spec=spec,
            created_at=utcnow().isoformat(timespec="seconds"), progress=lambda done: job.progress(done, total),
        )
        with Session(engine) as session:
            row = ExportRow(out_dir=str(out_dir.resolve()), formats=",".join(options.formats),
                            filter_json=json.dumps(spec), pair_ids_hash=manifest.pair_ids_hash,
                            pair_count=manifest.data["pair_count"], manifest_json=json.dumps(manifest.data),
                            job_id=job.job_id)
            session.add(row)
            session.commit()
            session.refresh(row)
            info = _to_info(row)
    except BaseException as exc:
        job.finish("failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    job.finish("done", done=info.pair_count, summary={"export_id": info.id, "pairs": info.pair_count,
                                                       "records": manifest.data["records"]})
    return info


def _to_info(row: ExportRow) -> ExportInfo:
    assert row.id is not None
    return ExportInfo(row.id, row.out_dir, row.formats, row.pair_count, row.pair_ids_hash, row.created_at,
                      json.loads(row.manifest_json))


def list_exports(engine: Engine, *, limit: int = 50) -> list[ExportInfo]:
    """Newest exports first."""
    with Session(engine) as session:
        rows = session.exec(select(ExportRow).order_by(col(ExportRow.id).desc()).limit(limit)).all()
        return [_to_info(row) for row in rows]
