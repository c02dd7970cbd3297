"""`workbench jobs ...`, `workbench worker` and `--detach`: queue, run elsewhere, watch, cancel, resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from stores.db import make_engine
from stores.jobs import get_job
from tests.conftest import GitRepo
from tests.fixtures import HOSTILE_TEXT
from tests.workers import wait_for_job, worker_thread
from workbench.cli import app

runner = CliRunner()


def invoke(db: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--db", str(db), *args])


def _repo(make_repo: Callable[[str], GitRepo]) -> GitRepo:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n"})
    repo.commit(f"edit {HOSTILE_TEXT}", {"a.py": "a = 1\n"})
    return repo


def test_detach_queues_a_job_that_a_worker_runs_and_the_jobs_commands_follow(
    db_path: Path, make_repo: Callable[[str], GitRepo]
) -> None:
    repo = _repo(make_repo)
    engine = make_engine(db_path)
    with worker_thread(engine) as worker:  # a live worker: --detach starts none of its own
        queued = invoke(db_path, "mine", str(repo.path), "--detach", "--json")
        assert queued.exit_code == 0, queued.output
        job_id = json.loads(queued.stdout)["job_id"]
        assert json.loads(queued.stdout)["state"] == "queued"
        assert wait_for_job(engine, job_id).state == "done"
        workers = invoke(db_path, "jobs", "workers")
        assert worker.id in workers.stdout and "pid" in workers.stdout
    listed = invoke(db_path, "jobs", "list")
    assert listed.exit_code == 0 and f"{job_id}\tmine\tdone\t1" in listed.stdout
    shown = invoke(db_path, "jobs", "show", str(job_id))
    assert f"worker: {worker.id}" in shown.stdout and "attempts: 1" in shown.stdout
    assert "records_stored: 1" in shown.stdout and f"owner {worker.id}: finished" in shown.stdout
    as_json = json.loads(invoke(db_path, "jobs", "show", str(job_id), "--json").stdout)
    assert as_json["state"] == "done" and as_json["workers"][0]["role"] == "owner"
    assert invoke(db_path, "jobs", "workers").stdout.strip().count("\n") == 0  # it stopped: not listed live
    assert worker.id in invoke(db_path, "jobs", "workers", "--all").stdout


def test_bad_input_with_detach_is_refused_before_anything_is_queued(db_path: Path, tmp_path: Path) -> None:
    result = invoke(db_path, "mine", str(tmp_path / "missing"), "--detach")
    assert result.exit_code == 2 and result.stderr.startswith("error: ")  # a missing path is a usage error
    assert invoke(db_path, "jobs", "list", "--json").stdout.strip() == "[]"


def test_cancel_a_queued_job_resume_it_and_run_it_with_a_worker_command(
    db_path: Path, make_repo: Callable[[str], GitRepo], monkeypatch: object
) -> None:
    repo = _repo(make_repo)
    engine = make_engine(db_path)
    monkeypatch.setattr("workbench.jobs.queue.ensure_worker", lambda *args, **kwargs: None)  # type: ignore[attr-defined]
    job_id = json.loads(invoke(db_path, "mine", str(repo.path), "--detach", "--json").stdout)["job_id"]
    cancelled = invoke(db_path, "jobs", "cancel", str(job_id))
    assert cancelled.stdout.strip() == f"job {job_id}: cancelled before a worker started it"
    assert get_job(engine, job_id).state == "cancelled"
    again = invoke(db_path, "jobs", "cancel", str(job_id))
    assert again.stdout.strip() == f"job {job_id}: already cancelled"
    resumed = json.loads(invoke(db_path, "jobs", "resume", str(job_id), "--json").stdout)
    assert resumed["state"] == "queued" and resumed["job_id"] != job_id
    # `workbench worker`, with --db after the command as on a machine of its own, runs it and exits when idle.
    worked = runner.invoke(app, ["worker", "--db", str(db_path), "--kinds", "mine", "--idle-exit", "1"])
    assert worked.exit_code == 0, worked.output
    assert get_job(engine, resumed["job_id"]).state == "done"
