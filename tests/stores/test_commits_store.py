"""The mining sink, paging and reads on a file database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.errors import NotFoundError, StoreError
from core.events import MineFinished
from core.mining import mine
from stores.commits import (
    CommitRecorder,
    count_commits,
    get_commit,
    list_commits,
    stored_commit_shas,
    upsert_repository,
)
from stores.db import make_engine
from stores.migrations import STEPS, migrate, schema_version
from stores.mining_jobs import run_mine_job
from tests.conftest import GitRepo
from tests.fixtures import HOSTILE_TEXT


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
    assert second.records_kept == 0 and second.skipped["already_stored"] == 4
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
    from stores.mining_jobs import MineJobStarted
    from tests.cli.test_mine_cli import _fast_import_history

    repo = tmp_path / "many"
    _fast_import_history(repo, 1200)
    events = run_mine_job(engine, str(repo))
    started = next(e for e in events if isinstance(e, MineJobStarted))
    request_cancel(engine, started.job_id)
    finished = [e for e in events if isinstance(e, MineFinished)][0]
    assert finished.cancelled
    assert 0 < count_commits(engine) < 1200 - 50
    job = get_job(engine, started.job_id)
    assert job.state == "cancelled" and job.summary["records_stored"] == count_commits(engine)
    resumed = [e for e in run_mine_job(engine, str(repo)) if isinstance(e, MineFinished)][0]
    assert not resumed.cancelled and count_commits(engine) == 1200 - 50
