"""`workbench mine`, `commits` and `jobs` through CliRunner, and a kill -9 in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stores.db import make_engine
from tests.conftest import GitRepo
from tests.fixtures import HOSTILE_TEXT
from workbench.cli import app

runner = CliRunner()


def invoke(db: Path, *args: str):
    return runner.invoke(app, ["--db", str(db), *args])


def small_repo(make_repo: Callable[[str], GitRepo]) -> GitRepo:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n"})
    repo.commit(f"fix {HOSTILE_TEXT}", {"a.py": f"a = 1  # {HOSTILE_TEXT}\n"})
    return repo


def test_mine_then_list_and_show(db_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    repo = small_repo(make_repo)
    result = invoke(db_path, "mine", str(repo.path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 1 and summary["state"] == "done"
    listed = json.loads(invoke(db_path, "commits", "list", "--json").stdout)
    assert listed["total"] == 1
    (row,) = listed["commits"]
    assert row["subject"] == f"fix {HOSTILE_TEXT}"
    shown = invoke(db_path, "commits", "show", row["sha"][:8])
    assert shown.exit_code == 0
    assert f"+a = 1  # {HOSTILE_TEXT}" in shown.stdout
    new_side = invoke(db_path, "commits", "show", str(row["id"]), "--side", "new")
    assert new_side.stdout.endswith(f"a = 1  # {HOSTILE_TEXT}\n")
    jobs = json.loads(invoke(db_path, "jobs", "list", "--json").stdout)
    assert [(j["kind"], j["state"]) for j in jobs] == [("mine", "done")]
    again = invoke(db_path, "mine", str(repo.path))
    assert again.exit_code == 0 and "0 records" in again.stdout


@pytest.mark.parametrize(
    ("target", "extra", "message", "code"),
    [
        ("missing", [], "no such file or directory", 2),
        ("file", [], "is a file, not a git repository", 2),
        ("empty", [], "has no commits yet", 1),
        ("repo", ["--rev", "no-such-branch"], "unknown revision 'no-such-branch'", 2),
        ("repo", ["--language", "cobol"], "unsupported language cobol", 2),
        ("repo", ["--license", "GPL-3.0"], "not in the allow-list", 1),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_store_intact(
    db_path: Path, tmp_path: Path, make_repo: Callable[[str], GitRepo], target: str, extra: list[str], message: str,
    code: int,
) -> None:
    repo = small_repo(make_repo)
    assert invoke(db_path, "mine", str(repo.path)).exit_code == 0
    paths = {"missing": tmp_path / "nope", "file": tmp_path / "f.txt", "empty": make_repo("empty").path,
             "repo": repo.path}
    (tmp_path / "f.txt").write_text("x")
    result = invoke(db_path, "mine", str(paths[target]), *extra)
    assert result.exit_code == code
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(invoke(db_path, "commits", "list", "--json").stdout)["total"] == 1
    assert len(json.loads(invoke(db_path, "jobs", "list", "--json").stdout)) == 1


def test_read_only_store_gives_one_line(db_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    repo = small_repo(make_repo)
    assert invoke(db_path, "mine", str(repo.path)).exit_code == 0
    read_only = f"sqlite:///file:{db_path}?mode=ro&uri=true"
    listed = runner.invoke(app, ["--db", read_only, "commits", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["total"] == 1
    record_id = json.loads(listed.stdout)["commits"][0]["id"]
    shown = runner.invoke(app, ["--db", read_only, "commits", "show", str(record_id), "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["new_text"]  # texts come from their own file
    repo.commit("more", {"a.py": "a = 2\n"})
    result = runner.invoke(app, ["--db", read_only, "mine", str(repo.path)])
    assert result.exit_code == 1
    assert "readonly" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(invoke(db_path, "commits", "list", "--json").stdout)["total"] == 1


def test_locked_store_gives_one_line(db_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    repo = small_repo(make_repo)
    make_engine(db_path).dispose()
    holder = sqlite3.connect(db_path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = invoke(db_path, "mine", str(repo.path))
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 1
    assert "locked" in result.stderr and "Traceback" not in result.stderr
    assert invoke(db_path, "mine", str(repo.path)).exit_code == 0


def test_unknown_record_and_job(db_path: Path) -> None:
    make_engine(db_path).dispose()
    for args in (["commits", "show", "42"], ["jobs", "show", "7"]):
        result = invoke(db_path, *args)
        assert result.exit_code == 1 and "does not exist" in result.stderr


def _fast_import_history(path: Path, commits: int) -> None:
    """Thousands of commits in a second: one file per module, each commit edits one module."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines = []
    for i in range(commits):
        body = f"VALUE = {i}\n" + "".join(f"def f{j}():\n    return {j * i}\n" for j in range(20))
        data = body.encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(f"committer T <t@e.x> {1_700_000_000 + i} +0000\n".encode())
        message = f"change {i}".encode()
        lines.append(b"data %d\n%s\n" % (len(message), message))
        lines.append(b"M 100644 inline mod%d.py\n" % (i % 50))
        lines.append(b"data %d\n%s\n" % (len(data), data))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(lines), check=True)


def _records(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT sha, path FROM commits ORDER BY sha, path").fetchall()


def test_kill_9_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "big"
    _fast_import_history(repo, 4000)
    reference_db = tmp_path / "reference.db"
    assert invoke(reference_db, "mine", str(repo)).exit_code == 0
    expected = _records(reference_db)
    assert len(expected) == 4000 - 50  # each module's first version is an added file

    killed_db = tmp_path / "killed.db"
    command = [sys.executable, "-m", "workbench.cli", "--db", str(killed_db), "mine", str(repo)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        if killed_db.exists():
            try:
                stored = len(_records(killed_db))
            except sqlite3.OperationalError:
                stored = 0
            if stored:
                break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = _records(killed_db)
    assert 0 < len(partial) < len(expected), "the kill should land mid-run"
    assert len(partial) == len(set(partial))

    # Nothing but its heartbeat says the job died: it reads running until the lease runs out.
    (job,) = json.loads(invoke(killed_db, "jobs", "list", "--json").stdout)
    assert job["state"] == "running" and job["attempts"] == 1
    monkeypatch.setenv("WORKBENCH_LEASE_S", "2")  # from here on, a heartbeat 2 s old has run out
    time.sleep(2.5)
    listed = invoke(killed_db, "jobs", "list")
    assert "running (no heartbeat: its worker stopped?)" in listed.stdout
    resumed = invoke(killed_db, "mine", str(repo), "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["records"] == len(expected) - len(partial)
    assert _records(killed_db) == expected
    (job,) = json.loads(invoke(killed_db, "jobs", "list", "--json").stdout)  # the same job, taken over and ended
    assert job["state"] == "done" and job["attempts"] == 2
    # Its counters are the job's, the dead worker's records included (the takeover used to count only its own).
    shown = json.loads(invoke(killed_db, "jobs", "show", str(job["id"]), "--json").stdout)
    assert shown["summary"]["records_stored"] == shown["summary"]["records_kept"] == shown["done"] == len(expected)


@pytest.mark.parametrize("waits_for", [1, 2000])
def test_ctrl_c_keeps_counters_equal_to_what_the_store_holds(tmp_path: Path, waits_for: int) -> None:
    # Ctrl-C early (first records) and late (mid-run, buffered records written at close): either way the
    # job's counters are the records the store holds for it, and the error line says how to resume.
    repo = tmp_path / "big"
    _fast_import_history(repo, 4000)
    db = tmp_path / "wb.db"
    command = [sys.executable, "-m", "workbench.cli", "--db", str(db), "mine", str(repo)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if db.exists() and len(_records(db)) >= waits_for:
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    stored = len(_records(db))
    assert 0 < stored < 4000 - 50, "the interrupt should land mid-run"
    (job,) = json.loads(invoke(db, "jobs", "list", "--json").stdout)
    shown = json.loads(invoke(db, "jobs", "show", str(job["id"]), "--json").stdout)
    assert process.returncode == 130 and job["state"] == "cancelled"
    assert shown["summary"]["records_stored"] == shown["summary"]["records_kept"] == shown["done"] == stored
    line = err.decode().strip().splitlines()[-1]
    assert line.startswith(f"error: interrupted: mine job {job['id']} is cancelled with {stored:,} done")
    assert f"workbench jobs resume {job['id']}" in line


def test_read_only_store_without_its_texts_file_still_lists(db_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    repo = small_repo(make_repo)
    assert invoke(db_path, "mine", str(repo.path)).exit_code == 0
    db_path.with_name(f"{db_path.stem}.texts{db_path.suffix}").unlink()
    read_only = f"sqlite:///file:{db_path}?mode=ro&uri=true"
    listed = runner.invoke(app, ["--db", read_only, "commits", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["total"] == 1
    record_id = json.loads(listed.stdout)["commits"][0]["id"]
    shown = runner.invoke(app, ["--db", read_only, "commits", "show", str(record_id), "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["new_text"] == ""  # an empty stand-in, no crash


def test_non_utf8_names_are_all_stored_and_shown_safely(db_path: Path, tmp_path: Path) -> None:
    from tests.core.test_mining_integrity import fast_import

    names = [b"caf\xe9.py", b"caf\xe8.py", b"\x1b]52;c;aGk=\x07clip.py"]
    fast_import(tmp_path / "r", [("init", {name: b"x = 1\n" for name in names}),
                                 ("fix \x1b[2J", {name: b"x = 2  # " + name.hex().encode() for name in names})])
    result = invoke(db_path, "mine", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    listed = json.loads(invoke(db_path, "commits", "list", "--json").stdout)
    assert summary["records"] == listed["total"] == 3  # the summary is what was stored
    # Valid UTF-8 names stay as they are (JSON escapes their controls); others are quoted.
    assert sorted(row["path"] for row in listed["commits"]) == ["\x1b]52;c;aGk=\x07clip.py", '"caf\\xe8.py"',
                                                               '"caf\\xe9.py"']
    table = invoke(db_path, "commits", "list").stdout
    assert '"caf\\xe9.py"' in table and '"caf\\xe8.py"' in table
    assert "\x1b" not in table and "\x07" not in table
    shown = invoke(db_path, "commits", "show", "1")
    assert shown.exit_code == 0 and "\x1b" not in shown.stdout and "fix ␛[2J" in shown.stdout


def test_mine_prints_no_progress_off_a_terminal(db_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    repo = small_repo(make_repo)
    result = invoke(db_path, "mine", str(repo.path))
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith("job 1: 1 records from 2 file changes in 2 commits")


def test_a_reader_that_goes_away_is_no_error(tmp_path: Path) -> None:
    """`workbench commits list | head -1`: the closed pipe ends the command quietly, with no error line."""
    repo = tmp_path / "big"
    _fast_import_history(repo, 2000)
    db = tmp_path / "wb.db"
    assert invoke(db, "mine", str(repo)).exit_code == 0
    command = [sys.executable, "-m", "workbench.cli", "--db", str(db), "commits", "list", "--limit", "2000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline()
    process.stdout.close()  # the reader is gone, with most of the table still to write
    _out, err = process.communicate(timeout=60)
    assert err.decode() == "" and process.returncode == 1
