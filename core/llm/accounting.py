"""Token and cost accounting per model, budget caps, the response-cache key, and cost estimates."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from core.errors import OptionError
from core.llm.base import ChatResult, Message, SamplingParams


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million prompt and completion tokens."""

    input_per_m: float = 0.0
    output_per_m: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars for this many tokens."""
        return (prompt_tokens * self.input_per_m + completion_tokens * self.output_per_m) / 1e6


# A few list prices (USD per 1M tokens) as defaults; anything else is free unless configured.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
}


def price_for(model: str, prices: Mapping[str, Price] | None = None) -> Price:
    """The configured price of a model (exact name first, then the built-in table, else free)."""
    for table in (prices or {}, DEFAULT_PRICES):
        if model in table:
            return table[model]
    return Price()


@dataclass(frozen=True, slots=True)
class Budget:
    """A cap on tokens (prompt + completion) and/or dollars for one run; None means no cap."""

    max_tokens: int | None = None
    max_cost: float | None = None

    def describe(self) -> str:
        """Human-readable cap."""
        parts = []
        if self.max_tokens is not None:
            parts.append(f"{self.max_tokens:,} tokens")
        if self.max_cost is not None:
            parts.append(f"${self.max_cost:.2f}")
        return " and ".join(parts) or "no budget"


def parse_budget(text: str | None) -> Budget:
    """Read `--budget`: `50000` or `50k` or `2M` tokens, or `$2.50` / `2.5usd` dollars."""
    if not text:
        return Budget()
    value = text.strip().lower().replace(",", "").replace("_", "")
    money = re.fullmatch(r"\$\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:usd|\$|dollars?)", value)
    if money:
        return Budget(max_cost=float(money.group(1) or money.group(2)))
    tokens = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(k|m)?\s*(?:tok|tokens)?", value)
    if tokens:
        scale = {"k": 1_000, "m": 1_000_000}.get(tokens.group(2) or "", 1)
        return Budget(max_tokens=int(float(tokens.group(1)) * scale))
    raise OptionError(f"budget {text!r}: use a token count (50000, 50k, 2M) or dollars ($2.50, 2.5usd)")


@dataclass
class ModelUsage:
    """What one model consumed in a run."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


@dataclass
class Meter:
    """Live token and cost counters per model for one run, checked against a budget."""

    budget: Budget = field(default_factory=Budget)
    prices: Mapping[str, Price] = field(default_factory=dict)
    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    cache_hits: int = 0

    def add(self, model: str, result: ChatResult) -> None:
        """Count one answer that was paid for."""
        usage = self.by_model.setdefault(model, ModelUsage())
        usage.requests += 1
        usage.prompt_tokens += result.prompt_tokens
        usage.completion_tokens += result.completion_tokens
        usage.cost += price_for(model, self.prices).cost(result.prompt_tokens, result.completion_tokens)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens paid for so far."""
        return sum(u.prompt_tokens + u.completion_tokens for u in self.by_model.values())

    @property
    def cost(self) -> float:
        """Dollars spent so far."""
        return sum(u.cost for u in self.by_model.values())

    @property
    def requests(self) -> int:
        """Requests answered (not from the cache)."""
        return sum(u.requests for u in self.by_model.values())

    def exhausted(self) -> bool:
        """True once the budget is used up: no new request may start."""
        if self.budget.max_tokens is not None and self.tokens >= self.budget.max_tokens:
            return True
        return self.budget.max_cost is not None and self.cost >= self.budget.max_cost


def cache_key(model: str, prompt_version: str, messages: Sequence[Message], params: SamplingParams) -> str:
    """The response-cache key: model, prompt-template version, messages and sampling parameters."""
    blob = json.dumps(
        [model, prompt_version, [[m["role"], m["content"]] for m in messages], asdict(params)],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token) for estimates before a run."""
    return max(1, len(text) // 4)


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """What a run is expected to consume before it starts."""

    items: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float

    def describe(self) -> str:
        """One line for the user."""
        return (
            f"estimate: {self.items:,} items, up to {self.requests:,} requests, "
            f"~{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens, "
            f"~${self.cost:.2f}"
        )
