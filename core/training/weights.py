"""Merge weights, checked before any tensor is read (no torch here, so the CLI and the TUI's merge
dialog validate without loading it)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.errors import OptionError


def merge_weights(values: Sequence[str | float] | None, checkpoint_count: int) -> tuple[float, ...]:
    """One positive, finite weight per checkpoint (equal weights when none are given).

    A merge averages parameters with the weights normalised to sum to one (the CodeFavor paper,
    arXiv 2410.03837, merges a Commit-Instruct and a Critic-Evol model this way). Values may be
    numbers or the texts typed on a command line or in a form. Raises OptionError naming the bad value.
    """
    if checkpoint_count < 2:
        raise OptionError(f"merging needs at least two checkpoints, got {checkpoint_count}")
    if not values:
        return (1.0,) * checkpoint_count
    weights = []
    for value in values:
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"merge weight {value!r} is not a number") from None
        if not math.isfinite(weight):
            raise OptionError(f"merge weight {value!r} is not a finite number")
        if weight <= 0:
            raise OptionError(f"merge weights must be positive numbers, not {value!r}")
        weights.append(weight)
    if len(weights) != checkpoint_count:
        raise OptionError(f"{checkpoint_count} checkpoints but {len(weights)} weights; "
                          "give one weight per checkpoint")
    if not math.isfinite(sum(weights)):
        raise OptionError("merge weights are too large to add up; scale them down (only their ratios matter)")
    return tuple(weights)
