"""The chat interface every backend implements: messages in; text, token usage and latency out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict


class Message(TypedDict):
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to sample; part of the response-cache key."""

    max_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat to send."""

    messages: tuple[Message, ...]
    params: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """What came back: the text, token usage, latency, and why generation stopped."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str = "stop"  # stop | length | error
    cached: bool = False


class ChatBackend(Protocol):
    """A model that answers chats; `chat_many` runs a batch with the backend's own concurrency."""

    model_name: str

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one chat."""
        ...

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answer several chats, in order."""
        ...

    async def aclose(self) -> None:
        """Release connections, processes or models."""
        ...
