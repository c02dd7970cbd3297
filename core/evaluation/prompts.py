"""The one renderer of pairwise prompts: export, training and judging turn chat turns into tokens here.

The text of a prompt comes from its protocol (`core.evaluation.protocols`). Through a chat template
the turns are rendered with `add_generation_prompt=True` and the template's leading BOS text is
dropped, as the CodeFavor reference's pairwise judge does (`codefavor/provider/hf.py`,
PairwiseRMCaller: `apply_chat_template(...).replace(bos_token, "")`, then encoding without special
tokens); only a leading BOS goes, so templates whose BOS text also opens every turn stay intact.
Without a chat template the turns are joined by a blank line and end with one newline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.evaluation.protocols import (
    DEFAULT_PROTOCOL,
    Choice,
    get_protocol,
    place,
    verdict_sentence,
)

Message = dict[str, str]
PROMPT_VERSION = "pairwise-v2"

__all__ = [
    "Choice", "PROMPT_VERSION", "batch_prompt_ids", "classification_prompt", "generation_prompt", "place", "prompt_ids",
    "render_prompt", "verdict_sentence",
]


def classification_prompt(
    instruction: str, code_a: str, code_b: str, criteria: str, protocol: str = DEFAULT_PROTOCOL
) -> str:
    """The user turn of the classification layout of `protocol`; the answer is "A" or "B"."""
    return get_protocol(protocol).classification_prompt(instruction, code_a, code_b, criteria)


def generation_prompt(
    instruction: str, code_a: str, code_b: str, criteria: str, protocol: str = DEFAULT_PROTOCOL
) -> str:
    """The user turn of the generation layout of `protocol`; the answer is feedback ending in a verdict."""
    return get_protocol(protocol).generation_prompt(instruction, code_a, code_b, criteria)


def render_prompt(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The text a model reads before its answer: the chat template's rendering, or the plain fallback."""
    if getattr(tokenizer, "chat_template", None):
        text = str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
        bos = getattr(tokenizer, "bos_token", None)
        if bos and text.startswith(bos):
            text = text[len(bos):]
        return text
    text = "\n\n".join(message["content"] for message in messages)
    return text if text.endswith("\n") else text + "\n"


def prompt_ids(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of the rendered prompt, without special tokens added by the tokenizer."""
    return batch_prompt_ids(tokenizer, [messages])[0]


def batch_prompt_ids(tokenizer: Any, conversations: Sequence[Sequence[Message]]) -> list[list[int]]:
    """`prompt_ids` of many prompts in one tokenizer call."""
    if not conversations:
        return []
    texts = [render_prompt(tokenizer, messages) for messages in conversations]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
