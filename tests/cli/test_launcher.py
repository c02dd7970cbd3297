"""The console script: store-only arguments open the TUI directly, anything else goes to Typer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workbench.launcher import _tui_options


def test_only_store_options_take_the_tui_path() -> None:
    assert _tui_options([]) == (None, False)
    assert _tui_options(["--db", "x.db", "--debug"]) == ("x.db", True)
    assert _tui_options(["--db=sqlite:///y.db"]) == ("sqlite:///y.db", False)
    assert _tui_options(["jobs", "list"]) is None
    assert _tui_options(["--db", "x.db", "mine", "."]) is None
    assert _tui_options(["--help"]) is None


def test_tui_path_reports_a_bad_store_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "wb.db"
    result = subprocess.run(
        [sys.executable, "-c", "from workbench.launcher import main; main()", "--db", str(missing)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: cannot create store {missing}: folder {missing.parent} does not exist"


def test_tui_path_refuses_a_database_that_is_not_a_store(tmp_path: Path) -> None:
    import sqlite3

    foreign = tmp_path / "notes \x1b[31m.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()
    before = foreign.read_bytes()
    result = subprocess.run(
        [sys.executable, "-c", "from workbench.launcher import main; main()", "--db", str(foreign)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and "\x1b" not in result.stderr
    assert result.stderr.strip() == (f"error: {tmp_path}/notes ␛[31m.db is not a workbench store (it holds other "
                                     "tables: notes); choose another --db, it was not changed")
    assert foreign.read_bytes() == before


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app

    for args, message in (
        (["commits", "show", "1", "--side", "bogus"], "error: Invalid value for --side: choose diff, old, new or none"),
        (["commits", "show"], "error: Missing argument 'record'."),
        (["no-such-command"], "error: No such command 'no-such-command'."),
    ):
        result = CliRunner().invoke(app, ["--db", str(tmp_path / "wb.db"), *args])
        assert result.exit_code == 2
        assert result.stderr.strip() == message


def test_front_ends_do_not_need_click_installed() -> None:
    # Typer 0.29 vendors click; importing it directly breaks the base install, which lacks it.
    code = "import sys, workbench.cli, workbench.app, workbench.launcher; print('click' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"
