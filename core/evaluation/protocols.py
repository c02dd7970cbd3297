"""Named pairwise protocols: what a judge, an export and a trainer see of a pair, and how ties count.

`codefavor` reproduces the input of the CodeFavor reference implementation
(amazon-science/llm-code-preference) exactly, so scores compare with the paper's tables (Liu et al.,
"Learning Code Preference via Synthetic Evolution", arXiv 2410.03837, Section 4 and Appendix):

- layout: `codefavor/template.py`, `pairwise_classification_template` (one line) and
  `pairwise_cot_template` (generative judges);
- codes: each wrapped in a ```python fence (`codefavor/evaluate.py`, `_code_wrapper`), otherwise as given;
- criteria: the four fixed sentences of `codefavor/template.py`, one per objective;
- stripping: verifiable objectives only, by `remove_comments` (`codefavor/utility.py`), each code on its
  own; a code that does not parse keeps its comments (`PairwiseRMCaller.batch_infer`'s fallback; the
  paper's baseline rows match this, not evaluate.py's keep-both `task_try_to_remove_comment`);
- ties: the length baselines give them to B (`length_bias_eval`);
- generation target: the feedback naming the codes, then a `[RESULT]` line
  (`scripts/axolotl/prepare_data.py`, `make_judge_data`).

`workbench` is this project's own layout, kept for runs made before: an explaining preamble, sections
on their own lines, bare codes, our wording of the criteria, token-based stripping per code, ties undecided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.curation.stripping import regenerate_without_docstrings, strip_comments
from core.errors import OptionError

Choice = Literal["A", "B"]
PROTOCOL_NAMES: tuple[str, ...] = ("codefavor", "workbench")
DEFAULT_PROTOCOL = "codefavor"
UNDECIDED = "?"
VERIFIABLE_OBJECTIVES: tuple[str, ...] = ("correctness", "efficiency", "security")

# --- the reference's inputs, as data (amazon-science/llm-code-preference, codefavor/template.py) ---

CODEFAVOR_CRITERIA: dict[str, str] = {
    "correctness": "The ideal code should be directly runnable, correct, and bug-free to the given instruction.",
    "efficiency": "The ideal code should be efficient in execution time (primary) and memory usage (secondary).",
    "security": "The ideal code should be robust against security attacks and meet common security properties.",
    "human-preference": "Select the code that a human developer would generally prefer for the given instruction",
}
CODEFAVOR_CLASSIFICATION = "[INSTRUCTION] {instruction} [CODE_A] {code_a} [CODE_B] {code_b} [CRITERIA] {criteria}\n"
CODEFAVOR_GENERATION = """\
Given an [INSTRUCTION] and two response candidates of [CODE_A] and [CODE_B], \
please judge which of them better meets [CRITERIA] while following [INSTRUCTION]:

---
[INSTRUCTION]
{instruction}

[CODE_A]
{code_a}

[CODE_B]
{code_b}

[CRITERIA]
{criteria}
---

1. Please FIRST provide a brief [FEEDBACK] section regarding if the code meets [CRITERIA]
2. THEN conclude with a [RESULT] section suggesting the conclusion in the format of \
"[CODE_?] is better than [CODE_?] on the mentioned criteria".
"""
CODEFAVOR_FENCE = "```python\n{code}\n```"  # codefavor/evaluate.py, _code_wrapper
# scripts/axolotl/prepare_data.py, make_judge_data: the line the generation target ends with.
CODEFAVOR_RESULT = "\n[RESULT]\nTherefore, {better} is better than {worse} on [CRITERIA]."

# --- this project's own layout -----------------------------------------------------------------

WORKBENCH_CRITERIA: dict[str, str] = {
    "correctness": "The code correctly solves the instruction: it returns the right result for "
    "every valid input, including edge cases.",
    "efficiency": "The code solves the instruction with the lower time and memory cost on large "
    "inputs.",
    "security": "The code avoids security weaknesses such as injection, unsafe deserialization, "
    "weak cryptography and unsafe file or process handling.",
    "human-preference": "The code is the one an experienced developer would prefer overall: "
    "correct, clear, idiomatic and helpful.",
}
_WORKBENCH_HEAD = """\
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

"""
WORKBENCH_CLASSIFICATION = _WORKBENCH_HEAD + (
    'Respond with "A" if [CODE_A] is better than [CODE_B] on the criteria, or "B" if [CODE_B] is better.'
)
WORKBENCH_GENERATION = _WORKBENCH_HEAD + (
    "Write short feedback comparing both responses on the criteria, then end with exactly one sentence: "
    '"[CODE_A] is better than [CODE_B] on the mentioned criteria." or '
    '"[CODE_B] is better than [CODE_A] on the mentioned criteria."'
)


def verdict_sentence(winner: Choice) -> str:
    """The sentence the workbench layout's generative judge ends with when `winner` is better."""
    loser = "B" if winner == "A" else "A"
    return f"[CODE_{winner}] is better than [CODE_{loser}] on the mentioned criteria."


# Names a feedback text gives the better and the worse code (synthesis tags, the reference's
# Critic-Evol tags, and the prose real models write), mapped to positions at export.
_BETTER_NAMES = (
    r"\[\s*(?:improved[\s_]*code|attempt[\s_]*2|chosen(?:[\s_]*code)?|code[\s_]*chosen)\s*\]",
    r"\b(?:the\s+)?(?:improved|better|new|revised|second)\s+(?:code|version|implementation|attempt|solution)\b",
    r"\b(?:the\s+)?chosen\s+code\b",
)
_WORSE_NAMES = (
    r"\[\s*(?:naive[\s_]*code|attempt[\s_]*1|rejected(?:[\s_]*code)?|code[\s_]*rejected)\s*\]",
    r"\b(?:the\s+)?(?:naive|initial|original|old|first)\s+(?:code|version|implementation|attempt|solution)\b",
    r"\b(?:the\s+)?rejected\s+code\b",
)
_BETTER = re.compile("|".join(_BETTER_NAMES), re.IGNORECASE)
_WORSE = re.compile("|".join(_WORSE_NAMES), re.IGNORECASE)
IMPROVED_TAG = "[IMPROVED_CODE]"
NAIVE_TAG = "[NAIVE_CODE]"
_POSITION = re.compile(r"\[CODE_[AB]\]")
_TRAILING_VERDICT = re.compile(
    r"\s*(?:\[RESULT\]\s*)?(?:Therefore,\s*)?\[CODE_[AB]\] is better than \[CODE_[AB]\] on (?:the mentioned criteria|\[CRITERIA\])\.?\s*$"
)


def name_codes(feedback: str, better_name: str, worse_name: str) -> str | None:
    """Feedback with every name of the better and the worse code replaced; None if it names neither."""
    text = _BETTER.sub(lambda _match: better_name, feedback)
    text = _WORSE.sub(lambda _match: worse_name, text)
    if better_name not in text and worse_name not in text:
        return None
    return text.strip()


def name_codes_by_position(feedback: str, better: Choice) -> str | None:
    """Feedback with every name of the two codes replaced by [CODE_A]/[CODE_B]; None if it names neither.

    `better` is the position of the improved (chosen) code. Names: [IMPROVED_CODE]/[NAIVE_CODE]
    and their spellings, the reference's [ATTEMPT_2]/[ATTEMPT_1], "the improved code",
    "the initial attempt" and similar prose (the reference maps "improved code" and "initial attempt",
    scripts/axolotl/prepare_data.py).
    """
    worse = "B" if better == "A" else "A"
    named = name_codes(feedback, f"[CODE_{better}]", f"[CODE_{worse}]")
    if named is None:
        return None
    text = _TRAILING_VERDICT.sub("", named).strip()
    return text if _POSITION.search(text) else None


@dataclass(frozen=True, slots=True)
class Protocol:
    """One protocol: prompt layouts, criteria per objective, stripping rule, tie rule, target shape."""

    name: str
    classification_template: str
    generation_template: str
    criteria: dict[str, str]
    fenced: bool
    length_tie: str  # the decision of a length baseline when both codes are equally long

    def show_code(self, code: str) -> str:
        """A code as it appears inside a prompt."""
        if self.fenced:
            return CODEFAVOR_FENCE.format(code=code)
        return code.strip("\n")

    def _fill(self, template: str, instruction: str, code_a: str, code_b: str, criteria: str) -> str:
        if self.fenced:
            values = (instruction, self.show_code(code_a), self.show_code(code_b), criteria)
        else:
            values = (instruction.strip(), self.show_code(code_a), self.show_code(code_b), criteria.strip())
        return template.format(instruction=values[0], code_a=values[1], code_b=values[2], criteria=values[3])

    def classification_prompt(self, instruction: str, code_a: str, code_b: str, criteria: str) -> str:
        """The user turn of a classifier: its answer is the single token "A" or "B"."""
        return self._fill(self.classification_template, instruction, code_a, code_b, criteria)

    def generation_prompt(self, instruction: str, code_a: str, code_b: str, criteria: str) -> str:
        """The user turn of a generative judge: its answer is feedback ending in a verdict."""
        return self._fill(self.generation_template, instruction, code_a, code_b, criteria)

    def prompt(self, modeling: str, instruction: str, code_a: str, code_b: str, criteria: str) -> str:
        """The classification or generation prompt."""
        if modeling == "classification":
            return self.classification_prompt(instruction, code_a, code_b, criteria)
        return self.generation_prompt(instruction, code_a, code_b, criteria)

    def generation_target(self, feedback: str, better: Choice) -> str | None:
        """The answer a generative judge learns: feedback naming codes by position, then the verdict.

        None when the feedback names neither code (such an example teaches nothing about positions).
        """
        named = name_codes_by_position(feedback, better)
        if named is None:
            return None
        worse = "B" if better == "A" else "A"
        if self.name == "codefavor":
            return named + CODEFAVOR_RESULT.format(better=f"[CODE_{better}]", worse=f"[CODE_{worse}]")
        return f"{named}\n\n{verdict_sentence(better)}"

    def strip_pair(self, first: str, second: str) -> tuple[str, str]:
        """Both codes without comments and docstrings, by this protocol's rule.

        codefavor: the reference's regeneration of each code; a code that does not parse is kept as given
        (the per-code fallback of the reference's `PairwiseRMCaller.batch_infer`, which reproduces the
        paper's table: shorter scores 33.3 on security, where evaluate.py's one-try
        `task_try_to_remove_comment`, keeping both codes when either fails, would give 32.9).
        workbench: token-based stripping of each code.
        """
        if self.name == "codefavor":
            return _regenerated_or_given(first), _regenerated_or_given(second)
        return strip_comments(first), strip_comments(second)

    def strips(self, objective: str) -> bool:
        """Whether a benchmark objective's codes lose their comments (verifiable objectives only)."""
        return objective in VERIFIABLE_OBJECTIVES


def _regenerated_or_given(code: str) -> str:
    try:
        return regenerate_without_docstrings(code)
    except (SyntaxError, ValueError, RecursionError):
        return code


PROTOCOLS: dict[str, Protocol] = {
    "codefavor": Protocol(
        name="codefavor", classification_template=CODEFAVOR_CLASSIFICATION,
        generation_template=CODEFAVOR_GENERATION, criteria=CODEFAVOR_CRITERIA, fenced=True, length_tie="B",
    ),
    "workbench": Protocol(
        name="workbench", classification_template=WORKBENCH_CLASSIFICATION,
        generation_template=WORKBENCH_GENERATION, criteria=WORKBENCH_CRITERIA, fenced=False,
        length_tie=UNDECIDED,
    ),
}


def get_protocol(name: str | None) -> Protocol:
    """The protocol of this name (None: the default, codefavor); OptionError for an unknown one."""
    key = DEFAULT_PROTOCOL if name is None else name
    try:
        return PROTOCOLS[key]
    except KeyError:
        raise OptionError(f"unknown protocol {key!r}; choose from {', '.join(PROTOCOL_NAMES)}") from None


def place(chosen: str, rejected: str, chosen_first: bool) -> tuple[str, str, Choice]:
    """Put a pair in order: returns (code_a, code_b, the label of the better one)."""
    if chosen_first:
        return chosen, rejected, "A"
    return rejected, chosen, "B"
