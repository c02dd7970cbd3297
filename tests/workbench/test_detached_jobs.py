"""Jobs the TUI starts run in a detached worker: quitting is instant, a new TUI shows them live.

The worker is the real one, started by the TUI in its own session when none runs; the tests stop
it afterwards. A second test runs the TUI in a subprocess of its own to show that torch never
loads there while a merge and a pair-rm evaluation run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import DataTable, Input
from typer.testing import CliRunner

from stores.jobs import get_job, list_jobs
from tests.cli.test_mine_cli import _fast_import_history
from tests.jobs.test_lifecycle import _bench
from tests.llm_server import LoopbackLLM
from tests.workers import REPO_ROOT, pilot_wait_for
from workbench.app import make_app
from workbench.cli import app as cli
from workbench.screens.commits import CommitsScreen
from workbench.screens.dashboard import DashboardScreen
from workbench.screens.evaluation import EvaluationScreen


def _verdict(_messages: list[dict[str, str]]) -> str:
    return "[CODE_B] is better than [CODE_A] on the mentioned criteria."


def _job_states(screen: DashboardScreen) -> dict[int, str]:
    table = screen.query_one("#jobs", DataTable)
    return {int(str(table.get_row_at(row)[0])): str(table.get_row_at(row)[2]) for row in range(table.row_count)}


async def test_jobs_started_from_the_tui_outlive_it_and_show_live_in_a_new_one(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _fast_import_history(repo, 3000)
    bench = _bench(tmp_path / "bench", tasks=40)
    db = tmp_path / "wb.db"
    with LoopbackLLM(_verdict, delay_s=0.1) as llm:
        first = make_app(db)
        async with first.run_test(size=(140, 40)) as pilot:
            await pilot.press("e")
            await pilot.pause()
            screen = first.screen
            assert isinstance(screen, EvaluationScreen)
            # One request at a time, 100 ms each: the run lasts long enough to watch and to cancel.
            screen.query_one("#judge", Input).value = f"openai:judge@{llm.base_url}?concurrency=1"
            screen.query_one("#bench", Input).value = str(bench)
            await pilot.click("#start")
            await pilot_wait_for(pilot, lambda: len(list_jobs(first.engine)) == 1, what="the eval job queued")
            await first.switch_mode("commits")
            await pilot.press("m")
            await pilot.pause()
            first.screen.query_one("#path", Input).value = str(repo)
            await pilot.click("#start")
            await pilot_wait_for(pilot, lambda: len(list_jobs(first.engine)) == 2, what="the mining job queued")
            quit_at = time.monotonic()
            await pilot.press("q")  # at once, while both jobs run or wait for the worker
        quit_seconds = time.monotonic() - quit_at
        assert quit_seconds < 1.0, f"quitting took {quit_seconds:.2f}s"
        eval_job, mine_job = sorted(list_jobs(first.engine), key=lambda job: job.kind)
        assert (mine_job.kind, eval_job.kind) == ("mine", "eval")

        second = make_app(db)
        async with second.run_test(size=(140, 40)) as pilot:
            dashboard = second.screen
            assert isinstance(dashboard, DashboardScreen)
            await pilot_wait_for(pilot, lambda: _job_states(dashboard).get(mine_job.id) == "done",
                                 what="the mining job to end, seen on the dashboard")
            progress: list[int] = []

            def eval_moves() -> bool:
                done = get_job(second.engine, eval_job.id).done
                if not progress or progress[-1] != done:
                    progress.append(done)
                return len(progress) >= 3

            await second.switch_mode("evaluation")
            await pilot_wait_for(pilot, eval_moves, what="the eval job's progress to move")
            scores = second.screen.query_one("#scores", DataTable)
            await pilot_wait_for(pilot, lambda: scores.row_count > 0, what="the live scores of the running run")
            cancelled = CliRunner().invoke(cli, ["--db", str(db), "jobs", "cancel", str(eval_job.id)])
            assert cancelled.exit_code == 0 and "cancel requested" in cancelled.stdout
            await second.switch_mode("dashboard")
            await pilot_wait_for(pilot, lambda: _job_states(second.screen).get(eval_job.id) == "cancelled",
                                 what="the dashboard to show the eval job cancelled")
            await second.switch_mode("commits")
            await pilot.pause()
            assert isinstance(second.screen, CommitsScreen)
    final = get_job(second.engine, eval_job.id)
    assert final.state == "cancelled" and 0 < final.done < final.total
    assert (final.worker_id or "").startswith("w-")  # a worker ran it, not a TUI
    assert get_job(second.engine, mine_job.id).summary["records_stored"] == 3000 - 50


TUI_WITHOUT_TORCH = """
import asyncio, json, sys, time
from textual.widgets import Input
from stores.jobs import list_jobs
from workbench.app import make_app

db, bench, model, first, second, out = sys.argv[1:]

async def main():
    app = make_app(db)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#judge", Input).value = "pair-rm:" + model
        app.screen.query_one("#bench", Input).value = bench
        await pilot.click("#start")
        await app.switch_mode("training")
        await pilot.press("m")
        await pilot.pause()
        app.screen.query_one("#merge-inputs").value = first + " " + second
        app.screen.query_one("#merge-out").value = out
        await pilot.click("#merge-start")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            jobs = list_jobs(app.engine)
            if len(jobs) == 2 and not any(job.is_active for job in jobs):
                break
            await pilot.pause(0.2)
        states = sorted((job.kind, job.state.value) for job in list_jobs(app.engine))
    print(json.dumps({"states": states, "loaded": sorted(m for m in ("torch", "transformers") if m in sys.modules)}))

asyncio.run(main())
"""


def test_torch_never_loads_in_the_tui_while_a_merge_and_a_pair_rm_eval_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    first, second = shutil.copytree(tiny_model_dir, tmp_path / "a"), shutil.copytree(tiny_model_dir, tmp_path / "b")
    bench = _bench(tmp_path / "bench", tasks=2)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WORKBENCH_WORKER_IDLE_S": "3"}
    result = subprocess.run(
        [sys.executable, "-c", TUI_WITHOUT_TORCH, str(tmp_path / "wb.db"), str(bench), str(tiny_model_dir),
         str(first), str(second), str(tmp_path / "merged")],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["states"] == [["eval", "done"], ["merge", "done"]], report
    assert report["loaded"] == []  # the worker loaded torch; the TUI did not
