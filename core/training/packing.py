"""Tokenise examples with the loss on the answer only; the trainer (TRL) packs or pads them.

`encode` turns the chat turns of `read_examples` into token ids with the prompt rendered by
`render_prompt`, the one renderer training shares with judging (core/training/verify.py); TRL's
SFTTrainer receives the ids with a completion mask, so its completion-only loss falls on exactly the
answer tokens (`Encoded.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def completion_columns(items: list[Encoded]) -> dict[str, list[list[int]]]:
    """The pre-tokenized dataset columns TRL's SFTTrainer reads: `input_ids` and `completion_mask` (1 on answer tokens)."""
    return {
        "input_ids": [list(item.input_ids) for item in items],
        "completion_mask": [[0 if label == IGNORE else 1 for label in item.labels] for item in items],
    }
