"""Preference records for DPO: read (prompt, chosen, rejected, group) rows and draw one pair per group.

The record shape DPO consumes, one JSON object a line:
`{"prompt": str, "chosen": str, "rejected": str, "group": str | int, "pair_id": int}`. `group` names the
problem the pair belongs to (Code-Optimise pairs: the problem id); without it the group is a hash of the
prompt, so every pair of one instruction shares a group. `pair_id` (optional) is the stored pair.
Rows in the pairwise layout (`instruction`, `chosen`, `rejected`) are read the same way, the instruction
being the prompt.

Dynamic pair selection (Code-Optimise, arXiv 2406.12502 section 3.3): at every epoch each group
contributes one (chosen, rejected) pair drawn afresh, seeded by the recipe's seed and the epoch.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import RecipeError
from core.training.train_data import dataset_rows


@dataclass(frozen=True, slots=True)
class PreferenceRecord:
    """One (chosen, rejected) pair for a prompt, with the group it is drawn from and its stored id."""

    prompt: str
    chosen: str
    rejected: str
    group: str
    pair_id: int | None = None


def prompt_group(prompt: str) -> str:
    """The group of a pair that names none: `instruction:` and the first 16 hex digits of SHA-256(prompt)."""
    return "instruction:" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def read_preference_records(path: Path) -> list[PreferenceRecord]:
    """Every pair of a dataset path (JSONL file or folder); errors name the file and line."""
    records = [_record(row, where) for row, where in dataset_rows(path)]
    if not records:
        raise RecipeError(f"dataset {path}: no pairs in it")
    return records


def _record(row: Any, where: str) -> PreferenceRecord:
    if not isinstance(row, dict):
        raise RecipeError(f"dataset {where}: each line must be a JSON object")
    prompt = row.get("prompt", row.get("instruction"))
    if not all(isinstance(value, str) for value in (prompt, row.get("chosen"), row.get("rejected"))):
        raise RecipeError(f"dataset {where}: a DPO row needs 'prompt' (or 'instruction'), 'chosen' and 'rejected' strings")
    if row["chosen"] == row["rejected"]:
        raise RecipeError(f"dataset {where}: chosen and rejected are the same text; such a pair teaches nothing")
    group = row.get("group")
    if group is not None and (isinstance(group, bool) or not isinstance(group, (str, int))):
        raise RecipeError(f"dataset {where}: 'group' must be a string or an integer (the problem id)")
    pair_id = row.get("pair_id")
    if pair_id is not None and (isinstance(pair_id, bool) or not isinstance(pair_id, int)):
        raise RecipeError(f"dataset {where}: 'pair_id' must be an integer")
    assert isinstance(prompt, str)
    return PreferenceRecord(prompt, row["chosen"], row["rejected"],
                            str(group) if group is not None else prompt_group(prompt), pair_id)


def group_members(groups: Sequence[str]) -> list[list[int]]:
    """Row indices by group, groups in order of first appearance."""
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    return list(members.values())


def draw_pairs(members: Sequence[Sequence[int]], seed: int, epoch: int) -> list[int]:
    """One row per group for `epoch`, in a shuffled group order; the same seed and epoch give the same draw."""
    rng = random.Random(f"dpo-pairs:{seed}:{epoch}")
    drawn = [rng.choice(rows) for rows in members if rows]
    rng.shuffle(drawn)
    return drawn
