"""The pairwise layout shared by export, training and evaluation: one place defines the prompt.

A classifier reads the prompt and answers the single token "A" or "B"; a generative judge writes
feedback that ends in a verdict sentence naming [CODE_A] or [CODE_B].
"""

from __future__ import annotations

from typing import Literal

Choice = Literal["A", "B"]
PROMPT_VERSION = "pairwise-v1"

_CLASSIFICATION_TEMPLATE = """\
Given an [INSTRUCTION] and two responses [CODE_A] and [CODE_B], judge which response is better \
according to the [CRITERIA].

[INSTRUCTION]
{instruction}

[CODE_A]
{code_a}

[CODE_B]
{code_b}

[CRITERIA]
{criteria}

Respond with "A" if [CODE_A] is better than [CODE_B] on the criteria, or "B" if [CODE_B] is better."""

_GENERATION_TEMPLATE = """\
Given an [INSTRUCTION] and two responses [CODE_A] and [CODE_B], judge which response is better \
according to the [CRITERIA].

[INSTRUCTION]
{instruction}

[CODE_A]
{code_a}

[CODE_B]
{code_b}

[CRITERIA]
{criteria}

Write short feedback comparing both responses on the criteria, then end with exactly one sentence: \
"[CODE_A] is better than [CODE_B] on the mentioned criteria." or \
"[CODE_B] is better than [CODE_A] on the mentioned criteria.\""""


def classification_prompt(instruction: str, code_a: str, code_b: str, criteria: str) -> str:
    """The user turn of the classification layout; the answer is "A" or "B"."""
    return _CLASSIFICATION_TEMPLATE.format(
        instruction=instruction.strip(), code_a=code_a.strip("\n"), code_b=code_b.strip("\n"),
        criteria=criteria.strip(),
    )


def generation_prompt(instruction: str, code_a: str, code_b: str, criteria: str) -> str:
    """The user turn of the generation layout; the answer is feedback ending in a verdict."""
    return _GENERATION_TEMPLATE.format(
        instruction=instruction.strip(), code_a=code_a.strip("\n"), code_b=code_b.strip("\n"),
        criteria=criteria.strip(),
    )


def verdict_sentence(winner: Choice) -> str:
    """The sentence a generative judge ends with when `winner` is the better code."""
    loser = "B" if winner == "A" else "A"
    return f"[CODE_{winner}] is better than [CODE_{loser}] on the mentioned criteria."


def place(chosen: str, rejected: str, chosen_first: bool) -> tuple[str, str, Choice]:
    """Put a pair in order: returns (code_a, code_b, the label of the better one)."""
    if chosen_first:
        return chosen, rejected, "A"
    return rejected, chosen, "B"
