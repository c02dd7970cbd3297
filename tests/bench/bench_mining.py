"""Mining throughput: our miner (with store writes) vs PyDriller vs raw git, on the same records.

    python tests/bench/bench_mining.py REPO [--max-commits N] [--skip-pydriller]

All three passes keep the same records: modified (or renamed) files of the chosen languages in
non-merge commits, both sides UTF-8 source text under the size cap (not an LFS pointer, generated
or minified: core.mining.content's verdict on the bytes), not whitespace-only, in commits
touching at most 100 files; paths compare as core.mining.paths writes them. Exact-duplicate skipping is off here, because which of two
identical changes comes "first" depends on each tool's walk order. The script checks that the
three sets of (sha, path, old and new text) are equal and prints records/s and ratios; our
miner and raw git are timed `--repeat` times (median). Run it on purpose, not in the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.mining.content import non_source_reason  # noqa: E402
from core.mining.gitio import LOG_FORMAT, iter_tokens, parse_log  # noqa: E402
from core.mining.mine import MineOptions, mine  # noqa: E402
from core.mining.paths import decode_path, path_text  # noqa: E402

EXTENSIONS = (".py", ".pyi")
OPTIONS = MineOptions(skip_duplicates=False)
Record = tuple[str, str, str]  # sha, path, digest of old and new text


def digest(old: str | bytes, new: str | bytes) -> str:
    as_bytes = [side.encode("utf-8") if isinstance(side, str) else side for side in (old, new)]
    return hashlib.sha1(as_bytes[0] + b"\0\0" + as_bytes[1]).hexdigest()


def keep_texts(old: bytes, new: bytes) -> bool:
    for side in (old, new):
        if len(side) > OPTIONS.max_file_bytes or b"\0" in side[:8000]:
            return False
        try:
            side.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if non_source_reason(side) is not None:
            return False
    return old.split() != new.split()


def run_ours(repo: str, max_commits: int | None) -> tuple[float, set[Record]]:
    """Mine into a new store (timed), then read every record back from the store (not timed)."""
    from sqlalchemy import text

    from stores.db import make_engine
    from stores.mining.commits import CommitRecorder, upsert_repository

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(Path(folder) / "bench.db")
        started = time.perf_counter()
        repository = upsert_repository(engine, repo, license=None, head_sha=None)
        recorder = CommitRecorder(engine, repository.id)
        options = MineOptions(skip_duplicates=False, max_commits=max_commits)
        for _event in mine(repo, options, sink=recorder):
            pass
        engine.dispose()  # closes the store: its last checkpoint is part of the time
        elapsed = time.perf_counter() - started
        records: set[Record] = set()
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT c.sha, c.path, o.text, n.text FROM commits c "
                "JOIN blobs o ON o.sha = c.old_blob JOIN blobs n ON n.sha = c.new_blob"))
            records.update((sha, path, digest(old, new)) for sha, path, old, new in rows)
        engine.dispose()
    return elapsed, records


def _raw_changes(repo: str, max_commits: int | None) -> list[tuple[str, str, str, str]]:
    args = ["git", "-C", repo, "log", "--no-merges", "--raw", "-z", "--no-abbrev", "-M",
            f"--format={LOG_FORMAT}"]
    if max_commits:
        args.append(f"--max-count={max_commits}")
    log = subprocess.Popen(args, stdout=subprocess.PIPE)
    wanted: list[tuple[str, str, str, str]] = []
    for commit in parse_log(iter_tokens(log.stdout)):  # type: ignore[arg-type]
        if len(commit.changes) > OPTIONS.max_files_per_commit:
            continue
        for change in commit.changes:
            if change.status in ("M", "R") and change.old_blob != change.new_blob \
                    and change.path.endswith(EXTENSIONS) \
                    and change.old_mode in ("100644", "100755") and change.new_mode in ("100644", "100755"):
                wanted.append((commit.sha, path_text(change.path), change.old_blob, change.new_blob))
    log.wait()
    return wanted


def _cat_file(repo: str, wanted: list[tuple[str, str, str, str]]) -> subprocess.Popen[bytes]:
    cat = subprocess.Popen(["git", "-C", repo, "cat-file", "--batch"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)

    def feed() -> None:
        assert cat.stdin is not None
        cat.stdin.write("".join(f"{old}\n{new}\n" for _s, _p, old, new in wanted).encode())
        cat.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    return cat


def run_raw_git(repo: str, max_commits: int | None) -> float:
    """The floor: one `git log --raw` pass and `cat-file --batch` of both sides, output discarded."""
    started = time.perf_counter()
    cat = _cat_file(repo, _raw_changes(repo, max_commits))
    assert cat.stdout is not None
    while cat.stdout.read(1 << 20):
        pass
    cat.wait()
    return time.perf_counter() - started


def reference_records(repo: str, max_commits: int | None) -> set[Record]:
    """The expected record set, straight from git output with the same filters (not timed)."""
    wanted = _raw_changes(repo, max_commits)
    cat = _cat_file(repo, wanted)
    assert cat.stdout is not None
    records: set[Record] = set()
    for sha, path, _old_blob, _new_blob in wanted:
        sides = []
        for _ in range(2):
            size = int(cat.stdout.readline().split()[2])
            sides.append(cat.stdout.read(size + 1)[:-1])
        if keep_texts(sides[0], sides[1]):
            records.add((sha, path, digest(sides[0], sides[1])))
    cat.wait()
    return records


def run_pydriller(repo: str, max_commits: int | None) -> tuple[float, set[Record]]:
    from pydriller import ModificationType, Repository

    started = time.perf_counter()
    records: set[Record] = set()
    walked = 0
    for commit in Repository(repo, only_no_merge=True, order="reverse").traverse_commits():
        walked += 1
        if max_commits and walked > max_commits:
            break
        changed = commit.modified_files  # a property that diffs again on every access: read it once
        if len(changed) > OPTIONS.max_files_per_commit:
            continue
        files = [f for f in changed if (f.new_path or "").endswith(EXTENSIONS)]
        for modified in files:
            if modified.change_type not in (ModificationType.MODIFY, ModificationType.RENAME):
                continue
            old, new = modified.content_before, modified.content
            if old is None or new is None or old == new or not keep_texts(old, new):
                continue
            records.add((commit.hash, path_text(decode_path(os.fsencode(modified.new_path))), digest(old, new)))
    return time.perf_counter() - started, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo")
    parser.add_argument("--max-commits", type=int, default=None)
    parser.add_argument("--skip-pydriller", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of ours and raw git (median)")
    args = parser.parse_args()
    if args.max_commits and not args.skip_pydriller:
        parser.error("--max-commits counts commits differently in PyDriller; use it with --skip-pydriller")

    raw = reference_records(args.repo, args.max_commits)
    raw_times, our_times = [], []
    for _ in range(args.repeat):
        raw_times.append(run_raw_git(args.repo, args.max_commits))
        ours_s, ours = run_ours(args.repo, args.max_commits)
        our_times.append(ours_s)
    raw_s, ours_s = statistics.median(raw_times), statistics.median(our_times)
    print(f"records: ours {len(ours)}, git reference {len(raw)}")
    print(f"raw git    {raw_s:7.2f} s  {len(raw) / raw_s:9.0f} records/s   (log + cat-file, output discarded)")
    print(f"ours+store {ours_s:7.2f} s  {len(ours) / ours_s:9.0f} records/s   {ours_s / raw_s:.2f}x raw git time")
    print(f"  runs (s): raw git {' '.join(f'{t:.2f}' for t in raw_times)} | ours {' '.join(f'{t:.2f}' for t in our_times)}")
    same = ours == raw
    if not args.skip_pydriller:
        py_s, py = run_pydriller(args.repo, args.max_commits)
        print(f"pydriller  {py_s:7.2f} s  {len(py) / py_s:9.0f} records/s   ours is {py_s / ours_s:.1f}x faster")
        same = same and py == ours
        if py != ours:
            print(f"  pydriller differs: {len(py - ours)} only there, {len(ours - py)} only ours")
            for sha, path, _digest in sorted(py ^ ours)[:8]:
                print(f"    {sha[:12]} {path} ({'pydriller only' if (sha, path, _digest) in py else 'ours only'})")
    if ours != raw:
        print(f"  raw git differs: {len(raw - ours)} only there, {len(ours - raw)} only ours")
    print("record sets match" if same else "RECORD SETS DIFFER")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
