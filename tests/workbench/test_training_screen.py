from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.textsafe import one_line
from stores.jobs import create_job, get_job, list_jobs
from stores.training.runs import list_checkpoints
from stores.training.tables import TrainMetricRow, TrainRunRow
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.helpers import settle
from tests.workbench.pilot import click
from tests.workers import pilot_wait_for
from workbench.app import make_app


def _fake_run(engine: Engine, run_dir: Path, steps: int) -> int:
    """A running run owned by this process, with logged steps and a log holding hostile text."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train.log").write_text(f"step 1\n{HOSTILE_TEXT}\n", encoding="utf-8")
    job_id = create_job(engine, "train", f"train {HOSTILE_TEXT}", pid=os.getpid(), log_path=str(run_dir / "train.log"))
    latest = {"loss": 0.5, "lr": 1e-5, "tokens_per_s": 1234.0, "gpu_mem_gb": 3.5, "phase": "running",
              "checkpoint": f"/runs/{HOSTILE_TEXT}"}
    with Session(engine) as session:
        session.add(TrainRunRow(job_id=job_id, name=HOSTILE_TEXT, recipe_path="r.yaml", recipe_json="{}",
                                run_dir=str(run_dir), step=steps, total_steps=100, latest_json=json.dumps(latest)))
        session.commit()
        for step in range(1, steps + 1):
            session.add(TrainMetricRow(job_id=job_id, step=step, time=float(step), loss=2.0 / step, lr=1e-5))
        session.commit()
    return job_id


async def test_training_screen_shows_a_run_safely_and_cancels_it(tmp_path: Path, engine: Engine) -> None:
    job_id = _fake_run(engine, tmp_path / "run", steps=5)
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("t")
        await settle(app, pilot)
        screen = app.screen
        assert type(screen).__name__ == "TrainingScreen"
        table = screen.query_one("#runs")
        assert table.row_count == 1
        assert str(table.get_row_at(0)[4]) == one_line(HOSTILE_TEXT, 40)  # long names are cut in the table
        assert [p.step for p in screen._points] == [1, 2, 3, 4, 5]
        log_text = "\n".join(screen.query_one("#log-tail").lines)
        assert HOSTILE_TEXT in log_text
        stats = str(screen.query_one("#stats").render())
        assert "tok/s" in stats and HOSTILE_TEXT in stats and "3.5 GiB" in stats

        with Session(engine) as session:  # the watcher copies a new step in; the curve grows
            session.add(TrainMetricRow(job_id=job_id, step=6, time=6.0, loss=0.3, lr=1e-5))
            session.commit()
        screen.refresh_data()
        await settle(app, pilot)
        assert [p.step for p in screen._points] == [1, 2, 3, 4, 5, 6]

        await pilot.press("ctrl+x")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmDialog"  # cancelling a run is confirmed
        await pilot.press("y")
        await settle(app, pilot)
    with Session(engine) as session:
        from stores.tables import JobRow

        assert session.get(JobRow, job_id).cancel_requested is True
    assert get_job(engine, job_id).state == "running"


async def test_merge_dialog_merges_two_checkpoints(tmp_path: Path, engine: Engine, tiny_model_dir: Path) -> None:
    first = shutil.copytree(tiny_model_dir, tmp_path / "a")
    second = shutil.copytree(tiny_model_dir, tmp_path / "b")
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("t")
        await settle(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one("#merge-inputs").value = f"{first} {second}"
        dialog.query_one("#merge-weights").value = "1 3"
        dialog.query_one("#merge-out").value = str(tmp_path / "merged")
        await click(pilot, "#merge-start")  # queued: a worker process is started to run it (torch loads there)
        await pilot_wait_for(pilot, lambda: bool(list_checkpoints(engine)), what="the merge job")
        job = list_jobs(engine, kind="merge")[0]
        await pilot_wait_for(pilot, lambda: not get_job(engine, job.id).is_active, what="the merge job to end")
        assert (get_job(engine, job.id).worker_id or "").startswith("w-")  # a worker process ran it, not the TUI
    merged = list_checkpoints(engine)
    assert len(merged) == 1 and merged[0].kind == "merge" and merged[0].verified
    assert merged[0].lineage["weights"] == [1.0, 3.0]
    assert (tmp_path / "merged" / "model.safetensors").is_file()


async def test_merge_dialog_refuses_bad_weights_like_the_cli(tmp_path: Path, engine: Engine) -> None:
    app = make_app(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("t")
        await pilot.press("m")
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one("#merge-inputs").value = "a b"
        dialog.query_one("#merge-weights").value = "1"
        dialog.query_one("#merge-out").value = "out"
        await click(pilot, "#merge-start")
        await pilot.pause()
        assert "give one weight per checkpoint" in str(dialog.query_one("#merge-error").render())
        assert type(app.screen).__name__ == "MergeDialog"
        dialog.query_one("#merge-weights").value = "inf 1"  # the CLI's check, shared
        await click(pilot, "#merge-start")
        await pilot.pause()
        assert "merge weight 'inf' is not a finite number" in str(dialog.query_one("#merge-error").render())
        assert type(app.screen).__name__ == "MergeDialog"
