"""mine() keeps exactly the records git holds: blobs under cache pressure, dates, file names, non-source files,
and the accounting of every change."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.mining import mine as mine_module
from core.mining.events import CommitMined, MineEvent, MineFinished
from core.mining.mine import MineOptions, mine
from core.mining.paths import path_bytes
from core.mining.records import CommitRecord
from tests.conftest import GitRepo

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
GIT_ENV = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e.x", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@e.x"}


def records_of(events: list[MineEvent]) -> list[CommitRecord]:
    return [record for event in events if isinstance(event, CommitMined) for record in event.records]


def finished_of(events: list[MineEvent]) -> MineFinished:
    last = events[-1]
    assert isinstance(last, MineFinished)
    return last


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True, check=True,
                          env={**os.environ, **GIT_ENV}).stdout.decode().strip()


def fast_import(repo: Path, commits: list[tuple[str, dict[bytes, bytes]]]) -> list[str]:
    """A history from (message, {raw path: content}) steps; returns the commit shas, oldest first."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    stream = []
    for index, (message, files) in enumerate(commits):
        stream.append(b"commit refs/heads/main\nmark :%d\n" % (index + 1))
        stream.append(b"committer T <t@e.x> %d +0000\n" % (1_700_000_000 + index))
        stream.append(b"data %d\n%s\n" % (len(message.encode()), message.encode()))
        for raw_path, content in files.items():
            quoted = b'"' + b"".join(b"\\%03o" % byte if byte >= 0x80 or byte in b'"\\' or byte < 0x20
                                     else bytes([byte]) for byte in raw_path) + b'"'
            stream.append(b"M 100644 inline %s\ndata %d\n%s\n" % (quoted, len(content), content))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), check=True)
    return git(repo, "rev-list", "--reverse", "main").split()


# --- every blob is read for the batch that needs it -------------------------------------------------

def reverting_history(seed: int, commits: int = 60) -> tuple[list[tuple[str, dict[bytes, bytes]]], set[tuple]]:
    """Edits that keep going back to earlier contents (reverts), and the records they must give."""
    rng = random.Random(seed)
    pool = [b"".join(b"line_%d_%d = %d\n" % (version, row, row) for row in range(rng.randint(1, 30)))
            for version in range(5)]
    names = [b"a.py", b"b.py", b"c.py"]
    current = {name: pool[0] + name for name in names}
    steps: list[tuple[str, dict[bytes, bytes]]] = [("init", dict(current))]
    expected_changes: list[list[tuple[bytes, bytes, bytes]]] = [[]]
    for index in range(1, commits):
        edits: dict[bytes, bytes] = {}
        for name in rng.sample(names, rng.randint(1, 3)):
            content = rng.choice(pool) + name
            if content != current[name]:
                edits[name] = content
        steps.append((f"edit {index}", edits))
        expected_changes.append([(name, current[name], content) for name, content in edits.items()])
        current.update(edits)
    return steps, {(index, name.decode(), old, new) for index, changes in enumerate(expected_changes)
                   for name, old, new in changes}


@pytest.mark.parametrize(("commits_per_batch", "cache_bytes"), [(1, 0), (1, 64), (2, 0), (3, 200), (256, 128 << 20)])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_side_is_read_for_the_batch_that_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, commits_per_batch: int, cache_bytes: int, seed: int
) -> None:
    # A blob on its way for a later batch, evicted before an earlier batch used it, was counted
    # "missing": with a tiny cache and one commit per batch, reverts make that happen constantly.
    steps, expected = reverting_history(seed)
    shas = fast_import(tmp_path / "r", steps)
    monkeypatch.setattr(mine_module, "COMMITS_PER_BATCH", commits_per_batch)
    monkeypatch.setattr(mine_module, "BLOB_CACHE_BYTES", cache_bytes)
    events = list(mine(str(tmp_path / "r"), MineOptions(skip_duplicates=False, skip_whitespace_only=False)))
    got = {(shas.index(r.sha), r.path, r.old_data, r.new_data) for r in records_of(events)}
    assert got == expected
    finished = finished_of(events)
    assert "missing" not in finished.skipped
    assert finished.records_kept == len(expected)
    assert finished.records_kept + sum(finished.skipped.values()) == finished.changes_seen


# --- dates ------------------------------------------------------------------------------------------

DATE_CASES = [
    # (author date as the header holds it, the instant or None when no record date exists)
    ("1700000000 +0000", EPOCH + timedelta(seconds=1_700_000_000)),
    ("1700000000 +0530", EPOCH + timedelta(seconds=1_700_000_000)),
    ("1700000000 +2400", EPOCH + timedelta(seconds=1_700_000_000)),
    ("1700000000 +9999", EPOCH + timedelta(seconds=1_700_000_000)),
    ("1700000000 -9959", EPOCH + timedelta(seconds=1_700_000_000)),
    ("1700000000 +123456789", EPOCH + timedelta(seconds=1_700_000_000)),
    ("1700000000 -2500", EPOCH + timedelta(seconds=1_700_000_000)),
    ("1700000000 bogus", EPOCH + timedelta(seconds=1_700_000_000)),
    ("0 +0100", EPOCH),
    ("-1 +0000", EPOCH - timedelta(seconds=1)),
    ("-86400 -0700", EPOCH - timedelta(days=1)),
    ("99999999999 +0530", datetime(5138, 11, 16, 9, 46, 39, tzinfo=timezone.utc)),
    ("-62135596800 +0000", datetime(1, 1, 1, tzinfo=timezone.utc)),
    ("253402300799 -1200", datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
    ("253402300800 +0000", None),  # year 10000
    ("18446744073709551615 +0000", None),
    ("abc +0000", None),
    ("", None),
]


def dated_history(repo: Path) -> dict[str, datetime | None]:
    """One commit per DATE_CASES entry, each editing a.py, built from crafted headers; message -> instant."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    expected: dict[str, datetime | None] = {}
    parent = None
    for index, (date, instant) in enumerate([("1600000000 +0000", None), *DATE_CASES]):
        blob = git(repo, "hash-object", "-w", "--stdin", data=f"value = {index}\n".encode())
        tree = git(repo, "mktree", data=f"100644 blob {blob}\ta.py\n".encode())
        author = f"author A <a@x> {date}".rstrip()
        message = f"case {index}"
        body = (f"tree {tree}\n" + (f"parent {parent}\n" if parent else "") + f"{author}\n"
                f"committer C <c@x> 1600000000 +0000\n\n{message}\n")
        parent = git(repo, "hash-object", "-t", "commit", "--literally", "-w", "--stdin", data=body.encode())
        if index:
            expected[message] = instant
    git(repo, "update-ref", "refs/heads/main", parent or "")
    return expected


def test_every_author_date_maps_to_its_instant_whatever_the_offset(tmp_path: Path) -> None:
    expected = dated_history(tmp_path / "r")
    events = list(mine(str(tmp_path / "r")))
    got = {r.message.strip(): r.authored_at for r in records_of(events)}
    assert got == {message: instant for message, instant in expected.items() if instant is not None}
    assert all(moment.tzinfo is not None for moment in got.values())
    finished = finished_of(events)
    # No instant that a record can hold: the change is not stored with a made-up date, and says so.
    assert finished.skipped["bad_date"] == sum(1 for instant in expected.values() if instant is None)
    assert finished.records_kept + sum(finished.skipped.values()) == finished.changes_seen


# --- file names -------------------------------------------------------------------------------------

def test_file_names_that_are_not_utf8_are_kept_apart_and_lossless(tmp_path: Path) -> None:
    # A leading quote marks the quoted texts, so names that start with one are quoted too.
    names = [b"caf\xe9.py", b"caf\xe8.py", b"caf\xc3\xa9.py", b'"caf\\xe9.py', b'"caf\xe9".py', b"caf\\xe9.py",
             b"\xff\xfe.py", b"new\nline.py", b"\x1b[2Jclear.py"]
    shas = fast_import(tmp_path / "r", [("init", {name: b"x = 1\n" for name in names}),
                                        ("edit", {name: b"x = 2  # " + name.hex().encode() for name in names})])
    records = records_of(list(mine(str(tmp_path / "r"))))
    assert len(records) == len(names) and {r.sha for r in records} == {shas[1]}
    assert len({r.path for r in records}) == len(names)  # no two byte paths share a text
    assert sorted(path_bytes(r.path) for r in records) == sorted(names)
    for record in records:
        assert record.new_data == b"x = 2  # " + path_bytes(record.path).hex().encode()
        assert path_bytes(record.old_path) == path_bytes(record.path)
        record.path.encode("utf-8")  # storable text: no lone surrogates
    by_raw = {path_bytes(r.path): r.path for r in records}
    assert by_raw[b"caf\xc3\xa9.py"] == "café.py"  # valid UTF-8 stays as it is
    assert by_raw[b"caf\\xe9.py"] == "caf\\xe9.py"
    assert by_raw[b"caf\xe9.py"] == '"caf\\xe9.py"'
    assert by_raw[b'"caf\\xe9.py'] == '"\\"caf\\\\xe9.py"'


def test_renamed_file_with_a_non_utf8_old_name(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "r")
    body = "".join(f"line_{i} = {i}\n" for i in range(30))
    (repo.path / os.fsdecode(b"old\xe9.py")).write_text(body)
    repo.commit("init")
    repo.git("mv", os.fsdecode(b"old\xe9.py"), "new.py")
    repo.write("new.py", body + "extra = 1\n")
    repo.commit("rename")
    (record,) = records_of(list(mine(str(repo.path))))
    assert (path_bytes(record.old_path), record.path) == (b"old\xe9.py", "new.py")


# --- files that are not source code -----------------------------------------------------------------

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
NON_SOURCE = {
    b"weights.py": (LFS_POINTER % (b"a" * 64, 120), LFS_POINTER % (b"b" * 64, 130), "lfs_pointer"),
    b"pb2.py": (b"# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  DO NOT EDIT!\nX = 1\n",
                b"# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  DO NOT EDIT!\nX = 2\n",
                "generated"),
    b"api.go": (b"// Code generated by mockgen. DO NOT EDIT.\npackage api\nvar x = 1\n",
                b"// Code generated by mockgen. DO NOT EDIT.\npackage api\nvar x = 2\n", "generated"),
    b"facebook.py": (b'"""\n@generated SignedSource<<abc>>\n"""\nx = 1\n', b'"""\n@generated SignedSource<<abc>>\n"""\nx = 2\n',
                     "generated"),
    b"migration.py": (b"# Generated by Django 4.2 on 2024-01-01 10:00\nfrom django.db import migrations\nA = 1\n",
                      b"# Generated by Django 4.2 on 2024-01-01 10:00\nfrom django.db import migrations\nA = 2\n",
                      "generated"),
    b"auto.py": (b'"""Autogenerated from schema.json; edit the schema instead."""\nA = 1\n',
                 b'"""Autogenerated from schema.json; edit the schema instead."""\nA = 2\n', "generated"),
    b"bundle.js": (b"var a=1;" * 400 + b"\n", b"var b=2;" * 400 + b"\n", "minified"),
    b"app.js": (b"function a(){return 1}\n//# sourceMappingURL=app.js.map\n",
                b"function a(){return 2}\n//# sourceMappingURL=app.js.map\n", "generated"),
}
SOURCE_THAT_LOOKS_CLOSE = {
    # Mentions generation in passing, a short one-line file, a normal long-ish module.
    b"docs.py": (b'"""Helpers for the HTML generated by Sphinx."""\nA = 1\n',
                 b'"""Helpers for the HTML generated by Sphinx."""\nA = 2\n'),
    b"version.py": (b"__version__ = '" + b"1" * 150 + b"'\n", b"__version__ = '" + b"2" * 150 + b"'\n"),
    b"module.py": (b"".join(b"def f%d(x):\n    return x + %d\n\n" % (i, i) for i in range(100)),
                   b"".join(b"def f%d(x):\n    return x * %d\n\n" % (i, i) for i in range(100))),
}


def test_files_that_are_not_source_code_are_skipped_with_their_reason(tmp_path: Path) -> None:
    files = {**NON_SOURCE, **SOURCE_THAT_LOOKS_CLOSE}
    fast_import(tmp_path / "r", [("init", {name: old for name, (old, *_rest) in files.items()}),
                                 ("edit", {name: sides[1] for name, sides in files.items()})])
    events = list(mine(str(tmp_path / "r"), MineOptions(languages=("python", "go", "javascript"))))
    assert sorted(r.path for r in records_of(events)) == sorted(name.decode() for name in SOURCE_THAT_LOOKS_CLOSE)
    skipped = finished_of(events).skipped
    expected: dict[str, int] = {}
    for _old, _new, reason in NON_SOURCE.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert {reason: skipped.get(reason, 0) for reason in expected} == expected


def test_a_file_that_becomes_generated_is_skipped(tmp_path: Path) -> None:
    fast_import(tmp_path / "r", [("init", {b"a.py": b"A = 1\n"}),
                                 ("generate", {b"a.py": b"# Code generated by tool. DO NOT EDIT.\nA = 1\n"})])
    events = list(mine(str(tmp_path / "r")))
    assert records_of(events) == [] and finished_of(events).skipped["generated"] == 1


# --- accounting -------------------------------------------------------------------------------------

def hostile_history(repo: Path) -> None:
    """Something of every kind a skip reason exists for, plus names and messages that fight the parser."""
    names = [b"caf\xe9.py", b"caf\xe8.py", b"new\nline.py", b"\x1estart.py", b":colon.py", b"a -> b.py",
             b"\x1b[2Jclear.py", b"tab\there.py"]
    first = {name: b"x = 1\n" for name in names}
    second = {name: b"x = 2  # " + name.hex().encode() for name in names}
    first.update({b"bin.py": b"\x00\x01", b"latin.py": "s = 'é'\n".encode("latin-1"), b"ws.py": b"def f():\n    return 1\n",
                  b"dup1.py": b"v = 1\n", b"dup2.py": b"v = 1\n", b"README.md": b"hi\n", b"big.py": b"x = 1\n" * 400,
                  b"gen.py": NON_SOURCE[b"pb2.py"][0], b"lfs.py": NON_SOURCE[b"weights.py"][0]})
    second.update({b"bin.py": b"\x00\x02", b"latin.py": "s = 'è'\n".encode("latin-1"),
                   b"ws.py": b"def f():\n        return 1\n", b"dup1.py": b"v = 2\n", b"dup2.py": b"v = 2\n",
                   b"README.md": b"hello\n", b"big.py": b"x = 2\n" * 400, b"gen.py": NON_SOURCE[b"pb2.py"][1],
                   b"lfs.py": NON_SOURCE[b"weights.py"][1]})
    steps = [("init", first), ("edit all \x1e\x1b[31m [bold]x[/bold]", second),
             ("sweep", {f"m{i}.py".encode(): b"m = %d\n" % i for i in range(25)}),
             ("sweep again", {f"m{i}.py".encode(): b"m = %d\n" % (i + 1) for i in range(25)}),
             ("revert one", {b"caf\xe9.py": b"x = 1\n"})]
    fast_import(repo, steps)


def change_count(repo: Path) -> int:
    """File changes of non-merge commits as git lists them (the denominator of the accounting)."""
    log = subprocess.run(["git", "log", "--no-merges", "--raw", "-z", "-M", "--format=%x00"], cwd=repo,
                         capture_output=True, check=True).stdout
    tokens = iter(log.split(b"\0"))
    changes = 0
    for token in tokens:
        if token.lstrip(b"\n").startswith(b":"):  # a status line; its one or two paths follow
            changes += 1
            next(tokens)
            if token.split(b" ")[-1][:1] in (b"R", b"C"):
                next(tokens)
    return changes


MINE_SCRIPT = """
import json, sys
from core.mining.mine import MineOptions, mine
events = list(mine(sys.argv[1], MineOptions(max_files_per_commit=20, max_file_bytes=2000)))
last = events[-1]
print(json.dumps({"records": last.records_kept, "skipped": last.skipped, "changes": last.changes_seen,
                  "paths": sorted(r.path for e in events for r in getattr(e, "records", ()))}))
"""


def test_every_change_is_counted_once_and_the_same_way_every_run(tmp_path: Path) -> None:
    repo = tmp_path / "hostile"
    hostile_history(repo)
    runs = []
    for hash_seed in ("1", "2", "3"):
        result = subprocess.run([sys.executable, "-c", MINE_SCRIPT, str(repo)], capture_output=True, check=True,
                                env={**os.environ, "PYTHONHASHSEED": hash_seed})
        runs.append(json.loads(result.stdout))
    assert runs[0] == runs[1] == runs[2]
    summary = runs[0]
    assert summary["changes"] == change_count(repo) == 17 + 17 + 25 + 25 + 1
    assert summary["records"] + sum(summary["skipped"].values()) == summary["changes"]
    # "edit all": the 8 names, dup1.py; "revert one": caf\xe9.py again.
    assert summary["records"] == len(summary["paths"]) == 10
    assert summary["skipped"] == {"added_or_deleted": 16, "language": 2, "binary": 1, "undecodable": 1,
                                  "too_large": 1, "generated": 1, "lfs_pointer": 1, "whitespace_only": 1,
                                  "duplicate": 1, "too_many_files": 50}


def commit_chain(repo: Path, steps: list[tuple[str, str, bytes]]) -> None:
    """Commits from crafted headers: (message, author date as stored, new content of a.py)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    parent = None
    for message, date, content in steps:
        blob = git(repo, "hash-object", "-w", "--stdin", data=content)
        tree = git(repo, "mktree", data=f"100644 blob {blob}\ta.py\n".encode())
        body = (f"tree {tree}\n" + (f"parent {parent}\n" if parent else "") + f"author A <a@x> {date}\n"
                f"committer C <c@x> 1600000000 +0000\n\n{message}\n")
        parent = git(repo, "hash-object", "-t", "commit", "--literally", "-w", "--stdin", data=body.encode())
    git(repo, "update-ref", "refs/heads/main", parent or "")


def test_only_a_kept_change_makes_its_twin_a_duplicate(tmp_path: Path) -> None:
    # The newest v1 -> v2 cannot be stored (no date); the older identical change must not be
    # dropped as its duplicate, and two identical whitespace-only changes are both whitespace-only.
    commit_chain(tmp_path / "r", [("init", "1600000000 +0000", b"v = 1\n"),
                                  ("first", "1600000100 +0000", b"v = 2\n"),
                                  ("back", "1600000200 +0000", b"v = 1\n"),
                                  ("undated", "abc +0000", b"v = 2\n"),
                                  ("indent", "1600000300 +0000", b"v =  2\n"),
                                  ("undo", "1600000400 +0000", b"v = 2\n"),
                                  ("indent again", "1600000500 +0000", b"v =  2\n")])
    events = list(mine(str(tmp_path / "r")))
    assert sorted(r.message.strip() for r in records_of(events)) == ["back", "first"]
    skipped = finished_of(events).skipped
    assert skipped == {"added_or_deleted": 1, "bad_date": 1, "whitespace_only": 3}


def test_a_cancelled_run_counts_only_what_it_handed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    steps, _expected = reverting_history(3, commits=40)
    fast_import(tmp_path / "r", steps)
    monkeypatch.setattr(mine_module, "COMMITS_PER_BATCH", 2)
    cancel = threading.Event()
    events: list[MineEvent] = []
    for event in mine(str(tmp_path / "r"), MineOptions(skip_duplicates=False), cancel=cancel):
        events.append(event)
        if isinstance(event, CommitMined) and len(records_of(events)) >= 5:
            cancel.set()
    finished = finished_of(events)
    assert finished.cancelled
    assert finished.records_kept == len(records_of(events))
    assert finished.records_kept + sum(finished.skipped.values()) == finished.changes_seen
    assert finished.commits_seen < 40


def test_path_text_round_trips_every_byte_path() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from core.mining.paths import decode_path, path_text

    @settings(max_examples=500, deadline=None)
    @given(st.lists(st.binary(min_size=1, max_size=12).filter(lambda b: b"\0" not in b), min_size=2, max_size=6,
                    unique=True))
    def check(raws: list[bytes]) -> None:
        texts = [path_text(decode_path(raw)) for raw in raws]
        assert [path_bytes(text) for text in texts] == raws
        assert len(set(texts)) == len(raws)
        for raw, text in zip(raws, texts):
            text.encode("utf-8")
            try:
                assert text == raw.decode("utf-8") or raw.startswith(b'"')
            except UnicodeDecodeError:
                assert text.startswith('"')

    check()
