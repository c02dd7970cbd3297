"""Run watcher: `python -m workbench.jobs.train_watch --db URL JOB_ID`, started detached by `start_training`.

It runs the trainer command in its own process group, copies the run's events into the store
twice a second, and records the exit status. A cancel request from any front end becomes the run
folder's stop file, which every rank of the trainer reads after each optimizer step (launchers such as
torchrun kill their workers soon after a SIGTERM, too soon for a checkpoint); SIGTERM follows after a
grace period, SIGKILL after a second one. The trainer itself never touches the store.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from core.training.runs import STOP_FILE
from stores.db import make_engine
from stores.jobs import finish_job, is_cancel_requested
from stores.training.runs import get_train_run, record_exit, sync_events
from workbench.jobs.train import subprocess_env

POLL_SECONDS = 0.5
KILL_GRACE_SECONDS = 120.0


def watch(db_url: str, job_id: int, *, poll_seconds: float = POLL_SECONDS, grace_seconds: float = KILL_GRACE_SECONDS) -> int:
    """Run and supervise one training run until its trainer exits; return the trainer's exit code."""
    engine = make_engine(db_url)
    run = get_train_run(engine, job_id)
    run_dir = Path(run.run_dir)
    requested_at = 0.0
    stop_from_signal = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_from_signal
        stop_from_signal = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with (run_dir / "train.log").open("ab") as log:
            trainer = subprocess.Popen(
                list(run.command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=subprocess_env(), start_new_session=True,
            )
    except OSError as exc:
        finish_job(engine, job_id, "failed", error=f"cannot start the trainer: {exc}")
        return 127
    print(f"trainer pid {trainer.pid}: {' '.join(run.command)}", flush=True)
    cancelled = False
    next_signal = [signal.SIGTERM, signal.SIGKILL]
    while trainer.poll() is None:
        time.sleep(poll_seconds)
        sync_events(engine, job_id)
        if not cancelled and (stop_from_signal or is_cancel_requested(engine, job_id)):
            cancelled = True
            requested_at = time.monotonic()
            (run_dir / STOP_FILE).touch()
        elif cancelled and next_signal and time.monotonic() - requested_at > grace_seconds:
            _signal_group(trainer.pid, next_signal.pop(0))
            requested_at = time.monotonic()
    code = trainer.returncode
    record_exit(engine, job_id, code, cancelled=cancelled)
    print(json.dumps({"job": job_id, "exit_code": code, "cancelled": cancelled}), flush=True)
    return code


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and watch one run."""
    parser = argparse.ArgumentParser(prog="workbench.jobs.train_watch")
    parser.add_argument("--db", required=True)
    parser.add_argument("job_id", type=int)
    args = parser.parse_args(argv)
    code = watch(args.db, args.job_id)
    return 0 if code in (0, 3) else 1


if __name__ == "__main__":
    sys.exit(main())
