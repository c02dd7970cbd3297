"""Pilot tests of the synthesis screen against the loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Button, DataTable, Static, TextArea

from stores.db import make_engine
from stores.jobs import list_jobs
from tests.fixtures import HOSTILE_TEXT, stored_pairs
from tests.llm_server import LoopbackLLM
from tests.synth_answers import synth_responder
from tests.synth_fixtures import add_commits
from tests.workbench.helpers import settle
from tests.workbench.pilot import click
from tests.workers import pilot_wait_for, worker_thread
from workbench.app import make_app
from workbench.screens.synthesis import SynthesisScreen


async def test_start_job_shows_counters_and_hostile_conversation(tmp_path: Path) -> None:
    db_path = tmp_path / "wb.db"
    engine = make_engine(db_path)
    add_commits(engine, [f"Fix {HOSTILE_TEXT} #1", "bump version #2"])
    app = make_app(engine=engine)
    with LoopbackLLM(synth_responder) as server:
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("s")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, SynthesisScreen)
            screen.query_one("#critic").value = f"openai:critic@{server.base_url}"  # type: ignore[attr-defined]
            with worker_thread(engine):  # the job runs in a worker; the screen only queues and watches it
                await click(pilot, "#start")
                await pilot_wait_for(pilot, lambda: "done" in str(screen.query_one("#status", Static).render()),
                                     what="the synthesis job to end")
            table = screen.query_one("#conversations", DataTable)
            for _ in range(40):  # under load the job's end and the store read land some ticks apart
                await settle(app, pilot)
                screen.read_store(None)
                await settle(app, pilot)
                if table.row_count == 5 and "done" in str(screen.query_one("#status", Static).render()):
                    break
                await asyncio.sleep(0.25)
            counters = str(screen.query_one("#counters", Static).render())
            assert "pairs 1" in counters and "filtered 1" in counters
            assert "done" in str(screen.query_one("#status", Static).render())
            assert not screen.query_one("#start", Button).disabled
            assert table.row_count == 5  # three exchanges for the pair, two for the filtered one
            texts = []
            for row in range(table.row_count):
                table.move_cursor(row=row)
                await pilot.pause()
                texts.append(screen.query_one("#conversation-view", TextArea).text)
            assert any(HOSTILE_TEXT in text for text in texts)
            assert app.is_running
    assert len(stored_pairs(engine)) == 1


async def test_bad_spec_is_reported_not_raised(tmp_path: Path) -> None:
    app = make_app(db_path=tmp_path / "wb.db")
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#critic").value = "not-a-spec [bold]x[/]"  # type: ignore[attr-defined]
        await click(pilot, "#start")
        await settle(app, pilot)
        status = str(screen.query_one("#status", Static).render())
        assert status.startswith("error: model spec") and "[bold]x[/]" in status
        assert not screen.query_one("#start", Button).disabled


async def test_form_values_get_the_clis_messages_and_never_end_the_app(tmp_path: Path) -> None:
    """Typing `-` in the limit field and pressing Start used to raise ValueError and end the app."""
    app = make_app(db_path=tmp_path / "wb.db")
    cases = {
        ("-", "16", ""): "error: limit must be a whole number, not '-'",
        ("0", "16", ""): "error: limit must be a whole number of 1 or more, not 0",
        ("", "x", ""): "error: concurrency must be a whole number, not 'x'",
        ("", "16", "-1"): "error: budget '-1'",
        ("", "16", "0"): "error: budget '0': must be more than zero",
    }
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#critic").value = "openai:m@http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
        for (limit, concurrency, budget), message in cases.items():
            screen.query_one("#limit").value = limit  # type: ignore[attr-defined]
            screen.query_one("#concurrency").value = concurrency  # type: ignore[attr-defined]
            screen.query_one("#budget").value = budget  # type: ignore[attr-defined]
            await click(pilot, "#start")
            await pilot.pause()
            await pilot.pause()
            assert app.is_running
            assert str(screen.query_one("#status", Static).render()).startswith(message)
            assert not screen.query_one("#start", Button).disabled
        assert not [w for w in app.workers if w.group == "synth-run"]  # nothing was started
    assert list_jobs(make_engine(tmp_path / "wb.db")) == []

