"""Reviewed SVG snapshots of the screens that show repository data (hostile text included)."""

from __future__ import annotations

from pathlib import Path

from tests.workbench.seed import seed_commits
from workbench.app import make_app


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_dashboard_snapshot(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(engine=seed_commits(tmp_path / "wb.db", 5))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settle)


def test_commits_snapshot(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(engine=seed_commits(tmp_path / "wb.db", 5))

    async def open_commits(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("c")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(120, 30), run_before=open_commits)


def test_commit_view_snapshot(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(engine=seed_commits(tmp_path / "wb.db", 2))

    async def open_commit(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("c")
        await _settle(pilot)
        await pilot.press("enter")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(120, 30), run_before=open_commit)


def test_commit_view_unified_snapshot(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(engine=seed_commits(tmp_path / "wb.db", 2))

    async def open_diff(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("c")
        await _settle(pilot)
        await pilot.press("enter")
        await _settle(pilot)
        await pilot.press("v")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 30), run_before=open_diff)
