from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

from textual.widgets import Button, DataTable, Input, Static, TextArea

from core.evaluation.bench import OBJECTIVES, load_benchmark, objective_file
from core.evaluation.judges import GenerativeJudge, parse_judge_spec
from core.llm.base import ChatRequest, ChatResult
from core.textsafe import one_line
from stores.db import make_engine
from stores.evaluation.runs import create_run, get_run
from stores.jobs import list_jobs
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.helpers import settle
from tests.workbench.pilot import click
from tests.workers import pilot_wait_for, worker_thread
from workbench.app import make_app
from workbench.jobs.evaluate import run_evaluation
from workbench.screens.evaluation import EvaluationScreen, TaskDetailScreen


def _bench(folder: Path) -> Path:
    folder.mkdir()
    for objective in OBJECTIVES:
        records = [
            {"task_id": f"{HOSTILE_TEXT}/{n}", "instruction": f"Sum {HOSTILE_TEXT}",
             "choices": [f"def f(xs):\n    return sum(xs)  # {HOSTILE_TEXT}\n",
                         "def f(xs):\n    total = 0\n    return total * len(xs)\n"],
             "gt_choice": 0}
            for n in range(3)
        ]
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
        (folder / objective_file(objective)).write_bytes(gzip.compress(data))
    return folder


class HostileBackend:
    """A chat model whose feedback is full of markup-like text."""

    model_name = HOSTILE_TEXT

    async def chat(self, request: ChatRequest) -> ChatResult:
        return ChatResult(f"{HOSTILE_TEXT}\n[CODE_A] is better than [CODE_B] on the mentioned criteria.", 10, 5, 0.5)

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        return [await self.chat(r) for r in requests]

    async def aclose(self) -> None:
        pass


async def test_scores_leaderboard_and_task_drill_down_show_hostile_text_plainly(tmp_path: Path) -> None:
    bench = _bench(tmp_path / "bench")
    db_path = tmp_path / "wb.db"
    engine = make_engine(db_path)
    judge = GenerativeJudge(parse_judge_spec(f"openai:{HOSTILE_TEXT}"), HostileBackend())
    benchmark = load_benchmark(bench)
    run_id = create_run(engine, judge_spec=HOSTILE_TEXT, judge_kind="generative", benchmark=benchmark,
                        objectives=OBJECTIVES, lineage=judge.lineage)
    list(run_evaluation(engine, run_id, judge, benchmark))
    judge.close()

    app = make_app(engine=engine)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EvaluationScreen)
        await settle(app, pilot)
        board = screen.query_one("#board", DataTable)
        assert board.row_count == 1
        assert str(board.get_row_at(0)[1]) == one_line(HOSTILE_TEXT, 28)  # long judge specs are cut
        board.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        scores = screen.query_one("#scores", DataTable)
        assert [str(scores.get_row_at(i)[0]) for i in range(scores.row_count)] == [*OBJECTIVES, "verifiable avg"]
        assert str(screen.board.get_row_at(0)[2]) == "codefavor"
        assert str(scores.get_row_at(0)[2]).startswith("100.0 ±")  # always "A": right in the given order
        assert str(scores.get_row_at(0)[3]).startswith("50.0 ±")  # and in one of both orders
        assert str(scores.get_row_at(0)[4]) == "0.0"
        scores.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        results = screen.query_one("#results", DataTable)
        assert results.row_count == 6
        results.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        detail = app.screen
        assert isinstance(detail, TaskDetailScreen)
        assert HOSTILE_TEXT in detail.query_one("#task-instruction", TextArea).text
        assert "#" not in detail.query_one("#task-code-a", TextArea).text  # comments stripped
        outputs = detail.query_one("#task-outputs", TextArea).text
        assert HOSTILE_TEXT in outputs and "given order" in outputs and "swapped order" in outputs
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running


async def test_a_run_started_from_the_screen_updates_the_scores(tmp_path: Path) -> None:
    bench = _bench(tmp_path / "bench")
    app = make_app(db_path=tmp_path / "wb.db")
    seen = []
    async with app.run_test(size=(140, 40), message_hook=seen.append) as pilot:
        await pilot.press("e")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EvaluationScreen)
        screen.query_one("#judge", Input).value = "baseline:shorter"
        screen.query_one("#bench", Input).value = str(bench)
        scores = screen.query_one("#scores", DataTable)
        with worker_thread(app.engine):  # the run is a job a worker runs; the screen follows it
            await click(pilot, "#start")
            await pilot_wait_for(pilot, lambda: scores.row_count > 0 and str(scores.get_row_at(0)[1]) == "6/6"
                                 and "done" in str(screen.query_one("#eval-status").render()), what="the eval job")
        assert any(isinstance(m, EvaluationScreen.JobChanged) for m in seen)
        run = get_run(app.engine, 1)
        assert (run.state, run.done, run.total) == ("done", 24, 24)
        assert str(scores.get_row_at(0)[1]) == "6/6"
        assert str(scores.get_row_at(0)[2]).startswith("100.0")  # the shorter code is the right one
        assert not screen.query_one("#start", Button).disabled

        screen.query_one("#judge", Input).value = "baseline:nonsense"
        await click(pilot, "#start")
        await settle(app, pilot)
        assert app.is_running and not screen.query_one("#start", Button).disabled
        assert len(list_jobs(app.engine, kind="eval")) == 1  # a bad spec is refused before any job


async def test_a_bad_limit_or_judge_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    app = make_app(db_path=tmp_path / "wb.db")
    seen: list[object] = []
    async with app.run_test(size=(140, 40), message_hook=seen.append) as pilot:
        await pilot.press("e")
        await pilot.pause()
        screen = app.screen
        shown: list[str] = []
        for judge, limit in (("baseline:always-a", "-"), ("baseline:alwys-a", ""), ("pairrm:x", "")):
            screen.query_one("#judge").value = judge  # type: ignore[attr-defined]
            screen.query_one("#limit").value = limit  # type: ignore[attr-defined]
            screen.action_start()  # type: ignore[attr-defined]
            await pilot.pause()
            assert app.is_running and not screen.query_one("#start").disabled  # type: ignore[attr-defined]
            shown.append(str(screen.query_one("#eval-status", Static).render()))
        assert "limit must be a whole number, not '-'" in shown[0]
        assert "unknown baseline 'alwys-a'" in shown[1]
        assert "unknown judge kind 'pairrm'" in shown[2]
