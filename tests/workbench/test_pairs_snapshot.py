"""Appearance of the pairs screen: list, counts and the side-by-side review with hostile text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.curation.pairs import NewPair
from stores.curation.pairs import import_pairs
from stores.db import make_engine
from tests.fixtures import HOSTILE_TEXT
from workbench.app import make_app
from workbench.jobs.curate import analyse_store


def test_pairs_screen_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    import_pairs(engine, [
        NewPair(f"Sum a list {HOSTILE_TEXT}", "efficiency: prefer builtins",
                'def total(xs):\n    """Sum."""\n    return sum(xs)\n',
                "import os\n\ndef total(xs):\n    t = 0\n    for x in xs:\n        t += x\n    os.system('echo')\n    return t\n",
                feedback=HOSTILE_TEXT),
        *(NewPair(f"task {i}", "readability", "x = 1\n", f"x = {i + 2}\n", source="commit-instruct") for i in range(3)),
    ])
    list(analyse_store(engine, workers=1))
    app = make_app(engine=engine)

    async def run_before(pilot: Any) -> None:
        await pilot.press("p")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()

    assert snap_compare(app, terminal_size=(110, 40), run_before=run_before)
