"""Set a reasoning model's thinking aside, so that only its final answer is parsed.

Reasoning models put their thinking in the answer text between tags (`<think>` for DeepSeek-R1,
Qwen3 and QwQ; `<thinking>`, `<reasoning>`, `<thought>`; `<seed:think>` for Seed-OSS; `[THINK]` for
Magistral; `◁think▷` for Kimi; `<|begin_of_thought|>` for OpenThoughts/Sky-T1), or in gpt-oss's
harmony channels (`<|channel|>analysis` ... `<|channel|>final<|message|>`). When a chat template
opens the block itself (DeepSeek-R1), the text starts inside it and holds only the closing tag.
"""

from __future__ import annotations

import re

_PAIRS = {
    "<think>": "</think>",
    "<thinking>": "</thinking>",
    "<reasoning>": "</reasoning>",
    "<thought>": "</thought>",
    "<seed:think>": "</seed:think>",
    "<|begin_of_thought|>": "<|end_of_thought|>",
    "\u25c1think\u25b7": "\u25c1/think\u25b7",
    "[THINK]": "[/THINK]",
}
_OPEN = re.compile("|".join(re.escape(tag) for tag in sorted(_PAIRS, key=len, reverse=True)), re.IGNORECASE)
_CLOSE = {opener: re.compile(re.escape(closer), re.IGNORECASE) for opener, closer in _PAIRS.items()}
_ANY_CLOSE = re.compile("|".join(re.escape(tag) for tag in _PAIRS.values()), re.IGNORECASE)
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)
_HARMONY_FINAL = re.compile(r"<\|channel\|>\s*final\s*(?:<\|constrain\|>\S*)?\s*<\|message\|>")
_HARMONY_END = re.compile(r"<\|(?:return|end|call)\|>\s*\Z")
_SOLUTION = re.compile(r"<\|(?:begin|end)_of_solution\|>")


def _inside_fence(text: str) -> bool:
    return len(_FENCE.findall(text)) % 2 == 1


def _at_line_start(text: str, index: int) -> bool:
    line_start = text.rfind("\n", 0, index) + 1
    return not text[line_start:index].strip()


def split_reasoning(text: str) -> tuple[str, str]:
    """Split an answer into (final answer, reasoning set aside); ("", reasoning) if it never left the reasoning.

    A block counts when its opening tag starts a line outside a code fence, so code that prints
    "<think>" is kept. An unclosed block (generation stopped while thinking) leaves no answer.
    Text without reasoning comes back unchanged, with reasoning "".
    """
    final = _HARMONY_FINAL.search(text)
    if final is not None:
        return _HARMONY_END.sub("", text[final.end():]).strip(), text[: final.start()].strip()
    answer: list[str] = []
    reasoning: list[str] = []
    position = 0
    first_open = _OPEN.search(text)
    orphan = _ANY_CLOSE.search(text)
    if orphan is not None and (first_open is None or orphan.start() < first_open.start()) \
            and not _inside_fence(text[: orphan.start()]):
        # The chat template opened the block: everything before the first closing tag is thinking.
        reasoning.append(text[: orphan.start()])
        position = orphan.end()
    while True:
        opening = _OPEN.search(text, position)
        while opening is not None and not (
            _at_line_start(text, opening.start())
            and not _inside_fence("".join(answer) + text[position:opening.start()])
        ):
            opening = _OPEN.search(text, opening.end())
        if opening is None:
            answer.append(text[position:])
            break
        answer.append(text[position:opening.start()])
        closing = _CLOSE[_opener_key(opening.group())].search(text, opening.end())
        if closing is None:
            reasoning.append(text[opening.end():])
            break
        reasoning.append(text[opening.end():closing.start()])
        position = closing.end()
    if not reasoning:
        return text, ""
    final_answer = _SOLUTION.sub("", "".join(answer)).strip()
    return final_answer, "\n\n".join(part.strip() for part in reasoning if part.strip())


def _opener_key(tag: str) -> str:
    lowered = tag.lower()
    return next(opener for opener in _PAIRS if opener.lower() == lowered)
