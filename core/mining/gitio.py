"""Git plumbing through GitPython: a streamed `git log --raw --numstat -z` and a persistent `cat-file --batch`."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import git

from core.errors import RepositoryError
from core.mining.paths import decode_path

# Fields of one commit header; each is NUL-terminated and the record starts with \x1e.
# %at: the author date as seconds since the epoch, the one form that names the instant whatever the
# offset (git prints %aI offsets such as +99:99 as stored).
LOG_FORMAT = "%x1e%H%x00%P%x00%an%x00%ae%x00%at%x00%B%x00"


@dataclass(frozen=True, slots=True)
class RawChange:
    """One entry of `git log --raw`: modes, blob ids, status and paths."""

    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str
    status: str  # M, A, D, R, C, T
    old_path: str  # decoded with surrogateescape (core.mining.paths.decode_path): lossless
    path: str


@dataclass(frozen=True, slots=True)
class RawCommit:
    """One commit of the log with its raw changes."""

    sha: str
    parents: tuple[str, ...]
    author: str
    author_email: str
    authored_at: str  # %at: seconds since the epoch, empty when git could not read the date
    message: str
    changes: tuple[RawChange, ...]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def prefetch_chunks(stream: IO[bytes], chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """Read a pipe in a thread so the process writing it never waits for the consumer."""
    chunks: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        try:
            while chunk := stream.read1(chunk_size) if hasattr(stream, "read1") else stream.read(chunk_size):
                chunks.put(chunk)
        except (OSError, ValueError):
            pass
        finally:
            chunks.put(b"")

    threading.Thread(target=pump, name="git-log-reader", daemon=True).start()
    while chunk := chunks.get():
        yield chunk


def iter_tokens(stream: IO[bytes], chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Split a byte stream on NUL without loading it whole."""
    rest = b""
    for chunk in prefetch_chunks(stream, chunk_size):
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def parse_log(tokens: Iterator[bytes]) -> Iterator[RawCommit]:
    """Parse the NUL-separated tokens of `git log --raw -z --format=LOG_FORMAT`."""
    token = next(tokens, None)
    while token is not None:
        if not token.startswith(b"\x1e"):
            token = next(tokens, None)
            continue
        sha = token[1:].decode("ascii")
        parents, author, email, date, message = (next(tokens, b"") for _ in range(5))
        changes: list[RawChange] = []
        token = next(tokens, None)
        while token is not None and not token.startswith(b"\x1e"):
            if token[:1] == b":" or token[:2] == b"\n:":
                old_mode, new_mode, old_blob, new_blob, status = token.lstrip(b"\n:").split(b" ", 4)
                kind = status[:1].decode("ascii")
                first = decode_path(next(tokens, b""))
                second = decode_path(next(tokens, b"")) if kind in ("R", "C") else first
                changes.append(RawChange(old_mode.decode(), new_mode.decode(), old_blob.decode(),
                                         new_blob.decode(), kind, first, second))
            token = next(tokens, None)
        yield RawCommit(sha, tuple(parents.decode().split()), _decode(author), _decode(email),
                        date.decode("ascii", "replace"), _decode(message), tuple(changes))


def git_said(exc: git.GitCommandError) -> str:
    """Git's own message from a failed command, on one line (its advice, such as a safe.directory
    command, kept in parentheses)."""
    text = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    text = text.strip()
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return f"git exited with status {exc.status}"
    first = re.sub(r"^(fatal|error):\s*", "", lines[0])
    advice = [line for line in lines[1:] if line.startswith("git ")]
    return first + (f" (to allow it: {advice[0]})" if advice else "")


def open_repository(path: str) -> git.Repo:
    """Open a local repository or raise a RepositoryError saying why it cannot be mined.

    A path that does not exist or is not a repository is a usage error (exit status 2); a
    repository git refuses (for instance "detected dubious ownership") is reported in git's words.
    """
    from pathlib import Path

    target = Path(path).expanduser()
    if not target.exists():
        raise RepositoryError(f"{path}: no such file or directory", exit_code=2)
    if not target.is_dir():
        raise RepositoryError(f"{path}: is a file, not a git repository", exit_code=2)
    try:
        repo = git.Repo(target, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepositoryError(f"{path}: not a git repository", exit_code=2) from None
    if Path(repo.git_dir).resolve() == target.resolve():
        # A bare repository (or a mirror without a config file): point git at it explicitly.
        repo.git.set_persistent_git_options(git_dir=str(target.resolve()))
    try:
        repo.git.rev_parse("--verify", "-q", "HEAD^{commit}")
    except git.GitCommandError as exc:
        repo.close()
        said = git_said(exc)
        # With -q, an unborn HEAD fails silently; anything git says is another refusal.
        if said.startswith("git exited"):
            raise RepositoryError(f"{path}: the repository has no commits yet") from None
        raise RepositoryError(f"{path}: git refuses it: {said}") from None
    return repo


def verify_rev(repo: git.Repo, rev: str) -> None:
    """Raise RepositoryError (a usage error) unless every side of a rev or range names a commit."""
    sides = [side for side in re.split(r"\.\.\.?", rev) if side] or ["HEAD"]
    for side in sides:
        try:
            repo.git.rev_parse("--verify", "-q", f"{side}^{{commit}}")
        except git.GitCommandError:
            raise RepositoryError(f"unknown revision {side!r} in {repo.working_dir}", exit_code=2) from None


def verify_history(repo: git.Repo, revs: list[str], max_commits: int | None) -> None:
    """Walk the commits a mining run will read (no file contents) and raise RepositoryError, in
    git's words, when one cannot be read: a corrupt repository is refused before any job starts."""
    args = ["--quiet", "--no-merges"]
    if max_commits is not None:
        args.append(f"--max-count={max_commits}")
    try:
        repo.git.rev_list(*args, *revs, "--")
    except git.GitCommandError as exc:
        raise RepositoryError(f"{repo.working_dir}: the history cannot be read: {git_said(exc)}") from None


def start_log(
    repo: git.Repo, revs: list[str], max_commits: int | None, pathspecs: list[str] | None = None
) -> Any:
    """Start the one `git log --raw` pass over the wanted revisions; returns the running process.

    No --numstat: git would diff every file (seven times slower on pytest's history); line counts
    are computed from the texts of the kept changes instead.
    """
    args = ["--no-merges", "--raw", "-z", "--no-abbrev", "-M", "--no-color",
            "--no-ext-diff", "--no-textconv", f"--format={LOG_FORMAT}"]
    if max_commits is not None:
        args.append(f"--max-count={max_commits}")
    return repo.git.log(*args, *revs, "--", *(pathspecs or []), as_process=True, stdout_as_string=False)


BlobResult = tuple[bytes | None, int]  # content (None when missing or over the cap), size


class BlobTicket:
    """The answer to one request of blobs, filled by the reader thread while the caller works."""

    def __init__(self, shas: list[str], max_bytes: int) -> None:
        self.shas = shas
        self.max_bytes = max_bytes
        self._done = threading.Event()
        self._results: dict[str, BlobResult] = {}
        self._error: BaseException | None = None

    def result(self) -> dict[str, BlobResult]:
        """Wait for every requested blob; raise if git failed."""
        self._done.wait()
        if self._error is not None:
            raise RepositoryError(f"git cat-file failed: {self._error}")
        return self._results


class BlobReader:
    """A persistent `git cat-file --batch` with a writer and a reader thread.

    `request()` returns at once: git reads the next batch's blobs while the caller processes
    the previous one, and neither pipe can deadlock because each has its own thread.
    """

    def __init__(self, repo: git.Repo) -> None:
        self._process = repo.git.cat_file("--batch", as_process=True, istream=subprocess.PIPE)
        self._stdin = self._process.proc.stdin
        self._stdout = self._process.proc.stdout
        self._requests: queue.Queue[list[str] | None] = queue.Queue()
        self._tickets: queue.Queue[BlobTicket | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_requests, name="cat-file-writer", daemon=True)
        self._reader = threading.Thread(target=self._read_answers, name="cat-file-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    def _write_requests(self) -> None:
        try:
            while (shas := self._requests.get()) is not None:
                self._stdin.write("".join(f"{sha}\n" for sha in shas).encode("ascii"))
                self._stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def _read_answers(self) -> None:
        failure: BaseException | None = None
        while (ticket := self._tickets.get()) is not None:
            if failure is None:
                try:
                    self._fill(ticket)
                except BaseException as exc:  # noqa: BLE001  handed to the waiting caller
                    failure = exc
            ticket._error = failure
            ticket._done.set()

    def _fill(self, ticket: BlobTicket) -> None:
        stdout = self._stdout
        for sha in ticket.shas:
            header = stdout.readline().split()
            if not header:
                raise OSError("git cat-file ended early")
            if len(header) < 3 or header[1] == b"missing":
                ticket._results[sha] = (None, 0)
                continue
            size = int(header[2])
            if size > ticket.max_bytes:
                remaining = size + 1
                while remaining:
                    chunk = stdout.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise OSError("git cat-file ended early")
                    remaining -= len(chunk)
                ticket._results[sha] = (None, size)
                continue
            data = stdout.read(size)  # then the newline apart: slicing it off would copy the blob
            if len(data) != size or stdout.read(1) != b"\n":
                raise OSError("git cat-file ended early")
            ticket._results[sha] = (data, size)

    def request(self, shas: list[str], max_bytes: int) -> BlobTicket:
        """Ask for blobs without waiting; `ticket.result()` waits for them."""
        ticket = BlobTicket(shas, max_bytes)
        if not shas:
            ticket._done.set()
            return ticket
        self._tickets.put(ticket)
        self._requests.put(shas)
        return ticket

    def read_many(self, shas: list[str], max_bytes: int) -> Iterator[tuple[str, bytes | None, int]]:
        """Yield (sha, content or None when missing or over max_bytes, size) in request order."""
        results = self.request(shas, max_bytes).result()
        for sha in shas:
            data, size = results[sha]
            yield sha, data, size

    def close(self) -> None:
        """Stop both threads and the git process."""
        self._requests.put(None)
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            self._process.proc.kill()
            self._process.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001  the process may already be gone
            pass
        self._tickets.put(None)
        self._writer.join(timeout=5)
        self._reader.join(timeout=5)
