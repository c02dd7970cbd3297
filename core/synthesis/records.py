"""Plain records of the synthesis stage that cross from the store to the front ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class InstructionRecord:
    """An instruction read from a file, before it is stored."""

    text: str
    language: str = "python"
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """One stored LLM exchange and the outcome of its item."""

    id: int
    item_id: int
    method: str
    step: str
    model: str
    prompt_version: str
    messages: list[dict[str, str]]
    response: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cached: bool
    outcome: str
    item_state: str
    item_reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ItemCounts:
    """How the items of one synthesis configuration stand."""

    pending: int = 0
    claimed: int = 0
    pair: int = 0
    filtered: int = 0
    failed: int = 0
    sampled: int = 0

    @property
    def total(self) -> int:
        """All items."""
        return self.pending + self.claimed + self.pair + self.filtered + self.failed + self.sampled


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A managed LLM server."""

    id: int
    job_id: int | None
    model: str
    base_url: str
    port: int
    pid: int | None
    state: str
    log_path: str
    created_at: datetime
