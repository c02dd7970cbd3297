"""The sandbox against hostile solutions, at every isolation level this machine offers.

Each hostile solution attacks a canary folder outside its work folder (a mode-600 file and a
sub-folder owned by the test's user), a loopback server, or the machine's processes. Whatever the
level, the canary stays as it was, nothing connects, and no sandbox process outlives its run; with
the audit hook every attack also fails the tests.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from core.execution.sandbox import (
    Isolation,
    SandboxError,
    SandboxJob,
    SandboxLimits,
    TimingPolicy,
    probe_isolation,
    run_in_sandbox,
)

CHECK_ONE = "def check(candidate):\n    assert candidate() == 1\n"
QUICK = SandboxLimits(timeout_s=2.0)
NO_TIMING = TimingPolicy(measure=False)


def _levels() -> dict[str, Isolation]:
    strongest = probe_isolation()
    levels = {"strongest": strongest, "audit-only": Isolation((), drop_uid=False, audit=True)}
    if strongest.layers or strongest.drop_uid:
        levels["kernel-only"] = Isolation(strongest.layers, drop_uid=strongest.drop_uid, audit=False)
    return levels


LEVELS = _levels()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    (folder / "keep").mkdir(parents=True)
    secret = folder / "canary.txt"
    secret.write_text("secret canary\n")
    secret.chmod(0o600)
    (folder / "keep" / "note.txt").write_text("still here\n")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(folder.rglob("*"))}


def _sandbox_processes(since: float, until: float) -> list[int]:
    """Host pids of sandbox processes started between `since` and `until` (seconds since boot) and still
    alive (other tests' sandboxes started in that window end within their own timeouts)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if b"sandbox_child.main" not in cmdline:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and since <= int(fields[19]) / ticks <= until:
            found.append(int(entry))
    return found


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _hostile(name: str, canary: Path, port: int) -> str:
    secret = canary / "canary.txt"
    keep = canary / "keep"
    return {
        "fork bomb": (
            "import os, time\n\ndef f():\n    while True:\n        try:\n            os.fork()\n"
            "        except Exception:\n            time.sleep(0.001)\n"
        ),
        "infinite loop": "def f():\n    while True:\n        pass\n",
        "10 GB allocation": "def f():\n    block = bytearray(10 * 1024 ** 3)\n    return 1 if block is not None else 0\n",
        "rm -rf ~": (
            f"import os\n\ndef f():\n    os.system('rm -rf ~')\n    os.system('rm -rf {keep} {secret}')\n    return 1\n"
        ),
        "read outside": f"def f():\n    return 1 if 'secret' in open({str(secret)!r}).read() else 0\n",
        "socket": (
            f"import socket\n\ndef f():\n    socket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n"
            "    return 1\n"
        ),
        "write outside": (
            f"def f():\n    open({str(keep / 'evil.txt')!r}, 'w').write('x')\n"
            f"    open({str(secret)!r}, 'a').write('x')\n    return 1\n"
        ),
    }[name]


HOSTILE = ("fork bomb", "infinite loop", "10 GB allocation", "rm -rf ~", "read outside", "socket", "write outside")


@pytest.fixture
def listener() -> tuple[socket.socket, list[str]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            accepted.append("connected")
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server, accepted
    stop.set()
    thread.join(2)
    server.close()


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize("attack", HOSTILE)
def test_hostile_solution_fails_or_is_killed_and_nothing_outside_changes(
    attack: str, level: str, canary: Path, listener: tuple[socket.socket, list[str]],
) -> None:
    server, accepted = listener
    before = _snapshot(canary)
    since = _uptime() - 0.5
    started = time.monotonic()
    result = run_in_sandbox(SandboxJob(_hostile(attack, canary, server.getsockname()[1]), CHECK_ONE, "f"),
                            limits=QUICK, timing=NO_TIMING, isolation=LEVELS[level])
    elapsed = time.monotonic() - started
    until = _uptime() + 0.1
    assert _snapshot(canary) == before
    assert accepted == []
    assert elapsed < QUICK.timeout_s + 5
    if LEVELS[level].audit or attack != "rm -rf ~":  # without the hook, rm runs harmlessly inside the work folder
        assert result.status in ("failed", "timeout"), result
    if attack in ("infinite loop", "fork bomb"):
        assert result.status == "timeout"
    deadline = time.monotonic() + 10
    while _sandbox_processes(since, until) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sandbox_processes(since, until) == []


def test_strongest_level_here_is_namespaces_private_root_and_throwaway_uid() -> None:
    # Where root may create namespaces (these machines), the full level must be in force.
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("the full level needs root")
    if subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "true"], capture_output=True).returncode:
        pytest.skip("this kernel or container refuses namespaces to root")
    isolation = probe_isolation()
    assert {"netns", "pidns", "mountns", "newroot"} <= set(isolation.layers)
    assert isolation.drop_uid and isolation.audit
    assert "missing" not in isolation.describe()


def test_solution_runs_outside_the_workbench_process_and_environment() -> None:
    code = (
        "import os, sys\n\ndef f():\n"
        "    assert 'sqlalchemy' not in sys.modules and 'core' not in sys.modules\n"
        "    assert os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR']\n"
        "    open('scratch.txt', 'w').write('ok')\n"
        "    return 1 if os.getpid() != int(os.environ.get('PARENT', '0') or 0) else 0\n"
    )
    result = run_in_sandbox(SandboxJob(code, CHECK_ONE, "f"), limits=QUICK, timing=NO_TIMING)
    assert result.status == "passed", result
    assert "uid" in result.layers or not probe_isolation().drop_uid


@pytest.mark.parametrize("code", [
    "def f():\n    print('PASS')\n    return 0\n",
    "import sys\n\ndef f():\n    sys.exit(0)\n",
    "import os\n\ndef f():\n    os._exit(0)\n",
    "import sys\nsys.exit(0)\n\ndef f():\n    return 1\n",
])
def test_a_solution_cannot_pass_by_printing_or_exiting(code: str) -> None:
    result = run_in_sandbox(SandboxJob(code, CHECK_ONE, "f"), limits=QUICK, timing=NO_TIMING)
    assert result.status == "failed"


def test_verdicts_and_details() -> None:
    correct = run_in_sandbox(SandboxJob("def f():\n    return 1\n", CHECK_ONE, "f"), limits=QUICK, timing=NO_TIMING)
    wrong = run_in_sandbox(SandboxJob("def f():\n    return 2\n", CHECK_ONE, "f"), limits=QUICK, timing=NO_TIMING)
    broken = run_in_sandbox(SandboxJob("def f(:\n", CHECK_ONE, "f"), limits=QUICK, timing=NO_TIMING)
    missing = run_in_sandbox(SandboxJob("def g():\n    return 1\n", CHECK_ONE, "f"), limits=QUICK, timing=NO_TIMING)
    assert (correct.status, wrong.status, broken.status, missing.status) == ("passed", "failed", "failed", "failed")
    assert wrong.detail.startswith("AssertionError")
    assert broken.detail.startswith("SyntaxError")
    assert missing.detail.startswith("KeyError")


def test_passing_solutions_are_timed_until_stable() -> None:
    slow = "def f():\n    total = 0\n    for i in range(30000):\n        total += i\n    return 1\n"
    fast = "def f():\n    return 1\n"
    timing = TimingPolicy(min_runs=5, max_runs=30, budget_s=5.0)
    slow_result = run_in_sandbox(SandboxJob(slow, CHECK_ONE, "f"), limits=QUICK, timing=timing)
    fast_result = run_in_sandbox(SandboxJob(fast, CHECK_ONE, "f"), limits=QUICK, timing=timing)
    assert slow_result.passed and fast_result.passed
    assert 5 <= len(slow_result.samples) <= 30 and 5 <= len(fast_result.samples) <= 30
    assert min(slow_result.samples) > 10 * max(fast_result.samples)


def test_a_failing_re_run_fails_the_solution() -> None:
    flaky = "calls = [0]\nimport builtins\n\ndef f():\n    builtins.counter = getattr(builtins, 'counter', 0) + 1\n" \
            "    return 1 if builtins.counter == 1 else 2\n"
    result = run_in_sandbox(SandboxJob(flaky, CHECK_ONE, "f"), limits=QUICK, timing=TimingPolicy())
    assert result.status == "failed"
    assert result.detail.startswith("re-run")


def test_a_sandbox_that_cannot_start_raises_instead_of_giving_a_verdict() -> None:
    with pytest.raises(SandboxError):
        run_in_sandbox(SandboxJob("def f():\n    return 1\n", CHECK_ONE, "f"),
                       limits=SandboxLimits(timeout_s=2.0, open_files=10**12), timing=NO_TIMING)
