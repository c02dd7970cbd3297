"""Schema migrations: alembic revisions (`versions/`) that `make_engine` runs on every store it opens.

A store is one of three things: empty (a new file or database), a workbench store (an
`alembic_version` row, or before alembic a `PRAGMA user_version` / `schema_version` of 1 or 2
next to a `jobs` table), or something else. Empty and workbench stores are upgraded to the head
revision in one transaction; a store of another program, or of a newer workbench, is refused
and left untouched. Pre-alembic stores are stamped with the revision of their version first.

New revision: `alembic -c stores/migrations/alembic.ini revision --autogenerate -m "what"` with
`WORKBENCH_DB` naming a store at the current head, then edit it (SQLite needs batch mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine

from core.errors import StoreError

MIGRATIONS_DIR = Path(__file__).parent
# Store versions written before alembic, and the revision each one is at.
LEGACY_REVISIONS = {1: "0001_store_v1", 2: "0002_texts_beside_the_store"}
# Written where the pre-alembic workbench read its version, so that an older workbench refuses a
# store this one has migrated instead of writing to a schema it does not know.
ALEMBIC_ERA_VERSION = 3
_LOCK_KEY = 0x57B_5701  # pg_advisory_xact_lock key: one migrator at a time per database
_BOOKKEEPING_TABLES = frozenset({"alembic_version", "schema_version"})
# The newest revision in versions/, so that opening a store at head needs no alembic import
# (tests/stores/test_migrations.py checks it against alembic's own head).
HEAD_REVISION = "0008_execution_claims"


@dataclass(frozen=True, slots=True)
class StoreIdentity:
    """What a database holds: `empty`, a workbench store at `revision`, or a pre-alembic store of `legacy_version`."""

    kind: str  # empty | current | legacy
    revision: str | None = None
    legacy_version: int | None = None


@cache
def _config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this workbench has."""
    from alembic.script import ScriptDirectory

    return frozenset(revision.revision for revision in ScriptDirectory.from_config(_config()).walk_revisions())


@cache
def head_revision() -> str:
    """The revision this workbench's models are at."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def identify(connection: Connection, where: str = "store") -> StoreIdentity:
    """Say what `connection`'s database holds; raise StoreError for a database that is not a workbench store."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" in tables:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if revision not in known_revisions():
            raise StoreError(f"{where} was written by a newer workbench (schema revision {revision}); "
                             "upgrade the workbench to open it")
        return StoreIdentity("current", revision=revision)
    version = _legacy_version(connection, tables)
    if version in LEGACY_REVISIONS and "jobs" in tables:
        return StoreIdentity("legacy", legacy_version=version)
    if version > max(LEGACY_REVISIONS):
        raise StoreError(f"{where} was written by a newer workbench (store version {version}); "
                         "upgrade the workbench to open it")
    if not tables - _BOOKKEEPING_TABLES and version == 0:
        return StoreIdentity("empty")
    raise StoreError(f"{where} is not a workbench store (it holds other tables); nothing was changed")


def _legacy_version(connection: Connection, tables: set[str]) -> int:
    if connection.dialect.name == "sqlite":
        return int(connection.execute(text("PRAGMA main.user_version")).scalar_one())
    if "schema_version" not in tables:
        return 0
    return int(connection.execute(text("SELECT max(version) FROM schema_version")).scalar() or 0)


def upgrade(engine: Engine, where: str = "store") -> str:
    """Bring the store to the head revision (creating it when empty); return the head.

    Runs in one transaction under a lock (SQLite's write lock, a PostgreSQL advisory lock), so
    that two processes opening a new store at once migrate it once.
    """
    head = head_revision()
    with engine.connect() as connection:
        if identify(connection, where).revision == head:
            return head
    with _migration_transaction(engine) as connection:
        identity = identify(connection, where)
        if identity.revision == head:
            return head
        from alembic import command

        config = _config()
        config.attributes["connection"] = connection
        if identity.kind == "legacy":
            assert identity.legacy_version is not None
            command.stamp(config, LEGACY_REVISIONS[identity.legacy_version])
        command.upgrade(config, "head")
        _mark_alembic_era(connection)
    return head


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Table rebuilds must not trip the foreign keys of rows that point at the table being
            # rebuilt; the pragma is ignored inside a transaction, so it comes first.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        try:
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _mark_alembic_era(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA main.user_version = {ALEMBIC_ERA_VERSION}")
        return
    connection.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
    connection.execute(text("DELETE FROM schema_version"))
    connection.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": ALEMBIC_ERA_VERSION})


def target_metadata(dialect: str) -> MetaData:
    """The models' tables as they exist in a store of `dialect` (texts move to the default schema off SQLite)."""
    from sqlmodel import SQLModel

    import stores.all_tables  # noqa: F401  registers every table on SQLModel.metadata

    if dialect == "sqlite":
        return SQLModel.metadata
    metadata = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(metadata, schema=None)  # type: ignore[arg-type]  # None: the default schema
    return metadata


def schema_differences(engine: Engine) -> list[Any]:
    """alembic's compare_metadata between the store and the models: empty when they agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def include_object(obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        return not (type_ == "table" and name in _BOOKKEEPING_TABLES)

    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        context = MigrationContext.configure(connection, opts={
            "include_schemas": sqlite, "include_object": include_object, "compare_type": True,
        })
        return list(compare_metadata(context, target_metadata(connection.dialect.name)))
