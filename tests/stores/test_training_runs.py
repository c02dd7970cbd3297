"""The store copies a run's events: metrics, checkpoints with the base model's revision, DPO pair draws."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from core.training.revision import model_revision
from stores.jobs import create_job
from stores.training.runs import create_train_run, get_train_run, list_checkpoints, list_pair_draws, sync_events
from workbench.cli import app
from workbench.jobs.runner import drain, run_job_here
from workbench.jobs.train import TRAIN, TrainParams

LINEAGE = {"base_model": "/models/base", "base_revision": "a" * 40, "base_revision_kind": "hub-commit", "method": "dpo"}


def _run(engine: Engine, run_dir: Path, exit_code: int = 0) -> int:
    """A queued training run whose "trainer" is a process that exits with `exit_code` (its events are written by the test)."""
    run_dir.mkdir()
    params = TrainParams(name="tiny", run_dir=str(run_dir), recipe="r.yaml", command="python",
                         base_model=LINEAGE["base_model"], base_revision=LINEAGE["base_revision"],
                         base_revision_kind=LINEAGE["base_revision_kind"])
    job_id = create_job(engine, TRAIN.name, "train tiny", {**TRAIN.dump_params(params), "method": "dpo"},
                        state="queued", run_key=f"train:{run_dir}")
    create_train_run(engine, job_id, name="tiny", recipe_path="r.yaml", run_dir=str(run_dir),
                     recipe={"datasets": [{"path": "/data/dpo.jsonl"}]},
                     command=[sys.executable, "-c", f"raise SystemExit({exit_code})"], events_offset=0)
    return job_id


def _write(run_dir: Path, *events: dict) -> None:
    with (run_dir / "events.jsonl").open("a", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps({"time": 1.0, **event}) + "\n")


def test_pair_draws_and_checkpoint_lineage_reach_the_store(engine: Engine, db_path: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    job_id = _run(engine, run_dir)
    draw0 = [{"group": "HumanEval/1", "row": 4, "pair_id": 11}, {"group": "HumanEval/0", "row": 0, "pair_id": None}]
    draw1 = [{"group": "HumanEval/0", "row": 2, "pair_id": 2}, {"group": "HumanEval/1", "row": 3, "pair_id": 10}]
    _write(run_dir, {"type": "status", "state": "loading", **LINEAGE},
           {"type": "pair_draw", "epoch": 0, "pairs": draw0},
           {"type": "metric", "step": 1, "total_steps": 2, "loss": 0.69, "lr": 1e-3, "reward_margin": 0.01},
           {"type": "pair_draw", "epoch": 1, "pairs": draw1},
           {"type": "metric", "step": 2, "total_steps": 2, "loss": 0.65, "lr": 1e-3, "reward_margin": 0.04},
           {"type": "checkpoint", "step": 2, "path": str(run_dir / "checkpoints" / "checkpoint-2"), "verified": True,
            **LINEAGE},
           {"type": "status", "state": "done", "step": 2})
    assert sync_events(engine, job_id) == 7
    assert list_pair_draws(engine, job_id) == [
        {"epoch": 0, "group": "HumanEval/1", "row": 4, "pair_id": 11},
        {"epoch": 0, "group": "HumanEval/0", "row": 0, "pair_id": None},
        {"epoch": 1, "group": "HumanEval/0", "row": 2, "pair_id": 2},
        {"epoch": 1, "group": "HumanEval/1", "row": 3, "pair_id": 10},
    ]
    checkpoint = list_checkpoints(engine, job_id=job_id)[0]
    assert checkpoint.lineage["base_revision"] == "a" * 40 and checkpoint.lineage["datasets"] == ["/data/dpo.jsonl"]
    run = get_train_run(engine, job_id)
    assert run.lineage == LINEAGE and run.latest["reward_margin"] == 0.04 and run.latest["pair_draw_epochs"] == 2
    assert drain(run_job_here(engine, job_id)).state == "done"  # the runner ends the job from the trainer's exit
    assert get_train_run(engine, job_id).exit_code == 0
    shown = CliRunner().invoke(app, ["--db", str(db_path), "train", "show", str(job_id)])
    assert shown.exit_code == 0
    assert f"base model: /models/base @ {'a' * 40} (hub-commit)" in shown.stdout
    assert "pairs drawn at epoch 0: 2 groups, rows 4, 0" in shown.stdout
    as_json = json.loads(CliRunner().invoke(app, ["--db", str(db_path), "train", "show", str(job_id), "--json"]).stdout)
    assert len(as_json["pair_draws"]) == 4


def test_a_launcher_failure_after_a_clean_stop_is_a_cancel(engine: Engine, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    job_id = _run(engine, run_dir, exit_code=1)  # torchrun reports its ranks' exit 3 as a failure
    _write(run_dir, {"type": "status", "state": "cancelled", "step": 3})
    assert drain(run_job_here(engine, job_id)).state == "cancelled"
    run = get_train_run(engine, job_id)
    assert run.state == "cancelled" and run.exit_code == 1


def test_model_revision_from_the_hub_cache_layout_or_the_content(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--org--m" / "snapshots" / ("b" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert model_revision(str(snapshot)).revision == "b" * 40
    local = tmp_path / "local"
    metadata = local / ".cache" / "huggingface" / "download"
    metadata.mkdir(parents=True)
    (metadata / "config.json.metadata").write_text("c" * 40 + "\netag\n1.0\n")
    assert model_revision(str(local)).kind == "hub-commit" and model_revision(str(local)).revision == "c" * 40
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text('{"a": 1}')
    (plain / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}" + b"w" * 100)
    first = model_revision(str(plain))
    assert first.kind == "content-sha256" and len(first.revision or "") == 64
    (plain / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}" + b"v" * 100)
    assert model_revision(str(plain)).revision != first.revision  # other weights, other revision
    assert model_revision("no-such-org/no-such-model").kind == "unknown"
