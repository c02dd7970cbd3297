"""Critic-Evol: a draft model answers an instruction; a few-shot critic stops or writes a better attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.llm.base import Message, SamplingParams
from core.synthesis.parsing import extract_code, parse_decision, split_sections
from core.synthesis.steps import Exchange, Failed, Filtered, Step, Turn, finish_pair, truncated_note

PROMPT_VERSION = "critic-evol-v2"

DRAFT_SYSTEM = "You are a programmer. Answer the task with one complete solution in a single code block."

# The answer's sections, the stop rule and the feedback rule are the reference's
# (amazon-science/llm-code-preference, codefavor/prompt/critic_evol.py, LAST_INTRUCTION).
CRITIC_SYSTEM = """\
You review a programmer's attempt at a coding task. You are given [INSTRUCTION] and [ATTEMPT_1]; \
in response you write:

1. A [REFLECTION] section analyzing noticeable weaknesses of [ATTEMPT_1] while following [INSTRUCTION].
2. If [ATTEMPT_1] is good enough without significant room for improvement, stop after [REFLECTION].
3. Otherwise, go on with [CRITERIA], [ATTEMPT_2] (the complete improved code in a code block) and [FEEDBACK].

Notes:
1. [CRITERIA] should focus on one significant weakness in correctness, efficiency, security or \
conciseness; do not worry about trivial pitfalls such as missing type hints, docstrings or input validation.
2. In [FEEDBACK], refer to the code attempts only as [ATTEMPT_1] and [ATTEMPT_2]."""

# Worked examples in the reference's answer format; each item sees them in its own seeded order
# (the reference shuffles its few-shot examples per item, critic_evol.py, _critic_evol_fewshot).
_EXAMPLES: list[tuple[str, str, str]] = [
    (
        "Write a function that returns the average of a list of numbers.",
        "def average(xs):\n    return sum(xs) / len(xs) - 1",
        "[REFLECTION]\n[ATTEMPT_1] subtracts 1 from the mean, so every result is wrong, and it divides by "
        "zero on an empty list.\n[CRITERIA]\nThe function should return the arithmetic mean and be "
        "bug-free.\n[ATTEMPT_2]\n```python\ndef average(xs):\n    if not xs:\n        raise ValueError("
        "\"average of an empty list\")\n    return sum(xs) / len(xs)\n```\n[FEEDBACK]\n[ATTEMPT_2] returns "
        "the true mean and fails clearly on empty input, while [ATTEMPT_1] is off by one for every list.",
    ),
    (
        "Write a function that tells whether a list has duplicate items.",
        "def has_duplicates(items):\n    for i in range(len(items)):\n        for j in range(i + 1, "
        "len(items)):\n            if items[i] == items[j]:\n                return True\n    return False",
        "[REFLECTION]\n[ATTEMPT_1] is correct but compares every pair, which is quadratic.\n[CRITERIA]\n"
        "The code with better execution efficiency is preferred.\n[ATTEMPT_2]\n```python\n"
        "def has_duplicates(items):\n    seen = set()\n    for item in items:\n        if item in seen:\n"
        "            return True\n        seen.add(item)\n    return False\n```\n[FEEDBACK]\nA set makes "
        "each membership test constant time, so [ATTEMPT_2] runs in O(n) where [ATTEMPT_1] needs O(n^2).",
    ),
    (
        "Write a function that looks up a user by name in a SQLite database.",
        "def find_user(conn, name):\n    return conn.execute(f\"SELECT * FROM users WHERE name = "
        "'{name}'\").fetchone()",
        "[REFLECTION]\n[ATTEMPT_1] builds SQL from user input, which allows SQL injection.\n[CRITERIA]\n"
        "While implementing the instruction, the code should be as secure as possible.\n[ATTEMPT_2]\n"
        "```python\ndef find_user(conn, name):\n    return conn.execute(\"SELECT * FROM users WHERE name = ?\", "
        "(name,)).fetchone()\n```\n[FEEDBACK]\n[ATTEMPT_2] lets the driver quote the value, so a crafted name "
        "cannot change the statement as it can in [ATTEMPT_1].",
    ),
    (
        "Write a function that returns the squares of the even numbers in a list.",
        "def even_squares(numbers):\n    result = []\n    i = 0\n    while i < len(numbers):\n        "
        "if numbers[i] % 2 == 0:\n            result.append(numbers[i] * numbers[i])\n        i = i + "
        "1\n    return result",
        "[REFLECTION]\n[ATTEMPT_1] is correct but uses manual index bookkeeping where Python has a direct "
        "idiom.\n[CRITERIA]\nThe desired code should be correct, efficient, and Pythonic.\n[ATTEMPT_2]\n"
        "```python\ndef even_squares(numbers):\n    return [n * n for n in numbers if n % 2 == 0]\n```\n"
        "[FEEDBACK]\n[ATTEMPT_2] states the intent in one line and drops the index variable that "
        "[ATTEMPT_1] could get wrong.",
    ),
    (
        "Write a function that reverses a string.",
        "def reverse(text):\n    return text[::-1]",
        "[REFLECTION]\n[ATTEMPT_1] is correct, linear and idiomatic; it is good enough and needs no "
        "further improvement.",
    ),
]

# The reference's temperatures: 0.5 for the critic (critic_evol.py, make_one_call) and its callers'
# default 0.8 for the draft model (scripts/data/codegen_soss.py, OpenAICaller).
DRAFT_PARAMS = SamplingParams(max_tokens=1024, temperature=0.8)
CRITIC_PARAMS = SamplingParams(max_tokens=1536, temperature=0.5)


@dataclass(frozen=True, slots=True)
class InstructionSubject:
    """A coding instruction to answer and critique."""

    instruction_id: int
    text: str
    language: str = "python"


def critic_user_message(instruction: str, attempt: str, language: str) -> str:
    """The user turn that shows the critic an instruction and an attempt."""
    return f"[INSTRUCTION]\n{instruction.strip()}\n\n[ATTEMPT_1]\n```{language}\n{attempt.strip()}\n```"


def critic_messages(instruction: str, attempt: str, language: str, *, seed: int = 0) -> tuple[Message, ...]:
    """The critic's few-shot conversation ending with the attempt to judge; `seed` orders the examples."""
    examples = list(_EXAMPLES)
    random.Random(seed).shuffle(examples)
    messages: list[Message] = [{"role": "system", "content": CRITIC_SYSTEM}]
    for example_instruction, example_attempt, example_answer in examples:
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
            messages = critic_messages(subject.text, attempt, subject.language, seed=subject.instruction_id)
            return Turn("critique", "critic", messages, CRITIC_PARAMS)
        critique = exchanges[1]
        sections = split_sections(
            critique.answer, ("REFLECTION", "DECISION", "CRITERION", "IMPROVED CODE", "FEEDBACK")
        )
        decision = parse_decision(sections, critique.answer)
        if decision is None and sections.get("REFLECTION", "").strip() and not sections.get("CRITERION"):
            decision = "stop"  # the reference's rule: a critic that is satisfied stops after [REFLECTION]
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
