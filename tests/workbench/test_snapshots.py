"""Reviewed SVG snapshots of every screen at 160x45 and 100x30, over a store with hostile text everywhere."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stores.db import make_engine
from tests.workbench.helpers import settle
from tests.workbench.seed import seed_everything
from workbench.app import make_app

SIZES = [(160, 45), (100, 30)]


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One store for every snapshot (copied per test): seeding runs analysis and evaluations."""
    folder = tmp_path_factory.mktemp("seeded")
    seed_everything(folder).dispose()
    yield folder


def _app(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("WORKBENCH_BENCH", "/data/codeprefbench")
    for name in ("wb.db", "wb.texts.db"):
        shutil.copy(seeded / name, tmp_path / name)
    return make_app(engine=make_engine(tmp_path / "wb.db"), clock=lambda: 0.0)


def _keys(*keys: str) -> Any:
    async def run_before(pilot: Any) -> None:
        await settle(pilot.app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot.app, pilot)
        await settle(pilot.app, pilot)

    return run_before


SCREENS = {
    "dashboard": _keys(),
    "commits": _keys("c"),
    "commit_view": _keys("c", "enter"),
    "synthesis": _keys("s"),
    "pairs": _keys("p"),
    "training": _keys("t"),
    "evaluation": _keys("e"),
    "help": _keys("p", "question_mark"),
}


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(screen: str, size: tuple[int, int], snap_compare: Any, seeded_store: Path, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert snap_compare(_app(seeded_store, tmp_path, monkeypatch), terminal_size=size, run_before=SCREENS[screen])


def _typed(*keys: str, text: str) -> Any:
    """Open a dialog with `keys`, then type `text` into its field and press enter (a value it refuses)."""
    async def run_before(pilot: Any) -> None:
        await _keys(*keys)(pilot)
        await pilot.press(*text, "enter")
        await settle(pilot.app, pilot)

    return run_before


# Dialogs at the smallest supported size: every text wraps inside the dialog, none is cut at its edge.
DIALOGS = {
    "bulk_refused": _typed("p", "b", text="no-such-rules.yaml"),
    "export": _keys("p", "E"),
    "mine_refused": _typed("c", "m", text="/nonexistent/repository"),
    "train": _keys("t", "n"),
}


@pytest.mark.parametrize("dialog", list(DIALOGS))
def test_dialog_snapshot(dialog: str, snap_compare: Any, seeded_store: Path, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert snap_compare(_app(seeded_store, tmp_path, monkeypatch), terminal_size=(100, 30),
                        run_before=DIALOGS[dialog])
