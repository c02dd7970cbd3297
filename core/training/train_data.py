"""Training examples from exported sets: read JSONL rows into (prompt, target) and mix them by weight.

`read_examples` is the one place an exported record becomes chat turns and a target for supervised
training: pairs become preference-model examples (classification or generation, CodeFavor), and for a
policy (`modeling: policy`) a pair's chosen side is the target (Code-Optimise's SFT on passing solutions,
arXiv 2406.12502 section 3.3), each distinct (prompt, chosen) once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import RecipeError
from core.evaluation.protocols import DEFAULT_PROTOCOL, get_protocol, place


@dataclass(frozen=True, slots=True)
class TrainExample:
    """One supervised example: the chat turns before the answer, and the answer the loss is on."""

    messages: tuple[tuple[str, str], ...]
    target: str


def dataset_files(path: Path) -> list[Path]:
    """The JSONL files of a dataset path: the file itself, or a folder's train files (else all JSONL)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        train = sorted(path.glob("train*.jsonl"))
        return train or sorted(path.glob("*.jsonl"))
    return []


def dataset_rows(path: Path) -> Iterator[tuple[Any, str]]:
    """Every JSON line of a dataset path with its `file:line`; blank lines skipped.

    Raises RecipeError when the path holds no JSONL file or a line is not JSON.
    """
    files = dataset_files(path)
    if not files:
        raise RecipeError(f"dataset {path}: no JSONL file there (export a set first, or fix the path)")
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RecipeError(f"dataset {file}:{line_number}: not JSON ({exc.msg})") from exc
                yield row, f"{file}:{line_number}"


def read_examples(path: Path, modeling: str) -> list[TrainExample]:
    """Read every row of a dataset path as training examples for `modeling`."""
    examples: list[TrainExample] = []
    seen: set[TrainExample] = set()
    for row, where in dataset_rows(path):
        for example in _row_examples(row, modeling, where):
            # A passing solution appears in one pair per failing one; a policy learns it once.
            if modeling == "policy" and example in seen:
                continue
            seen.add(example)
            examples.append(example)
    if not examples:
        raise RecipeError(f"dataset {path}: no examples in it")
    return examples


def _row_examples(row: Any, modeling: str, where: str) -> Iterator[TrainExample]:
    if not isinstance(row, dict):
        raise RecipeError(f"dataset {where}: each line must be a JSON object")
    if isinstance(row.get("messages"), list):
        turns = [(str(m.get("role", "")), str(m.get("content", ""))) for m in row["messages"] if isinstance(m, dict)]
        if len(turns) < 2 or turns[-1][0] != "assistant":
            raise RecipeError(f"dataset {where}: 'messages' must end with the assistant answer")
        yield TrainExample(tuple(turns[:-1]), turns[-1][1])
        return
    if modeling == "policy" and isinstance(row.get("chosen"), str):
        prompt = row.get("prompt", row.get("instruction"))
        if not isinstance(prompt, str):
            raise RecipeError(f"dataset {where}: a policy row needs a 'prompt' (or 'instruction') string")
        yield TrainExample((("user", prompt),), row["chosen"])
        return
    if isinstance(row.get("prompt"), str):
        target = next((row[key] for key in ("target", "completion", "label", "response") if key in row), None)
        if not isinstance(target, str):
            raise RecipeError(f"dataset {where}: a 'prompt' row needs a 'target' (or 'completion') string")
        yield TrainExample((("user", row["prompt"]),), target)
        return
    if all(isinstance(row.get(key), str) for key in ("instruction", "criteria", "chosen", "rejected")):
        yield from _pair_examples(row, modeling)
        return
    raise RecipeError(
        f"dataset {where}: unknown row shape; expected 'messages', 'prompt'+'target', "
        "instruction/criteria/chosen/rejected, or prompt/chosen for a policy"
    )


def _pair_examples(row: dict[str, Any], modeling: str) -> Iterator[TrainExample]:
    """Both orders of a stored pair, laid out by the row's protocol (default: codefavor), as export does.

    A generation example whose feedback names neither code is skipped, as export drops it.
    """
    protocol = get_protocol(str(row.get("protocol") or DEFAULT_PROTOCOL))
    for chosen_first in (True, False):
        code_a, code_b, winner = place(row["chosen"], row["rejected"], chosen_first)
        if modeling == "classification":
            prompt = protocol.classification_prompt(row["instruction"], code_a, code_b, row["criteria"])
            yield TrainExample((("user", prompt),), winner)
            continue
        target = protocol.generation_target(str(row.get("feedback") or ""), winner)
        if target is not None:
            prompt = protocol.generation_prompt(row["instruction"], code_a, code_b, row["criteria"])
            yield TrainExample((("user", prompt),), target)


def mix(datasets: Sequence[tuple[list[TrainExample], float]], seed: int) -> list[TrainExample]:
    """Mix datasets so each one's share of the result follows its weight; seeded and deterministic."""
    rng = random.Random(seed)
    total = sum(len(examples) for examples, _ in datasets)
    weight_sum = sum(weight for _, weight in datasets)
    mixed: list[TrainExample] = []
    for examples, weight in datasets:
        wanted = max(1, round(total * weight / weight_sum))
        order = list(examples)
        rng.shuffle(order)
        while len(order) < wanted:  # up-sample a small, heavily weighted set by repeating it
            extra = list(examples)
            rng.shuffle(extra)
            order.extend(extra)
        mixed.extend(order[:wanted])
    rng.shuffle(mixed)
    return mixed
