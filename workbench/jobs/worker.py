"""The worker: a process that runs queued jobs, helps with shared ones, and outlives every terminal.

`workbench worker --db URL [--kinds synth,eval] [--concurrency N]` (or `python -m workbench.jobs.worker`)
claims the oldest queued job of its kinds, or one whose worker stopped heartbeating, and runs it
in a thread through the one lifecycle; with a free slot and nothing queued, it joins a running
shared job (synthesis, evaluation, analysis) that still has items to claim. Any number of workers
on any number of machines may serve one store. SIGTERM or Ctrl-C stops it: running jobs go back
to the queue, with their counters, for another worker.

The TUI starts one detached (`ensure_worker`) when it queues a job and none is running; such a
worker exits after a while with nothing to do.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Collection
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy.engine import Engine

from core.jobs import JobInfo, lease_seconds
from stores.jobs import claim_job, fail_stalled_jobs, joinable_jobs, list_workers, register_worker, stop_worker
from workbench.jobs.registry import job_kind, load_kinds
from workbench.jobs.runner import Heartbeat, JobContext, drain, execute, new_worker_id, worker_label

DEFAULT_CONCURRENCY = 4
IDLE_EXIT_S = 120.0  # a worker started on demand exits after this long with nothing to do
POLL_S = 0.5


class Worker:
    """Claims and runs jobs until stopped (or idle for `idle_exit_s`)."""

    def __init__(
        self,
        engine: Engine,
        *,
        kinds: Collection[str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        lease_s: float | None = None,
        idle_exit_s: float | None = None,
        poll_s: float = POLL_S,
        worker_id: str | None = None,
        log: Any = None,
    ) -> None:
        known = load_kinds()
        unknown = sorted(set(kinds or ()) - set(known))
        if unknown:
            from core.errors import OptionError

            raise OptionError(f"unknown job kind(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        self.engine = engine
        self.kinds = sorted(kinds) if kinds else sorted(known)
        self.shared_kinds = [name for name in self.kinds if known[name].shared]
        self.concurrency = max(1, concurrency)
        self.lease_s = lease_s or lease_seconds()
        self.idle_exit_s = idle_exit_s
        self.poll_s = poll_s
        self.id = worker_id or new_worker_id()
        self.stopping = threading.Event()
        self._log = log or sys.stdout
        self._threads: dict[int, tuple[threading.Thread, JobContext]] = {}
        self._pulse = Heartbeat(engine, self.id, lease_s=self.lease_s)

    def log(self, message: str) -> None:
        """One line in the worker's log."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} {self.id} {message}", file=self._log, flush=True)

    def stop(self) -> None:
        """Stop taking jobs; running ones go back to the queue."""
        self.stopping.set()

    def run(self) -> int:
        """Work until stopped; return the number of jobs this worker ran."""
        register_worker(self.engine, self.id, label=worker_label("worker"), kinds=self.kinds,
                        concurrency=self.concurrency)
        self._pulse.start()
        self.log(f"started: kinds {','.join(self.kinds)}, concurrency {self.concurrency}, lease {self.lease_s:g}s")
        ran = 0
        idle_since = last_sweep = time.monotonic()
        try:
            while not self.stopping.is_set():
                self._reap()
                if time.monotonic() - last_sweep > self.lease_s:
                    last_sweep = time.monotonic()
                    fail_stalled_jobs(self.engine, load_kinds(), lease_s=self.lease_s)
                if len(self._threads) < self.concurrency and self._take_one():
                    ran += 1
                    continue
                if self._threads:
                    idle_since = time.monotonic()
                elif self.idle_exit_s is not None and time.monotonic() - idle_since > self.idle_exit_s:
                    self.log(f"no work for {self.idle_exit_s:g}s: exiting")
                    break
                self.stopping.wait(self.poll_s)
        finally:
            self._shut_down()
        return ran

    def _take_one(self) -> bool:
        job = claim_job(self.engine, self.id, self.kinds, lease_s=self.lease_s)
        if job is not None:
            self._start(job, "owner")
            return True
        for candidate in joinable_jobs(self.engine, self.shared_kinds, self.id, lease_s=self.lease_s):
            if candidate.id in self._threads:
                continue
            kind = job_kind(candidate.kind)
            params = kind.load_params(candidate.params)
            if kind.has_work is not None and kind.has_work(self.engine, candidate.id, params, self.lease_s):
                self._start(candidate, "helper")
                return True
        return False

    def _start(self, job: JobInfo, role: str) -> None:
        ctx = JobContext(self.engine, job, worker_id=self.id, role=role, lease_s=self.lease_s)
        self._pulse.add(ctx)
        thread = threading.Thread(target=self._run_job, args=(ctx,), name=f"job {job.id}", daemon=True)
        self._threads[job.id] = (thread, ctx)
        self.log(f"job {job.id} ({job.kind}) {'started' if role == 'owner' else 'joined as a helper'}"
                 f"{f' (attempt {job.attempts})' if job.attempts > 1 else ''}: {job.title}")
        thread.start()

    def _run_job(self, ctx: JobContext) -> None:
        kind = job_kind(ctx.job.kind)
        try:
            info = drain(execute(ctx, kind, kind.load_params(ctx.job.params), reraise=False))
            ending = f"{info.state}" + (f": {info.error}" if info.error else "")
            if not ctx.is_owner:
                ending = "helper part ended"
            self.log(f"job {ctx.job_id} ({kind.name}) {ending}")
        except Exception:  # noqa: BLE001  a job's failure is recorded on the job; the worker goes on
            self.log(f"job {ctx.job_id} ({kind.name}) crashed:\n{traceback.format_exc()}")
        finally:
            self._pulse.remove(ctx)

    def _reap(self) -> None:
        for job_id, (thread, _ctx) in list(self._threads.items()):
            if not thread.is_alive():
                del self._threads[job_id]

    def _shut_down(self) -> None:
        for thread, ctx in self._threads.values():
            ctx.release_event.set()
        for thread, _ctx in self._threads.values():
            thread.join()
        self._pulse.stop()
        stop_worker(self.engine, self.id)
        self.log("stopped")


def store_url(engine: Engine) -> str:
    """The URL a worker opens to reach the same store as `engine` (with its password: never on a command line)."""
    return engine.url.render_as_string(hide_password=False)


def worker_log_path(db_url: str) -> Path:
    """Where detached workers of a store write their log: beside a SQLite store, else ./workbench-workers.log."""
    if db_url.startswith("sqlite:///") and "?" not in db_url:
        store = Path(db_url.removeprefix("sqlite:///"))
        return store.with_name(f"{store.stem}.workers.log")
    return Path.cwd() / "workbench-workers.log"


IDLE_ENV_VAR = "WORKBENCH_WORKER_IDLE_S"
SPAWN_GRACE_S = 15.0  # a worker just started needs a moment to register; do not start another meanwhile
_last_spawn: dict[str, float] = {}
spawned: list[subprocess.Popen[bytes]] = []  # this process's detached workers (tests stop them)


def ensure_worker(engine: Engine, kind: str, *, lease_s: float | None = None) -> int | None:
    """Start a detached worker for this store unless a live one runs `kind`; return the new process id, if any."""
    if any(worker.runs(kind) for worker in list_workers(engine, lease_s=lease_s or lease_seconds())):
        return None
    url = store_url(engine)
    if time.monotonic() - _last_spawn.get(url, float("-inf")) < SPAWN_GRACE_S:
        return None
    _last_spawn[url] = time.monotonic()
    idle = float(os.environ.get(IDLE_ENV_VAR, IDLE_EXIT_S))
    return spawn_worker(url, idle_exit_s=idle)


def spawn_worker(db_url: str, *, kinds: Collection[str] | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 idle_exit_s: float | None = IDLE_EXIT_S, log_path: Path | None = None,
                 lease_s: float | None = None) -> int:
    """Start `python -m workbench.jobs.worker` in its own session (no terminal can stop it); return its pid.

    The store's URL travels in WORKBENCH_DB, not on the command line, where `ps` would show a password.
    """
    from workbench.jobs.train import subprocess_env

    command = [sys.executable, "-m", "workbench.jobs.worker", "--concurrency", str(concurrency)]
    if kinds:
        command += ["--kinds", ",".join(kinds)]
    if idle_exit_s is not None:
        command += ["--idle-exit", str(idle_exit_s)]
    if lease_s is not None:
        command += ["--lease", str(lease_s)]
    env = {**subprocess_env(), "WORKBENCH_DB": db_url}
    log_path = log_path or worker_log_path(db_url)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=os.getcwd(), env=env, start_new_session=True)
    spawned.append(process)
    return process.pid


def run_worker(engine: Engine, *, kinds: Collection[str] | None = None, concurrency: int = DEFAULT_CONCURRENCY,
               lease_s: float | None = None, idle_exit_s: float | None = None) -> int:
    """Run a worker in this process until SIGTERM, Ctrl-C (twice: at once) or idle time out; return jobs run."""
    worker = Worker(engine, kinds=kinds, concurrency=concurrency, lease_s=lease_s, idle_exit_s=idle_exit_s)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if worker.stopping.is_set():
            raise KeyboardInterrupt
        worker.log(f"{signal.Signals(signum).name}: stopping; running jobs go back to the queue")
        worker.stop()

    previous = {signum: signal.signal(signum, handler) for signum, handler in (
        (signal.SIGTERM, on_signal), (signal.SIGINT, on_signal), (signal.SIGHUP, signal.SIG_IGN))}
    try:
        return worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    """`python -m workbench.jobs.worker --db URL [--kinds a,b] [--concurrency N] [--lease S] [--idle-exit S]`."""
    parser = argparse.ArgumentParser(prog="workbench.jobs.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="store path or URL (default: $WORKBENCH_DB)")
    parser.add_argument("--kinds", default="")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--lease", type=float, default=None)
    parser.add_argument("--idle-exit", type=float, default=None)
    args = parser.parse_args(argv)
    from stores.db import make_engine

    engine = make_engine(args.db)
    kinds = [kind for kind in args.kinds.split(",") if kind] or None
    run_worker(engine, kinds=kinds, concurrency=args.concurrency, lease_s=args.lease, idle_exit_s=args.idle_exit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
