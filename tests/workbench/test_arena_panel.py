"""The arena panel of the Evaluation screen: sets, live runs and a run's breakdown; hostile text stays plain."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from textual.widgets import Button, DataTable, Input, Static

from core.evaluation.arena import ImportedAnswer as Answer
from core.evaluation.arena import read_arena_questions
from stores.db import make_engine
from stores.evaluation.arena import add_arena_set, get_arena_run, import_answers
from tests.arena_fixtures import CATEGORIES, write_set
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.pilot import click
from tests.workers import pilot_wait_for, worker_thread
from workbench.app import make_app
from workbench.jobs.arena import JudgeConfig, run_judge_job
from workbench.screens.evaluation import EvaluationScreen
from workbench.widgets.arena_panel import ArenaPanel


def _seed(tmp_path: Path, *, judged: bool = True) -> Path:
    db_path = tmp_path / "wb.db"
    engine = make_engine(db_path)
    set_id, _ = add_arena_set(engine, "arena16", "arena16.jsonl", read_arena_questions(write_set(tmp_path / "s.jsonl", 16)))
    import_answers(engine, set_id, HOSTILE_TEXT, [Answer(f"q{i}", "x" * (10 + (i % 3) * 4)) for i in range(16)],
                   source="cand.jsonl")
    if judged:
        for judge in ("baseline:longer", "baseline:shorter"):
            config = JudgeConfig("arena16", HOSTILE_TEXT, judge)

            async def consume(config: JudgeConfig = config) -> None:
                async for _event in run_judge_job(engine, config):
                    pass

            asyncio.run(consume())
    return db_path


async def test_the_panel_lists_sets_and_runs_and_breaks_a_run_down(tmp_path: Path) -> None:
    app = make_app(db_path=await asyncio.to_thread(_seed, tmp_path))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EvaluationScreen)
        panel = screen.query_one(ArenaPanel)
        assert not panel.display
        screen.query_one("#board", DataTable).focus()  # out of the judge field, where "a" is just a letter
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert panel.display and not screen.query_one("#eval-form").display
        runs = panel.query_one("#arena-runs", DataTable)
        assert runs.row_count == 2
        assert str(runs.get_row_at(0)[7]).startswith(HOSTILE_TEXT[:20])  # markup shown as typed, cut to fit
        sets = panel.query_one("#arena-sets", DataTable)
        assert [str(cell) for cell in sets.get_row_at(0)[:3]] == ["1", "arena16", "16"]
        sets.focus()
        await pilot.press("enter")
        await pilot.pause()
        status = str(panel.query_one("#arena-status", Static).render())
        assert "16 questions · categories: algorithms 2, data 2" in status and "languages: javascript 6, python 10" in status
        assert panel.query_one("#arena-set", Input).value == "1"
        runs.focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        breakdown = panel.query_one("#arena-breakdown", DataTable)
        names = [str(breakdown.get_row_at(i)[1]) for i in range(breakdown.row_count)]
        assert names[0] == "overall" and sorted(names[1:9]) == sorted(CATEGORIES)
        await pilot.press("a")
        await pilot.pause()
        assert not panel.display and screen.query_one("#eval-form").display


async def test_a_judging_started_from_the_panel_shows_live_and_finishes(tmp_path: Path) -> None:
    app = make_app(db_path=await asyncio.to_thread(_seed, tmp_path, judged=False))
    seen: list[object] = []
    async with app.run_test(size=(140, 40), message_hook=seen.append) as pilot:
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#board", DataTable).focus()
        await pilot.press("a")
        await pilot.pause()
        panel = app.screen.query_one(ArenaPanel)
        panel.query_one("#arena-set", Input).value = "arena16"
        panel.query_one("#arena-candidate", Input).value = HOSTILE_TEXT
        panel.query_one("#arena-judge", Input).value = "baseline:longer"
        with worker_thread(app.engine):  # the judging is a job a worker runs; the panel queues and follows it
            await click(pilot, "#arena-start")
            await pilot_wait_for(pilot, lambda: panel.job is not None and not panel.job.is_active,
                                 what="the arena job to end")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert panel.job is not None and panel.job.state == "done"
        assert (panel.job.worker_id or "").startswith("w-")  # a worker ran it, not the TUI
        assert any(isinstance(m, ArenaPanel.Progressed) for m in seen)
        run = get_arena_run(app.engine, 1)
        assert (run.state, run.done, run.total) == ("done", 32, 32)
        breakdown = panel.query_one("#arena-breakdown", DataTable)
        assert str(breakdown.get_row_at(0)[2]) == "32"
        assert not panel.query_one("#arena-start", Button).disabled

        panel.query_one("#arena-candidate", Input).value = "nobody"
        await click(pilot, "#arena-start")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running and not panel.query_one("#arena-start", Button).disabled


def test_arena_panel_snapshot(tmp_path: Path, snap_compare, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_BENCH", "/data/codeprefbench")
    db_path = _seed(tmp_path)

    async def open_arena(pilot) -> None:
        await pilot.press("e")
        await pilot.pause()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        pilot.app.screen.query_one("#board", DataTable).focus()
        await pilot.press("a")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(db_path=db_path), terminal_size=(140, 40), run_before=open_arena)


def test_seeded_runs_have_the_expected_win_rates(tmp_path: Path) -> None:
    engine = make_engine(_seed(tmp_path))
    longer, shorter = get_arena_run(engine, 1), get_arena_run(engine, 2)
    assert (longer.judge_spec, longer.done, shorter.judge_spec, shorter.done) == (
        "baseline:longer", 32, "baseline:shorter", 32)
    assert json.dumps(longer.lineage) == json.dumps({"baseline": "longer"})
