from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.training.recipes import load_train_recipe
from tests.train_fixtures import write_export, write_recipe

torch = pytest.importorskip("torch")


def _events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event["type"] == kind]


def test_tiny_model_loss_goes_down_in_20_steps_and_checkpoint_verifies(tiny_model_dir: Path, tmp_path: Path) -> None:
    from core.training.trainer import train

    data = write_export(tmp_path / "export" / "train.jsonl")
    recipe = load_train_recipe(write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run"))
    outcome = train(recipe, tmp_path / "run")
    assert outcome.state == "done" and outcome.step == 20
    metrics = _events(tmp_path / "run", "metric")
    losses = [event["loss"] for event in metrics]
    assert len(losses) == 20 and [event["step"] for event in metrics] == list(range(1, 21))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert all(event["tokens_per_s"] > 0 and event["grad_norm"] > 0 and event["eta_s"] >= 0 for event in metrics)
    checkpoints = _events(tmp_path / "run", "checkpoint")
    assert checkpoints[-1]["verified"] is True
    assert checkpoints[-1]["base_model"] == str(tiny_model_dir) and len(checkpoints[-1]["base_revision"]) == 64
    assert Path(outcome.checkpoint or "").name == "checkpoint-20"
    assert (Path(outcome.checkpoint or "") / "verified.json").is_file()


def test_resume_continues_from_the_last_checkpoint(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.training.trainer import latest_checkpoint, train

    data = write_export(tmp_path / "train.jsonl", copies=2)
    recipe_path = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=4,
                               gradient_checkpointing=True)
    answers = iter([False, True])  # asked after each optimizer step: stop after the second
    first = train(load_train_recipe(recipe_path), tmp_path / "run", should_stop=lambda: next(answers, True))
    assert first.state == "cancelled" and first.step == 2
    assert latest_checkpoint(tmp_path / "run") == tmp_path / "run" / "checkpoints" / "checkpoint-2"
    loads: list[dict] = []
    real_load = torch.load

    def recording_load(*args: object, **kwargs: object) -> object:
        loads.append(dict(kwargs))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    second = train(load_train_recipe(recipe_path), tmp_path / "run")
    assert second.state == "done" and second.step == 4
    # Optimizer, scheduler and RNG states come back through torch.load, never able to run code.
    assert len(loads) >= 3 and all(kwargs.get("weights_only") is True for kwargs in loads)
    resumed = [e for e in _events(tmp_path / "run", "status") if e["state"] == "resumed"]
    assert resumed and resumed[0]["step"] == 2
    assert [event["step"] for event in _events(tmp_path / "run", "metric")] == [1, 2, 3, 4]


def test_a_resume_skips_checkpoints_that_never_verified(tiny_model_dir: Path, tmp_path: Path) -> None:
    from core.training.trainer import latest_checkpoint, train

    data = write_export(tmp_path / "train.jsonl", copies=1)
    recipe_path = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=2,
                               save_every=1)
    train(load_train_recipe(recipe_path), tmp_path / "run")
    folder = tmp_path / "run" / "checkpoints"
    assert latest_checkpoint(tmp_path / "run") == folder / "checkpoint-2"
    # A save cut short (a crash between writing and verifying) has no verified.json: never resumed from.
    shutil.copytree(folder / "checkpoint-2", folder / "checkpoint-7")
    (folder / "checkpoint-7" / "verified.json").unlink()
    assert latest_checkpoint(tmp_path / "run") == folder / "checkpoint-2"


def _reference_loss(model_dir: Path, examples: list, modeling: str) -> float:
    """The hand-written trainer's loss: cross-entropy summed over answer tokens, over the step's answer tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.training.packing import IGNORE, encode

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for example in examples:
            item = encode(tokenizer, example, modeling)
            ids = torch.tensor([item.input_ids])
            labels = torch.tensor(item.labels)
            logits = model(ids).logits[0, :-1].float()
            targets = labels[1:]
            total += torch.nn.functional.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="sum").item()
            count += int((targets != IGNORE).sum())
    return total / count


@pytest.mark.parametrize(("modeling", "packing"), [("classification", True), ("classification", False),
                                                   ("generation", True)])
def test_first_step_loss_equals_the_hand_written_computation(
    tiny_model_dir: Path, tmp_path: Path, modeling: str, packing: bool
) -> None:
    """One optimizer step over every example: TRL's completion-only loss is the old per-answer-token loss."""
    from core.training.train_data import read_examples
    from core.training.trainer import train

    data = write_export(tmp_path / "train.jsonl", copies=1)  # 4 pairs, 8 examples (both orders)
    recipe_path = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", max_steps=1,
                               batch_size=8, micro_batch_size=2, packing=packing, learning_rate=1.0e-9,
                               warmup_steps=0, modeling=modeling)
    train(load_train_recipe(recipe_path), tmp_path / "run")
    logged = _events(tmp_path / "run", "metric")[0]["loss"]
    expected = _reference_loss(tiny_model_dir, read_examples(data, modeling), modeling)
    assert logged == pytest.approx(expected, rel=1e-4)
