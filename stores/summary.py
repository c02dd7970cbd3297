"""Counts for the dashboard, cheap enough to poll every second."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import StoreSummary
from stores.curation.tables import PairRow
from stores.mining.tables import CommitRow, RepositoryRow
from stores.tables import JobRow


def store_summary(engine: Engine) -> StoreSummary:
    """How many repositories, commits, pairs and jobs the store holds."""
    with Session(engine) as session:
        def count(model: type, *where: object) -> int:
            query = select(func.count()).select_from(model)
            for clause in where:
                query = query.where(clause)  # type: ignore[arg-type]
            return int(session.exec(query).one())

        return StoreSummary(
            repositories=count(RepositoryRow),
            commits=count(CommitRow),
            jobs_running=count(JobRow, col(JobRow.state).in_(("queued", "running"))),
            jobs_total=count(JobRow),
            extra={"pairs": count(PairRow)},
        )
