"""What a synthesis state machine returns: the next turn to send, or the item's final outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Union

from core.curation.pairs import same_code
from core.curation.stripping import parses, strip_comments
from core.evaluation.protocols import IMPROVED_TAG, NAIVE_TAG, name_codes
from core.llm.base import Message, SamplingParams


@dataclass(frozen=True, slots=True)
class Turn:
    """The next chat to send: which step, which model role (critic or draft), and the messages."""

    step: str
    role: str
    messages: tuple[Message, ...]
    params: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True, slots=True)
class Exchange:
    """A turn together with the answer it got."""

    turn: Turn
    answer: str
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class PairDraft:
    """A finished preference pair: chosen is better than rejected on the criteria."""

    instruction: str
    criteria: str
    chosen: str
    rejected: str
    feedback: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answered:
    """A finished single answer that is the item's product instead of a pair (an arena answer or verdict)."""

    text: str
    finish_reason: str = "stop"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Filtered:
    """The item produced no pair on purpose (verdict NO, critic says good enough, same code)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The item could not be completed (unparseable or truncated answer, transport error)."""

    reason: str
    retryable: bool = False


Outcome = Union[PairDraft, Answered, Filtered, Failed]
Step = Union[Turn, Outcome]


class SynthesisMethod(Protocol):
    """A pure state machine: given the subject and the exchanges so far, the next turn or the outcome."""

    @property
    def name(self) -> str:
        """The method's name (commit-instruct, critic-evol)."""
        ...

    @property
    def prompt_version(self) -> str:
        """The version of its prompt templates, part of every cache key."""
        ...

    def next_step(self, subject: Any, exchanges: tuple[Exchange, ...]) -> Step:
        """Return the next turn to send, or the item's outcome."""
        ...


def truncated_note(exchange: Exchange) -> str:
    """A suffix explaining a failure by truncation, when the answer hit max_tokens."""
    return " (the answer was truncated at max_tokens)" if exchange.finish_reason == "length" else ""


def finish_pair(
    *,
    instruction: str,
    criteria: str,
    chosen: str,
    rejected: str,
    feedback: str,
    language: str,
    strip: bool,
    meta: dict[str, Any],
) -> Outcome:
    """Check a candidate pair and strip its comments; a pair, or why it was filtered or failed.

    FEEDBACK is mandatory and must name a code; its names for them ([ATTEMPT_2], "the improved
    code", ...) become the CodeFavor reference's tags [IMPROVED_CODE] and [NAIVE_CODE].
    """
    if not feedback.strip():
        return Failed("no FEEDBACK section")
    named = name_codes(feedback, IMPROVED_TAG, NAIVE_TAG)
    if named is None:
        return Failed(f"the FEEDBACK names neither {IMPROVED_TAG} nor {NAIVE_TAG}")
    feedback = named
    if strip:
        chosen, rejected = strip_comments(chosen), strip_comments(rejected)
    if not chosen.strip() or not rejected.strip():
        return Filtered("code is empty once comments are stripped")
    if same_code(chosen, rejected):
        return Filtered("both codes are the same")
    if language == "python":
        if not parses(chosen):
            return Filtered("the better code does not parse")
        if not parses(rejected):
            return Filtered("the worse code does not parse")
    return PairDraft(
        instruction=instruction.strip(), criteria=criteria.strip(), chosen=chosen, rejected=rejected,
        feedback=feedback.strip(), meta={**meta, "language": language},
    )
