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


def test_resume_refuses_a_job_that_is_done_queued_or_running_and_queues_nothing(
    db_path: Path, make_repo: Callable[[str], GitRepo], monkeypatch: object
) -> None:
    """D5: only a cancelled or failed job has something to resume; the others get one `error:` line, exit 1."""
    from sqlalchemy import update

    from stores.jobs import claim_job, list_jobs
    from stores.tables import JobRow

    repo = _repo(make_repo)
    engine = make_engine(db_path)
    monkeypatch.setattr("workbench.jobs.queue.ensure_worker", lambda *args, **kwargs: None)  # type: ignore[attr-defined]
    job_id = json.loads(invoke(db_path, "mine", str(repo.path), "--detach", "--json").stdout)["job_id"]

    def refused(needle: str) -> None:
        result = invoke(db_path, "jobs", "resume", str(job_id))
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and needle in result.stderr
        assert [job.id for job in list_jobs(engine)] == [job_id]  # nothing queued

    refused("is queued: nothing to resume")
    assert claim_job(engine, "w-test", None, lease_s=60, job_id=job_id) is not None
    refused(f"is running: nothing to resume; to stop it, `workbench jobs cancel {job_id}`")
    with engine.begin() as connection:  # its worker died an hour ago
        connection.execute(update(JobRow).where(JobRow.id == job_id).values(heartbeat_at=utc_hours_ago(1)))
    refused("its worker stopped heartbeating")
    worked = runner.invoke(app, ["worker", "--db", str(db_path), "--kinds", "mine", "--idle-exit", "1"])
    assert worked.exit_code == 0 and get_job(engine, job_id).state == "done"
    refused(f"job {job_id} is done: nothing to resume")


def test_resuming_a_stopped_job_twice_queues_one_job(db_path: Path, monkeypatch: object) -> None:
    """`analyse` has no run key, so nothing else would stop a second resume from queueing a rival job."""
    from stores.jobs import enqueue_job, finish_job, list_jobs

    engine = make_engine(db_path)
    monkeypatch.setattr("workbench.jobs.queue.ensure_worker", lambda *args, **kwargs: None)  # type: ignore[attr-defined]
    stopped = enqueue_job(engine, "analyse", "analyse", {"workers": 1, "chunk": 64, "dedupe": False}).id
    finish_job(engine, stopped, "cancelled", error="cancelled")
    first = invoke(db_path, "jobs", "resume", str(stopped), "--json")
    second = invoke(db_path, "jobs", "resume", str(stopped), "--json")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert json.loads(first.stdout)["job_id"] == json.loads(second.stdout)["job_id"] != stopped
    assert len(list_jobs(engine, active_only=True)) == 1


def utc_hours_ago(hours: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from stores.tables import utcnow

    return utcnow() - timedelta(hours=hours)


def test_negative_ids_cursors_and_limits_are_usage_errors(db_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    """D5: `--after -3` was taken as "from the start"; every id, cursor and count refuses a negative value."""
    import typer

    repo = _repo(make_repo)
    assert invoke(db_path, "mine", str(repo.path)).exit_code == 0
    for args in (["commits", "list", "--after", "-3"], ["commits", "list", "--repo", "-1"],
                 ["commits", "list", "--limit", "-5"], ["pairs", "list", "--after", "-1"],
                 ["instructions", "list", "--after", "-1"], ["problems", "list", "--after", "-2"],
                 ["arena", "sets", "--after", "-1"], ["codeopt", "solutions", "--problem", "-1"],
                 ["synth", "conversations", "--item", "-4"], ["jobs", "show", "--", "-1"],
                 ["jobs", "resume", "--", "-1"], ["eval", "export", "--", "-2"],
                 ["codeopt", "eval", "--model", "x", "--held-out-fraction", "-0.5"]):
        result = invoke(db_path, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, args
    assert invoke(db_path, "commits", "list", "--after", "0").exit_code == 0
    # The kind: every whole-number or decimal option and argument of the CLI has a lower bound (seeds aside;
    # the held-out fraction is checked by core's ProblemSelection, as above).
    from workbench.cli import app as cli_app

    def commands(group, path):  # type: ignore[no-untyped-def]
        for name, sub in getattr(group, "commands", {}).items():
            yield from commands(sub, [*path, name]) if getattr(sub, "commands", None) else [([*path, name], sub)]

    unbounded = [(" ".join(path), param.name) for path, command in commands(typer.main.get_command(cli_app), [])
                 for param in command.params
                 if str(param.bare_type()) in ("int", "float", "list[int]") and param.name not in ("seed", "held_out_fraction")
                 and (param.min is None or param.min < 0)]
    assert unbounded == []
