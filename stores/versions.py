"""Change stamps: small tuples that differ whenever a stage's rows changed, cheap enough to poll every second.

A front end keeps the last stamp it showed and re-reads rows only when a new one differs, so a
view follows what other sessions, the CLI and workers write without reloading on a timer.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import quote

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from stores.tables import JobRow

# Each stamp imports its stage's tables when first called: a screen pays only for its own stage.

# Jobs that rewrite analysis columns without touching a pair's own row (duplicate and contamination marks).
_PAIR_JOB_KINDS = ("analyse", "dedupe", "decontaminate")

Stamp = tuple[Any, ...]


def _jobs_stamp(session: Session, kinds: tuple[str, ...]) -> Stamp:
    return tuple(session.exec(
        select(func.count(), func.max(JobRow.updated_at)).select_from(JobRow).where(col(JobRow.kind).in_(kinds))
    ).one())


def pairs_stamp(engine: Engine) -> Stamp:
    """Changes when a pair is added, reviewed, edited or undone, or its analysis, duplicate or
    contamination mark changes."""
    from stores.curation.tables import PairAnalysisRow, PairRow

    with Session(engine) as session:
        pairs = tuple(session.exec(select(func.count(), func.max(PairRow.updated_at)).select_from(PairRow)).one())
        analyses = tuple(session.exec(
            select(func.count(), func.max(PairAnalysisRow.analysed_at)).select_from(PairAnalysisRow)).one())
        return pairs + analyses + _jobs_stamp(session, _PAIR_JOB_KINDS)


def commits_stamp(engine: Engine) -> Stamp:
    """Changes when commit records or repositories are added."""
    from stores.mining.tables import CommitRow, RepositoryRow

    with Session(engine) as session:
        return (
            session.exec(select(func.max(CommitRow.id))).one(),
            *session.exec(select(func.count(), func.max(RepositoryRow.id)).select_from(RepositoryRow)).one(),
        )


def evaluation_stamp(engine: Engine) -> Stamp:
    """Changes when an evaluation run is created, records results, or changes state."""
    from stores.evaluation.tables import EvalResultRow, EvalRunRow

    with Session(engine) as session:
        # A run's state is its job's, so the eval jobs' stamp covers state changes.
        runs = tuple(session.exec(select(func.count(), func.max(EvalRunRow.id)).select_from(EvalRunRow)).one())
        results = session.exec(select(func.max(EvalResultRow.id))).one()
        return (runs, results, _jobs_stamp(session, ("eval",)))


def synthesis_stamp(engine: Engine) -> Stamp:
    """Changes when a conversation is recorded or a synthesis job reports progress."""
    from stores.synthesis.tables import ConversationRow

    with Session(engine) as session:
        return (session.exec(select(func.max(ConversationRow.id))).one(), _jobs_stamp(session, ("synth",)))


class DataVersion:
    """SQLite's `PRAGMA data_version` on a connection of its own: a number that changes whenever another
    connection, in any process, commits to the store, read in microseconds.

    A poll that finds it unchanged can skip reading its stamp. `read()` is None for other databases,
    and when the file cannot be read at once; callers then read their stamp as before. Use it from
    one thread.
    """

    def __init__(self, engine: Engine) -> None:
        url = engine.url
        plain_file = (url.get_backend_name() == "sqlite" and bool(url.database) and url.database != ":memory:"
                      and not url.query and not str(url.database).startswith("file:"))
        self._path = url.database if plain_file else None
        self._connection: sqlite3.Connection | None = None

    def read(self) -> int | None:
        """The store's data version now (None: unknown)."""
        if self._path is None:
            return None
        try:
            if self._connection is None:
                # timeout=0: never wait on the event loop for a lock; an unanswered read means "look".
                self._connection = sqlite3.connect(f"file:{quote(self._path)}?mode=rw", uri=True, timeout=0)
            return int(self._connection.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            self.close()
            return None

    def close(self) -> None:
        """Close the connection (a later read opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
