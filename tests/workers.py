"""Test helpers for jobs run by workers: a real worker in a thread, worker processes, and waiting on jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.jobs import JobInfo
from stores.jobs import get_job

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def worker_thread(engine: Engine, **options: Any) -> Iterator[Any]:
    """A `Worker` (the same code as `workbench worker`) running in a thread of this process until the block ends."""
    from workbench.jobs.worker import Worker

    worker = Worker(engine, poll_s=options.pop("poll_s", 0.1), log=open(os.devnull, "w"), **options)  # noqa: SIM115
    thread = threading.Thread(target=worker.run, name="test worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(60)


def worker_process(db: str, *args: str, lease_s: float | None = None, log: Path | None = None,
                   env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`python -m workbench.jobs.worker --db DB ARGS...` as a child process (kill it, wait for it)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    if lease_s is not None:
        environment["WORKBENCH_LEASE_S"] = str(lease_s)
    output = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "workbench.jobs.worker", "--db", db, *args],
                            env=environment, stdout=output, stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], bool], timeout: float = 120.0, what: str = "the condition") -> None:
    """Poll `condition` until it holds (jobs run in other threads or processes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def wait_for_job(engine: Engine, job_id: int, timeout: float = 120.0) -> JobInfo:
    """Wait until a job ends; return it."""
    wait_for(lambda: not get_job(engine, job_id).is_active, timeout, f"job {job_id} to end")
    return get_job(engine, job_id)


async def pilot_wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 120.0,
                         what: str = "the screen") -> None:
    """Let the app run (timers, thread workers, messages) until `condition` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.1)
