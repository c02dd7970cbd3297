"""Jobs, leases and claims in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine

from core.jobs import JobState
from stores.claims import add_work_items, claim_work_items, complete_work_items, work_counts
from stores.jobs import (
    claim_job,
    create_job,
    enqueue_job,
    fail_stalled_jobs,
    finish_job,
    get_job,
    heartbeat,
    list_jobs,
    register_worker,
    request_cancel,
)
from stores.tables import JobRow, WorkItemRow, utcnow

JOBS = JobRow.__table__  # type: ignore[attr-defined]
ITEMS = WorkItemRow.__table__  # type: ignore[attr-defined]


def _age(engine: Engine, table: object, seconds: float, **where: object) -> None:
    """Pretend the heartbeats of these rows stopped `seconds` ago (a worker that died)."""
    with engine.begin() as connection:
        statement = update(table).values(heartbeat_at=utcnow() - timedelta(seconds=seconds))  # type: ignore[arg-type]
        for column, value in where.items():
            statement = statement.where(getattr(table.c, column) == value)  # type: ignore[attr-defined]
        connection.execute(statement)


def test_a_queued_job_goes_to_one_worker_and_is_taken_over_only_after_its_lease(any_engine: Engine) -> None:
    job_id = enqueue_job(any_engine, "mine", "m", {"path": "/r"}).id
    first = claim_job(any_engine, "w-1", ["mine"], lease_s=60)
    assert first is not None and first.id == job_id and first.state == JobState.RUNNING
    assert (first.worker_id, first.attempts) == ("w-1", 1) and first.heartbeat_at is not None
    assert claim_job(any_engine, "w-2", ["mine"], lease_s=60) is None  # its lease is fresh
    assert claim_job(any_engine, "w-2", ["synth"], lease_s=60) is None
    _age(any_engine, JOBS, 120, id=job_id)
    second = claim_job(any_engine, "w-2", None, lease_s=60)
    assert second is not None and (second.worker_id, second.attempts) == ("w-2", 2)
    # The first worker comes back: it no longer owns the job, and its writes change nothing.
    assert not finish_job(any_engine, job_id, "done", worker_id="w-1")
    assert get_job(any_engine, job_id).state == JobState.RUNNING
    assert finish_job(any_engine, job_id, "done", worker_id="w-2")
    assert get_job(any_engine, job_id).state == JobState.DONE


def test_a_job_whose_workers_keep_dying_is_failed_not_started_again(any_engine: Engine) -> None:
    job_id = enqueue_job(any_engine, "mine", "m", {}).id
    for worker in ("w-1", "w-2", "w-3"):
        assert claim_job(any_engine, worker, None, lease_s=60) is not None
        _age(any_engine, JOBS, 120, id=job_id)
    assert claim_job(any_engine, "w-4", None, lease_s=60) is None
    job = get_job(any_engine, job_id)
    assert job.state == JobState.FAILED and "3 times" in (job.error or "")


def test_reads_never_write_and_a_stalled_job_reads_as_such(any_engine: Engine) -> None:
    job_id = create_job(any_engine, "mine", "m", worker_id="w-gone")
    _age(any_engine, JOBS, 600, id=job_id)
    before = get_job(any_engine, job_id)
    assert list_jobs(any_engine)[0] == before and get_job(any_engine, job_id) == before  # nothing reaped
    from datetime import datetime, timezone

    assert before.state == JobState.RUNNING and before.is_stalled(datetime.now(timezone.utc), 60)


def test_cancel_ends_a_queued_job_at_once_and_flags_a_running_one(any_engine: Engine) -> None:
    queued = enqueue_job(any_engine, "mine", "m", {}).id
    assert request_cancel(any_engine, queued).state == JobState.CANCELLED
    assert claim_job(any_engine, "w-1", None, lease_s=60) is None  # nothing left to run
    running = create_job(any_engine, "mine", "m", worker_id="w-1")
    after = request_cancel(any_engine, running)
    assert after.state == JobState.RUNNING and after.cancel_requested
    flags = heartbeat(any_engine, "w-1", job_ids=[running])
    assert flags[running] == (JobState.RUNNING, "w-1", True)


def test_stalled_jobs_of_kinds_no_worker_knows_are_failed(any_engine: Engine) -> None:
    orphan = create_job(any_engine, "an-old-kind", "x", worker_id="fg-1")
    mine = create_job(any_engine, "mine", "y", worker_id="fg-2")
    _age(any_engine, JOBS, 600)
    assert fail_stalled_jobs(any_engine, ["mine"], lease_s=60) == 1
    assert get_job(any_engine, orphan).state == JobState.FAILED
    assert get_job(any_engine, mine).state == JobState.RUNNING  # a worker that knows it takes it over


def test_concurrent_claims_never_hand_out_an_item_twice(any_engine: Engine) -> None:
    add_work_items(any_engine, "eval:1", [f"item-{n}" for n in range(300)])
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(worker: str) -> None:
        try:
            mine: list[str] = []
            while keys := claim_work_items(any_engine, "eval:1", worker, 7, lease_s=60):
                mine += keys
                assert complete_work_items(any_engine, "eval:1", keys, worker) == set(keys)
            taken[worker] = mine
        except BaseException as exc:  # noqa: BLE001  reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w-{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    every = [key for keys in taken.values() for key in keys]
    assert len(every) == len(set(every)) == 300
    assert work_counts(any_engine, "eval:1", 60) == {"pending": 0, "claimed": 0, "done": 300}


def test_claims_are_renewed_by_heartbeat_and_taken_over_when_it_stops(any_engine: Engine) -> None:
    register_worker(any_engine, "w-1", label="test", kinds=None, concurrency=1)
    add_work_items(any_engine, "analyse:1", ["1", "2", "3"])
    assert claim_work_items(any_engine, "analyse:1", "w-1", 2, lease_s=60) == ["1", "2"]
    _age(any_engine, ITEMS, 120, worker_id="w-1")
    heartbeat(any_engine, "w-1")  # alive again: its claims are fresh
    assert claim_work_items(any_engine, "analyse:1", "w-2", 5, lease_s=60) == ["3"]
    _age(any_engine, ITEMS, 120, worker_id="w-1")  # now it died
    assert claim_work_items(any_engine, "analyse:1", "w-2", 5, lease_s=60) == ["1", "2"]
    assert complete_work_items(any_engine, "analyse:1", ["1", "2"], "w-1") == set()  # no longer its own
    assert complete_work_items(any_engine, "analyse:1", ["1", "2", "3"], "w-2") == {"1", "2", "3"}
