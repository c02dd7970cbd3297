from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stores.db import make_engine
from stores.training.runs import get_train_run, list_checkpoints, list_metrics
from tests.train_fixtures import write_export, write_recipe
from workbench.cli import app

pytest.importorskip("torch")


def _wait_for(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the detached run")
        time.sleep(0.2)


def _start(tmp_path: Path, db: Path, recipe: Path) -> int:
    result = CliRunner().invoke(app, ["--db", str(db), "train", str(recipe), "--json"])
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["job_id"])


def test_detached_run_is_monitored_to_the_end(tiny_model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "wb.db"
    data = write_export(tmp_path / "export" / "train.jsonl", copies=2)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=6, save_every=3)
    run_id = _start(tmp_path, db, recipe)
    engine = make_engine(db)
    _wait_for(lambda: not get_train_run(engine, run_id).is_active)
    run = get_train_run(engine, run_id)
    assert run.state == "done", (run.error, (tmp_path / "run" / "train.log").read_text()[-2000:])
    assert run.exit_code == 0 and run.step == 6 and run.total_steps == 6
    assert [point.step for point in list_metrics(engine, run_id)] == [1, 2, 3, 4, 5, 6]
    checkpoints = list_checkpoints(engine, job_id=run_id)
    assert sorted(c.step for c in checkpoints) == [3, 6] and all(c.verified for c in checkpoints)
    assert checkpoints[0].lineage["datasets"] == [str(data)]

    runner = CliRunner()
    listed = runner.invoke(app, ["--db", str(db), "train", "list"])
    assert listed.exit_code == 0 and f"{run_id}\ttiny\tdone\t6/6" in listed.stdout
    shown = runner.invoke(app, ["--db", str(db), "train", "show", str(run_id)])
    assert "checkpoint: " in shown.stdout and "(verified)" in shown.stdout
    logs = runner.invoke(app, ["--db", str(db), "train", "logs", str(run_id), "-n", "5"])
    assert logs.exit_code == 0 and "training done at step 6/6" in logs.stdout
    as_json = json.loads(runner.invoke(app, ["--db", str(db), "train", "show", str(run_id), "--json"]).stdout)
    assert len(as_json["metrics"]) == 6 and as_json["metrics"][0]["loss"] > 0


def test_cancel_stops_a_detached_run_with_a_checkpoint_to_resume(tiny_model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "wb.db"
    data = write_export(tmp_path / "train.jsonl", copies=2)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=100_000)
    run_id = _start(tmp_path, db, recipe)
    engine = make_engine(db)
    _wait_for(lambda: get_train_run(engine, run_id).step >= 2)
    again = CliRunner().invoke(app, ["--db", str(db), "train", str(recipe)])
    assert again.exit_code == 1 and f"run {run_id} is still training in" in again.stderr
    cancelled = CliRunner().invoke(app, ["--db", str(db), "train", "cancel", str(run_id)])
    assert cancelled.exit_code == 0 and "cancel requested" in cancelled.stdout
    _wait_for(lambda: not get_train_run(engine, run_id).is_active)
    run = get_train_run(engine, run_id)
    assert run.state == "cancelled" and run.exit_code == 3
    saved = list_checkpoints(engine, job_id=run_id)
    assert saved and saved[0].verified and (Path(saved[0].path) / "trainer_state.json").is_file()

    stopped_at = saved[0].step or 0
    recipe = write_recipe(tmp_path / "r2.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=stopped_at + 2)
    resumed_id = _start(tmp_path, db, recipe)
    _wait_for(lambda: not get_train_run(engine, resumed_id).is_active)
    resumed = get_train_run(engine, resumed_id)
    assert resumed.state == "done", resumed.error
    assert [p.step for p in list_metrics(engine, resumed_id)] == [stopped_at + 1, stopped_at + 2]


def test_bad_recipe_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    db = tmp_path / "wb.db"
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("base_model: m\nmodeling: regression\ndatasets: [x.jsonl]\n")
    result = CliRunner().invoke(app, ["--db", str(db), "train", str(recipe)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {recipe}:2:11: modeling: input should be 'classification', 'generation' or 'policy', not 'regression'"]
    assert not db.exists()  # the recipe is checked before the store opens
    make_engine(db).dispose()
    missing = CliRunner().invoke(app, ["--db", str(db), "train", "show", "99"])
    assert missing.exit_code == 1 and "training run 99 does not exist" in missing.stderr
    absent = tmp_path / "r.yaml"
    absent.write_text("base_model: org/not-here\ndatasets: [nowhere.jsonl]\n")
    result = CliRunner().invoke(app, ["--db", str(db), "train", str(absent)])
    assert result.exit_code == 1 and "base_model: org/not-here is not a local folder, and hub downloads" in result.stderr
    absent.write_text(f"base_model: {tmp_path}\ndatasets: [nowhere.jsonl]\n")
    result = CliRunner().invoke(app, ["--db", str(db), "train", str(absent)])
    assert result.exit_code == 1 and "does not exist; export it first" in result.stderr
    assert CliRunner().invoke(app, ["--db", str(db), "train", "list"]).stdout.strip().count("\n") == 0


def test_multi_node_without_deepspeed_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_export(tmp_path / "train.jsonl", copies=1)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run")
    hosts = tmp_path / "hosts"
    hosts.write_text("node1 slots=8\nnode2 slots=8\n")
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "wb.db"), "train", str(recipe), "--gpus", "8",
                                      "--nodes", "2", "--hostfile", str(hosts)])
    assert result.exit_code == 2 and "deepspeed.stage" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_trainer_failure_ends_the_job_failed_with_its_error(tmp_path: Path) -> None:
    db = tmp_path / "wb.db"
    data = write_export(tmp_path / "train.jsonl", copies=1)
    (tmp_path / "no-such-model").mkdir()  # a folder, so the launch checks pass, that holds no model
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "no-such-model", data, tmp_path / "run")
    run_id = _start(tmp_path, db, recipe)
    engine = make_engine(db)
    _wait_for(lambda: not get_train_run(engine, run_id).is_active)
    run = get_train_run(engine, run_id)
    assert run.state == "failed" and run.exit_code == 1
    assert run.error
    assert "Traceback" in (tmp_path / "run" / "train.log").read_text()
    shown = CliRunner().invoke(app, ["--db", str(db), "jobs", "show", str(run_id)])
    assert "param command: " in shown.stdout and "core.training.train_main" in shown.stdout


def _rank_pids(run_dir: Path) -> dict[int, int]:
    """pid of each trainer rank working in `run_dir`, read from /proc (rank from its RANK variable)."""
    ranks = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environ = dict(entry.split(b"=", 1) for entry in (proc / "environ").read_bytes().split(b"\0") if b"=" in entry)
        except OSError:
            continue
        if b"core.training.train_main" in command and str(run_dir).encode() in command and b"RANK" in environ:
            ranks[int(environ[b"RANK"])] = int(proc.name)
    return ranks


def _rank_lines(log: Path, text: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if text in line]


def test_two_ranks_stop_together_when_only_one_is_signalled(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Two CPU ranks under accelerate's launcher: SIGTERM reaches rank 1 only, both stop at the same step."""
    import os
    import signal

    db = tmp_path / "wb.db"
    data = write_export(tmp_path / "train.jsonl", copies=2)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=100_000,
                          batch_size=8, micro_batch_size=2)
    result = CliRunner().invoke(app, ["--db", str(db), "train", str(recipe), "--gpus", "2", "--json"])
    assert result.exit_code == 0, result.output
    run_id = int(json.loads(result.stdout)["job_id"])
    engine = make_engine(db)
    shown = CliRunner().invoke(app, ["--db", str(db), "train", "show", str(run_id)])
    assert f"-m accelerate.commands.launch --config_file {tmp_path / 'run' / 'accelerate.yaml'}" in shown.stdout
    assert json.loads((tmp_path / "run" / "accelerate.yaml").read_text())["num_processes"] == 2
    _wait_for(lambda: get_train_run(engine, run_id).step >= 2, timeout=180)
    ranks = _rank_pids(tmp_path / "run")
    assert sorted(ranks) == [0, 1]
    os.kill(ranks[1], signal.SIGTERM)
    _wait_for(lambda: not get_train_run(engine, run_id).is_active, timeout=180)
    run = get_train_run(engine, run_id)
    assert run.state == "cancelled", (run.error, (tmp_path / "run" / "train.log").read_text()[-3000:])
    stops = _rank_lines(tmp_path / "run" / "train.log", "training cancelled at step")
    assert len(stops) == 2 and stops[0].split(": ", 1)[1] == stops[1].split(": ", 1)[1]  # same step, same checkpoint
    saved = list_checkpoints(engine, job_id=run_id)
    assert saved and all(c.verified for c in saved) and saved[0].step == run.step
    assert len(_rank_lines(tmp_path / "run" / "events.jsonl", '"type": "checkpoint"')) == len(saved)  # rank 0 only


def test_a_failed_verification_stops_every_rank(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A diverged model (weight decay 1e30 blows every weight up) fails verification on rank 0; both ranks
    raise and the run fails."""
    db = tmp_path / "wb.db"
    data = write_export(tmp_path / "train.jsonl", copies=1)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=4, save_every=1,
                          learning_rate=1.0, weight_decay=1.0e30, warmup_steps=0, batch_size=4, micro_batch_size=2)
    result = CliRunner().invoke(app, ["--db", str(db), "train", str(recipe), "--gpus", "2", "--json"])
    assert result.exit_code == 0, result.output
    run_id = int(json.loads(result.stdout)["job_id"])
    engine = make_engine(db)
    _wait_for(lambda: not get_train_run(engine, run_id).is_active, timeout=180)
    run = get_train_run(engine, run_id)
    assert run.state == "failed" and run.error and "failed verification" in run.error
    log = tmp_path / "run" / "train.log"
    raised = _rank_lines(log, "training failed: CheckpointVerificationError: checkpoint at step")
    assert sorted(line.split(":", 1)[0] for line in raised) == ["rank 0", "rank 1"], log.read_text()[-3000:]
    assert raised[0].split(": ", 1)[1] == raised[1].split(": ", 1)[1]  # the same step and problem on both
    unverified = [c for c in list_checkpoints(engine, job_id=run_id) if not c.verified]
    assert len(unverified) == 1 and unverified[0].path.endswith(".unverified")
    assert Path(unverified[0].path).is_dir()
    assert "non-finite" in unverified[0].problems
