"""Tokenise examples with the loss on the answer only, and batch them packed or padded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.errors import RecipeError
from core.evaluation.prompts import prompt_ids
from core.training.train_data import TrainExample

IGNORE = -100


@dataclass(frozen=True, slots=True)
class Encoded:
    """Token ids of one example and its labels (IGNORE everywhere but the answer tokens)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def target_count(self) -> int:
        """How many tokens carry loss."""
        return sum(1 for label in self.labels if label != IGNORE)



def encode(tokenizer: Any, example: TrainExample, modeling: str) -> Encoded:
    """Token ids of one exported example: the prompt as the judge will read it, then the answer.

    The prompt goes through `core.evaluation.prompts.prompt_ids`, the renderer the pairwise judge
    uses, so training and evaluation see the same ids. Classification answers must be one token;
    generation answers end with EOS.
    """
    messages = [{"role": role, "content": content} for role, content in example.messages]
    prompt_token_ids = prompt_ids(tokenizer, messages)
    target_ids = tokenizer(example.target, add_special_tokens=False)["input_ids"]
    if modeling == "classification":
        if len(target_ids) != 1:
            raise RecipeError(
                f"classification target {example.target!r} is {len(target_ids)} tokens for this tokenizer; "
                "it must be exactly one ('A' or 'B')"
            )
    elif tokenizer.eos_token_id is not None:
        target_ids = [*target_ids, tokenizer.eos_token_id]
    ids = (*prompt_token_ids, *target_ids)
    labels = (*([IGNORE] * len(prompt_token_ids)), *target_ids)
    return Encoded(tuple(ids), labels)


def pack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit-decreasing bin packing: indices grouped into rows of at most `capacity` tokens."""
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    rows: list[list[int]] = []
    room: list[int] = []
    for index in order:
        length = lengths[index]
        for row_index, free in enumerate(room):
            if length <= free:
                rows[row_index].append(index)
                room[row_index] -= length
                break
        else:
            rows.append([index])
            room.append(capacity - length)
    return rows


def collate_packed(rows: Sequence[Sequence[Encoded]], pad_id: int) -> dict[str, torch.Tensor]:
    """Concatenate each row's examples; position ids restart per example so none attends across.

    No attention mask is passed: transformers then derives a block-diagonal causal mask from the
    position ids (and flash-attention kernels use them the same way).
    """
    width = max(sum(len(item.input_ids) for item in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for row_index, row in enumerate(rows):
        offset = 0
        for item in row:
            length = len(item.input_ids)
            input_ids[row_index, offset:offset + length] = torch.tensor(item.input_ids)
            labels[row_index, offset:offset + length] = torch.tensor(item.labels)
            position_ids[row_index, offset:offset + length] = torch.arange(length)
            offset += length
        if offset < width:  # the tail is its own segment of padding, with no loss
            position_ids[row_index, offset:] = torch.arange(width - offset)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


def collate_padded(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad each example to the longest one, with an attention mask."""
    width = max(len(item.input_ids) for item in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(items), width), dtype=torch.long)
    for row_index, item in enumerate(items):
        length = len(item.input_ids)
        input_ids[row_index, :length] = torch.tensor(item.input_ids)
        labels[row_index, :length] = torch.tensor(item.labels)
        attention_mask[row_index, :length] = 1
    position_ids = torch.arange(width).unsqueeze(0).expand(len(items), -1).clone()
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask, "position_ids": position_ids}


def micro_batches(
    items: Sequence[Encoded], *, packing: bool, capacity: int, rows_per_batch: int, pad_id: int
) -> list[dict[str, torch.Tensor]]:
    """Split one optimizer step's examples into collated micro batches."""
    if packing:
        rows = [[items[index] for index in row] for row in pack([len(i.input_ids) for i in items], capacity)]
        return [collate_packed(rows[start:start + rows_per_batch], pad_id) for start in range(0, len(rows), rows_per_batch)]
    return [collate_padded(items[start:start + rows_per_batch], pad_id) for start in range(0, len(items), rows_per_batch)]


def summed_target_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of cross-entropy over the answer tokens, computing logits only where a label follows."""
    labels = batch["labels"]
    predicts = labels[:, 1:] != IGNORE  # position i predicts label i + 1
    positions = torch.nonzero(predicts.any(dim=0)).flatten()
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    output = model(**inputs, use_cache=False, logits_to_keep=positions)
    logits = output.logits.float()  # (batch, len(positions), vocab)
    targets = labels[:, positions + 1]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
