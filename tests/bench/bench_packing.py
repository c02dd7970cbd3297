"""Tokens/s of training steps with sample packing against padding to the longest, in one process.

    python tests/bench/bench_packing.py [--model DIR] [--steps 3] [--examples 32]

Without --model it builds a small random-init Llama (hidden 128, 2 layers) with the test
tokenizer. Example lengths follow code pairs: a pairwise prompt around two snippets of 5-60 lines.
Prints real (non-padding) tokens per second for both and their ratio; no assertion.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch

from core.evaluation.prompts import classification_prompt
from core.training.packing import encode, micro_batches, summed_target_loss
from core.training.train_data import TrainExample

LINES = ["    total = total + values[index] * weight", "for index in range(len(values)):",
         "if value is None:\n        return default", "result.append(transform(item))", "import os, sys"]


def snippet(rng: random.Random) -> str:
    return "def solve(values):\n" + "\n".join(rng.choice(LINES) for _ in range(rng.randint(5, 60)))


def examples(count: int, seed: int = 0) -> list[TrainExample]:
    rng = random.Random(seed)
    return [TrainExample((("user", classification_prompt("Compute a weighted total.", snippet(rng), snippet(rng),
                                                        "efficiency")),), rng.choice("AB")) for _ in range(count)]


def run(model: torch.nn.Module, items: list, packing: bool, steps: int, pad_id: int, seq: int, rows: int) -> float:
    tokens, seconds = 0, 0.0
    for step in range(steps + 1):  # the first step warms up and is not timed
        started = time.perf_counter()
        for batch in micro_batches(items, packing=packing, capacity=seq, rows_per_batch=rows, pad_id=pad_id):
            summed_target_loss(model, batch).backward()
        model.zero_grad(set_to_none=True)
        if step:
            seconds += time.perf_counter() - started
            tokens += sum(len(item.input_ids) for item in items)
    return tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=4)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = args.model
    if model_dir is None:
        from core.training.tiny import make_tiny_model

        model_dir = make_tiny_model(Path(tempfile.mkdtemp()) / "bench", hidden_size=128, layers=2, heads=4)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).train()
    items = [encode(tokenizer, example, "classification") for example in examples(args.examples)]
    items = [item for item in items if len(item.input_ids) <= args.seq]
    lengths = sorted(len(item.input_ids) for item in items)
    print(f"{len(items)} examples, tokens min/median/max {lengths[0]}/{lengths[len(lengths) // 2]}/{lengths[-1]}, "
          f"device {device}")
    original = micro_batches

    def on_device(*a, **k):  # noqa: ANN002, ANN003
        return [{key: value.to(device) for key, value in batch.items()} for batch in original(*a, **k)]

    globals()["micro_batches"] = on_device
    padded = run(model, items, False, args.steps, tokenizer.pad_token_id, args.seq, args.rows)
    packed = run(model, items, True, args.steps, tokenizer.pad_token_id, args.seq, args.rows)
    print(f"padding to the longest: {padded:,.0f} tokens/s")
    print(f"packing:                {packed:,.0f} tokens/s")
    print(f"packing / padding:      {packed / padded:.2f}x")


if __name__ == "__main__":
    main()
