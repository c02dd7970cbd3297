"""The mining sink, paging and reads on a file database."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.errors import NotFoundError, StoreError
from core.mining.events import CommitMined, MineFinished
from core.mining.mine import mine
from stores.db import make_engine
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


def test_recorder_stores_records_and_shares_blobs(any_engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    build_history(repo, 3)
    repository = upsert_repository(any_engine, str(repo.path), license=None, head_sha=None)
    recorder = CommitRecorder(any_engine, repository.id)
    for _event in mine(str(repo.path), sink=recorder):
        pass
    assert recorder.stored_records == 6
    assert count_commits(any_engine) == 6
    with any_engine.connect() as connection:
        blob_count = connection.execute(text("SELECT count(*) FROM blobs")).scalar_one()
    assert blob_count == 8  # 4 versions of each file, each stored once although used twice
    first = list_commits(any_engine, limit=1)[0]
    detail = get_commit(any_engine, first.id)
    assert detail.message.startswith("edit 3 ")
    assert detail.authored_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert HOSTILE_TEXT in detail.message
    assert (detail.old_text, detail.new_text) in (("a = 2\n", "a = 3\n"), ("b = 2\n# 2\n", "b = 3\n# 3\n"))


def test_rerun_is_idempotent_and_resumes(any_engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    build_history(repo, 4)
    first = [e for e in run_mine_job(any_engine, str(repo.path)) if isinstance(e, MineFinished)][0]
    assert first.records_kept == 8
    second = [e for e in run_mine_job(any_engine, str(repo.path)) if isinstance(e, MineFinished)][0]
    # Counted by file change: the 8 changes of the 4 stored commits; the whole history is accounted for.
    assert second.records_kept == 0 and second.skipped["already_stored"] == 8
    assert first.changes_seen == second.changes_seen == 10
    for finished in (first, second):
        assert finished.records_kept + sum(finished.skipped.values()) == finished.changes_seen
    assert count_commits(any_engine) == 8
    repo.commit("later", {"a.py": "a = 99\n"})
    third = [e for e in run_mine_job(any_engine, str(repo.path)) if isinstance(e, MineFinished)][0]
    assert third.records_kept == 1
    repository = upsert_repository(any_engine, str(repo.path), license=None, head_sha=None)
    assert len(stored_commit_shas(any_engine, repository.id)) == 5


def test_keyset_paging_and_filters(any_engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    build_history(repo, 30)
    list(run_mine_job(any_engine, str(repo.path)))
    seen: list[int] = []
    after = None
    while page := list_commits(any_engine, limit=7, after_id=after):
        seen.extend(c.id for c in page)
        after = page[-1].id
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 60
    assert count_commits(any_engine, path="b.py") == 30
    assert {c.path for c in list_commits(any_engine, path="b.py", limit=100)} == {"b.py"}
    assert count_commits(any_engine, text="edit 12 ") == 2
    assert count_commits(any_engine, text="[bold]") == 60  # filter text is matched literally
    assert count_commits(any_engine, text="%") == 0
    with pytest.raises(NotFoundError):
        get_commit(any_engine, 10_000)


def test_mine_job_records_state_and_summary(any_engine: Engine, make_repo: Callable[[str], GitRepo]) -> None:
    from stores.jobs import get_job, list_jobs

    repo = make_repo("r")
    build_history(repo, 2)
    list(run_mine_job(any_engine, str(repo.path)))
    (job,) = list_jobs(any_engine)
    assert job.kind == "mine" and job.state == "done"
    assert job.summary["records_kept"] == 4 and job.summary["records_stored"] == 4
    assert get_job(any_engine, job.id).params["options"]["languages"] == ["python"]


def test_store_path_problems_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        make_engine(tmp_path / "missing" / "wb.db")
    with pytest.raises(StoreError, match="directory"):
        make_engine(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a"):
        make_engine(garbage)


def test_cancel_from_another_front_end_stops_the_run(any_engine: Engine, tmp_path: Path) -> None:
    from stores.jobs import get_job, request_cancel
    from tests.cli.test_mine_cli import _fast_import_history
    from workbench.jobs.mine import MineJobStarted

    repo = tmp_path / "many"
    _fast_import_history(repo, 1200)
    events = run_mine_job(any_engine, str(repo))
    started = next(e for e in events if isinstance(e, MineJobStarted))
    next(e for e in events if isinstance(e, CommitMined))  # mining is under way
    request_cancel(any_engine, started.job_id)
    time.sleep(1.1)  # a runner reads the flag at most once a second
    finished = [e for e in events if isinstance(e, MineFinished)][0]
    assert finished.cancelled
    # The first poll may come with the first progress event, before any record: none is stored then.
    assert count_commits(any_engine) < 1200 - 50
    assert finished.records_kept == count_commits(any_engine)
    assert finished.records_kept + sum(finished.skipped.values()) == finished.changes_seen
    job = get_job(any_engine, started.job_id)
    assert job.state == "cancelled" and job.summary["records_stored"] == count_commits(any_engine)
    resumed = [e for e in run_mine_job(any_engine, str(repo)) if isinstance(e, MineFinished)][0]
    assert not resumed.cancelled and count_commits(any_engine) == 1200 - 50


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
