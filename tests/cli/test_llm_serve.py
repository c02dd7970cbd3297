"""`workbench llm serve|list|stop` with a stand-in `vllm` executable that serves the loopback double."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.processes import process_alive
from stores.db import make_engine
from stores.jobs import list_jobs
from tests.fixtures import stored_pairs
from tests.synth_fixtures import add_commits
from workbench.cli import app
from workbench.jobs.llm_servers import list_servers

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "vllm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, runpy\n"
        "args = sys.argv[1:]\n"
        "port = args[args.index('--port') + 1]\n"
        "sys.argv = ['llm_server', '--port', port, '--script', 'synth']\n"
        "runpy.run_module('tests.llm_server', run_name='__main__')\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    return script


def test_serve_use_and_stop(db_path: Path, tmp_path: Path, fake_vllm: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, ["Fix total #1"])
    runner = CliRunner()
    port = free_port()
    served = runner.invoke(app, ["--db", str(db_path), "llm", "serve", "my/model", "--port", str(port),
                                 "--executable", str(fake_vllm), "--log-dir", str(tmp_path / "logs"),
                                 "--timeout", "30"])
    assert served.exit_code == 0, served.output
    assert f"ready at http://127.0.0.1:{port}/v1" in served.stdout
    [server] = list_servers(engine)
    try:
        assert server.state == "ready" and server.pid and process_alive(server.pid)
        assert list_jobs(engine, kind="llm-serve")[0].state == "running"
        listed = runner.invoke(app, ["--db", str(db_path), "llm", "list"])
        assert "ready" in listed.stdout and "my/model" in listed.stdout
        result = runner.invoke(app, ["--db", str(db_path), "synth", "commit-instruct", "--critic", f"vllm:{server.id}"])
        assert result.exit_code == 0, result.output
        assert len(stored_pairs(engine)) == 1
    finally:
        stopped = runner.invoke(app, ["--db", str(db_path), "llm", "stop", str(server.id)])
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    assert not process_alive(server.pid)
    assert list_jobs(engine, kind="llm-serve")[0].state == "cancelled"  # stopped on request, like any job
    gone = runner.invoke(app, ["--db", str(db_path), "synth", "commit-instruct", "--critic", f"vllm:{server.id}"])
    assert gone.exit_code == 1 and "is stopped" in gone.stderr


def test_server_that_dies_while_starting_is_one_error(db_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "vllm"
    broken.write_text("#!/bin/sh\necho 'CUDA out of memory' >&2\nexit 3\n", encoding="utf-8")
    broken.chmod(0o755)
    result = CliRunner().invoke(app, ["--db", str(db_path), "llm", "serve", "m", "--port", str(free_port()),
                                      "--executable", str(broken), "--log-dir", str(tmp_path / "logs")])
    assert result.exit_code == 1
    assert "exited while starting" in result.stderr and "CUDA out of memory" in result.stderr
    assert list_jobs(make_engine(db_path), kind="llm-serve")[0].state == "failed"
    missing = CliRunner().invoke(app, ["--db", str(db_path), "llm", "serve", "m", "--executable",
                                       str(tmp_path / "no-vllm"), "--log-dir", str(tmp_path / "logs")])
    assert missing.exit_code == 1 and "not found" in missing.stderr
