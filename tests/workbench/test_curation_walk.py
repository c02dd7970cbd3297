"""The daily curation walk, keyboard only: filter, accept / reject / flip, undo, a bulk rule, export the
accepted pairs; the store is checked after every step."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable

from core.curation.pairs import NewPair
from stores.curation.pairs import get_pair, import_pairs
from stores.db import make_engine
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.helpers import screen_text, settle, wait_until
from workbench.app import make_app


async def test_keyboard_only_curation_walk(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    import_pairs(engine, [
        NewPair(f"task {i} {HOSTILE_TEXT}", "efficiency", f"def f():\n    return {i}\n",
                f"def f():\n    x = {i}\n    return x\n", source="import" if i % 2 else "commit-instruct")
        for i in range(8)
    ])
    original = {i: get_pair(engine, i) for i in range(1, 9)}
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: late ones\n    where: id>=7\n    action: accept\n", encoding="utf-8")
    out = tmp_path / "exported"

    def statuses() -> list[str]:
        return [get_pair(engine, i).status for i in range(1, 9)]

    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        table = app.screen.query_one("#pairs", DataTable)

        # filter
        await pilot.press("slash", *"source=commit-instruct", "enter")
        await settle(app, pilot)
        assert [int(str(table.get_row_at(row)[0])) for row in range(table.row_count)] == [1, 3, 5, 7]
        assert statuses() == ["pending"] * 8

        # accept, reject, flip
        await pilot.press("a")
        await settle(app, pilot)
        assert statuses() == ["accepted"] + ["pending"] * 7
        await pilot.press("down", "r")
        await settle(app, pilot)
        assert statuses()[:3] == ["accepted", "pending", "rejected"]
        await pilot.press("down", "f")
        await settle(app, pilot)
        flipped = get_pair(engine, 5)
        assert (flipped.chosen, flipped.rejected) == (original[5].rejected, original[5].chosen)

        # undo names the flip, then restores it
        await pilot.press("u")
        await settle(app, pilot)
        assert "flip pair 5" in screen_text(app)
        await pilot.press("y")
        await settle(app, pilot)
        assert get_pair(engine, 5).chosen == original[5].chosen
        assert statuses() == ["accepted", "pending", "rejected"] + ["pending"] * 5

        # a bulk rule, scoped to the filter, confirmed with what it will do
        await pilot.press("b", *str(rules), "enter")
        await settle(app, pilot)
        assert "late ones: accept 1 pairs" in screen_text(app)
        assert statuses()[6] == "pending"  # nothing before the yes
        await pilot.press("y")
        await settle(app, pilot)
        assert statuses() == ["accepted", "pending", "rejected", "pending", "pending", "pending", "accepted", "pending"]
        assert [str(table.get_row_at(row)[1]) for row in range(table.row_count)] == [
            "accepted", "rejected", "pending", "accepted"]  # the rows say what the store holds

        # export the accepted pairs (the dialog's default), confirmed, and say where they went
        await pilot.press("E")
        await settle(app, pilot)
        await pilot.press(*str(out), "enter")
        await settle(app, pilot)
        await pilot.press("y")  # queued as a job; the worker process started for it writes the files
        await wait_until(app, pilot, lambda: str(out) in screen_text(app), timeout=60)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["pair_count"] == 2
    assert sorted(manifest["filter"]) == sorted(["source=commit-instruct", "status=accepted", "duplicate!=true"])
    assert statuses() == ["accepted", "pending", "rejected", "pending", "pending", "pending", "accepted", "pending"]
