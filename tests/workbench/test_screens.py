"""Pilot tests of the app shell, the dashboard, the commits screen and the commit view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input, Select, Static

from stores.jobs import list_jobs
from tests.conftest import GitRepo
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.helpers import settle
from tests.workbench.pilot import click
from tests.workbench.seed import seed_commits
from tests.workers import pilot_wait_for, worker_thread
from workbench.app import make_app
from workbench.screens.commit_view import CommitViewScreen
from workbench.screens.commits import CommitsScreen
from workbench.screens.dashboard import DashboardScreen
from workbench.screens.help import HelpScreen
from workbench.widgets.commit_table import FIRST_PAGE_SIZE, PAGE_SIZE, CommitTable
from workbench.widgets.diff_view import DiffView


def static_text(widget: Static) -> str:
    return str(widget.render())


async def test_dashboard_shows_counts_and_jobs_with_hostile_titles(tmp_path: Path) -> None:
    engine = seed_commits(tmp_path / "wb.db", 12)
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, DashboardScreen)
        summary = static_text(app.screen.query_one("#summary", Static))
        assert "commits       12" in summary and "repositories  1" in summary
        table = app.screen.job_table
        assert table.row_count == 1
        assert str(table.get_row_at(0)[4]) == f"mine /repos/demo {HOSTILE_TEXT}"
        await pilot.press("enter")
        await pilot.pause()
        assert "records_kept: 12" in static_text(app.screen.query_one("#job-detail", Static))


async def test_help_and_screen_keys(tmp_path: Path) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "c")
        assert isinstance(app.screen, CommitsScreen)
        await pilot.press("d")
        assert isinstance(app.screen, DashboardScreen)


async def test_commits_page_in_and_filter(tmp_path: Path) -> None:
    engine = seed_commits(tmp_path / "wb.db", 1500)
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("c")
        await settle(app, pilot)
        table = app.screen.query_one(CommitTable)
        assert table.row_count == FIRST_PAGE_SIZE  # one page, not the whole store
        assert "1,500 records" in static_text(app.screen.query_one("#count", Static))
        await pilot.press("ctrl+end")
        await settle(app, pilot)
        assert table.row_count == FIRST_PAGE_SIZE + PAGE_SIZE
        ids = [int(str(table.get_row_at(i)[0])) for i in range(table.row_count)]
        assert ids == list(range(1, FIRST_PAGE_SIZE + PAGE_SIZE + 1))
        app.screen.query_one("#path-filter", Input).value = "module_5.py"
        await pilot.pause()
        await settle(app, pilot)
        assert table.row_count == 16  # ids 6, 103, ... (every 97th record)
        assert "16 records" in static_text(app.screen.query_one("#count", Static))


async def test_commit_view_shows_hostile_text_as_plain_text(tmp_path: Path) -> None:
    engine = seed_commits(tmp_path / "wb.db", 3)
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("c")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CommitViewScreen)
        header = static_text(screen.query_one("#commit-header", Static))
        assert f"Use sum() {HOSTILE_TEXT}" in header and "[red]not markup[/red]" in header
        diff = screen.query_one(DiffView).diff
        assert diff is not None and diff.rows[-1].left == f"    return s  # {HOSTILE_TEXT}"
        assert [row.right for row in diff.rows if row.right] == [
            "def total(xs):", f"    return sum(xs)  # {HOSTILE_TEXT}"]
        await pilot.press("v")
        await pilot.pause()
        assert screen.query_one("#unified").display and not screen.query_one("#sides").display
        await pilot.press("escape")
        assert isinstance(app.screen, CommitsScreen)


async def test_mine_from_the_tui(tmp_path: Path, make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n"})
    repo.commit(f"edit {HOSTILE_TEXT}", {"a.py": "a = 1\n"})
    app = make_app(tmp_path / "wb.db")
    seen: list[object] = []
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await pilot.press("c", "m")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(repo.path)
        with worker_thread(app.engine):  # the job runs in a worker, never in the TUI's own workers
            await click(pilot, "#start")
            await pilot_wait_for(pilot, lambda: "done" in static_text(app.screen.query_one("#mine-status", Static)),
                                 what="the mining job to end")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CommitsScreen)
        assert app.screen.query_one(CommitTable).row_count == 1
        status = static_text(app.screen.query_one("#mine-status", Static))
        assert "job 1 done: 1 records stored from 2 commits" in status
        assert any(isinstance(m, CommitsScreen.MineProgressed) for m in seen)
        repo_filter = app.screen.query_one("#repo-filter", Select)
        repo_filter.value = 1  # the repository just mined
        await pilot.pause()
        await settle(app, pilot)
        assert "1 records" in static_text(app.screen.query_one("#count", Static))


async def test_mine_dialog_rejects_bad_input(tmp_path: Path) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("c", "m")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#languages", Input).value = "cobol"
        dialog.query_one("#path", Input).value = "/x"
        await click(pilot, "#start")
        await pilot.pause()
        assert app.screen is dialog
        assert "unsupported language cobol" in static_text(dialog.query_one("#error", Static))
        dialog.query_one("#languages", Input).value = "python"
        path_input = dialog.query_one("#path", Input)
        path_input.value = str(tmp_path / "missing")
        path_input.focus()
        await pilot.press("enter")
        await pilot.pause()
        await settle(app, pilot)
        assert app.screen is dialog  # refused: the dialog stays, with the reason, for the user to correct
        assert "no such file" in static_text(dialog.query_one("#error", Static))
        assert list_jobs(app.engine) == []  # bad input is refused before any job is written


async def test_command_palette_opens_screens(tmp_path: Path) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open commits")
        await pilot.pause()
        await settle(app, pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CommitsScreen)


def test_help_lists_every_screen_and_its_own_keys() -> None:
    from workbench.app import SCREEN_MODES
    from workbench.screens.help import help_markdown

    text = help_markdown()
    for _mode, _screen, key, title in SCREEN_MODES:
        assert f"| `{key}` | {title} |" in text
    assert "`m` Mine repo" in text and "`v` Side by side / diff" in text
    assert "Focus Next" not in text  # inherited keys are not repeated per screen
