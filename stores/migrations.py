"""Ordered schema steps keyed by PRAGMA user_version (a `schema_version` row elsewhere)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


def _initial_schema(_connection: Connection) -> None:
    """Version 1 is what `create_all` builds; nothing to alter."""


_BLOB_FOREIGN_KEY = re.compile(r",\s*FOREIGN KEY\s*\((old|new)_blob\)\s*REFERENCES\s*\"?blobs\"?\s*\(sha\)")


def _texts_beside_the_store(connection: Connection) -> None:
    """Version 2 keeps file texts in their own file (attached as `texts`): move them there.

    SQLite cannot check a foreign key across files, so the two from commits to blobs are taken out
    of the stored table definition (an edit that changes nothing on disk, as SQLite's documentation
    allows), then the old table goes; its pages are reused by later writes.
    """
    if connection.dialect.name != "sqlite":
        return  # elsewhere `texts` maps to the default schema: the table is already where it belongs
    has_old = connection.execute(text(
        "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = 'blobs'")).scalar_one()
    if not has_old:
        return
    connection.execute(text(
        "INSERT OR IGNORE INTO texts.blobs (sha, size, text) SELECT sha, size, text FROM main.blobs"))
    definition = connection.execute(text(
        "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = 'commits'")).scalar_one()
    version = connection.execute(text("PRAGMA main.schema_version")).scalar_one()
    connection.execute(text("PRAGMA writable_schema = ON"))
    connection.execute(text("UPDATE main.sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'commits'"),
                       {"sql": _BLOB_FOREIGN_KEY.sub("", definition)})
    connection.execute(text(f"PRAGMA main.schema_version = {int(version) + 1}"))
    connection.execute(text("PRAGMA writable_schema = OFF"))
    connection.execute(text("DROP TABLE main.blobs"))


# Append steps; never edit or reorder a released one. Index i moves the schema to version i + 1.
STEPS: list[Callable[[Connection], None]] = [_initial_schema, _texts_beside_the_store]


def schema_version(connection: Connection) -> int:
    """Read the schema version stored in the database."""
    if connection.dialect.name == "sqlite":
        return int(connection.execute(text("PRAGMA user_version")).scalar_one())
    connection.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
    value = connection.execute(text("SELECT max(version) FROM schema_version")).scalar()
    return int(value or 0)


def _set_version(connection: Connection, version: int) -> None:
    if connection.dialect.name == "sqlite":
        connection.execute(text(f"PRAGMA user_version = {int(version)}"))
    else:
        connection.execute(text("DELETE FROM schema_version"))
        connection.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": version})


def migrate(engine: Engine, steps: list[Callable[[Connection], None]] | None = None) -> int:
    """Run the pending steps, each in its own transaction; return the resulting version."""
    steps = STEPS if steps is None else steps
    with engine.connect() as connection:
        current = schema_version(connection)
        connection.commit()
    if current > len(steps):
        from core.errors import StoreError

        raise StoreError(
            f"store schema version {current} is newer than this workbench ({len(steps)}); upgrade it"
        )
    for index in range(current, len(steps)):
        with engine.begin() as connection:
            steps[index](connection)
            _set_version(connection, index + 1)
    return len(steps)
