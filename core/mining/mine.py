"""mine(): walk a repository's history once and yield one record per changed file per commit."""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

import git

from core.errors import RepositoryError
from core.mining.content import non_source_reason
from core.mining.dates import author_instant, instant_from_log
from core.mining.events import CommitMined, MineEvent, MineFinished, MineProgress, MineStarted
from core.mining.gitio import (
    BlobReader,
    BlobTicket,
    RawChange,
    RawCommit,
    iter_tokens,
    open_repository,
    parse_log,
    start_log,
    verify_history,
    verify_rev,
)
from core.mining.languages import DEFAULT_LANGUAGES, extension_map, language_of
from core.mining.licenses import LICENSE_FILE_NAMES, detect_license, normalize_allow_list
from core.mining.linediff import LineCounter, changed_views
from core.mining.paths import path_text
from core.mining.records import CommitRecord

FILE_MODES = ("100644", "100755")
COMMITS_PER_BATCH = 256
BLOB_LOOKAHEAD = 2  # batches whose blobs git is asked for before the oldest is processed
PROGRESS_INTERVAL_S = 0.1
BLOB_CACHE_BYTES = 128 << 20  # recently read blobs kept for later batches (a new side is often an old side)


@dataclass(frozen=True, slots=True)
class MineOptions:
    """What to walk and which file changes to keep."""

    rev: str | None = None  # a rev or a range such as v1.0..main; None means HEAD
    all_branches: bool = False
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    max_file_bytes: int = 1_000_000
    max_files_per_commit: int = 100
    skip_whitespace_only: bool = True
    skip_duplicates: bool = True
    licenses: tuple[str, ...] = ()  # allow-list of SPDX ids ("permissive" expands); empty = any
    max_commits: int | None = None


def options_as_params(options: MineOptions) -> dict[str, object]:
    """The options as plain job parameters."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(options).items()}


_collections_lock = threading.Lock()
_runs_in_progress = 0
_saved_thresholds: tuple[int, int, int] | None = None
RUN_GC_THRESHOLD = 100_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect the youngest generation less often while a run is in progress.

    A run allocates millions of short-lived tuples and records that never form cycles; with the
    default threshold (700) the collector ran thousands of times and took about a tenth of the
    miner's CPU. Nested and concurrent runs share one setting; the last one out restores it.
    """
    global _runs_in_progress, _saved_thresholds
    with _collections_lock:
        if _runs_in_progress == 0:
            _saved_thresholds = gc.get_threshold()
            gc.set_threshold(max(RUN_GC_THRESHOLD, _saved_thresholds[0]), *_saved_thresholds[1:])
        _runs_in_progress += 1
    try:
        yield
    finally:
        with _collections_lock:
            _runs_in_progress -= 1
            if _runs_in_progress == 0 and _saved_thresholds is not None:
                gc.set_threshold(*_saved_thresholds)
                _saved_thresholds = None


P = ParamSpec("P")
T = TypeVar("T")


def _with_fewer_collections(generator: Callable[P, Iterator[T]]) -> Callable[P, Iterator[T]]:
    """Run a generator function's whole iteration under fewer_collections()."""
    @wraps(generator)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        with fewer_collections():
            yield from generator(*args, **kwargs)

    return wrapper


class RunSink(Protocol):
    """Receives every event of a run (the store's recorder implements it)."""

    def record(self, event: MineEvent) -> None:
        """Handle one event."""
        ...


def content_key(old_blob: str, new_blob: str) -> str:
    """The identity of a change by content: the same old and new file give the same key."""
    return hashlib.sha1(f"{old_blob}:{new_blob}".encode("ascii")).hexdigest()


def repository_license(repo: git.Repo, rev: str = "HEAD") -> str | None:
    """The SPDX id of the LICENSE-like file at the top of `rev`, or None."""
    try:
        names = repo.git.ls_tree("--name-only", rev).splitlines()
    except git.GitCommandError:
        return None
    by_lower = {name.lower(): name for name in names}
    for candidate in LICENSE_FILE_NAMES:
        name = by_lower.get(candidate.lower())
        if name is None:
            continue
        try:
            text = repo.git.show(f"{rev}:{name}")
        except (git.GitCommandError, UnicodeDecodeError):
            continue
        spdx = detect_license(text)
        if spdx:
            return spdx
    return None


class _BlobCache:
    """Recently read blobs: a file's new side is usually needed again as an older commit's old side."""

    def __init__(self, max_bytes: int = 128 << 20) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes

    def get(self, sha: str) -> bytes | None:
        text = self._items.get(sha)
        if text is not None:
            self._items.move_to_end(sha)
        return text

    def put(self, sha: str, text: bytes) -> None:
        if sha in self._items:
            return
        self._items[sha] = text
        self._bytes += len(text)
        while self._bytes > self._max_bytes and self._items:
            _old, evicted = self._items.popitem(last=False)
            self._bytes -= len(evicted)


@dataclass(frozen=True, slots=True)
class RepositoryProbe:
    """What a front end needs before it starts a job: where the repository is, its license and head."""

    path: str
    license: str | None
    head_sha: str


def probe_repository(path: str, options: MineOptions = MineOptions(), *, walk: bool = False) -> RepositoryProbe:
    """Check that `path` can be mined with `options` (repository, rev, languages, license) or raise.

    With `walk`, also read every commit the run will visit (not the files), so a corrupt history
    is refused before any job or row is written.
    """
    extension_map(options.languages)
    allowed_licenses = normalize_allow_list(options.licenses)
    repo = open_repository(path)
    try:
        if not options.all_branches:
            verify_rev(repo, options.rev or "HEAD")
        if walk:
            revs = ["--branches", "--remotes"] if options.all_branches else [options.rev or "HEAD"]
            verify_history(repo, revs, options.max_commits)
        license_id = repository_license(repo)
        if allowed_licenses and license_id not in allowed_licenses:
            raise RepositoryError(
                f"{path}: license {license_id or 'unknown'} is not in the allow-list "
                f"({', '.join(allowed_licenses)})"
            )
        return RepositoryProbe(str(Path(path).expanduser().resolve()), license_id, repo.git.rev_parse("HEAD"))
    finally:
        repo.close()


@_with_fewer_collections
def mine(
    path: str,
    options: MineOptions = MineOptions(),
    *,
    sink: RunSink | None = None,
    cancel: threading.Event | None = None,
    skip_commits: Collection[str] = frozenset(),
    known_content_keys: Collection[str] = frozenset(),
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[MineEvent]:
    """Walk the history of `path` and yield MineStarted, CommitMined per kept commit, MineProgress, MineFinished.

    Every file change of every walked commit is accounted for exactly once, as a record or as a
    skip reason, in the order the log lists them, so the counts of a run depend only on the
    repository, the options and the store. Commits in `skip_commits` (already stored) are not read
    again; changes whose content key is in `known_content_keys` count as duplicates. Raises
    RepositoryError before the first event when the path, the rev or the license rules make mining
    impossible.
    """
    extensions = extension_map(options.languages)
    probe = probe_repository(path, options)
    repo = open_repository(path)
    process = None
    blobs: BlobReader | None = None
    miner: _BatchMiner | None = None
    try:
        revs = ["--branches", "--remotes"] if options.all_branches else [options.rev or "HEAD"]
        started = MineStarted(probe.path, probe.license, probe.head_sha)
        _emit(started, sink)
        yield started

        # No pathspec: a path-limited log simplifies history (dropping side-branch commits) and hides
        # renames from files of other types; the language filter runs on each change instead.
        process = start_log(repo, revs, options.max_commits)
        blobs = BlobReader(repo)
        miner = _BatchMiner(options, extensions, blobs, set(known_content_keys), skip_commits)
        began = last_progress = clock()
        cancelled = False
        batch: list[RawCommit] = []
        # Batches in flight: git reads blobs for the newest ones, this thread trims the next, and
        # the helper process counts lines of the one before, which is then emitted.
        planned: deque[_PlannedBatch] = deque()
        prepared: _PreparedBatch | None = None
        commits = parse_log(iter_tokens(process.proc.stdout))
        while not cancelled:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            raw = next(commits, None)
            if raw is not None:
                batch.append(raw)
            if batch and (raw is None or len(batch) >= COMMITS_PER_BATCH):
                planned.append(miner.plan(batch))
                batch = []
                while len(planned) > BLOB_LOOKAHEAD:
                    trimmed = miner.prepare(planned.popleft())
                    if prepared is not None:
                        for event in miner.emit(prepared):
                            _emit(event, sink)
                            yield event
                        cancelled = cancel is not None and cancel.is_set()
                    prepared = trimmed
                now = clock()
                if now - last_progress >= PROGRESS_INTERVAL_S:
                    last_progress = now
                    progress = MineProgress(miner.commits_seen, miner.records_kept, dict(miner.skipped),
                                            now - began, miner.changes_seen)
                    _emit(progress, sink)
                    yield progress
            if raw is None:
                break
        if not cancelled:
            remaining = [prepared] if prepared is not None else []
            while remaining or planned:
                last = remaining.pop() if remaining else miner.prepare(planned.popleft())
                for event in miner.emit(last):
                    _emit(event, sink)
                    yield event
            _check_log_exit(process, path)
        finished = MineFinished(miner.commits_seen, miner.records_kept, dict(miner.skipped), clock() - began,
                                cancelled, miner.changes_seen)
        _emit(finished, sink)
        yield finished
    finally:
        if miner is not None:
            miner.counter.close()
        if blobs is not None:
            blobs.close()
        if process is not None:
            try:
                process.proc.kill()
                process.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001  already exited
                pass
        repo.close()


def _check_log_exit(process: object, path: str) -> None:
    proc = process.proc  # type: ignore[attr-defined]
    code = proc.wait()
    if code != 0:
        message = proc.stderr.read().decode("utf-8", "replace").strip().splitlines() if proc.stderr else []
        raise RepositoryError(f"{path}: git log failed: {message[0] if message else f'exit {code}'}")


def _emit(event: MineEvent, sink: RunSink | None) -> None:
    if sink is not None:
        sink.record(event)


def _keep_change(change: RawChange, extensions: dict[str, str], skipped: Counter[str]) -> str | None:
    """The language of a change worth reading, or None (counting why it was skipped)."""
    language = language_of(change.path, extensions)
    if language is None:
        skipped["language"] += 1
        return None
    if change.status in ("A", "D") or set(change.old_blob) == {"0"} or set(change.new_blob) == {"0"}:
        skipped["added_or_deleted"] += 1
        return None
    if change.old_mode not in FILE_MODES or change.new_mode not in FILE_MODES:
        skipped["not_a_file"] += 1
        return None
    if change.old_blob == change.new_blob:
        skipped["unchanged"] += 1
        return None
    return language


@dataclass
class _PlannedBatch:
    """A batch whose blobs are on their way; `skipped` counts the changes dropped so far."""

    commit_count: int
    change_count: int
    wanted: list[tuple[RawCommit, list[tuple[RawChange, str]]]]
    held: dict[str, bytes]  # sides found in the cache when planned, held so no eviction can lose them
    ticket: BlobTicket
    dates: BlobTicket | None  # raw commits whose author date git could not print
    skipped: Counter[str]


@dataclass
class _PreparedBatch:
    commit_count: int
    change_count: int
    changes: list[tuple[RawCommit, RawChange, str, bytes, bytes]]
    dates: dict[str, datetime]
    line_counts: Future[list[tuple[int, int, bool]]]
    skipped: Counter[str]


class _BatchMiner:
    """Filters a batch of commits by metadata, asks git for its blobs, then builds its records.

    A batch's counts join the run's totals only when the batch is emitted, so progress, a cancelled
    run and a finished one all report exactly the changes whose records were handed to the sink.
    """

    def __init__(
        self,
        options: MineOptions,
        extensions: dict[str, str],
        blobs: BlobReader,
        stored_keys: set[str],
        skip_commits: Collection[str],
    ) -> None:
        self.options = options
        self.extensions = extensions
        self.blobs = blobs
        self.stored_keys = stored_keys  # content keys of records already stored or emitted
        self.skip_commits = skip_commits
        self.skipped: Counter[str] = Counter()
        self.commits_seen = 0
        self.changes_seen = 0
        self.records_kept = 0
        self.cache = _BlobCache(BLOB_CACHE_BYTES)
        self.in_flight: set[str] = set()  # requested by a planned batch not prepared yet
        self.problems: dict[str, str] = {}  # blob sha -> why it cannot be a record side
        self.counter = LineCounter()

    def plan(self, batch: list[RawCommit]) -> _PlannedBatch:
        """Keep the changes worth reading and request the blobs not already read or on their way."""
        skipped: Counter[str] = Counter()
        wanted: list[tuple[RawCommit, list[tuple[RawChange, str]]]] = []
        undated: list[str] = []
        for raw in batch:
            if raw.sha in self.skip_commits:
                skipped["already_stored"] += len(raw.changes)
                continue
            if len(raw.changes) > self.options.max_files_per_commit:
                skipped["too_many_files"] += len(raw.changes)
                continue
            kept = []
            for change in raw.changes:
                language = _keep_change(change, self.extensions, skipped)
                if language is None:
                    continue
                if self.options.skip_duplicates and content_key(change.old_blob, change.new_blob) in self.stored_keys:
                    skipped["duplicate"] += 1
                    continue
                kept.append((change, language))
            if kept:
                wanted.append((raw, kept))
                if instant_from_log(raw.authored_at) is None:
                    undated.append(raw.sha)
        held: dict[str, bytes] = {}
        needed: list[str] = []
        for sha in dict.fromkeys(sha for _raw, kept in wanted for change, _lang in kept
                                 for sha in (change.old_blob, change.new_blob)):
            if sha in self.problems or sha in self.in_flight:
                continue  # a blob on its way for an earlier batch is in the cache (or read again) by prepare
            data = self.cache.get(sha)
            if data is not None:
                held[sha] = data
            else:
                needed.append(sha)
        self.in_flight.update(needed)
        ticket = self.blobs.request(needed, self.options.max_file_bytes)
        dates = self.blobs.request(undated, 1 << 20) if undated else None
        change_count = sum(len(raw.changes) for raw in batch)
        return _PlannedBatch(len(batch), change_count, wanted, held, ticket, dates, skipped)

    def _absorb(self, results: dict[str, tuple[bytes | None, int]], sides: dict[str, bytes]) -> None:
        """File each answer of git as a problem or as a side of this batch (and in the cache)."""
        for sha, (data, size) in results.items():
            problem = _blob_problem(data, size, self.options.max_file_bytes)
            if problem:
                self.problems[sha] = problem
            else:
                assert data is not None
                self.cache.put(sha, data)
                sides[sha] = data

    def prepare(self, planned: _PlannedBatch) -> _PreparedBatch:
        """Wait for the batch's blobs, drop unusable ones, and start counting lines in the helper.

        Every side is read for the batch that needs it: a blob that was on its way for an earlier
        batch and has left the cache since is read again here, whatever other batch awaits it.
        """
        answers = planned.ticket.result()
        self.in_flight.difference_update(answers)
        sides = planned.held
        self._absorb(answers, sides)
        absent = []
        for sha in dict.fromkeys(sha for _raw, kept in planned.wanted for change, _lang in kept
                                 for sha in (change.old_blob, change.new_blob)):
            if sha in sides or sha in self.problems:
                continue
            data = self.cache.get(sha)
            if data is not None:
                sides[sha] = data
            else:
                absent.append(sha)
        if absent:
            self._absorb(self.blobs.request(absent, self.options.max_file_bytes).result(), sides)
        dates = self._dates(planned)
        skipped = planned.skipped
        changes: list[tuple[RawCommit, RawChange, str, bytes, bytes]] = []
        regions: list[tuple[memoryview, memoryview]] = []
        for raw, kept in planned.wanted:
            for change, language in kept:
                problem = self.problems.get(change.old_blob) or self.problems.get(change.new_blob)
                if problem:
                    skipped[problem] += 1
                    continue
                if raw.sha not in dates:
                    skipped["bad_date"] += 1
                    continue
                old, new = sides[change.old_blob], sides[change.new_blob]
                changes.append((raw, change, language, old, new))
                regions.append(changed_views(old, new))
        return _PreparedBatch(planned.commit_count, planned.change_count, changes, dates,
                              self.counter.submit(regions), skipped)

    def _dates(self, planned: _PlannedBatch) -> dict[str, datetime]:
        """The author instant of each commit with wanted changes; a commit without one is left out."""
        dates: dict[str, datetime] = {}
        raw_commits = planned.dates.result() if planned.dates is not None else {}
        for raw, _kept in planned.wanted:
            moment = instant_from_log(raw.authored_at)
            header = raw_commits.get(raw.sha, (None, 0))[0]
            if moment is None and header is not None:
                # git printed no date: read the header itself (a negative time, an offset that is not a number)
                moment = author_instant(header)
            if moment is not None:
                dates[raw.sha] = moment
        return dates

    def emit(self, prepared: _PreparedBatch) -> Iterator[CommitMined]:
        """Yield the records of each commit of a prepared batch, once its line counts are in."""
        counts = prepared.line_counts.result()
        skipped = prepared.skipped
        records: list[CommitRecord] = []
        for index, ((raw, change, language, old, new), (added, removed, spaces_only)) in enumerate(
            zip(prepared.changes, counts)
        ):
            if spaces_only and self.options.skip_whitespace_only:
                skipped["whitespace_only"] += 1
            elif self.options.skip_duplicates and not self._first_of_its_content(change):
                skipped["duplicate"] += 1
            else:
                records.append(CommitRecord(
                    sha=raw.sha,
                    parent_sha=raw.parents[0] if raw.parents else "",
                    author=raw.author,
                    author_email=raw.author_email,
                    authored_at=prepared.dates[raw.sha],
                    message=raw.message,
                    path=path_text(change.path),
                    old_path=path_text(change.old_path),
                    old_blob=change.old_blob,
                    new_blob=change.new_blob,
                    old_data=old,
                    new_data=new,
                    lines_added=added,
                    lines_removed=removed,
                    language=language,
                ))
            following = prepared.changes[index + 1][0] if index + 1 < len(prepared.changes) else None
            if following is not raw and records:
                self.records_kept += len(records)
                yield CommitMined(raw.sha, tuple(records))
                records = []
        self.skipped.update(skipped)
        self.commits_seen += prepared.commit_count
        self.changes_seen += prepared.change_count


    def _first_of_its_content(self, change: RawChange) -> bool:
        """Whether no kept change had these old and new files before; remembers this one if so."""
        key = content_key(change.old_blob, change.new_blob)
        if key in self.stored_keys:
            return False
        self.stored_keys.add(key)
        return True


def _blob_problem(data: bytes | None, size: int, max_bytes: int) -> str | None:
    """Why a blob cannot be a record side (too large, missing, binary, not UTF-8, not source code), or None."""
    if data is None:
        return "too_large" if size > max_bytes else "missing"
    if data.find(b"\0", 0, 8000) >= 0:
        return "binary"
    if not data.isascii():  # most source files: valid UTF-8 without decoding
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "undecodable"
    return non_source_reason(data)
