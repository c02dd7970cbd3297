"""mine() on small repositories built in tmp_path."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import OptionError, RepositoryError
from core.mining.events import CommitMined, MineEvent, MineFinished, MineProgress, MineStarted
from core.mining.linediff import compare_texts
from core.mining.mine import MineOptions, mine, probe_repository
from tests.conftest import GitRepo


class ListSink:
    def __init__(self) -> None:
        self.events: list[MineEvent] = []

    def record(self, event: MineEvent) -> None:
        self.events.append(event)


def records_of(events: list[MineEvent]) -> list:
    return [record for event in events if isinstance(event, CommitMined) for record in event.records]


def finished_of(events: list[MineEvent]) -> MineFinished:
    last = events[-1]
    assert isinstance(last, MineFinished)
    return last


def test_records_one_row_per_changed_file_with_both_sides(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "x = 1\n", "b.py": "y = 2\n", "README.md": "hi\n"})
    sha = repo.commit("change both\n\nbody line", {"a.py": "x = 10\n", "b.py": "y = 2\nz = 3\n",
                                                    "README.md": "hello\n"})
    sink = ListSink()
    events = list(mine(str(repo.path), sink=sink))
    assert isinstance(events[0], MineStarted)
    assert sink.events == events
    records = sorted(records_of(events), key=lambda r: r.path)
    assert [(r.path, r.old_text, r.new_text) for r in records] == [
        ("a.py", "x = 1\n", "x = 10\n"),
        ("b.py", "y = 2\n", "y = 2\nz = 3\n"),
    ]
    first = records[0]
    assert first.sha == sha
    assert first.parent_sha == repo.git("rev-parse", "HEAD~1").strip()
    assert first.message == "change both\n\nbody line\n"
    assert first.author == "Ada Tester" and first.author_email == "ada@example.com"
    assert first.authored_at.year == 2024 and first.authored_at.tzinfo is not None
    assert (first.lines_added, first.lines_removed) == (1, 1)
    assert (records[1].lines_added, records[1].lines_removed) == (1, 0)
    assert first.language == "python"
    finished = finished_of(events)
    assert finished.records_kept == 2 and not finished.cancelled
    assert finished.skipped["added_or_deleted"] == 2  # the initial commit's two python files


def test_rename_with_edit_keeps_old_path(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    body = "".join(f"line_{i} = {i}\n" for i in range(30))
    repo.commit("init", {"old_name.py": body})
    repo.git("mv", "old_name.py", "new_name.py")
    repo.write("new_name.py", body + "extra = 1\n")
    repo.commit("rename and edit")
    (record,) = records_of(list(mine(str(repo.path))))
    assert (record.old_path, record.path) == ("old_name.py", "new_name.py")
    assert record.new_text.endswith("extra = 1\n")


def test_merge_commits_are_skipped(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("feature edit", {"b.py": "b = 2\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("main edit", {"a.py": "a = 2\n"})
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    messages = sorted(r.message.strip() for r in records_of(list(mine(str(repo.path)))))
    assert messages == ["feature edit", "main edit"]


def test_binary_undecodable_and_huge_files_are_skipped(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"bin.py": b"\x00\x01\x02", "latin.py": "s = 'caf\xe9'\n".encode("latin-1"),
                         "huge.py": "x = 1\n" * 50_000, "ok.py": "ok = 1\n"})
    repo.commit("edit all", {"bin.py": b"\x00\x01\x03", "latin.py": "s = 'd\xe9j\xe0'\n".encode("latin-1"),
                             "huge.py": "x = 2\n" * 50_000, "ok.py": "ok = 2\n"})
    events = list(mine(str(repo.path), MineOptions(max_file_bytes=100_000)))
    assert [r.path for r in records_of(events)] == ["ok.py"]
    skipped = finished_of(events).skipped
    assert skipped["binary"] == 1
    assert skipped["undecodable"] == 1
    assert skipped["too_large"] == 1


def test_non_ascii_utf8_text_round_trips(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"u.py": "greeting = 'héllo'\n"})
    repo.commit("ünïcode", {"u.py": "greeting = 'héllo wörld ✓'\n"})
    (record,) = records_of(list(mine(str(repo.path))))
    assert record.new_text == "greeting = 'héllo wörld ✓'\n"
    assert record.message == "ünïcode\n"


def test_whitespace_only_changes_are_skipped_unless_asked(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "def f():\n    return 1\n"})
    repo.commit("reindent", {"a.py": "def f():\n        return 1\n\n"})
    events = list(mine(str(repo.path)))
    assert records_of(events) == []
    assert finished_of(events).skipped["whitespace_only"] == 1
    kept = records_of(list(mine(str(repo.path), MineOptions(skip_whitespace_only=False))))
    assert len(kept) == 1


def test_exact_duplicate_changes_are_kept_once(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "v = 1\n", "b.py": "v = 1\n"})
    repo.commit("same edit twice", {"a.py": "v = 2\n", "b.py": "v = 2\n"})
    events = list(mine(str(repo.path)))
    assert len(records_of(events)) == 1
    assert finished_of(events).skipped["duplicate"] == 1
    assert len(records_of(list(mine(str(repo.path), MineOptions(skip_duplicates=False))))) == 2


def test_commits_touching_too_many_files_are_skipped(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {f"m{i}.py": f"v = {i}\n" for i in range(5)})
    repo.commit("sweeping", {f"m{i}.py": f"v = {i + 100}\n" for i in range(5)})
    repo.commit("small", {"m0.py": "v = -1\n"})
    events = list(mine(str(repo.path), MineOptions(max_files_per_commit=3)))
    assert [r.message.strip() for r in records_of(events)] == ["small"]
    assert finished_of(events).skipped["too_many_files"] == 10  # the five files of "init" and of "sweeping"


def test_languages_select_extensions(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 1\n", "b.js": "let b = 1;\n", "c.go": "package c\n"})
    repo.commit("edit", {"a.py": "a = 2\n", "b.js": "let b = 2;\n", "c.go": "package c // x\n"})
    paths = sorted(r.path for r in records_of(list(mine(str(repo.path), MineOptions(languages=("javascript", "go"))))))
    assert paths == ["b.js", "c.go"]
    with pytest.raises(OptionError, match="unsupported language cobol"):
        list(mine(str(repo.path), MineOptions(languages=("cobol",))))


def test_rev_range_and_all_branches(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n"})
    repo.commit("one", {"a.py": "a = 1\n"})
    repo.git("tag", "v1")
    repo.commit("two", {"a.py": "a = 2\n"})
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side", {"a.py": "a = 3\n"})
    repo.git("checkout", "-q", "main")
    in_range = [r.message.strip() for r in records_of(list(mine(str(repo.path), MineOptions(rev="v1..main"))))]
    assert in_range == ["two"]
    everywhere = sorted(r.message.strip() for r in records_of(list(mine(str(repo.path), MineOptions(all_branches=True)))))
    assert everywhere == ["one", "side", "two"]
    with pytest.raises(RepositoryError, match="unknown revision 'nope'"):
        list(mine(str(repo.path), MineOptions(rev="v1..nope")))


def test_bad_paths_raise_before_any_event(tmp_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    with pytest.raises(RepositoryError, match="no such file"):
        list(mine(str(tmp_path / "missing")))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(RepositoryError, match="is a file"):
        list(mine(str(a_file)))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepositoryError, match="not a git repository"):
        list(mine(str(plain)))
    empty = make_repo("empty")
    with pytest.raises(RepositoryError, match="no commits yet"):
        list(mine(str(empty.path)))


def test_shallow_clone_mines_the_commits_it_has(make_repo: Callable[[str], GitRepo], tmp_path: Path) -> None:
    repo = make_repo("origin")
    repo.commit("init", {"a.py": "a = 0\n"})
    for i in range(1, 5):
        repo.commit(f"edit {i}", {"a.py": f"a = {i}\n"})
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "2", f"file://{repo.path}", str(clone)], check=True)
    messages = [r.message.strip() for r in records_of(list(mine(str(clone))))]
    assert messages == ["edit 4"]  # the boundary commit has no parent here, so nothing to compare


def test_license_detection_and_allow_list(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    mit = ("MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"
           "of this software...\n")
    repo.commit("init", {"LICENSE": mit, "a.py": "a = 0\n"})
    repo.commit("edit", {"a.py": "a = 1\n"})
    assert probe_repository(str(repo.path)).license == "MIT"
    started = next(iter(mine(str(repo.path), MineOptions(licenses=("permissive",)))))
    assert isinstance(started, MineStarted) and started.license == "MIT"
    with pytest.raises(RepositoryError, match="license MIT is not in the allow-list"):
        list(mine(str(repo.path), MineOptions(licenses=("GPL-3.0",))))
    gpl = make_repo("gpl")
    gpl.commit("init", {"COPYING": "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n", "a.py": "a\n"})
    assert probe_repository(str(gpl.path)).license == "GPL-3.0"


def test_skip_commits_and_cancel(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n"})
    shas = [repo.commit(f"edit {i}", {"a.py": f"a = {i}\n"}) for i in range(1, 4)]
    kept = records_of(list(mine(str(repo.path), skip_commits={shas[0], shas[2]})))
    assert [r.sha for r in kept] == [shas[1]]
    cancel = threading.Event()
    cancel.set()
    events = list(mine(str(repo.path), cancel=cancel))
    assert finished_of(events).cancelled


def test_progress_is_time_based(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n"})
    repo.commit("edit", {"a.py": "a = 1\n"})
    ticks = iter(range(0, 1000))
    events = list(mine(str(repo.path), clock=lambda: float(next(ticks))))
    assert any(isinstance(e, MineProgress) for e in events)
    quiet = list(mine(str(repo.path), clock=lambda: 0.0))
    assert not any(isinstance(e, MineProgress) for e in quiet)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"a\nb\nc\n", b"a\nX\nc\n", (1, 1, False)),
        (b"a\nb\n", b"a\nb\nc\n", (1, 0, False)),
        (b"", b"x\ny\n", (2, 0, False)),
        (b"a\n  b\n", b"a\nb\n", (1, 1, True)),
        (b"import os\nA\nB\n", b"import sys\nA\nB\nC\n", (2, 1, False)),
        (b"a\n\nb\n", b"a\n\n\nb\n", (1, 0, True)),
    ],
)
def test_compare_texts_counts_lines_like_a_diff(old: bytes, new: bytes, expected: tuple[int, int, bool]) -> None:
    assert compare_texts(old, new) == expected


def test_compare_texts_matches_difflib_when_no_lines_move() -> None:
    import difflib
    import random

    rng = random.Random(7)
    for _ in range(300):
        old = [f"line {i}" for i in range(rng.randint(0, 40))]
        new = list(old)
        for _edit in range(rng.randint(1, 4)):
            position = rng.randint(0, len(new))
            if new and rng.random() < 0.5:
                del new[min(position, len(new) - 1)]
            else:
                new.insert(position, f"new {rng.random()}")
        opcodes = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
        added = sum(j2 - j1 for tag, _i1, _i2, j1, j2 in opcodes if tag in ("insert", "replace"))
        removed = sum(i2 - i1 for tag, i1, i2, _j1, _j2 in opcodes if tag in ("delete", "replace"))
        encode = lambda lines: "".join(f"{line}\n" for line in lines).encode()  # noqa: E731
        assert compare_texts(encode(old), encode(new))[:2] == (added, removed)


def test_side_branch_commits_are_kept_when_a_merge_discarded_them(make_repo: Callable[[str], GitRepo]) -> None:
    # A path-limited `git log` simplifies history and would drop "side edit" (its merge kept main's
    # tree); PyDriller and a plain walk see it, so the miner walks the full history.
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n"})
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side edit", {"a.py": "a = 'side'\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("main edit", {"a.py": "a = 'main'\n"})
    repo.git("merge", "-q", "-s", "ours", "-m", "merge side, keep main", "side")
    messages = sorted(r.message.strip() for r in records_of(list(mine(str(repo.path)))))
    assert messages == ["main edit", "side edit"]


def test_runs_collect_less_often_and_restore_the_collector_settings(make_repo: Callable[[str], GitRepo]) -> None:
    import gc

    from core.mining.mine import RUN_GC_THRESHOLD, fewer_collections

    repo = make_repo("gc")
    repo.commit("init", {"a.py": "a = 0\n"})
    repo.commit("edit", {"a.py": "a = 1\n"})
    before = gc.get_threshold()
    events = mine(str(repo.path))
    next(events)
    assert gc.get_threshold()[0] == max(RUN_GC_THRESHOLD, before[0])
    with fewer_collections():  # a second run at the same time keeps the setting...
        pass
    assert gc.get_threshold()[0] == max(RUN_GC_THRESHOLD, before[0])
    assert sum(1 for _ in events) >= 2
    assert gc.get_threshold() == before  # ...and the last one out restores it
