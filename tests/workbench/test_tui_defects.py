"""One Pilot test per defect of issue #15, each written to fail on the code before the fix.

Names say the behaviour the defect broke. They use keys, as a user would, and check the store.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, Static

from core.curation.pairs import NewPair
from stores.curation.pairs import get_pair, import_pairs, set_status
from stores.db import make_engine
from stores.jobs import create_job, get_job, is_cancel_requested, list_jobs
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.helpers import off_the_event_loop, screen_text, settle, wait_until
from tests.workbench.seed import seed_commits
from tests.workers import worker_thread
from workbench.app import SCREEN_MODES, make_app, screen_class


def _alternating_pairs(engine: Engine, count: int = 6) -> None:
    """Pairs 1, 3, 5 from commit-instruct, 2, 4, 6 imported."""
    import_pairs(engine, [
        NewPair(f"task {i}", f"criteria {i}", f"def f():\n    return {i}\n", f"def f():\n    x = {i}\n    return x\n",
                source="import" if i % 2 else "commit-instruct")
        for i in range(count)
    ])


def _status_cells(table: DataTable) -> list[str]:  # type: ignore[type-arg]
    return [str(table.get_row_at(row)[1]) for row in range(table.row_count)]


async def _open(app, pilot, key: str):  # type: ignore[no-untyped-def]
    await pilot.press(key)
    await settle(app, pilot)
    return app.screen


# --- focus traps and key clashes -------------------------------------------------------------------


async def test_evaluation_opens_on_its_list_so_global_keys_work(tmp_path: Path) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "e")
        assert type(screen).__name__ == "EvaluationScreen"
        assert not isinstance(app.focused, Input)
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape", "d")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "DashboardScreen"
        assert screen.query_one("#judge", Input).value == ""


@pytest.mark.parametrize(("key", "field"), [("e", "#judge"), ("s", "#critic"), ("c", "#path-filter"), ("p", "#filter")])
async def test_escape_leaves_a_text_field_for_the_list(tmp_path: Path, key: str, field: str) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, key)
        screen.query_one(field, Input).focus()
        await pilot.press("x", "escape")
        await pilot.pause()
        assert not isinstance(app.focused, Input)
        await pilot.press("d")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "DashboardScreen"
        assert screen.query_one(field, Input).value == "x"


def test_screen_keys_never_shadow_the_global_keys() -> None:
    global_keys = {key for _mode, _path, key, _title in SCREEN_MODES} | {"question_mark", "q"}
    for _mode, path, _key, _title in SCREEN_MODES:
        shown = screen_class(path)
        for screen in (shown, *getattr(shown, "SUBSCREENS", ())):
            for binding in screen.__dict__.get("BINDINGS", []):
                key = binding.key if hasattr(binding, "key") else binding[0]
                assert not set(key.split(",")) & global_keys, f"{screen.__name__} binds {key}"


async def test_e_on_pairs_opens_evaluation_and_s_on_evaluation_opens_synthesis(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine, 2)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, "p")
        screen = await _open(app, pilot, "e")
        assert type(screen).__name__ == "EvaluationScreen"
        screen = await _open(app, pilot, "s")
        assert type(screen).__name__ == "SynthesisScreen"
    assert [get_pair(engine, i).criteria for i in (1, 2)] == ["criteria 0", "criteria 1"]


async def test_the_pair_table_has_focus_after_leaving_and_returning(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "p")
        await _open(app, pilot, "tab")  # to the review pane
        assert app.focused is not screen.query_one("#pairs")
        await _open(app, pilot, "d")
        await _open(app, pilot, "p")
        assert app.focused is screen.query_one("#pairs")
        await pilot.press("a")
        await settle(app, pilot)
    assert get_pair(engine, 1).status == "accepted"


@pytest.mark.parametrize("width", [160, 100])
async def test_every_footer_fits_the_terminal(tmp_path: Path, width: int) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(width, 45 if width == 160 else 30)) as pilot:
        for key, _title in [(k, t) for _m, _p, k, t in SCREEN_MODES]:
            screen = await _open(app, pilot, key)
            footer = screen.query_one(Footer)
            keys = [child for child in footer.query("FooterKey") if child.display]
            assert keys, f"{type(screen).__name__} shows no keys"
            assert all(child.region.right <= width for child in keys), f"{type(screen).__name__}: footer cut"
            assert "Keys" in screen_text(app).splitlines()[-1]


# --- stale views ----------------------------------------------------------------------------------


async def test_rows_show_the_stored_status_after_a_bulk_action(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "p")
        await pilot.press("slash", *"source=commit-instruct", "enter")
        await settle(app, pilot)
        await pilot.press("b", *"accept", "enter")
        await settle(app, pilot)
        await pilot.press("y")  # the confirmation (ignored where there is none)
        await settle(app, pilot)
        table = screen.query_one("#pairs", DataTable)
        assert [get_pair(engine, i).status for i in (1, 3, 5)] == ["accepted"] * 3
        assert _status_cells(table) == ["accepted"] * 3


async def test_the_pairs_screen_follows_an_analysis_run_from_the_cli(tmp_path: Path) -> None:
    from workbench.jobs.curate import analyse_store

    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine, 2)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, "p")
        assert "not analysed" in screen_text(app)
        list(analyse_store(make_engine(tmp_path / "wb.db"), workers=1))  # as `workbench curate analyse` does
        await wait_until(app, pilot, lambda: "not analysed" not in screen_text(app), timeout=20)
        assert "cc " in screen_text(app)


async def test_returning_to_pairs_shows_rows_changed_meanwhile(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "p")
        await _open(app, pilot, "d")
        set_status(engine, [2, 4, 6], "reject")  # the CLI, meanwhile
        await _open(app, pilot, "p")
        table = screen.query_one("#pairs", DataTable)
        await wait_until(app, pilot, lambda: _status_cells(table) == ["pending", "rejected"] * 3, timeout=20)


async def test_synthesis_follows_and_stops_a_job_started_elsewhere(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    job_id = create_job(engine, "synth", "commit-instruct with critic-x", pid=os.getpid())
    from stores.jobs import update_job

    update_job(engine, job_id, done=3, total=10, summary={"done": 3, "pairs": 2, "filtered": 1, "requests": 9})
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "s")
        await wait_until(app, pilot, lambda: "pairs 2" in str(screen.query_one("#counters", Static).render()))
        assert f"job {job_id}" in screen_text(app)
        await pilot.press("ctrl+x")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
    assert is_cancel_requested(engine, job_id)


async def test_a_new_evaluation_run_appears_on_the_leaderboard_by_itself(tmp_path: Path) -> None:
    from core.evaluation.bench import OBJECTIVES, load_benchmark
    from stores.evaluation.runs import create_run
    from tests.workbench.seed import write_bench

    bench = load_benchmark(write_bench(tmp_path / "bench", HOSTILE_TEXT))
    engine = make_engine(tmp_path / "wb.db")
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "e")
        board = screen.query_one("#board", DataTable)
        assert board.row_count == 0
        create_run(engine, judge_spec="baseline:longer", judge_kind="baseline", benchmark=bench, objectives=OBJECTIVES)
        await wait_until(app, pilot, lambda: board.row_count == 1, timeout=20)
        assert str(board.get_row_at(0)[1]) == "baseline:longer"


# --- jobs started from the TUI ------------------------------------------------------------------


async def test_analyse_from_the_tui_analyses_with_the_process_pool(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine, 3)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "p")
        # The job is queued; the worker process started for it analyses with its process pool.
        await pilot.press("A")
        await wait_until(app, pilot, lambda: all(get_pair(engine, i).analysis is not None for i in (1, 2, 3)),
                         timeout=120)
        await wait_until(app, pilot, lambda: "analyse done" in screen_text(app), timeout=60)
        dedupe = list_jobs(engine, kind="dedupe")
        assert [job.state for job in dedupe] == ["done"] and dedupe[0].summary["pairs"] == 3  # dedupe ran after
        assert "failed" not in str(screen.query_one("#job-status").render())
        assert "not analysed" not in screen_text(app)


async def test_a_failed_job_started_from_pairs_is_reported_on_pairs(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine, 2)
    empty_bench = tmp_path / "not-a-benchmark"
    empty_bench.mkdir()
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, "p")
        await app.run_stage_action("pairs", "decontaminate")  # the command palette's entry
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one(Input).value = str(empty_bench)
        with worker_thread(engine):
            await pilot.press("enter")
            await settle(app, pilot)
        # Refused when queued: the dialog stays open with the reason, and no job is written.
        assert app.screen is dialog and "benchmark file" in str(dialog.query_one("#ask-error").render())
        assert list_jobs(engine) == []


# --- undo -----------------------------------------------------------------------------------------


async def test_undo_reverts_this_sessions_action_not_the_clis(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, "p")
        await pilot.press("a")  # pair 1
        await settle(app, pilot)
        set_status(engine, [2], "reject")  # the CLI, afterwards
        await pilot.press("u")
        await settle(app, pilot)
        assert "accept pair 1" in screen_text(app)  # the action is named before it applies
        assert get_pair(engine, 1).status == "accepted"
        await pilot.press("y")
        await settle(app, pilot)
        assert (get_pair(engine, 1).status, get_pair(engine, 2).status) == ("pending", "rejected")
        await pilot.press("u")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
    assert get_pair(engine, 2).status == "rejected"  # the CLI's action is the CLI's to undo


# --- destructive actions --------------------------------------------------------------------------


async def test_bulk_and_dashboard_cancel_ask_first(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine)
    job_id = create_job(engine, "mine", "mine /somewhere", pid=os.getpid())
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, "p")
        await pilot.press("b", *"reject", "enter")
        await settle(app, pilot)
        assert [get_pair(engine, i).status for i in range(1, 7)] == ["pending"] * 6
        await pilot.press("n")  # no
        await settle(app, pilot)
        await _open(app, pilot, "d")
        await pilot.press("ctrl+x")
        await settle(app, pilot)
        assert not is_cancel_requested(engine, job_id)
        assert f"Cancel job {job_id}" in screen_text(app)
        await pilot.press("y")
        await settle(app, pilot)
    assert [get_pair(engine, i).status for i in range(1, 7)] == ["pending"] * 6
    assert is_cancel_requested(engine, job_id)


async def test_a_cancelled_run_shows_its_end_and_that_nothing_is_resumable(tmp_path: Path) -> None:
    from tests.workbench.seed import seed_training

    engine = make_engine(tmp_path / "wb.db")
    seed_training(engine, tmp_path / "run", hostile="x")
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "t")
        stats = str(screen.query_one("#stats", Static).render())
        assert "phase running" not in stats and "cancelled" in stats
        assert "nothing resumable: only checkpoint-2" in stats
        assert "loss 5.0000" in stats


async def test_cancelling_a_training_run_asks_first(tmp_path: Path) -> None:
    from sqlmodel import Session

    from stores.training.tables import TrainRunRow

    engine = make_engine(tmp_path / "wb.db")
    job_id = create_job(engine, "train", "train smoke", pid=os.getpid())
    with Session(engine) as session:
        session.add(TrainRunRow(job_id=job_id, name="smoke", recipe_path="r.yaml", recipe_json="{}",
                                run_dir=str(tmp_path / "run"), latest_json="{}"))
        session.commit()
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, "t")
        for key in ("x", "ctrl+x"):  # the old key and the new one
            await pilot.press(key)
            await settle(app, pilot)
        assert not is_cancel_requested(engine, job_id)
        await pilot.press("y")
        await settle(app, pilot)
    assert is_cancel_requested(engine, job_id)


# --- crash, wrong numbers -------------------------------------------------------------------------


async def test_a_bad_limit_in_synthesis_is_one_message_not_a_crash(tmp_path: Path) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "s")
        screen.query_one("#critic", Input).value = "openai:m@http://127.0.0.1:9/v1"
        screen.query_one("#limit", Input).value = "-"
        await pilot.click("#start")
        await settle(app, pilot)
        assert app.is_running
        assert "limit must be a whole number" in str(screen.query_one("#status", Static).render())


async def test_the_mining_report_gives_what_the_job_stored(tmp_path: Path, make_repo) -> None:  # type: ignore[no-untyped-def]
    from workbench.screens.commits import mining_summary

    repo = make_repo("r")
    repo.commit("init", {"a.py": "a = 0\n", "b.py": "b = 0\n"})
    repo.commit("edit", {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    engine = make_engine(tmp_path / "wb.db")
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, "c")
        await pilot.press("m")
        await settle(app, pilot)
        app.screen.query_one("#path", Input).value = str(repo.path)
        with worker_thread(engine):
            await pilot.click("#start")
            await wait_until(app, pilot, lambda: "done" in str(app.screen.query_one("#mine-status", Static).render()),
                             timeout=60)
        job = get_job(engine, 1)
        assert job.summary["records_stored"] == 2
        expected = mining_summary(job.id, job.state, job.summary, job.error)
        assert expected in str(app.screen.query_one("#mine-status", Static).render())


# --- big pairs, small terminals, empty states -----------------------------------------------------


async def test_a_5000_line_pair_renders_only_what_is_visible(tmp_path: Path) -> None:
    from tests.workbench.seed import big_pair
    from workbench.widgets.diff_view import DiffView

    engine = make_engine(tmp_path / "wb.db")
    rejected, chosen = big_pair(5000)
    import_pairs(engine, [NewPair("long", "efficiency", chosen, rejected)])
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await _open(app, pilot, "p")
        await settle(app, pilot)
        view = screen.query_one(DiffView)
        assert view.diff is not None and len(view.diff.rows) == 5000
        assert view.scroll_y > 0 and view.current_change == 0  # opened at the first change
        assert view._row_strip.cache_info().currsize <= 2 * view.size.height
        first = view.scroll_y
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert view.current_change == 1 and view.scroll_y == first + 50


async def test_small_terminals_keep_columns_fields_and_buttons_usable(tmp_path: Path) -> None:
    from tests.workbench.seed import seed_evaluation, seed_pairs, write_bench

    engine = seed_commits(tmp_path / "wb.db", 3)
    seed_pairs(engine, HOSTILE_TEXT)
    seed_evaluation(engine, write_bench(tmp_path / "bench", HOSTILE_TEXT))
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(app, pilot, "c")
        assert "subject" in screen_text(app) and "Use sum()" in screen_text(app)
        screen = await _open(app, pilot, "p")
        assert screen.query_one("#diff").size.height >= 9  # the review shows code, not 3 lines of it
        for key in "scpea":  # a: the Evaluation screen's arena tab
            screen = await _open(app, pilot, key)
            for field in screen.query(Input):
                shown = all(node.display for node in field.ancestors_with_self if isinstance(node, Widget))
                if shown and field.placeholder:
                    assert len(field.placeholder) <= field.content_region.width, f"{field.id} placeholder cut"
            if key == "e":
                board = screen.query_one("#board", DataTable)
                assert board.virtual_size.width <= board.size.width  # the leaderboard does not scroll sideways
    for size in ((100, 30), (160, 45)):
        app = make_app(engine=engine)
        async with app.run_test(size=size) as pilot:
            screen = await _open(app, pilot, "e")
            start = screen.query_one("#start")
            assert start.region.right <= size[0] and start.region.width >= len("Start")


@pytest.mark.parametrize(("key", "next_step"), [
    ("d", "press c, then m"), ("c", "press m to mine"), ("s", "ctrl+s"), ("p", "No pairs yet"),
    ("t", "Press n"), ("e", "ctrl+s"),
])
async def test_empty_screens_say_what_to_do_next(tmp_path: Path, key: str, next_step: str) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(160, 45)) as pilot:
        await _open(app, pilot, key)
        await settle(app, pilot)
        text = " ".join(screen_text(app).split())
        assert next_step in text
        assert "No pairs match the filter" not in text


# --- the event loop never waits ---------------------------------------------------------------------


async def test_store_reads_and_diffs_run_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.screens import dashboard, pairs, synthesis

    engine = seed_commits(tmp_path / "wb.db", 3)
    _alternating_pairs(engine, 3)
    app = make_app(engine=engine)
    monkeypatch.setattr(dashboard, "get_job", off_the_event_loop(app, dashboard.get_job))
    for name in ("align", "changed_lines", "get_pair"):
        if hasattr(pairs, name):
            monkeypatch.setattr(pairs, name, off_the_event_loop(app, getattr(pairs, name)))
    monkeypatch.setattr(synthesis, "all_instruction_ids", off_the_event_loop(app, synthesis.all_instruction_ids))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")  # a job's details
        await settle(app, pilot)
        assert "records_kept: 3" in screen_text(app)
        await _open(app, pilot, "p")
        await pilot.press("down", "down")
        await settle(app, pilot)
        assert "pair 3" in screen_text(app)
        screen = await _open(app, pilot, "s")
        from textual.widgets import Select

        screen.query_one("#method", Select).value = "critic-evol"
        screen.query_one("#critic", Input).value = "openai:m@http://127.0.0.1:9/v1"
        screen.query_one("#draft", Input).value = "openai:m@http://127.0.0.1:9/v1"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.is_running
        assert "no instructions" in str(screen.query_one("#status", Static).render())


async def test_polls_read_the_store_only_when_it_was_written_and_only_on_screen(tmp_path: Path) -> None:
    from workbench.screens.dashboard import DashboardScreen
    from workbench.screens.pairs import PairsScreen

    engine = make_engine(tmp_path / "wb.db")
    _alternating_pairs(engine)
    seen: list[object] = []
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45), message_hook=seen.append) as pilot:
        await _open(app, pilot, "p")
        await pilot.pause(1.2)  # the screen's first poll reads its stamp
        await settle(app, pilot)
        seen.clear()
        await pilot.pause(2.5)  # two more polls of each screen, with nothing written
        assert not [m for m in seen if isinstance(m, PairsScreen.StoreChanged)]
        assert not [m for m in seen if isinstance(m, DashboardScreen.Refreshed)]  # out of sight
        set_status(make_engine(tmp_path / "wb.db"), [2], "reject")  # another process writes
        await wait_until(app, pilot, lambda: any(isinstance(m, PairsScreen.StoreChanged) for m in seen), timeout=20)
        await wait_until(app, pilot, lambda: _status_cells(app.screen.query_one("#pairs", DataTable))[1] == "rejected",
                         timeout=20)
        seen.clear()
        await _open(app, pilot, "d")
        await wait_until(app, pilot, lambda: any(isinstance(m, DashboardScreen.Refreshed) for m in seen), timeout=5)
