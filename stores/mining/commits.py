"""Repositories and mined commits: the mining sink, and paged reads for both front ends."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import NotFoundError
from core.mining.events import CommitMined, MineEvent, MineFinished
from core.mining.records import CommitDetail, RepositoryInfo, StoredCommit
from stores.mining.tables import BlobRow, CommitRow, RepositoryRow

FLUSH_RECORDS = 500
FLUSH_SECONDS = 0.5


def _insert_ignoring_duplicates(engine: Engine, table: Any) -> Any:
    # SQLite takes the multi-row path in _insert_rows_sqlite; this serves the other databases.
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("IGNORE")


ROWS_PER_STATEMENT = 200


def _insert_rows_sqlite(
    connection: Any, table: str, rows: list[dict[str, Any]], text_columns: tuple[str, ...] = ()
) -> int:
    """INSERT OR IGNORE with many rows per statement; returns how many rows were new.

    Values go to the driver as they are (datetimes already as text). Values of `text_columns`
    come as UTF-8 bytes and are stored as TEXT with a CAST, which spares decoding them into
    Python strings only for the driver to encode them again.

    One statement per few hundred rows instead of one step per row: each step releases and
    re-takes the GIL, and while the miner's thread computes, every re-take can wait a full
    switch interval, which made the writer the bottleneck.
    """
    if not rows:
        return 0
    columns = list(rows[0])
    row_marks = "(" + ", ".join("CAST(? AS TEXT)" if column in text_columns else "?" for column in columns) + ")"
    inserted = 0
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start:start + ROWS_PER_STATEMENT]
        sql = (f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES "
               + ", ".join([row_marks] * len(chunk)))
        params = tuple(chain.from_iterable(map(dict.values, chunk)))  # every row has the same keys in order
        result = connection.exec_driver_sql(sql, params)
        inserted += max(result.rowcount or 0, 0)
    return inserted


def _sqlite_datetime(value: datetime) -> str:
    # Raw DBAPI parameters: store datetimes the way SQLAlchemy's SQLite dialect does (four-digit
    # years: strftime writes year 999 as "999", which the dialect cannot read back).
    moment = value.astimezone(timezone.utc)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}")


def _naive_utc(value: datetime) -> datetime:
    # The column type (UTCDateTime) takes aware values only and stores them in UTC.
    return value.astimezone(timezone.utc)


def _table(model: type) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def upsert_repository(engine: Engine, path: str, *, license: str | None, head_sha: str | None) -> RepositoryInfo:
    """Register a repository by its resolved path (or update its license and head)."""
    resolved = str(Path(path).expanduser().resolve())
    with Session(engine) as session:
        row = session.exec(select(RepositoryRow).where(RepositoryRow.path == resolved)).first()
        if row is None:
            name = Path(resolved).name
            if name in ("repo", ".git"):
                name = Path(resolved).parent.name
            row = RepositoryRow(path=resolved, name=name)
        row.license = license
        row.head_sha = head_sha
        session.add(row)
        session.commit()
        session.refresh(row)
        assert row.id is not None
        return RepositoryInfo(row.id, row.path, row.name, row.license, row.head_sha)


def find_repository(engine: Engine, path: str) -> RepositoryInfo | None:
    """The repository registered for this path, if any."""
    resolved = str(Path(path).expanduser().resolve())
    with Session(engine) as session:
        row = session.exec(select(RepositoryRow).where(RepositoryRow.path == resolved)).first()
        if row is None or row.id is None:
            return None
        return RepositoryInfo(row.id, row.path, row.name, row.license, row.head_sha)


def list_repositories(engine: Engine) -> list[RepositoryInfo]:
    """Every repository with its number of stored commit records."""
    with Session(engine) as session:
        counts = dict(
            session.execute(  # type: ignore[call-overload]
                sa_select(col(CommitRow.repository_id), func.count()).group_by(col(CommitRow.repository_id))
            ).all()
        )
        rows = session.exec(select(RepositoryRow).order_by(col(RepositoryRow.id))).all()
        return [
            RepositoryInfo(r.id or 0, r.path, r.name, r.license, r.head_sha, int(counts.get(r.id, 0)))
            for r in rows
        ]


def stored_commit_shas(engine: Engine, repository_id: int) -> set[str]:
    """Shas of the commits of a repository that already have records (a re-run skips them)."""
    with Session(engine) as session:
        return set(
            session.exec(select(CommitRow.sha).where(CommitRow.repository_id == repository_id).distinct()).all()
        )


def known_content_keys(engine: Engine) -> set[str]:
    """Content keys of every stored change, to skip exact duplicates across runs and repositories."""
    with Session(engine) as session:
        return set(session.exec(select(CommitRow.content_key).distinct()).all())


class CommitRecorder:
    """Implements core.mining.mine.RunSink: stores each commit's records atomically, in batches."""

    def __init__(
        self,
        engine: Engine,
        repository_id: int,
        *,
        job_id: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from core.mining.mine import content_key

        self._content_key = content_key
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self.repository_id = repository_id
        self.job_id = job_id
        self._clock = clock
        self._pending: list[CommitMined] = []
        self._pending_records = 0
        self._last_flush = clock()
        self._written_blobs: set[str] = set()
        self.stored_records = 0
        self._insert_blob = _insert_ignoring_duplicates(engine, _table(BlobRow))
        self._insert_commit = _insert_ignoring_duplicates(engine, _table(CommitRow))
        # A writer thread overlaps SQLite (which releases the GIL) with reading git.
        self._batches: queue.Queue[tuple[list[dict[str, Any]], list[dict[str, Any]]] | None] = queue.Queue(4)
        self._writer_error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_batches, name="commit-writer", daemon=True)
        self._writer.start()

    def _write_batches(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._writer_error is not None:
                continue
            blob_rows, commit_rows = batch
            try:
                if self._sqlite:
                    # The texts live in their own file: commit them first, so that a kill between
                    # the two transactions leaves texts without rows (the re-run's INSERT OR IGNORE
                    # keeps them), never rows without texts.
                    with self.engine.begin() as connection:
                        _insert_rows_sqlite(connection, "texts.blobs", blob_rows, text_columns=("text",))
                    with self.engine.begin() as connection:
                        self.stored_records += _insert_rows_sqlite(connection, "commits", commit_rows)
                else:
                    with self.engine.begin() as connection:
                        if blob_rows:
                            connection.execute(self._insert_blob, [
                                {**row, "text": row["text"].decode("utf-8")} for row in blob_rows])
                        result = connection.execute(self._insert_commit, commit_rows)
                        rowcount = result.rowcount
                        self.stored_records += rowcount if rowcount is not None and rowcount >= 0 else len(commit_rows)
            except BaseException as exc:  # noqa: BLE001  re-raised in the mining thread
                self._writer_error = exc

    def _raise_writer_error(self) -> None:
        if self._writer_error is not None:
            error, self._writer_error = self._writer_error, None
            raise error

    def close(self) -> None:
        """Write what is buffered, wait for the writer and re-raise its error if it had one."""
        self.flush()
        if self._writer.is_alive():
            self._batches.put(None)
            self._writer.join()
        self._raise_writer_error()

    def record(self, event: MineEvent) -> None:
        """Buffer a commit's records; flush by count or age, and always at the end of the run."""
        if isinstance(event, CommitMined):
            self._pending.append(event)
            self._pending_records += len(event.records)
        self._raise_writer_error()
        if isinstance(event, MineFinished):
            self.close()
        elif self._pending_records >= FLUSH_RECORDS or (
            self._pending and self._clock() - self._last_flush >= FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Queue the buffered commits as one transaction (whole commits only, so a kill loses no half)."""
        self._last_flush = self._clock()
        if not self._pending:
            return
        blob_rows: list[dict[str, Any]] = []
        commit_rows: list[dict[str, Any]] = []
        new_blobs: set[str] = set()
        for event in self._pending:
            for record in event.records:
                for sha, data in ((record.old_blob, record.old_data), (record.new_blob, record.new_data)):
                    if sha not in self._written_blobs and sha not in new_blobs:
                        new_blobs.add(sha)
                        blob_rows.append({"sha": sha, "size": len(data), "text": data})
                commit_rows.append({
                    "repository_id": self.repository_id,
                    "job_id": self.job_id,
                    "sha": record.sha,
                    "parent_sha": record.parent_sha,
                    "author": record.author,
                    "author_email": record.author_email,
                    "authored_at": _sqlite_datetime(record.authored_at) if self._sqlite else _naive_utc(record.authored_at),
                    "message": record.message,
                    "path": record.path,
                    "old_path": record.old_path,
                    "old_blob": record.old_blob,
                    "new_blob": record.new_blob,
                    "content_key": self._content_key(record.old_blob, record.new_blob),
                    "lines_added": record.lines_added,
                    "lines_removed": record.lines_removed,
                    "language": record.language,
                })
        if not self._writer.is_alive():
            raise RuntimeError("the commit recorder is closed")
        self._batches.put((blob_rows, commit_rows))
        self._written_blobs |= new_blobs
        self._pending = []
        self._pending_records = 0


def _commit_filters(
    repository_id: int | None, path: str | None, text: str | None, language: str | None
) -> list[Any]:
    clauses: list[Any] = []
    if repository_id is not None:
        clauses.append(CommitRow.repository_id == repository_id)
    if path:
        clauses.append(col(CommitRow.path).contains(path, autoescape=True))
    if text:
        clauses.append(or_(col(CommitRow.message).contains(text, autoescape=True),
                           col(CommitRow.sha).startswith(text, autoescape=True)))
    if language:
        clauses.append(CommitRow.language == language)
    return clauses


def list_commits(
    engine: Engine,
    *,
    limit: int = 200,
    after_id: int | None = None,
    repository_id: int | None = None,
    path: str | None = None,
    text: str | None = None,
    language: str | None = None,
) -> list[StoredCommit]:
    """One keyset page of commit records (ascending id), filtered by repository, path and message text."""
    with Session(engine) as session:
        query = (
            sa_select(col(CommitRow.id), col(CommitRow.repository_id), col(RepositoryRow.name),
                      col(CommitRow.sha), col(CommitRow.author), col(CommitRow.authored_at),
                      func.substr(col(CommitRow.message), 1, 200), col(CommitRow.path),
                      col(CommitRow.language), col(CommitRow.lines_added), col(CommitRow.lines_removed))
            .join(RepositoryRow, col(RepositoryRow.id) == col(CommitRow.repository_id))
            .order_by(col(CommitRow.id))
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(col(CommitRow.id) > after_id)
        for clause in _commit_filters(repository_id, path, text, language):
            query = query.where(clause)
        return [
            StoredCommit(row[0], row[1], row[2], row[3], row[4], row[5],
                         (row[6] or "").split("\n", 1)[0], row[7], row[8], row[9], row[10])
            for row in session.execute(query).all()
        ]


def job_record_count(engine: Engine, job_id: int) -> int:
    """How many commit records the job `job_id` stored (over all its attempts)."""
    with Session(engine) as session:
        query = select(func.count()).select_from(CommitRow).where(CommitRow.job_id == job_id)
        return int(session.exec(query).one())


def count_commits(
    engine: Engine,
    *,
    repository_id: int | None = None,
    path: str | None = None,
    text: str | None = None,
    language: str | None = None,
) -> int:
    """How many commit records match the filters."""
    with Session(engine) as session:
        query = select(func.count()).select_from(CommitRow)
        for clause in _commit_filters(repository_id, path, text, language):
            query = query.where(clause)
        return int(session.exec(query).one())


def get_commit(engine: Engine, commit_id: int) -> CommitDetail:
    """One commit record with its message and both file texts."""
    with Session(engine) as session:
        row = session.get(CommitRow, commit_id)
        if row is None or row.id is None:
            raise NotFoundError(f"commit record {commit_id} does not exist")
        repository = session.get(RepositoryRow, row.repository_id)
        old = session.get(BlobRow, row.old_blob)
        new = session.get(BlobRow, row.new_blob)
        return CommitDetail(
            id=row.id, repository_id=row.repository_id, repository_name=repository.name if repository else "",
            sha=row.sha, parent_sha=row.parent_sha, author=row.author, author_email=row.author_email,
            authored_at=row.authored_at, message=row.message, path=row.path, old_path=row.old_path,
            language=row.language, lines_added=row.lines_added, lines_removed=row.lines_removed,
            old_text=old.text if old else "", new_text=new.text if new else "",
        )


def find_commit_by_sha(engine: Engine, sha_prefix: str, path: str | None = None) -> int:
    """The id of the record whose sha starts with the prefix (and path, if several files changed)."""
    with Session(engine) as session:
        query = select(CommitRow.id, CommitRow.path).where(col(CommitRow.sha).startswith(sha_prefix, autoescape=True))
        if path:
            query = query.where(CommitRow.path == path)
        rows = session.exec(query.limit(20)).all()
    if not rows:
        raise NotFoundError(f"no commit record matches {sha_prefix!r}")
    if len(rows) > 1:
        paths = ", ".join(sorted({row[1] for row in rows})[:5])
        raise NotFoundError(f"{sha_prefix!r} matches {len(rows)} records ({paths}); give --path or a record id")
    return int(rows[0][0])
