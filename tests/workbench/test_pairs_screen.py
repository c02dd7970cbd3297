"""PairsScreen with Pilot: paging, filter, review keys, undo, bulk apply; hostile text stays plain."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from textual.widgets import Checkbox, Input, RadioButton, Static

from core.curation.pairs import NewPair
from stores.curation.pairs import get_pair, import_pairs
from stores.curation.tables import PairRow
from stores.db import make_engine
from stores.tables import utcnow
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.helpers import settle as settle_workers
from tests.workers import pilot_wait_for, worker_thread
from workbench.app import make_app
from workbench.jobs.curate import analyse_store
from workbench.screens.dialogs import ConfirmDialog
from workbench.screens.pairs import PAGE_SIZE, CriteriaEditor, PairsScreen, PairTable
from workbench.screens.pairs_dialogs import ExportDialog


def seed(engine: Engine, count: int = 5) -> None:
    import_pairs(engine, [
        NewPair(f"{HOSTILE_TEXT} task {i}", f"{HOSTILE_TEXT} criteria {i}",
                f"def f():\n    return '{HOSTILE_TEXT}'\n", f"def f():\n    x = {i}\n    return x\n",
                feedback=HOSTILE_TEXT, source="import" if i % 2 else "commit-instruct")
        for i in range(count)
    ])


async def open_pairs(app, pilot) -> PairsScreen:  # type: ignore[no-untyped-def]
    await pilot.press("p")
    await settle(app, pilot)
    assert isinstance(app.screen, PairsScreen)
    return app.screen


async def settle(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle_workers(app, pilot)


def static_text(screen: PairsScreen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}", Static).render())


async def test_review_keys_and_undo(db_path: Path) -> None:
    engine = make_engine(db_path)
    seed(engine)
    list(analyse_store(engine, workers=1))
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pairs(app, pilot)
        table = screen.query_one(PairTable)
        assert table.row_count == 5 and screen.pair is not None and screen.pair.id == 1
        assert HOSTILE_TEXT in static_text(screen, "instruction")
        assert "5 pairs" in static_text(screen, "counts")
        await pilot.press("a")
        await settle(app, pilot)
        assert get_pair(engine, 1).status == "accepted"
        await pilot.press("n")
        await settle(app, pilot)
        assert table.current_id == 2
        await pilot.press("r")
        await settle(app, pilot)
        assert get_pair(engine, 2).status == "rejected"
        await pilot.press("f")
        await settle(app, pilot)
        assert get_pair(engine, 2).chosen == "def f():\n    x = 1\n    return x\n"
        assert screen.pair is not None and screen.pair.chosen.startswith("def f():\n    x = 1")
        await pilot.press("u")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog) and "flip pair 2" in app.screen.title_text
        await pilot.press("y")
        await settle(app, pilot)
        assert get_pair(engine, 2).chosen.startswith("def f():\n    return")
        await pilot.press("u")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert get_pair(engine, 2).status == "pending"
        assert "accepted 1" in static_text(screen, "counts")
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, CriteriaEditor)
        await pilot.press("end", "!", "ctrl+s")
        await settle(app, pilot)
        assert get_pair(engine, 2).criteria == f"{HOSTILE_TEXT} criteria 1!"
        await pilot.press("o")
        await settle(app, pilot)
        assert HOSTILE_TEXT in str(app.screen.query_one("#dialog-text", Static).render())
        await pilot.press("escape")
        await pilot.press("g")
        await settle(app, pilot)
        assert "No decontamination run yet" in str(app.screen.query_one(Static).render())
        await pilot.press("escape")


async def test_filter_and_bulk_apply(db_path: Path) -> None:
    engine = make_engine(db_path)
    seed(engine, 6)
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pairs(app, pilot)
        await pilot.press("slash")
        screen.query_one("#filter", Input).value = "source=commit-instruct"
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.query_one(PairTable).row_count == 3
        await pilot.press("b")
        await settle(app, pilot)
        await pilot.press(*"flag", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert [get_pair(engine, i).status for i in range(1, 7)] == ["pending"] * 6  # not before the yes
        await pilot.press("y")
        await settle(app, pilot)
        assert [get_pair(engine, i).status for i in range(1, 7)] == ["flagged", "pending"] * 3
        table = screen.query_one(PairTable)
        assert [str(table.get_row_at(row)[1]) for row in range(table.row_count)] == ["flagged"] * 3
        await pilot.press("slash")
        screen.query_one("#filter", Input).value = "cc_delta<x"
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.query_one(PairTable).row_count == 3  # a bad filter keeps the old one


async def test_pages_100k_pairs_without_loading_them(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "big.db")
    now = utcnow()
    rows = [{"source": "import", "status": "pending", "instruction": f"i{i}", "criteria": "c", "chosen": "x=1",
             "rejected": "x=2", "feedback": "", "language": "python", "content_hash": f"h{i}", "meta_json": "{}",
             "created_at": now, "updated_at": now} for i in range(100_000)]
    with engine.begin() as connection:
        connection.execute(insert(PairRow), rows)
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pairs(app, pilot)
        table = screen.query_one(PairTable)
        assert table.row_count == PAGE_SIZE
        assert "100,000 pairs" in static_text(screen, "counts")
        table.focus()
        table.move_cursor(row=PAGE_SIZE - 5)
        await settle(app, pilot)
        assert table.row_count == 2 * PAGE_SIZE


async def test_export_and_cdf_from_the_screen(db_path: Path, tmp_path: Path) -> None:
    from core.curation.decontamination import BenchSnippet
    from workbench.jobs.curate import decontaminate_store

    engine = make_engine(db_path)
    seed(engine, 4)
    list(analyse_store(engine, workers=1))
    bench = [BenchSnippet("T/1", "correctness", "def f():\n    x = 1\n    return x\n")]
    list(decontaminate_store(engine, bench, threshold=80, workers=1, sample=8))
    from stores.curation.pairs import set_status

    set_status(engine, [1], "reject")
    set_status(engine, [2, 3, 4], "accept")  # decontamination flagged all four
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pairs(app, pilot)
        await pilot.press("E")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        assert "accepted 3 · rejected 1" in str(dialog.query_one("#mix", Static).render())
        assert dialog.query_one("#accepted-only", RadioButton).value  # "accepted only" by default
        assert "3 pairs" in str(dialog.query_one("#not-rejected", RadioButton).label)
        dialog.query_one("#export-out", Input).value = str(tmp_path / "exp")
        for fmt in ("classification", "generation"):
            dialog.query_one(f"#format-{fmt}", Checkbox).value = False
        dialog.query_one("#export-out", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)  # export is confirmed, naming where it goes
        assert str(tmp_path / "exp") in app.screen.body
        with worker_thread(engine):  # the export is a job a worker runs
            await pilot.press("y")
            await pilot_wait_for(pilot, lambda: "export" in str(screen.query_one("#job-status", Static).render())
                                 and "pairs →" in str(screen.query_one("#job-status", Static).render()),
                                 what="the export job")
        await settle(app, pilot)
        lines = (tmp_path / "exp" / "dpo" / "train.jsonl").read_text(encoding="utf-8").splitlines()
        validation = (tmp_path / "exp" / "dpo" / "validation.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) + len(validation) == 3
        assert not (tmp_path / "exp" / "classification").exists()
        assert str(tmp_path / "exp") in str(screen.query_one("#job-status", Static).render())  # where it went
        await pilot.press("g")
        await settle(app, pilot)
        summary = str(app.screen.query_one(Static).render())
        assert "4 of 4 pairs" in summary and "exact sample of 8 sides" in summary
        await pilot.press("escape")



async def test_export_into_a_full_folder_replaces_only_an_earlier_export(db_path: Path, tmp_path: Path) -> None:
    """D2 in the TUI: a folder that is not an export keeps the dialog open with the refusal; an earlier
    export is named as replaced, and after the job the folder holds this export's files only."""
    from core.curation.rules import parse_filter
    from core.training.export import ExportOptions
    from stores.curation.pairs import set_status
    from workbench.jobs.export import export_store

    engine = make_engine(db_path)
    seed(engine, 4)
    set_status(engine, [1, 2], "accept")
    earlier = tmp_path / "earlier"
    export_store(engine, parse_filter(""), earlier, ExportOptions(formats=("chat", "generation")))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pairs(app, pilot)
        await pilot.press("E")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        dialog.query_one("#export-out", Input).value = str(foreign)
        dialog.query_one("#export-out", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is dialog  # stays open, saying why
        assert "is not a workbench export" in str(dialog.query_one("#export-error", Static).render())
        dialog.query_one("#export-out", Input).value = str(earlier)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert "holds an earlier export: it is replaced" in app.screen.body
        with worker_thread(engine):
            await pilot.press("y")
            await pilot_wait_for(pilot, lambda: "pairs →" in str(screen.query_one("#job-status", Static).render()),
                                 what="the export job")
        await settle(app, pilot)
    files = {str(p.relative_to(earlier)) for p in earlier.rglob("*") if p.is_file()}
    manifest = json.loads((earlier / "manifest.json").read_text(encoding="utf-8"))
    assert files == {"manifest.json", *manifest["files"]} and manifest["pair_count"] == 2
    assert {f.split("/")[0] for f in manifest["files"]} == {"classification", "generation", "dpo"}
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
