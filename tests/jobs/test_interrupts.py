"""Ctrl-C while the front end shows an event: the job still ends the way it would have inside."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.jobs import JobInterrupted
from core.mining.events import MineProgress
from stores.db import make_engine
from stores.jobs import get_job, list_jobs
from tests.cli.test_mine_cli import _fast_import_history
from workbench.jobs.mine import run_mine_job
from workbench.jobs.runner import JobStarted, drain


def test_ctrl_c_in_the_event_handler_ends_the_job_cancelled_with_the_stored_counters(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _fast_import_history(repo, 3000)
    db = tmp_path / "wb.db"
    engine = make_engine(db)
    seen: list[int] = []

    def show(event: object) -> None:
        if isinstance(event, JobStarted):
            seen.append(event.job_id)
        if isinstance(event, MineProgress) and event.records_kept:
            raise KeyboardInterrupt  # the user's Ctrl-C, landing in the CLI's progress rendering

    with pytest.raises(JobInterrupted) as raised:
        drain(run_mine_job(engine, str(repo)), show)
    (job_id,) = seen
    assert f"mine job {job_id} is cancelled" in str(raised.value)
    job = get_job(engine, job_id)
    with sqlite3.connect(db) as connection:
        stored = connection.execute("SELECT count(*) FROM commits WHERE job_id = ?", (job_id,)).fetchone()[0]
    assert job.state == "cancelled" and (job.error or "").startswith("interrupted; ")
    assert 0 < stored < 3000 - 50
    assert job.summary["records_stored"] == job.summary["records_kept"] == job.done == stored
    assert list_jobs(engine, active_only=True) == []
