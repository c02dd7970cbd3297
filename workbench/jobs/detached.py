"""Workbench commands run in a detached process, for front ends that must not run a job themselves.

The TUI starts analysis, dedupe and decontamination this way: they use process pools, which
cannot start from a thread of a Textual app (its stderr has no file descriptor), and they outlive
the terminal. The process records its jobs in the store like the CLI does; `DetachedRun` says
which process it is and where its output goes, so a front end can find its jobs and report a
process that died before it could record one.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from stores.db import DB_ENV_VAR


@dataclass
class DetachedRun:
    """A detached process running workbench commands one after another."""

    commands: tuple[tuple[str, ...], ...]
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    started_at: float

    def exit_code(self) -> int | None:
        """The process's exit status, or None while it runs."""
        return self.process.poll()

    def log_tail(self, max_chars: int = 400) -> str:
        """The end of the process's output (where a failure's message is)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1][-max_chars:] if lines else ""


def log_folder(engine: Engine) -> Path:
    """Where detached processes write their output: beside a SQLite store, else in the working folder."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    base = Path(database).resolve().parent if database and database != ":memory:" else Path.cwd()
    return base / "workbench-logs"


def run_detached(engine: Engine, commands: Sequence[Sequence[str]]) -> DetachedRun:
    """Start `workbench COMMAND...` for each command in turn (stopping at the first that fails) in a
    process of its own session, on the same store; it keeps running when the caller exits."""
    folder = log_folder(engine)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = folder / f"{'-'.join(commands[0][:2])}-{stamp}-{os.getpid()}.log"
    cli = [sys.executable, "-m", "workbench.cli"]
    # One shell runs the commands in order; `&&` stops at the first failure.
    script = " && ".join(shlex.join((*cli, *command)) for command in commands)
    from workbench.jobs.train import subprocess_env  # deferred: it imports the training stage

    env = subprocess_env()
    # The URL goes through the environment, not the command line, where `ps` would show a password.
    env[DB_ENV_VAR] = engine.url.render_as_string(hide_password=False)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["/bin/sh", "-c", script], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=os.getcwd(), start_new_session=True,
        )
    return DetachedRun(tuple(tuple(c) for c in commands), log_path, process, time.time())

