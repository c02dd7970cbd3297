"""The sandbox's own process: isolate, drop privileges, run one solution with its tests, report.

Started only by `core.execution.sandbox` as `python -I -S -c LAUNCH RESULT_FD` (which imports
this module from its folder, so the compiled copy is reused, and calls `main`) with a
marshal-encoded spec on stdin; importing this module does nothing else. It uses the standard library
only, because it runs outside the workbench's environment (no site-packages, no PYTHONPATH).

The process that starts (the launcher) applies the isolation the spec asks for, each layer failing
closed with a `SETUP` line: new network, mount, PID, IPC and UTS namespaces (a user namespace
first when not root); a fresh root made of read-only binds of the system and Python folders plus
the writable work folder, entered with chroot (the child drops root) or pivot_root. It then forks the child, which sets the
resource limits, becomes a throwaway uid (when started as root), installs the audit hook, and runs
the solution. Lines on RESULT_FD, each `KIND NONCE TEXT`:

    LAYERS  the layers in force          READY  the child is about to run the solution
    PASS    the tests passed once        TIMES  timing samples in seconds, then `;inner`
    FAIL    why the tests failed         EXIT   how the child ended (launcher)
    SETUP   a requested layer failed (launcher; nothing ran)
"""

import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
NAMESPACES = (("netns", CLONE_NEWNET), ("pidns", CLONE_NEWPID), ("ipcns", CLONE_NEWIPC), ("utsns", CLONE_NEWUTS))
DEVICES = ("null", "zero", "random", "urandom")
BLOCKED_EVENTS = (
    "socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "pty.", "os.kill", "os.killpg", "signal.pthread_kill", "ctypes.", "os.chroot", "os.setuid", "resource.prlimit",
    "webbrowser.", "urllib.Request", "http.client.", "ftplib.", "smtplib.", "imaplib.", "poplib.", "telnetlib.",
)
BLOCKED_IMPORTS = frozenset({"_posixsubprocess", "_socket", "_ctypes", "ctypes", "_multiprocessing", "mmap", "fcntl"})
PATH_EVENTS = frozenset({
    "os.chmod", "os.chown", "os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink", "os.truncate",
    "os.mkdir", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.listdir", "os.scandir",
    "os.chflags", "os.setxattr", "os.removexattr", "glob.glob",
})


class SetupError(Exception):
    """A requested isolation layer could not be applied."""


class _Libc:
    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.lib = ctypes.CDLL(None, use_errno=True)

    def check(self, result: int, what: str) -> None:
        if result != 0:
            errno = self.ctypes.get_errno()
            raise SetupError(f"{what}: {os.strerror(errno)}")

    def unshare(self, flags: int, what: str) -> None:
        self.check(self.lib.unshare(flags), what)

    def mount(self, source, target, fstype, flags, data, what: str) -> None:  # type: ignore[no-untyped-def]
        encode = (lambda value: value.encode() if isinstance(value, str) else value)
        self.check(self.lib.mount(encode(source), encode(target), encode(fstype), self.ctypes.c_ulong(flags),
                                  encode(data)), what)

    def prctl(self, option: int, value: int) -> None:
        self.check(self.lib.prctl(option, self.ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount_flags(path: str) -> int:
    # A bind remount must keep the flags the original mount has, or a user namespace refuses it.
    flags = os.statvfs(path).f_flag
    kept = 0
    for st_flag, ms_flag in ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC)):
        if flags & st_flag:
            kept |= ms_flag
    for st_flag, ms_flag in ((1024, 1024), (2048, 2048), (4096, 1 << 21)):  # noatime, nodiratime, relatime
        if flags & st_flag:
            kept |= ms_flag
    return kept


def _bind(libc: _Libc, source: str, target: str, *, read_only: bool, recursive: bool = True) -> None:
    libc.mount(source, target, None, MS_BIND | (MS_REC if recursive else 0), None, f"bind {source}")
    flags = _mount_flags(target) | MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV
    if read_only:
        flags |= MS_RDONLY
    libc.mount(None, target, None, flags, None, f"remount {source}")


def _new_root(libc: _Libc, spec: dict) -> None:  # type: ignore[type-arg]
    """Build a root of read-only system binds plus the work folder, and enter it."""
    new_root, workdir = spec["new_root"], spec["workdir"]
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE, None, "make mounts private")
    libc.mount("tmpfs", new_root, "tmpfs", MS_NOSUID, "size=1m,mode=755", "tmpfs root")
    for path in spec["read_only_paths"]:
        target = new_root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
        elif os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
            _bind(libc, path, target, read_only=True)
    os.makedirs(new_root + "/dev", exist_ok=True)
    for name in DEVICES:
        target = f"{new_root}/dev/{name}"
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
        libc.mount(f"/dev/{name}", target, None, MS_BIND, None, f"bind /dev/{name}")
    os.makedirs(new_root + workdir, exist_ok=True)
    _bind(libc, workdir, new_root + workdir, read_only=False, recursive=False)
    os.chdir(new_root)
    if spec["uid"] is not None:
        # The child gives up root, and with it any way out of a chroot; detaching the old root
        # (pivot_root) costs tens of milliseconds of RCU grace periods per run.
        libc.mount(None, new_root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, None, "read-only root")
        os.chroot(new_root)
    else:
        # Without a uid change the child keeps its namespace's root powers: the old root must be gone.
        number = SYS_PIVOT_ROOT.get(os.uname().machine)
        if number is None:
            raise SetupError(f"pivot_root: unknown system call number on {os.uname().machine}")
        os.makedirs(new_root + "/.old", exist_ok=True)
        libc.check(libc.lib.syscall(number, b".", b".old"), "pivot_root")
        os.chdir("/")
        libc.check(libc.lib.umount2(b"/.old", MNT_DETACH), "detach the old root")
        libc.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, None, "read-only root")
    os.chdir(workdir)


def isolate(spec: dict, libc: _Libc | None) -> list[str]:  # type: ignore[type-arg]
    """Apply the layers the spec asks for; raise SetupError when a required one fails."""
    want = spec["layers"]
    applied: list[str] = []
    if not want or libc is None:
        return applied
    if "userns" in want:
        uid, gid = os.getuid(), os.getgid()
        libc.unshare(CLONE_NEWUSER, "user namespace")
        _write_file("/proc/self/setgroups", "deny")
        _write_file("/proc/self/uid_map", f"0 {uid} 1")
        _write_file("/proc/self/gid_map", f"0 {gid} 1")
        applied.append("userns")
    for name, flag in NAMESPACES:
        if name in want:
            libc.unshare(flag, name)
            applied.append(name)
    if "mountns" in want:
        libc.unshare(CLONE_NEWNS, "mount namespace")
        applied.append("mountns")
        if "newroot" in want:
            _new_root(libc, spec)
            applied.append("newroot")
    return applied


def _limit(resource, name: str, value: int) -> None:  # type: ignore[no-untyped-def]
    kind = getattr(resource, name)
    resource.setrlimit(kind, (value, value))


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def install_audit_hook(workdir: str, read_roots: tuple[str, ...]) -> None:
    """Refuse sockets, processes, signals, native calls, and file access outside the allowed folders."""
    writable = (workdir,)
    readable = (workdir, *read_roots)
    realpath, fspath, getcwd, join = os.path.realpath, os.fspath, os.getcwd, os.path.join
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    busy = [False]

    def resolve(value) -> str | None:  # type: ignore[no-untyped-def]
        if isinstance(value, int):
            return None
        text = fspath(value)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        return realpath(join(getcwd(), text))

    def hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
        if busy[0]:
            return
        if event.startswith(BLOCKED_EVENTS):
            raise PermissionError(f"blocked in the sandbox: {event}")
        if event == "import" and args and args[0] in BLOCKED_IMPORTS:
            raise PermissionError(f"blocked in the sandbox: import {args[0]}")
        if event == "open" or event in PATH_EVENTS:
            if not args or args[0] is None:
                return
            busy[0] = True
            try:
                path = resolve(args[0])
            finally:
                busy[0] = False
            if path is None:
                return
            writing = event != "open" and event not in ("os.listdir", "os.scandir", "glob.glob")
            if event == "open":
                mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
                flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
                writing = any(c in mode for c in "wax+") or bool(flags & write_flags)
            if not _inside(path, writable if writing else readable):
                raise PermissionError(f"blocked in the sandbox: {event} {path}")

    sys.addaudithook(hook)


def _report(fd: int, kind: str, nonce: str, text: str = "") -> None:
    line = " ".join(text.split())[:2000]
    os.write(fd, f"{kind} {nonce} {line}\n".encode("utf-8", "replace"))


def run_solution(spec: dict, fd: int) -> None:  # type: ignore[type-arg]
    """Compile, run the tests once, then time re-runs in CPU seconds; report on `fd`.

    CPU time rather than wall time: on a shared machine a preempted sample would otherwise look slow.
    """
    import builtins
    import gc
    import time

    nonce = spec["nonce"]
    timing = spec["timing"]
    # The thread's CPU clock: the process-wide one only ticks once RLIMIT_CPU arms a CPU timer.
    cpu_clock, wall_clock = time.thread_time, time.perf_counter
    _report(fd, "READY", nonce)
    try:
        solution = compile(spec["solution"], "solution.py", "exec")
        tests = compile(spec["test"] + "\n", "tests.py", "exec")
    except (SyntaxError, ValueError) as exc:
        _report(fd, "FAIL", nonce, f"{type(exc).__name__}: {exc}")
        return
    entry_point = spec["entry_point"]

    def run_once() -> None:
        namespace: dict = {"__name__": "__solution__", "__builtins__": builtins}  # type: ignore[type-arg]
        exec(solution, namespace)
        exec(tests, namespace)
        namespace["check"](namespace[entry_point])

    try:
        run_once()
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from a solution are failures too
        _report(fd, "FAIL", nonce, f"{type(exc).__name__}: {exc}")
        return
    _report(fd, "PASS", nonce)
    if not timing["measure"]:
        return
    samples: list[float] = []
    deadline = wall_clock() + timing["budget_s"]
    gc.disable()  # a collection inside one sample but not another is noise, as in timeit
    inner = 1
    try:
        while True:  # as timeit's autorange: repeat the run until one sample lasts min_sample_s
            started = cpu_clock()
            for _ in range(inner):
                run_once()
            elapsed = cpu_clock() - started
            if elapsed >= timing["min_sample_s"] or inner >= 1 << 20 or wall_clock() >= deadline:
                break
            inner = min(1 << 20, max(inner * 2, int(inner * 1.2 * timing["min_sample_s"] / max(elapsed, 1e-7))))
        while len(samples) < timing["max_runs"] and wall_clock() < deadline:
            started = cpu_clock()
            for _ in range(inner):
                run_once()
            samples.append((cpu_clock() - started) / inner)
            gc.collect()
            if len(samples) >= timing["min_runs"] and _cv(samples) <= timing["cv_target"]:
                break
    except BaseException as exc:
        _report(fd, "FAIL", nonce, f"re-run {len(samples) + 1}: {type(exc).__name__}: {exc}")
        return
    finally:
        gc.enable()
    _report(fd, "TIMES", nonce, ",".join(f"{s:.9g}" for s in samples) + f";{inner}")


def _cv(samples: list[float]) -> float:
    mean = sum(samples) / len(samples)
    if mean <= 0:
        return float("inf")
    variance = sum((s - mean) ** 2 for s in samples) / len(samples)
    return float(variance ** 0.5 / mean)


def child(spec: dict, fd: int, libc: _Libc | None) -> None:  # type: ignore[type-arg]
    """In the forked child: limits, privileges, fds, audit hook, then the solution."""
    import resource

    limits = spec["limits"]
    _limit(resource, "RLIMIT_CORE", 0)
    _limit(resource, "RLIMIT_CPU", limits["cpu_s"])
    _limit(resource, "RLIMIT_AS", limits["memory_bytes"])
    _limit(resource, "RLIMIT_FSIZE", limits["file_bytes"])
    _limit(resource, "RLIMIT_NOFILE", limits["open_files"])
    _limit(resource, "RLIMIT_NPROC", limits["processes"])
    uid = spec["uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if libc is not None:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
        libc.prctl(PR_SET_PDEATHSIG, 9)  # after the uid change, which clears it
    null = os.open("/dev/null", os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.close(null)
    os.closerange(3, fd)
    os.closerange(fd + 1, 1 << 16)
    os.environ.clear()
    os.environ.update({"HOME": spec["workdir"], "TMPDIR": spec["workdir"], "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    os.chdir(spec["workdir"])
    for name in ("ctypes", "_ctypes", "marshal"):
        sys.modules.pop(name, None)
    if spec["audit"]:
        install_audit_hook(spec["workdir"], tuple(spec["read_roots"]))
    run_solution(spec, fd)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


def main(argv: list[str]) -> int:
    """Launcher entry point."""
    import marshal

    fd = int(argv[1])
    spec = marshal.loads(sys.stdin.buffer.read())
    nonce = spec["nonce"]
    libc: _Libc | None = None
    try:
        if spec["layers"] or spec["uid"] is not None:
            libc = _Libc()
        applied = isolate(spec, libc)
        if spec["uid"] is not None:
            os.chown(spec["workdir"], spec["uid"], spec["uid"])
            applied.append("uid")
    except (SetupError, OSError) as exc:
        _report(fd, "SETUP", nonce, str(exc))
        return 3
    if spec["audit"]:
        applied.append("audit")
    _report(fd, "LAYERS", nonce, ",".join(applied))
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child(spec, fd, libc)
        except BaseException as exc:  # the child never returns into the launcher's code
            try:
                _report(fd, "FAIL", nonce, f"sandbox child: {type(exc).__name__}: {exc}")
            finally:
                code = 70
        os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    _report(fd, "EXIT", nonce, _describe(status))
    os._exit(0)  # nothing to flush or clean up: skip the interpreter's shutdown, a few ms per run


if __name__ == "__main__":
    sys.exit(main(sys.argv))
