"""DPO on TRL's DPOTrainer with dynamic pair selection: a fresh (chosen, rejected) pair per problem each epoch.

Code-Optimise (arXiv 2406.12502, section 3.3) samples many solutions per problem and, instead of training
on every (passing, failing) pair, draws one pair per problem at each epoch. Here that is a sampler: the
Trainer asks it for the epoch's row order (`set_epoch`), it draws one row per `group` with
`preference.draw_pairs`, seeded by the recipe's seed and the epoch, and reports the draw so the run logs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from core.evaluation.prompts import render_prompt
from core.training.preference import PreferenceRecord, draw_pairs


def preference_rows(records: Sequence[PreferenceRecord], tokenizer: Any) -> dict[str, list[Any]]:
    """Dataset columns for DPOTrainer: the prompt as a user turn and each side as the assistant's answer.

    With a chat template TRL applies it (conversational rows); without one the prompt is rendered by
    `render_prompt`, the renderer supervised training and judging use, and the sides are plain text.
    """
    conversational = bool(getattr(tokenizer, "chat_template", None))
    columns: dict[str, list[Any]] = {"prompt": [], "chosen": [], "rejected": [], "group": [], "pair_id": []}
    for record in records:
        user = [{"role": "user", "content": record.prompt}]
        if conversational:
            columns["prompt"].append(user)
            columns["chosen"].append([{"role": "assistant", "content": record.chosen}])
            columns["rejected"].append([{"role": "assistant", "content": record.rejected}])
        else:
            columns["prompt"].append(render_prompt(tokenizer, user))
            columns["chosen"].append(record.chosen)
            columns["rejected"].append(record.rejected)
        columns["group"].append(record.group)
        columns["pair_id"].append(-1 if record.pair_id is None else record.pair_id)
    return columns


class DynamicPairSampler(torch.utils.data.Sampler[int]):
    """Yields one row per group for the current epoch, drawn by `draw_pairs(members, seed, epoch)`.

    Every rank builds the same sampler and draws the same rows; accelerate then shards the batches.
    `on_draw(epoch, rows)` is called each time an epoch's draw is made.
    """

    def __init__(self, members: list[list[int]], seed: int, on_draw: Callable[[int, list[int]], None]) -> None:
        self.members = members
        self.seed = seed
        self.on_draw = on_draw
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer before each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[int]:
        drawn = draw_pairs(self.members, self.seed, self.epoch)
        self.on_draw(self.epoch, drawn)
        return iter(drawn)


def dynamic_dpo_trainer_class() -> type:
    """DPOTrainer whose training sampler is a DynamicPairSampler.

    Set `pair_sampler` (built over the rows of `train_dataset`, in order) before calling `train`.
    """
    from trl import DPOTrainer

    class DynamicPairDPOTrainer(DPOTrainer):  # type: ignore[misc]
        """DPOTrainer drawing one pair per group each epoch from `pair_sampler`."""

        pair_sampler: DynamicPairSampler | None = None

        def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler:
            if self.pair_sampler is None:
                raise RuntimeError("set pair_sampler before training")
            return self.pair_sampler

    return DynamicPairDPOTrainer
