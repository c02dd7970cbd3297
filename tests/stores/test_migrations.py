"""Schema migrations: an empty store and a store of every earlier version end at the models' schema.

The earlier versions are the DDL those workbenches wrote (tests/stores/legacy_schemas, generated
from each commit's make_engine), loaded into a real SQLite file and a real PostgreSQL database;
alembic's compare_metadata must then find no difference with the models.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from core.errors import StoreError
from stores.db import make_engine, texts_file
from stores.migrations import ALEMBIC_ERA_VERSION, head_revision, schema_differences
from stores.mining.commits import CommitRecorder, get_commit, upsert_repository

LEGACY = Path(__file__).with_name("legacy_schemas")
# skeleton: the first store (five tables); early-eval: eval_runs before objective_totals_json;
# v1: every table, file texts inside the store; v2: file texts beside it.
VERSIONS = ["v1-skeleton", "v1-early-eval", "v1", "v2"]


def _sqlite_store(path: Path, version: str) -> None:
    main, _, texts = (LEGACY / f"{version}.sqlite.sql").read_text().partition("-- texts")
    with sqlite3.connect(path) as store:
        store.executescript(main)
    if texts:
        with sqlite3.connect(texts_file(path)) as side:
            side.executescript(texts)


def _pg_store(url: str, version: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as store:
        store.execute((LEGACY / f"{version}.postgresql.sql").read_text())  # type: ignore[arg-type]


def _seed_legacy_rows(execute: Callable[[str], None], version: str, texts_table: str) -> None:
    """A repository, one commit file with its texts, a finished and a running job, an eval run."""
    execute("INSERT INTO repositories (id, path, name, created_at) VALUES (1, '/r', 'r', '2024-01-01 00:00:00+00')")
    execute(f"INSERT INTO {texts_table} (sha, size, text) VALUES ('o1', 6, 'a = 1\n'), ('n1', 6, 'a = 2\n')")
    execute("INSERT INTO commits (id, repository_id, sha, parent_sha, author, author_email, authored_at, message, "
            "path, old_path, old_blob, new_blob, content_key, lines_added, lines_removed, language) VALUES "
            "(1, 1, 'c1', 'p1', 'A', 'a@x', '2024-01-01 00:00:00+00', 'm', 'a.py', 'a.py', 'o1', 'n1', 'k1', 1, 1, "
            "'python')")
    execute("INSERT INTO jobs (id, kind, title, state, params_json, done, cancel_requested, created_at, "
            "summary_json, host) VALUES (1, 'mine', 'old', 'done', '{}', 1, false, '2024-01-01 00:00:00+00', "
            "'{}', 'h'), (2, 'mine', 'gone', 'running', '{}', 0, false, '2024-01-01 00:00:00+00', '{}', 'h')")
    if version == "v1-early-eval":  # before objective_totals_json
        execute("INSERT INTO eval_runs (id, judge_spec, judge_kind, bench_dir, bench_version, objectives_json, "
                "orders, lineage_json, parser_version, state, total, created_at, job_id) VALUES (1, 'baseline:shorter', "
                "'baseline', '/b', 'v', '[]', 'both', '{}', 'p', 'done', 4, '2024-01-01 00:00:00+00', 1)")
    elif version != "v1-skeleton":
        execute("INSERT INTO eval_runs (id, judge_spec, judge_kind, bench_dir, bench_version, objectives_json, "
                "orders, lineage_json, parser_version, state, total, objective_totals_json, created_at, job_id) VALUES "
                "(1, 'baseline:shorter', 'baseline', '/b', 'v', '[]', 'both', '{}', 'p', 'done', 4, '{}', "
                "'2024-01-01 00:00:00+00', 1)")


def _check_migrated(engine: object, version: str) -> None:
    from sqlalchemy.engine import Engine

    from stores.evaluation.runs import get_run
    from stores.jobs import get_job

    assert isinstance(engine, Engine)
    assert schema_differences(engine) == []
    commit = get_commit(engine, 1)
    assert (commit.old_text, commit.new_text) == ("a = 1\n", "a = 2\n")
    assert get_job(engine, 1).state == "done"
    gone = get_job(engine, 2)  # no heartbeat to resume it by: failed, saying why
    assert gone.state == "failed" and "store upgrade" in (gone.error or "")
    if version != "v1-skeleton":
        run = get_run(engine, 1)
        assert run.state == "done" and run.objective_totals == {}  # early-eval: a column the old schema lacked
    # New rows go in: the texts are found although no foreign key points at them any more.
    repository = upsert_repository(engine, "/r2", license=None, head_sha=None)
    from core.mining.events import CommitMined
    from core.mining.records import CommitRecord

    recorder = CommitRecorder(engine, repository.id)
    recorder.record(CommitMined("c2", (CommitRecord(
        sha="c2", parent_sha="c1", author="A", author_email="a@x", authored_at=datetime(2024, 1, 2, tzinfo=timezone.utc),
        message="m2", path="a.py", old_path="a.py", old_blob="n1", new_blob="n2", old_data=b"a = 2\n",
        new_data=b"a = 3\n", lines_added=1, lines_removed=1, language="python"),)))
    recorder.close()
    with engine.connect() as connection:
        new_id = connection.execute(text("SELECT id FROM commits WHERE sha = 'c2'")).scalar_one()
    assert get_commit(engine, new_id).new_text == "a = 3\n"


def test_an_empty_sqlite_store_is_created_at_the_head(db_path: Path) -> None:
    engine = make_engine(db_path)
    assert schema_differences(engine) == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
        # An older workbench reads this number and refuses the store instead of writing to it.
        assert connection.execute(text("PRAGMA main.user_version")).scalar_one() == ALEMBIC_ERA_VERSION
    engine.dispose()
    make_engine(db_path).dispose()  # opening again changes nothing


@pytest.mark.postgres
def test_an_empty_postgresql_store_is_created_at_the_head(pg_empty_url: str) -> None:
    engine = make_engine(pg_empty_url)
    assert schema_differences(engine) == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
        assert connection.execute(text("SELECT version FROM schema_version")).scalar_one() == ALEMBIC_ERA_VERSION
    engine.dispose()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_sqlite_store_of_every_earlier_version_migrates_to_the_models(db_path: Path, version: str) -> None:
    _sqlite_store(db_path, version)
    with sqlite3.connect(db_path) as store:
        texts_table = "blobs"
        if version == "v2":
            store.execute("ATTACH DATABASE ? AS texts", (str(texts_file(db_path)),))
            texts_table = "texts.blobs"
        _seed_legacy_rows(lambda sql: store.execute(sql), version, texts_table)
    engine = make_engine(db_path)
    _check_migrated(engine, version)
    with sqlite3.connect(db_path) as store:  # the texts left the store file
        assert store.execute("SELECT count(*) FROM sqlite_master WHERE name = 'blobs'").fetchone()[0] == 0
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("version", VERSIONS)
def test_a_postgresql_store_of_every_earlier_version_migrates_to_the_models(pg_empty_url: str, version: str) -> None:
    import psycopg

    _pg_store(pg_empty_url, version)
    with psycopg.connect(pg_empty_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as store:
        _seed_legacy_rows(lambda sql: store.execute(sql), version, "blobs")  # type: ignore[arg-type]
        for table in ("repositories", "commits", "jobs") + (() if version == "v1-skeleton" else ("eval_runs",)):
            # rows with explicit ids leave the sequence behind, as an old workbench's own inserts would not
            store.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    engine = make_engine(pg_empty_url)
    _check_migrated(engine, version)
    engine.dispose()


def test_a_sqlite_file_of_another_program_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    with sqlite3.connect(other) as store:
        store.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        store.execute("INSERT INTO notes (body) VALUES ('keep me')")
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not a workbench store"):
        make_engine(other)
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no texts file, no journal left


def test_a_file_that_is_not_sqlite_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a workbench store"):
        make_engine(garbage)
    assert garbage.read_bytes() == b"this is not sqlite" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.db"]


def test_a_store_of_a_newer_workbench_is_refused_and_left_unchanged(db_path: Path) -> None:
    make_engine(db_path).dispose()
    with sqlite3.connect(db_path) as store:
        store.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="newer workbench"):
        make_engine(db_path)
    assert db_path.read_bytes() == before
    with sqlite3.connect(db_path) as store:
        store.execute("DROP TABLE alembic_version")
        store.execute("PRAGMA user_version = 7")  # a pre-alembic number this workbench never wrote
    with pytest.raises(StoreError, match="newer workbench"):
        make_engine(db_path)


@pytest.mark.postgres
def test_a_postgresql_database_of_another_program_is_refused_and_left_unchanged(pg_empty_url: str) -> None:
    import psycopg

    raw = pg_empty_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw, autocommit=True) as database:
        database.execute("CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)")
    with pytest.raises(StoreError, match="not a workbench store"):
        make_engine(pg_empty_url)
    with psycopg.connect(raw, autocommit=True) as database:
        tables = {row[0] for row in database.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
    assert tables == {"notes"}
