"""Parsers that survive real LLM output: tagged sections, verdicts and code blocks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Section name -> the spellings models use for it (compared case-insensitively; a space also
# matches "_" and "-", so "naive code" reads [NAIVE_CODE]). The CodeFavor reference's tags are
# [INSTRUCTION], [CRITERIA], [NAIVE_CODE], [IMPROVED_CODE], [FEEDBACK] (Commit-Instruct) and
# [REFLECTION], [CRITERIA], [ATTEMPT_2], [FEEDBACK] (Critic-Evol).
SECTION_ALIASES: dict[str, tuple[str, ...]] = {
    "INSTRUCTION": ("instruction", "task", "coding instruction", "task description"),
    "CRITERION": ("criterion", "criteria", "evaluation criterion", "evaluation criteria"),
    "NAIVE CODE": ("naive code", "naive solution", "naive implementation", "original code", "old code", "naive version"),
    "IMPROVED CODE": (
        "improved code", "improved solution", "improved attempt", "improved implementation", "improved version",
        "better code", "new code", "attempt 2", "attempt2", "second attempt", "revised code", "refined code",
    ),
    "FEEDBACK": ("feedback",),
    "REFLECTION": ("reflection", "analysis", "critique"),
    "DECISION": ("decision", "verdict"),
}

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def _header_pattern(aliases: Sequence[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(a).replace(r"\ ", r"[\s_-]+") for a in sorted(aliases, key=len, reverse=True))
    # [NAME] | ## Name | **Name** | **Name:** | Name: | 1. **Name:** | -- BEGIN [NAME] --, then optional
    # text on the same line.
    return re.compile(
        rf"^\s*(?P<begin>-+\s*BEGIN\s+)?(?:(?P<number>\d{{1,2}}[.)])\s+)?(?:(?P<hash>\#{{1,6}})\s*)?"
        rf"(?P<b1>\*\*|__)?\s*(?P<lb>\[)?\s*(?P<name>{names})\s*(?P<rb>\])?"
        rf"\s*(?P<b2>\*\*|__)?\s*(?P<colon>:)?\s*(?P<b3>\*\*|__)?(?(begin)\s*-+)?(?P<rest>.*)$",
        re.IGNORECASE,
    )


_END_MARKER = re.compile(r"^\s*-+\s*END\s+\[?[\w\s]+\]?\s*-+\s*$", re.IGNORECASE)


_PATTERNS = {name: _header_pattern(aliases) for name, aliases in SECTION_ALIASES.items()}


def _match_header(line: str, names: Sequence[str], in_fence: bool, current: str | None) -> tuple[str, str] | None:
    for name in names:
        match = _PATTERNS[name].match(line)
        if not match:
            continue
        bracketed = bool(match.group("lb") and match.group("rb"))
        marked = bracketed or bool(match.group("hash") or match.group("b1") or match.group("colon") or match.group("begin"))
        if in_fence and not (bracketed and line.lstrip().startswith(("[", "-"))):
            continue  # inside code only an exact [TAG] line can close a section whose fence never closed
        if not marked:
            continue
        rest = match.group("rest").strip()
        if match.group("number") and not (bracketed or match.group("colon") or match.group("b1") or match.group("hash")):
            continue  # "1. Instruction matters" is a list item, not a heading
        if not (bracketed or match.group("colon")) and rest and not match.group("b2"):
            continue  # "Feedback is important" is prose, not a heading
        if rest and not match.group("colon") and not match.group("begin"):
            if rest[:1].islower() or rest[:1] in ",.;)" or current == "FEEDBACK":
                continue  # "[IMPROVED CODE] is better." is a sentence about the code, not a heading
        return name, rest.strip("*_ ").strip()
    return None


def split_sections(text: str, names: Sequence[str]) -> dict[str, str]:
    """Split an answer into the named sections, whatever their order and heading style.

    Recognises `[NAME]`, `## Name`, `**Name**`, `**Name:**`, `Name:`, `1. **Name:**` and
    `-- BEGIN [NAME] --` headings and their aliases; headings inside code fences are ignored, and a
    line that starts with a tag but reads as a sentence ("[IMPROVED_CODE] is better.") stays text.
    A repeated section keeps its first occurrence.
    """
    sections: dict[str, list[str]] = {}
    current: str | None = None
    in_fence = False
    for line in text.split("\n"):
        if not in_fence and _END_MARKER.match(line):
            current = None
            continue
        header = _match_header(line, names, in_fence, current)
        if header is not None:
            name, rest = header
            in_fence = False
            if name in sections:
                current = None  # a second copy: ignore it rather than mixing the two
                continue
            current = name
            sections[name] = [rest] if rest else []
            continue
        if _FENCE.match(line):
            in_fence = not in_fence
        if current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in sections.items()}


def code_blocks(text: str) -> list[str]:
    """Every fenced block of an answer in order (an unclosed last fence runs to the end), trimmed."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    fence = ""
    for line in text.splitlines():
        match = _FENCE.match(line)
        if current is None:
            if match:
                fence = match.group(1)
                current = []
            continue
        if match and line.strip() == match.group(1) and match.group(1)[0] == fence[0]:
            blocks.append(current)
            current = None
            continue
        current.append(line)
    if current is not None:  # truncated answer: the fence never closed
        blocks.append(current)
    return [_dedent_trailing("\n".join(block)) for block in blocks]


def extract_code(text: str) -> str:
    """The code in a section or answer: the longest fenced block, an unclosed fence's rest, or bare code."""
    blocks = code_blocks(text)
    if blocks:
        return max(blocks, key=lambda block: len(block.strip()))
    return bare_code(text)


def _dedent_trailing(code: str) -> str:
    code = code.strip("\n")
    return code + "\n" if code.strip() else ""


_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |return\b|if |for |while |with |try:|@|#|\w+\s*=|\w+\(|print\()"
)


def bare_code(text: str) -> str:
    """Code in an answer without fences: everything from the first line that looks like code."""
    stripped = text.strip("\n")
    if not stripped.strip():
        return ""
    lines = stripped.splitlines()
    # Drop prose lines before the first line that looks like code.
    for index, line in enumerate(lines):
        if _CODE_LINE.match(line):
            return _dedent_trailing("\n".join(lines[index:]))
    return ""


_VERDICT_PATTERNS = [
    re.compile(r"\[\s*(yes|no)\s*\]", re.IGNORECASE),
    re.compile(r"(?:\*\*|__)\s*(yes|no)\b[.!]?\s*(?:\*\*|__)", re.IGNORECASE),
    re.compile(r"\b(?:verdict|answer|decision)\s*(?:is)?\s*[:\-]?\s*\**\s*\"?(yes|no)\b", re.IGNORECASE),
    re.compile(r"\A\W*(yes|no)\b", re.IGNORECASE),
    re.compile(r"\b(YES|NO)\b"),
]


# Small models often answer in a sentence instead of YES/NO; only a plain refusal is read as NO.
_PROSE_NO = re.compile(
    r"\A[^.\n]*\b(?:does not|doesn't|do not|don't|did not|didn't)\s+(?:clearly\s+|really\s+)?improve", re.IGNORECASE
)


def parse_verdict(text: str) -> bool | None:
    """YES/NO from an answer ("Yes.", "[YES]", "**NO**", "Verdict: yes", prose around it); None if absent.

    Without an explicit YES or NO, a first sentence saying the change "does not improve" reads as NO.
    """
    for pattern in _VERDICT_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).lower() == "yes"
    if _PROSE_NO.search(text.strip()):
        return False
    return None


_STOP_WORDS = re.compile(r"\b(stop|good enough|no (?:further )?improvement|acceptable as is)\b", re.IGNORECASE)
_IMPROVE_WORDS = re.compile(r"\b(improve|revise|rewrite)\b", re.IGNORECASE)


def parse_decision(sections: Mapping[str, str], text: str) -> str | None:
    """'stop' or 'improve' from a critic's answer; None when it says neither."""
    decision = sections.get("DECISION", "")
    if decision:
        if _STOP_WORDS.search(decision):
            return "stop"
        if _IMPROVE_WORDS.search(decision):
            return "improve"
    if "IMPROVED CODE" in sections:
        return "improve"
    if re.search(r"\[\s*stop\s*\]", text, re.IGNORECASE) or _STOP_WORDS.search(text):
        return "stop"
    return None


def normalise_code(code: str) -> str:
    """Code with trailing spaces and blank lines removed, for "is it the same code" checks."""
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())
