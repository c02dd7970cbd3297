"""The chat interface every backend implements: messages in; text, token usage and latency out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

from core.errors import LLMError


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


# finish_reason values that mean "cut at the token limit", as OpenAI, Anthropic-style and other
# OpenAI-compatible servers spell it; backends report all of them as "length".
TRUNCATED_REASONS = frozenset({"length", "max_tokens", "max_output_tokens", "model_length", "max_new_tokens"})


@dataclass(frozen=True, slots=True)
class ChatResult:
    """What came back: the final answer, the reasoning set aside, token usage, latency, why it stopped.

    `text` is only the answer after any reasoning (`<think>` blocks, a `reasoning_content` field);
    `reasoning` keeps what was set aside. `finish_reason` is "length" when the answer was cut at
    max_tokens (`truncated`), "stop" otherwise (or what the server said, e.g. "content_filter").
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str = "stop"  # stop | length | error | content_filter
    cached: bool = False
    reasoning: str = ""

    @property
    def truncated(self) -> bool:
        """True when generation stopped at the token limit: the answer may be cut anywhere."""
        return self.finish_reason in TRUNCATED_REASONS


def normalise_finish_reason(reason: object) -> str:
    """A server's finish reason in our vocabulary: every spelling of "cut at the limit" becomes "length"."""
    text = str(reason or "stop").strip().lower() or "stop"
    return "length" if text in TRUNCATED_REASONS else text


@dataclass
class CallStats:
    """What a backend sent: HTTP attempts (or generations), retries, and failed attempts by kind.

    Kinds: `connect` (refused, reset, DNS), `timeout`, `http_429`, `http_5xx`, `http_4xx`,
    `error_body` (an error object in a 200 answer), `malformed` (not a chat-completions answer),
    `protocol` (not HTTP/1.x, e.g. an HTTP/2-only server), `too_large`, `tls`, `proxy`.
    """

    attempts: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def failed(self, kind: str) -> None:
        """Count one failed attempt of this kind."""
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def copy(self) -> CallStats:
        """A snapshot that later calls do not change."""
        return CallStats(self.attempts, self.retries, dict(self.failures))


class LLMRequestError(LLMError):
    """A chat request failed: `kind` is one of CallStats' kinds, `retryable` whether waiting may help."""

    def __init__(self, message: str, *, kind: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


class ChatBackend(Protocol):
    """A model that answers chats; `chat_many` runs a batch with the backend's own concurrency.

    `stats` counts what the backend sent over its lifetime (one backend per run).
    """

    model_name: str
    stats: CallStats

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one chat."""
        ...

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answer several chats, in order."""
        ...

    async def aclose(self) -> None:
        """Release connections, processes or models."""
        ...
