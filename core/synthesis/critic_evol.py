"""Critic-Evol: a draft model answers an instruction; a few-shot critic stops or writes a better attempt."""

from __future__ import annotations

from dataclasses import dataclass

from core.llm.base import Message, SamplingParams
from core.synthesis.parsing import extract_code, parse_decision, split_sections
from core.synthesis.steps import Exchange, Failed, Filtered, Step, Turn, finish_pair, truncated_note

PROMPT_VERSION = "critic-evol-v1"

DRAFT_SYSTEM = "You are a programmer. Answer the task with one complete solution in a single code block."

CRITIC_SYSTEM = """\
You review a programmer's attempt at a coding task. First write a [REFLECTION] on the attempt: \
is it correct, efficient, secure and idiomatic? Then write [DECISION] with STOP if the attempt is \
good enough, or IMPROVE if a clearly better version exists. After IMPROVE, write [CRITERION] (one \
sentence naming what makes the new attempt better), [IMPROVED CODE] (the complete better code in a \
code block) and [FEEDBACK] (two or three sentences). Never improve style alone."""

_EXAMPLES: list[tuple[str, str, str]] = [
    (
        "Write a function that returns the average of a list of numbers.",
        "def average(xs):\n    return sum(xs) / len(xs) - 1",
        "[REFLECTION]\nThe attempt subtracts 1 from the mean, so every result is wrong, and it "
        "divides by zero on an empty list.\n[DECISION]\nIMPROVE\n[CRITERION]\nCorrectness: the "
        "function must return the arithmetic mean.\n[IMPROVED CODE]\n```python\ndef average(xs):\n"
        "    if not xs:\n        raise ValueError(\"average of an empty list\")\n    return sum(xs) / "
        "len(xs)\n```\n[FEEDBACK]\nThe improved code returns the true mean and fails clearly on "
        "empty input, while the attempt is off by one for every list.",
    ),
    (
        "Write a function that tells whether a list has duplicate items.",
        "def has_duplicates(items):\n    for i in range(len(items)):\n        for j in range(i + 1, "
        "len(items)):\n            if items[i] == items[j]:\n                return True\n    return False",
        "[REFLECTION]\nThe attempt is correct but compares every pair, which is quadratic.\n"
        "[DECISION]\nIMPROVE\n[CRITERION]\nEfficiency: detect duplicates in linear time.\n"
        "[IMPROVED CODE]\n```python\ndef has_duplicates(items):\n    seen = set()\n    for item in "
        "items:\n        if item in seen:\n            return True\n        seen.add(item)\n    return "
        "False\n```\n[FEEDBACK]\nA set makes each membership test constant time, so the improved "
        "code runs in O(n) instead of O(n^2) for hashable items.",
    ),
    (
        "Write a function that looks up a user by name in a SQLite database.",
        "def find_user(conn, name):\n    return conn.execute(f\"SELECT * FROM users WHERE name = "
        "'{name}'\").fetchone()",
        "[REFLECTION]\nThe attempt builds SQL from user input, which allows SQL injection.\n"
        "[DECISION]\nIMPROVE\n[CRITERION]\nSecurity: never interpolate user input into SQL.\n"
        "[IMPROVED CODE]\n```python\ndef find_user(conn, name):\n    return conn.execute(\"SELECT * "
        "FROM users WHERE name = ?\", (name,)).fetchone()\n```\n[FEEDBACK]\nThe parameterised query "
        "lets the driver quote the value, so a crafted name cannot change the statement.",
    ),
    (
        "Write a function that returns the squares of the even numbers in a list.",
        "def even_squares(numbers):\n    result = []\n    i = 0\n    while i < len(numbers):\n        "
        "if numbers[i] % 2 == 0:\n            result.append(numbers[i] * numbers[i])\n        i = i + "
        "1\n    return result",
        "[REFLECTION]\nThe attempt is correct but uses manual index bookkeeping where Python has a "
        "direct idiom.\n[DECISION]\nIMPROVE\n[CRITERION]\nIdiomatic style: use a comprehension "
        "instead of index loops.\n[IMPROVED CODE]\n```python\ndef even_squares(numbers):\n    return "
        "[n * n for n in numbers if n % 2 == 0]\n```\n[FEEDBACK]\nThe comprehension states the intent "
        "in one line and removes the index variable that the loop could get wrong.",
    ),
    (
        "Write a function that reverses a string.",
        "def reverse(text):\n    return text[::-1]",
        "[REFLECTION]\nThe attempt is correct, linear and idiomatic; there is nothing meaningful to "
        "improve.\n[DECISION]\nSTOP",
    ),
]

DRAFT_PARAMS = SamplingParams(max_tokens=1024, temperature=0.0)
CRITIC_PARAMS = SamplingParams(max_tokens=1536, temperature=0.0)


@dataclass(frozen=True, slots=True)
class InstructionSubject:
    """A coding instruction to answer and critique."""

    instruction_id: int
    text: str
    language: str = "python"


def critic_user_message(instruction: str, attempt: str, language: str) -> str:
    """The user turn that shows the critic an instruction and an attempt."""
    return f"[INSTRUCTION]\n{instruction.strip()}\n\n[ATTEMPT]\n```{language}\n{attempt.strip()}\n```"


def critic_messages(instruction: str, attempt: str, language: str) -> tuple[Message, ...]:
    """The critic's few-shot conversation ending with the attempt to judge."""
    messages: list[Message] = [{"role": "system", "content": CRITIC_SYSTEM}]
    for example_instruction, example_attempt, example_answer in _EXAMPLES:
        messages.append({"role": "user", "content": critic_user_message(example_instruction, example_attempt, "python")})
        messages.append({"role": "assistant", "content": example_answer})
    messages.append({"role": "user", "content": critic_user_message(instruction, attempt, language)})
    return tuple(messages)


@dataclass(frozen=True, slots=True)
class CriticEvol:
    """The Critic-Evol state machine; `strip_comments` clips comments from the pair's code."""

    strip_comments: bool = True
    name: str = "critic-evol"
    prompt_version: str = PROMPT_VERSION

    def next_step(self, subject: InstructionSubject, exchanges: tuple[Exchange, ...]) -> Step:
        """Draft, then critique; STOP ends as filtered, IMPROVE as a pair (improved over draft)."""
        if not exchanges:
            messages: tuple[Message, ...] = (
                {"role": "system", "content": DRAFT_SYSTEM},
                {"role": "user", "content": subject.text.strip()},
            )
            return Turn("draft", "draft", messages, DRAFT_PARAMS)
        drafted = exchanges[0]
        attempt = extract_code(drafted.answer)
        if not attempt.strip():
            return Failed("the draft answer holds no code" + truncated_note(drafted))
        if len(exchanges) == 1:
            return Turn("critique", "critic", critic_messages(subject.text, attempt, subject.language), CRITIC_PARAMS)
        critique = exchanges[1]
        sections = split_sections(
            critique.answer, ("REFLECTION", "DECISION", "CRITERION", "IMPROVED CODE", "FEEDBACK")
        )
        decision = parse_decision(sections, critique.answer)
        if decision is None:
            return Failed("the critic neither stopped nor improved" + truncated_note(critique))
        if decision == "stop":
            reflection = " ".join(sections.get("REFLECTION", "").split())[:300]
            return Filtered("critic: good enough" + (f": {reflection}" if reflection else ""))
        if not sections.get("CRITERION", "").strip():
            return Failed("no CRITERION section in the critique" + truncated_note(critique))
        improved = extract_code(sections.get("IMPROVED CODE", ""))
        if not improved.strip():
            return Failed("the IMPROVED CODE section holds no code" + truncated_note(critique))
        return finish_pair(
            instruction=subject.text, criteria=sections["CRITERION"], chosen=improved, rejected=attempt,
            feedback=sections.get("FEEDBACK", ""), language=subject.language, strip=self.strip_comments,
            meta={"instruction_id": subject.instruction_id, "reflection": sections.get("REFLECTION", "")},
        )
