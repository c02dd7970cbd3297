"""Engine factory: one engine per process, SQLite by default, any SQLAlchemy URL accepted."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import event, inspect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.schema import CreateTable
from sqlmodel import SQLModel, create_engine

from core.errors import StoreError
from stores.mining.tables import TEXTS_SCHEMA, BlobRow

DEFAULT_DB_FILE = "workbench.db"
DB_ENV_VAR = "WORKBENCH_DB"


def resolve_db_url(db: str | os.PathLike[str] | None) -> str:
    """Turn `--db` (a path or a SQLAlchemy URL), the environment variable, or the default into a URL."""
    value = str(db) if db else os.environ.get(DB_ENV_VAR) or DEFAULT_DB_FILE
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def texts_file(store_file: str | os.PathLike[str]) -> Path:
    """The file that holds a SQLite store's file texts: `workbench.db` keeps them in `workbench.texts.db`."""
    path = Path(store_file)
    return path.with_name(f"{path.stem}.texts{path.suffix}")


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any, *, read_only: bool = False) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=5000")
        # Bigger pages store file texts in fewer overflow pages; only takes effect on a new file.
        cursor.execute("PRAGMA page_size=16384")
        cursor.execute("PRAGMA foreign_keys=ON")
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass  # a read-only file cannot switch journal mode; reads still work
        cursor.execute("PRAGMA synchronous=NORMAL")
        _attach_texts(cursor, read_only)
    finally:
        cursor.close()


def _attach_texts(cursor: Any, read_only: bool) -> None:
    """Attach the texts file as schema `texts`.

    File texts are most of a store's bytes (half a gigabyte for pytest's history). In the store's
    WAL every byte is written twice, to the log and again at the checkpoint; their own file with a
    rollback journal writes new pages once, which made mining a third faster. Mining commits the
    texts of a batch before the rows that name them, so a kill at any moment leaves no row
    without its texts. Readers hold the texts file only for the length of one query.
    """
    main = next((row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"), "")
    if not main:  # an in-memory or temporary store keeps its texts in memory too
        cursor.execute(f"ATTACH DATABASE ':memory:' AS {TEXTS_SCHEMA}")
        return
    path = texts_file(main)
    if read_only:
        if path.exists():
            cursor.execute(f"ATTACH DATABASE ? AS {TEXTS_SCHEMA}", (f"file:{quote(str(path))}?mode=ro",))
        else:  # an empty stand-in, so that reads find no texts instead of failing
            cursor.execute(f"ATTACH DATABASE ':memory:' AS {TEXTS_SCHEMA}")
            table = BlobRow.__table__  # type: ignore[attr-defined]
            cursor.execute(str(CreateTable(table).compile(dialect=sqlite_dialect.dialect())))
        return
    cursor.execute(f"ATTACH DATABASE ? AS {TEXTS_SCHEMA}", (str(path),))
    cursor.execute(f"PRAGMA {TEXTS_SCHEMA}.page_size=16384")
    cursor.execute(f"PRAGMA {TEXTS_SCHEMA}.synchronous=FULL")


def make_engine(db: str | os.PathLike[str] | None = None, *, migrate: bool = True, create: bool = True) -> Engine:
    """Open the store at `db`, creating or upgrading its schema; raise StoreError if it cannot.

    A database that is not a workbench store, or that a newer workbench wrote, is refused before
    anything is written to it (see `stores.migrations`). With `create=False` (commands that only
    read) a store that does not exist yet is an error instead of a new empty store.
    """
    import stores.all_tables  # noqa: F401  registers every table on SQLModel.metadata

    url = resolve_db_url(db)
    plain_file = url.startswith("sqlite:///") and "?" not in url and not url.startswith("sqlite:///file:")
    up_to_date = False
    if plain_file:
        path = Path(url.removeprefix("sqlite:///"))
        if path.is_dir():
            raise StoreError(f"store path {path} is a directory, not a database file")
        if not path.parent.exists():
            raise StoreError(f"cannot create store {path}: folder {path.parent} does not exist")
        # Checked with a read-only connection before the engine's own, which would attach (and so
        # create) the texts file beside a database that is not ours.
        state = _sqlite_file_state(path)
        _check_identity(str(path), None if state is None else state.main_tables, create=create)
        # A store already at the head revision with every table is opened without alembic (a fifth
        # of a second of every command's and the TUI's start-up); anything else takes the full path.
        up_to_date = state is not None and state.at_head()
        if migrate and state is not None and not up_to_date:
            _check_sqlite_identity(path)
    try:
        engine = create_engine(url, connect_args=_connect_args(url))
    except ModuleNotFoundError as exc:  # the URL names a database whose driver this install lacks
        extra = " (pip install -e '.[postgres]')" if url.startswith("postgresql") else ""
        raise StoreError(f"{_display_url(url)}: its database driver {exc.name} is not installed{extra}") from None
    if engine.dialect.name == "sqlite":
        read_only = any(flag in url for flag in ("mode=ro", "immutable=1"))
        event.listen(engine, "connect", partial(_set_sqlite_pragmas, read_only=read_only))
    else:
        engine = engine.execution_options(schema_translate_map={TEXTS_SCHEMA: None})
    if not plain_file:
        with translate_store_errors(_hide_password(url)):
            _check_identity(_hide_password(url), set(inspect(engine).get_table_names()), create=create)
    if migrate and not up_to_date:
        with translate_store_errors(_display_url(url)):
            from stores.migrations import upgrade

            upgrade(engine, where=_display_url(url))
    return engine


def _check_sqlite_identity(path: Path) -> None:
    """Refuse a file that is not a workbench store through a read-only connection, before the
    store's own connections attach (and so create) its texts file."""
    from stores.migrations import identify

    probe = create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true")
    try:
        with translate_store_errors(str(path)), probe.connect() as connection:
            identify(connection, where=str(path))
    finally:
        probe.dispose()


def _display_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True).removeprefix("sqlite:///")


@dataclass(frozen=True, slots=True)
class _SqliteFileState:
    """What an existing SQLite file holds, read without SQLAlchemy or alembic."""

    main_tables: set[str]
    texts_tables: set[str]
    revision: str | None

    def at_head(self) -> bool:
        """True for a workbench store at this workbench's head revision with every table of the models."""
        from stores.migrations import HEAD_REVISION

        have = {("main", name) for name in self.main_tables} | {(TEXTS_SCHEMA, name) for name in self.texts_tables}
        models = {(table.schema or "main", table.name) for table in SQLModel.metadata.tables.values()}
        return self.revision == HEAD_REVISION and models <= have


def _sqlite_file_state(path: Path) -> _SqliteFileState | None:
    """The tables and alembic revision of an existing SQLite file, its texts file's tables included
    (None when there is no file)."""
    if not path.exists():
        return None
    try:
        connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=5)
        try:
            main = _table_names(connection, "main")
            revision = None
            if "alembic_version" in main:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = None if row is None else str(row[0])
            texts: set[str] = set()
            texts_path = texts_file(path)
            if texts_path.exists():
                try:
                    connection.execute(f"ATTACH DATABASE ? AS {TEXTS_SCHEMA}",
                                       (f"file:{quote(str(texts_path))}?mode=ro",))
                    texts = _table_names(connection, TEXTS_SCHEMA)
                except sqlite3.Error:
                    pass  # unreadable now: the store is opened the full way, which reports or repairs it
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        detail = str(exc).strip() or type(exc).__name__
        if "not a database" in detail:
            raise StoreError(f"{path} is not a workbench store (not a SQLite database); choose another --db") from None
        raise StoreError(f"store {path}: {detail}") from None
    return _SqliteFileState(main, texts, revision)


def _table_names(connection: sqlite3.Connection, schema: str) -> set[str]:
    rows = connection.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def _check_identity(where: str, tables: set[str] | None, *, create: bool) -> None:
    """Refuse a database that is not a workbench store, and a missing store when `create` is False."""
    if not tables:
        if not create:
            raise StoreError(f"no workbench store at {where}: check --db or ${DB_ENV_VAR} "
                             "(a command that writes, such as `workbench mine`, creates one)")
        return
    ours = {table.name for table in SQLModel.metadata.tables.values()}
    if not tables & ours:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(f"{where} is not a workbench store (it holds other tables: {shown}); "
                         "choose another --db, it was not changed")


def _hide_password(url: str) -> str:
    """A URL fit for an error message: the password left out."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  not a URL SQLAlchemy can read; create_engine says so
        return url


def _connect_args(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Workers open their own sessions in their own threads; SQLite needs this to allow it.
        return {"check_same_thread": False, "timeout": 5}
    return {}


@contextmanager
def translate_store_errors(where: str = "store") -> Iterator[None]:
    """Turn driver errors (locked, read-only, corrupt) into a StoreError with one readable line."""
    try:
        yield
    except (OperationalError, DatabaseError) as exc:
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        hint = ""
        if "locked" in detail:
            hint = " (another process holds a write lock; try again when it finishes)"
        elif "readonly" in detail or "read-only" in detail:
            hint = " (the file or its folder is read-only)"
        elif "not a database" in detail:
            hint = " (the file is not a workbench store; nothing was changed)"
        raise StoreError(f"{where}: {detail}{hint}") from exc


def insert_or_ignore(dialect: str, table: Any) -> Any:
    """An INSERT that skips rows hitting a unique key (both dialects say ON CONFLICT DO NOTHING)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()
