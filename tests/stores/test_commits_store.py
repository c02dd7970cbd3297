"""The mining sink, paging and reads on a file database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.errors import NotFoundError, StoreError
from core.mining.events import MineFinished
from core.mining.mine import mine
from stores.db import make_engine
from stores.migrations import STEPS, migrate, schema_version
from stores.mining.commits import (
    CommitRecorder,
    count_commits,
    get_commit,
    list_commits,
    stored_commit_shas,
    upsert_repository,
)
from tests.conftest import GitRepo
from tests.fixtures import HOSTILE_TEXT
from workbench.jobs.mine import run_mine_job


def build_history(repo: GitRepo, count: int) -> None:
    repo.commit("init", {"a.py": "a = 0\n", "b.py": "b = 0\n"})
    for i in range(1, count + 1):
        repo.commit(f"edit {i} {HOSTILE_TEXT}", {"a.py": f"a = {i}\n", "b.py": f"b = {i}\n# {i}\n"})


def test_recorder_stores_records_and_shares_blobs(engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    build_history(repo, 3)
    repository = upsert_repository(engine, str(repo.path), license=None, head_sha=None)
    recorder = CommitRecorder(engine, repository.id)
    for _event in mine(str(repo.path), sink=recorder):
        pass
    assert recorder.stored_records == 6
    assert count_commits(engine) == 6
    with engine.connect() as connection:
        blob_count = connection.execute(text("SELECT count(*) FROM blobs")).scalar_one()
    assert blob_count == 8  # 4 versions of each file, each stored once although used twice
    first = list_commits(engine, limit=1)[0]
    detail = get_commit(engine, first.id)
    assert detail.message.startswith("edit 3 ")
    assert detail.authored_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert HOSTILE_TEXT in detail.message
    assert (detail.old_text, detail.new_text) in (("a = 2\n", "a = 3\n"), ("b = 2\n# 2\n", "b = 3\n# 3\n"))


def test_rerun_is_idempotent_and_resumes(engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    build_history(repo, 4)
    first = [e for e in run_mine_job(engine, str(repo.path)) if isinstance(e, MineFinished)][0]
    assert first.records_kept == 8
    second = [e for e in run_mine_job(engine, str(repo.path)) if isinstance(e, MineFinished)][0]
    # Counted by file change: the 8 changes of the 4 stored commits; the whole history is accounted for.
    assert second.records_kept == 0 and second.skipped["already_stored"] == 8
    assert first.changes_seen == second.changes_seen == 10
    for finished in (first, second):
        assert finished.records_kept + sum(finished.skipped.values()) == finished.changes_seen
    assert count_commits(engine) == 8
    repo.commit("later", {"a.py": "a = 99\n"})
    third = [e for e in run_mine_job(engine, str(repo.path)) if isinstance(e, MineFinished)][0]
    assert third.records_kept == 1
    repository = upsert_repository(engine, str(repo.path), license=None, head_sha=None)
    assert len(stored_commit_shas(engine, repository.id)) == 5


def test_keyset_paging_and_filters(engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    build_history(repo, 30)
    list(run_mine_job(engine, str(repo.path)))
    seen: list[int] = []
    after = None
    while page := list_commits(engine, limit=7, after_id=after):
        seen.extend(c.id for c in page)
        after = page[-1].id
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 60
    assert count_commits(engine, path="b.py") == 30
    assert {c.path for c in list_commits(engine, path="b.py", limit=100)} == {"b.py"}
    assert count_commits(engine, text="edit 12 ") == 2
    assert count_commits(engine, text="[bold]") == 60  # filter text is matched literally
    assert count_commits(engine, text="%") == 0
    with pytest.raises(NotFoundError):
        get_commit(engine, 10_000)


def test_mine_job_records_state_and_summary(engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    from stores.jobs import get_job, list_jobs

    repo = make_repo("r")
    build_history(repo, 2)
    list(run_mine_job(engine, str(repo.path)))
    (job,) = list_jobs(engine)
    assert job.kind == "mine" and job.state == "done"
    assert job.summary["records_kept"] == 4 and job.summary["records_stored"] == 4
    assert get_job(engine, job.id).params["languages"] == ["python"]


def test_migrations_track_user_version(db_path: Path) -> None:
    engine = make_engine(db_path)
    with engine.connect() as connection:
        assert schema_version(connection) == len(STEPS)
    calls: list[int] = []
    steps = [*STEPS, lambda connection: calls.append(1)]
    assert migrate(engine, steps) == len(STEPS) + 1
    assert migrate(engine, steps) == len(STEPS) + 1
    assert calls == [1]  # a step runs once
    with pytest.raises(StoreError, match="newer than this workbench"):
        make_engine(db_path)


def test_store_path_problems_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        make_engine(tmp_path / "missing" / "wb.db")
    with pytest.raises(StoreError, match="directory"):
        make_engine(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a"):
        make_engine(garbage)


def test_dead_jobs_are_reaped(engine: Engine) -> None:
    import subprocess
    import sys

    from stores.jobs import create_job, get_job

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    job_id = create_job(engine, "mine", "ghost", pid=int(finished.stdout))
    job = get_job(engine, job_id)
    assert job.state == "failed" and "ended without finishing" in (job.error or "")


def test_cancel_from_another_front_end_stops_the_run(engine: Engine, tmp_path: Path) -> None:
    from stores.jobs import get_job, request_cancel
    from tests.cli.test_mine_cli import _fast_import_history
    from workbench.jobs.mine import MineJobStarted

    repo = tmp_path / "many"
    _fast_import_history(repo, 1200)
    events = run_mine_job(engine, str(repo))
    started = next(e for e in events if isinstance(e, MineJobStarted))
    request_cancel(engine, started.job_id)
    finished = [e for e in events if isinstance(e, MineFinished)][0]
    assert finished.cancelled
    # The first poll may come with the first progress event, before any record: none is stored then.
    assert count_commits(engine) < 1200 - 50
    assert finished.records_kept == count_commits(engine)
    assert finished.records_kept + sum(finished.skipped.values()) == finished.changes_seen
    job = get_job(engine, started.job_id)
    assert job.state == "cancelled" and job.summary["records_stored"] == count_commits(engine)
    resumed = [e for e in run_mine_job(engine, str(repo)) if isinstance(e, MineFinished)][0]
    assert not resumed.cancelled and count_commits(engine) == 1200 - 50


V1_COMMITS = """CREATE TABLE commits (
	id INTEGER NOT NULL, repository_id INTEGER NOT NULL, job_id INTEGER, sha VARCHAR NOT NULL,
	parent_sha VARCHAR NOT NULL, author VARCHAR NOT NULL, author_email VARCHAR NOT NULL,
	authored_at DATETIME NOT NULL, message TEXT NOT NULL, path VARCHAR NOT NULL, old_path VARCHAR NOT NULL,
	old_blob VARCHAR NOT NULL, new_blob VARCHAR NOT NULL, content_key VARCHAR NOT NULL,
	lines_added INTEGER NOT NULL, lines_removed INTEGER NOT NULL, language VARCHAR NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_commit_file UNIQUE (repository_id, sha, path),
	FOREIGN KEY(repository_id) REFERENCES repositories (id),
	FOREIGN KEY(job_id) REFERENCES jobs (id),
	FOREIGN KEY(old_blob) REFERENCES blobs (sha),
	FOREIGN KEY(new_blob) REFERENCES blobs (sha)
)"""
V1_BLOBS = "CREATE TABLE blobs (sha VARCHAR NOT NULL, size INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (sha))"


def test_texts_live_in_their_own_file_with_a_rollback_journal(db_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    import sqlite3

    repo = make_repo("r")
    build_history(repo, 2)
    engine = make_engine(db_path)
    for _event in run_mine_job(engine, str(repo.path)):
        pass
    engine.dispose()
    texts = db_path.with_name(f"{db_path.stem}.texts{db_path.suffix}")
    with sqlite3.connect(db_path) as main, sqlite3.connect(texts) as side:
        assert main.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert side.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert main.execute("SELECT count(*) FROM sqlite_master WHERE name = 'blobs'").fetchone()[0] == 0
        named = {sha for row in main.execute("SELECT old_blob, new_blob FROM commits") for sha in row}
        stored = dict(side.execute("SELECT sha, text FROM blobs").fetchall())
    assert len(named) == 6 and named <= set(stored)
    assert stored[next(iter(named))].startswith(("a = ", "b = "))


def test_version_1_store_moves_its_texts_beside_it(db_path: Path) -> None:
    import sqlite3

    make_engine(db_path).dispose()  # every other table, as version 1 had them
    texts = db_path.with_name(f"{db_path.stem}.texts{db_path.suffix}")
    texts.unlink()
    with sqlite3.connect(db_path) as old:
        old.execute("DROP TABLE commits")
        old.execute(V1_COMMITS)
        old.execute(V1_BLOBS)
        old.execute("INSERT INTO repositories (id, path, name, created_at) VALUES (1, '/r', 'r', '2024-01-01 00:00:00')")
        old.execute("INSERT INTO blobs VALUES ('o1', 6, 'a = 1\n'), ('n1', 6, 'a = 2\n')")
        old.execute(
            "INSERT INTO commits VALUES (1, 1, NULL, 'c1', 'p1', 'A', 'a@x', '2024-01-01 00:00:00', 'm', "
            "'a.py', 'a.py', 'o1', 'n1', 'k1', 1, 1, 'python')")
        old.execute("PRAGMA user_version = 1")

    engine = make_engine(db_path)  # migrates to the current version
    with engine.connect() as connection:
        assert schema_version(connection) == len(STEPS)
        assert connection.execute(text(
            "SELECT count(*) FROM main.sqlite_master WHERE name = 'blobs'")).scalar_one() == 0
    detail = get_commit(engine, 1)
    assert (detail.old_text, detail.new_text) == ("a = 1\n", "a = 2\n")
    # New rows are accepted although their texts are in the other file (no stale foreign key).
    repository = upsert_repository(engine, "/r", license=None, head_sha=None)
    recorder = CommitRecorder(engine, repository.id)
    from core.mining.events import CommitMined
    from core.mining.records import CommitRecord

    recorder.record(CommitMined("c2", (CommitRecord(
        sha="c2", parent_sha="c1", author="A", author_email="a@x", authored_at=datetime(2024, 1, 2, tzinfo=timezone.utc),
        message="m2", path="a.py", old_path="a.py", old_blob="n1", new_blob="n2", old_data=b"a = 2\n",
        new_data=b"a = 3\n", lines_added=1, lines_removed=1, language="python"),)))
    recorder.close()
    assert get_commit(engine, find_id(engine, "c2")).new_text == "a = 3\n"
    assert count_commits(engine) == 2
    engine.dispose()
    with sqlite3.connect(db_path) as main:
        assert main.execute("PRAGMA foreign_key_check").fetchall() == []


def find_id(engine: Engine, sha: str) -> int:
    from stores.mining.commits import find_commit_by_sha

    return find_commit_by_sha(engine, sha)


def test_dates_far_from_now_round_trip_through_the_store(engine: Engine, tmp_path: Path) -> None:
    from tests.core.test_mining_integrity import dated_history

    expected = dated_history(tmp_path / "dated")
    finished = [e for e in run_mine_job(engine, str(tmp_path / "dated")) if isinstance(e, MineFinished)][0]
    stored = {c.subject: c.authored_at for c in list_commits(engine, limit=100)}
    want = {message: moment for message, moment in expected.items() if moment is not None}
    assert stored == want
    assert finished.records_kept == len(want)


def test_summary_counts_what_the_store_received(
    engine: Engine, make_repo: Callable[[str], GitRepo], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another run stored these commits after this one read what was stored: INSERT OR IGNORE keeps
    # theirs, and this run's summary says so instead of claiming the records as its own.
    import workbench.jobs.mine as mine_job
    from stores.jobs import list_jobs

    repo = make_repo("r")
    build_history(repo, 3)
    list(run_mine_job(engine, str(repo.path)))
    monkeypatch.setattr(mine_job, "stored_commit_shas", lambda engine, repository_id: set())
    monkeypatch.setattr(mine_job, "known_content_keys", lambda engine: set())
    again = [e for e in run_mine_job(engine, str(repo.path)) if isinstance(e, MineFinished)][0]
    assert again.records_kept == 0 and again.skipped["already_stored"] == 6
    assert again.records_kept + sum(again.skipped.values()) == again.changes_seen
    assert list_jobs(engine)[0].summary["records_stored"] == 0
    assert count_commits(engine) == 6
