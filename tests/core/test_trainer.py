from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.training.recipes import load_train_recipe
from tests.train_fixtures import write_export, write_recipe

pytest.importorskip("torch")


def _events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event["type"] == kind]


def test_tiny_model_loss_goes_down_in_20_steps_and_checkpoint_verifies(tiny_model_dir: Path, tmp_path: Path) -> None:
    from core.training.trainer import train

    data = write_export(tmp_path / "export" / "train.jsonl")
    recipe = load_train_recipe(write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run"))
    outcome = train(recipe, tmp_path / "run")
    assert outcome.state == "done" and outcome.step == 20
    losses = [event["loss"] for event in _events(tmp_path / "run", "metric")]
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    checkpoints = _events(tmp_path / "run", "checkpoint")
    assert checkpoints[-1]["verified"] is True
    assert Path(outcome.checkpoint or "").name == "step-20"


def test_resume_continues_from_the_last_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    from core.training.trainer import train

    data = write_export(tmp_path / "train.jsonl", copies=2)
    recipe_path = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=4,
                               gradient_checkpointing=True)
    stops = iter([False, False, True])
    first = train(load_train_recipe(recipe_path), tmp_path / "run", should_stop=lambda: next(stops, True))
    assert first.state == "cancelled" and first.step == 2
    second = train(load_train_recipe(recipe_path), tmp_path / "run")
    assert second.state == "done" and second.step == 4
    resumed = [e for e in _events(tmp_path / "run", "status") if e["state"] == "resumed"]
    assert resumed and resumed[0]["step"] == 2
    steps = [event["step"] for event in _events(tmp_path / "run", "metric")]
    assert steps == [1, 2, 3, 4]
