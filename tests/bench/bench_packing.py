"""Tokens/s of training steps with sample packing against padding to the longest, in one process.

    python tests/bench/bench_packing.py [--model DIR] [--steps 4] [--examples 48] [--rounds 2]

After: the trainer (TRL's SFTTrainer): packing is TRL's best-fit-decreasing packing into padding-free rows
of --seq tokens with core.training.attention's per-sequence attention; padding pads each micro batch to
its longest example. Before: the hand-written loop this trainer replaced (first-fit-decreasing rows with
position ids restarting per example, SDPA over one block-diagonal mask per row), kept below as the
baseline. Without --model it builds a small random-init Llama (hidden 128, 2 layers) with the test
tokenizer. Example lengths follow code pairs: a pairwise prompt around two snippets of 5-60 lines.
Prints real (non-padding) tokens per second of each, best of --rounds interleaved rounds (the first
step of each run warms up and is not timed), and the ratios; no assertion. On CPU the seconds are the
process's CPU seconds (torch limited to one thread), so other work on a shared machine does not skew
the ratios; on a GPU they are wall-clock seconds after a synchronize.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from core.evaluation.prompts import classification_prompt
from core.training.packing import IGNORE, Encoded, completion_columns, encode
from core.training.train_data import TrainExample


def clock() -> float:
    """CPU seconds of this process on CPU, wall-clock seconds after the GPU's queue drains on CUDA."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


LINES = ["    total = total + values[index] * weight", "for index in range(len(values)):",
         "if value is None:\n        return default", "result.append(transform(item))", "import os, sys"]


def snippet(rng: random.Random) -> str:
    return "def solve(values):\n" + "\n".join(rng.choice(LINES) for _ in range(rng.randint(5, 60)))


def examples(count: int, seed: int = 0) -> list[TrainExample]:
    rng = random.Random(seed)
    return [TrainExample((("user", classification_prompt("Compute a weighted total.", snippet(rng), snippet(rng),
                                                        "efficiency")),), rng.choice("AB")) for _ in range(count)]


# ---- before: the hand-written loop's batching and loss (removed from core/training), as the baseline ----

def _first_fit_rows(items: list[Encoded], capacity: int) -> list[list[Encoded]]:
    rows: list[list[Encoded]] = []
    room: list[int] = []
    for item in sorted(items, key=lambda entry: -len(entry.input_ids)):
        for index, free in enumerate(room):
            if len(item.input_ids) <= free:
                rows[index].append(item)
                room[index] -= len(item.input_ids)
                break
        else:
            rows.append([item])
            room.append(capacity - len(item.input_ids))
    return rows


def _collate(rows: list[list[Encoded]], pad_id: int, packed: bool) -> dict[str, torch.Tensor]:
    width = max(sum(len(item.input_ids) for item in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row_index, row in enumerate(rows):
        offset = 0
        for item in row:
            length = len(item.input_ids)
            input_ids[row_index, offset:offset + length] = torch.tensor(item.input_ids)
            labels[row_index, offset:offset + length] = torch.tensor(item.labels)
            positions[row_index, offset:offset + length] = torch.arange(length)
            mask[row_index, offset:offset + length] = 1
            offset += length
        positions[row_index, offset:] = torch.arange(width - offset)
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": positions}
    if not packed:
        batch["attention_mask"] = mask
    return batch


def _summed_target_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    labels = batch["labels"]
    positions = torch.nonzero((labels[:, 1:] != IGNORE).any(dim=0)).flatten()
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    logits = model(**inputs, use_cache=False, logits_to_keep=positions).logits.float()
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, positions + 1].reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


def hand_written(model_dir: Path, items: list[Encoded], packing: bool, args: argparse.Namespace, pad_id: int,
                 device: str) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    if packing:
        rows = _first_fit_rows(items, args.seq)
    else:
        rows = [[item] for item in items]
    batches = [_collate(rows[start:start + args.rows], pad_id, packing) for start in range(0, len(rows), args.rows)]
    tokens, seconds = 0, 0.0
    for step in range(args.steps + 1):
        started = clock()
        for batch in batches:
            _summed_target_loss(model, {key: value.to(device) for key, value in batch.items()}).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            seconds += clock() - started
            tokens += sum(len(item.input_ids) for item in items)
    return tokens / seconds


# ---- after: the trainer ----

def trl_trainer(model_dir: Path, items: list[Encoded], packing: bool, args: argparse.Namespace, out: Path) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from core.training.attention import packed_attention_implementation

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.marks.append((clock(), state.num_input_tokens_seen))

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    attention = packed_attention_implementation() if packing else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attention)
    config = SFTConfig(
        output_dir=str(out), per_device_train_batch_size=args.rows, gradient_accumulation_steps=1,
        max_steps=args.steps + 1, learning_rate=1e-5, bf16=False, activation_checkpointing=False, report_to="none",
        save_strategy="no", disable_tqdm=True, logging_strategy="no", completion_only_loss=True, packing=packing,
        packing_strategy="bfd", max_length=args.seq if packing else None, include_num_input_tokens_seen="non_padding",
        seed=0, use_cpu=not torch.cuda.is_available(),
    )
    step_clock = StepClock()
    trainer = SFTTrainer(model=model, args=config, processing_class=tokenizer, callbacks=[step_clock],
                         train_dataset=Dataset.from_dict(completion_columns(items)))
    trainer.train()
    (first_time, first_tokens), (last_time, last_tokens) = step_clock.marks[0], step_clock.marks[-1]
    return (last_tokens - first_tokens) / (last_time - first_time)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path)
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per run")
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=4, help="sequences per micro batch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import datasets
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp())
    model_dir = args.model
    if model_dir is None:
        from core.training.tiny import make_tiny_model

        model_dir = make_tiny_model(work / "bench", hidden_size=128, layers=2, heads=4, max_positions=args.seq)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    items = [encode(tokenizer, example, "classification") for example in examples(args.examples)]
    items = [item for item in items if len(item.input_ids) <= args.seq]
    lengths = sorted(len(item.input_ids) for item in items)
    print(f"{len(items)} examples, tokens min/median/max {lengths[0]}/{lengths[len(lengths) // 2]}/{lengths[-1]}, "
          f"device {device}, {args.rows} sequences per micro batch, rows of {args.seq} tokens when packing")
    runs = {
        "before, padding": lambda: hand_written(model_dir, items, False, args, tokenizer.pad_token_id, device),
        "before, packing": lambda: hand_written(model_dir, items, True, args, tokenizer.pad_token_id, device),
        "after, padding": lambda: trl_trainer(model_dir, items, False, args, work / "pad"),
        "after, packing": lambda: trl_trainer(model_dir, items, True, args, work / "pack"),
    }
    best = {name: 0.0 for name in runs}
    for round_index in range(args.rounds):
        for name, run in runs.items():
            rate = run()
            best[name] = max(best[name], rate)
            print(f"round {round_index + 1}: {name:16} {rate:,.0f} tokens/s", flush=True)
    for name, rate in best.items():
        print(f"{name:16} {rate:,.0f} tokens/s (best of {args.rounds})")
    print(f"before: packing / padding   {best['before, packing'] / best['before, padding']:.2f}x")
    print(f"after:  packing / padding   {best['after, packing'] / best['after, padding']:.2f}x")
    print(f"after packing / before packing {best['after, packing'] / best['before, packing']:.2f}x")


if __name__ == "__main__":
    main()
