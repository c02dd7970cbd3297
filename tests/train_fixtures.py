"""Small exported sets and recipes for training tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CODES = [
    ("Add two numbers.", "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"),
    ("Read a file.", "with open(p) as f:\n    data = f.read()\n", "f = open(p)\ndata = f.read()\n"),
    ("Sum a list.", "def total(xs):\n    return sum(xs)\n", "def total(xs):\n    s = 0\n    for x in xs:\n        s = x\n    return s\n"),
    ("Run a command.", "subprocess.run(['ls'])\n", "os.system(user_input)\n"),
]


def write_export(path: Path, copies: int = 4) -> Path:
    """A JSONL export of pairs (instruction, criteria, chosen, rejected, feedback)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(copies):
            for instruction, chosen, rejected in CODES:
                row = {"instruction": f"{instruction} #{index}", "criteria": "correctness", "chosen": chosen,
                       "rejected": rejected, "feedback": "[IMPROVED_CODE] is right."}
                handle.write(json.dumps(row) + "\n")
    return path


def write_recipe(path: Path, model_dir: Path, data: Path, out: Path, *, modeling: str = "classification",
                 top: dict[str, Any] | None = None, **hyper: Any) -> Path:
    """A tiny-model recipe as YAML; `top` adds or replaces top-level keys (method, dpo, ...)."""
    import yaml

    settings = {"batch_size": 8, "micro_batch_size": 4, "sequence_length": 512, "learning_rate": 1.0e-2,
                "warmup_steps": 2, "max_steps": 20, "bf16": False, "gradient_checkpointing": False, **hyper}
    recipe = {"name": "tiny", "base_model": str(model_dir), "modeling": modeling,
              "datasets": [{"path": str(data), "weight": 1.0}], "hyperparameters": settings,
              "seed": 1, "output_dir": str(out), **(top or {})}
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def write_preference_pairs(path: Path, groups: int = 3, pairs_per_group: int = 3) -> Path:
    """A DPO export: per problem (`group`) one passing solution against several failing ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for group in range(groups):
            for index in range(pairs_per_group):
                row = {"prompt": f"Write f{group}() returning {group}.", "chosen": f"def f{group}():\n    return {group}\n",
                       "rejected": f"def f{group}():\n    return {group + index + 1}\n", "group": f"HumanEval/{group}",
                       "pair_id": 100 * group + index}
                handle.write(json.dumps(row) + "\n")
    return path
