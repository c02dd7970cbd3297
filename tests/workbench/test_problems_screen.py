"""The Problems screen, code-optimise pairs in the Pairs screen, and the policy panel of the Evaluation screen."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Static, TextArea

from core.execution.metrics import policy_metrics
from core.execution.pairs import PairOptions
from stores.db import make_engine
from stores.execution.evals import create_policy_eval, finish_policy_eval, problem_outcomes
from stores.execution.problems import add_problems
from tests.codeopt_fixtures import PolicyStandIn, demo_problems, seed_codeopt
from tests.fixtures import HOSTILE_ALL, HOSTILE_TEXT
from tests.llm_server import LoopbackLLM
from workbench.app import make_app
from workbench.jobs.codeopt import ExecutionRun, SamplingRun, build_pairs, run_execution_job, run_sampling_job
from workbench.screens.evaluation import EvaluationScreen
from workbench.screens.pairs import PairsScreen, PairTable
from workbench.screens.problems import ProblemsScreen


async def _settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_problems_and_solutions_show_hostile_text_plainly(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    seed_codeopt(engine, hostile=HOSTILE_ALL.replace("\x00", ""))
    app = make_app(engine=engine)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("k")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        problems = screen.query_one("#problems", DataTable)
        assert problems.row_count == 2
        task = str(problems.get_row_at(0)[1])
        assert task.startswith("Demo/a[/b] [bold]x") and "\x1b" not in task
        assert [str(c) for c in problems.get_row_at(1)[3:8]] == ["10", "6", "4", "0", "0"]
        problems.focus()
        await pilot.press("enter")
        await _settle(pilot)
        solutions = screen.query_one("#solutions", DataTable)
        assert solutions.row_count == 10
        verdicts = [str(solutions.get_row_at(i)[2]) for i in range(10)]
        assert verdicts.count("passed") == 6 and verdicts.count("failed") == 4
        detail = str(solutions.get_row_at(5)[6])
        assert detail.startswith("AssertionError: a[/b] [bold]x[/bold]") and "\x1b" not in detail
        text = screen.query_one("#problem-text", TextArea).text
        assert "def add_0(x: int)" in text and "# tests" in text and "\x1b" not in text and "␛[2J" in text
        assert "6/10 passed" in str(screen.query_one("#problem-title", Static).render())


def test_problems_screen_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    seed_codeopt(engine, hostile=HOSTILE_TEXT)

    async def open_first(pilot: Any) -> None:
        await pilot.press("k")
        await _settle(pilot)
        await pilot.press("enter")
        await _settle(pilot)

    assert snap_compare(make_app(engine=engine), terminal_size=(130, 36), run_before=open_first)


async def test_sampled_and_executed_pairs_show_in_the_pairs_screen(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    add_problems(engine, demo_problems(10))
    with LoopbackLLM(PolicyStandIn()) as server:
        run = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=10, concurrency=8)
        await asyncio.to_thread(lambda: list(run_sampling_job(engine, run)))
    summary = await asyncio.to_thread(lambda: list(run_execution_job(engine, ExecutionRun(workers=2)))[-1])
    made = build_pairs(engine, PairOptions(objectives=("correctness",)))
    assert made.added == 120
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("p")
        for _ in range(3):
            await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, PairsScreen)
        table = screen.query_one(PairTable)
        assert table.row_count == 120
        assert {str(table.get_row_at(i)[2]) for i in range(table.row_count)} == {"code-optimise"}
    assert summary.passed == 60  # type: ignore[union-attr]


async def test_policy_evaluations_show_in_the_evaluation_screen(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    ids = seed_codeopt(engine)
    eval_id = create_policy_eval(engine, job_id=None, model=HOSTILE_ALL, config_key="seedconfig",
                                 samples_per_problem=10, ks=(1, 10), problem_ids=ids, selection="all sources")
    outcomes = problem_outcomes(engine, "seedconfig", ids)
    finish_policy_eval(engine, eval_id, "done", metrics=policy_metrics(outcomes, (1, 10)), outcomes=outcomes, ks=(1, 10))
    app = make_app(engine=engine)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("e")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, EvaluationScreen)
        policy = screen.query_one("#policy", DataTable)
        assert policy.row_count == 1
        row = [str(cell) for cell in policy.get_row_at(0)]
        assert row[1].startswith("a[/b] [bold]x[/bold]") and "\x1b" not in row[1]
        assert row[2:5] == ["done", "2", "10"]
        assert row[5] == "@1 60.0  @10 100.0"
        assert row[6] == f"{(0.0011 + 0.0012 + 0.0014 + 0.004 + 0.0018 + 0.001) / 6 * 1e3:.4g}"
