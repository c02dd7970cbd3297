"""Solutions: the prompt a policy model answers, the code taken from its answer, the program that runs.

The prompt is EvalPlus's instruction prompt (the one CodePrefBench's correctness tasks use), so an
instruct model answers with a fenced, self-contained script. The code is the fenced block that
defines the entry point (the longest such block), else the longest block, else the bare answer
from its first line of code. The program that runs puts the problem's prompt first, so its imports
and helper functions exist, then the code: a complete function replaces the prompt's stub, and an
indented body completes it (the base-model completion style).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.execution.problems import Problem, defines_function
from core.llm.base import Message
from core.synthesis.parsing import bare_code, code_blocks

INSTRUCTION_TEMPLATE = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
    "```python\n{prompt}\n```"
)


def instruction(problem: Problem) -> str:
    """The instruction a policy model answers (EvalPlus's instruct prompt), also the pairs' instruction."""
    return INSTRUCTION_TEMPLATE.format(prompt=problem.prompt.strip())


def solve_messages(problem: Problem) -> tuple[Message, ...]:
    """The chat that asks for one solution."""
    return ({"role": "user", "content": instruction(problem)},)


def _defines(code: str, name: str) -> bool:
    return bool(re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE))


def solution_code(answer: str, entry_point: str) -> str:
    """The code of an answer: the fenced block defining `entry_point`, the longest block, or bare code."""
    blocks = [block for block in code_blocks(answer) if block.strip()]
    if blocks:
        defining = [block for block in blocks if _defines(block, entry_point)]
        return max(defining or blocks, key=lambda block: len(block.strip()))
    return bare_code(answer)


def solution_program(problem: Problem, code: str) -> str:
    """The module that runs: the prompt (imports, helpers, the stub), then the solution code."""
    prompt = problem.prompt if problem.prompt.endswith("\n") else problem.prompt + "\n"
    if defines_function(code, problem.entry_point) or not code.startswith((" ", "\t")):
        return f"{prompt}\n\n{code}"
    return prompt + code  # an indented body completes the prompt's function


@dataclass(frozen=True, slots=True)
class SampledAnswer:
    """One answer of a policy model and the code taken from it."""

    text: str
    finish_reason: str
    code: str

    @property
    def truncated(self) -> bool:
        """The answer hit max_tokens: it runs and counts for pass@k, but never becomes a pair."""
        return self.finish_reason == "length"


def read_answer(text: str, finish_reason: str, problem: Problem) -> SampledAnswer:
    """The code of one answer to `problem`."""
    return SampledAnswer(text=text, finish_reason=finish_reason, code=solution_code(text, problem.entry_point))
