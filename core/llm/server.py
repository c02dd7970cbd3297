"""Start, health-check and stop a `vllm serve` process that outlives the terminal that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import LLMError
from core.processes import process_alive

DEFAULT_PORT = 8000
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the server is local: no proxy


def vllm_command(model: str, port: int, *, served_name: str | None = None, extra: Sequence[str] = (),
                 executable: str = "vllm") -> list[str]:
    """The `vllm serve` command line for a model on a loopback port."""
    command = [executable, "serve", model, "--host", "127.0.0.1", "--port", str(port)]
    if served_name:
        command += ["--served-model-name", served_name]
    return [*command, *extra]


def start_process(command: Sequence[str], log_path: Path) -> int:
    """Start a detached process (own session) logging to `log_path`; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    except FileNotFoundError:
        raise LLMError(f"cannot start {command[0]!r}: not found (install vllm on this machine)") from None
    return process.pid


def wait_healthy(base_url: str, pid: int, log_path: Path, *, timeout_s: float = 600.0,
                 poll_s: float = 0.5, alive: Callable[[int], bool] | None = None) -> None:
    """Wait until the server answers `/models`; raise LLMError with the log's tail if it dies or times out."""
    is_alive = alive or process_alive
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise LLMError(f"the server process {pid} exited while starting: {log_tail(log_path)}")
        try:
            with _DIRECT.open(f"{base_url.rstrip('/')}/models", timeout=2.0) as answer:
                if answer.status == 200:
                    return
        except (OSError, ValueError):
            pass  # not listening yet (URLError and HTTPError are OSErrors)
        time.sleep(poll_s)
    raise LLMError(f"the server at {base_url} was not healthy after {timeout_s:g} s: {log_tail(log_path)}")


def stop_process(pid: int, *, grace_s: float = 20.0) -> bool:
    """SIGTERM the process group, then SIGKILL after `grace_s`; True if it was running."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its own parent (init) reaps it


def log_tail(log_path: Path, lines: int = 3) -> str:
    """The last lines of a log, on one line."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    tail = [line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()]
    return " | ".join(tail) or "(empty log)"
