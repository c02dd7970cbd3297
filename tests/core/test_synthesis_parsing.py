"""Parsers and state machines on recorded, messy real-world answers; no I/O."""

from __future__ import annotations

import pytest

from core.synthesis.commit_instruct import CommitInstruct, CommitSubject
from core.synthesis.critic_evol import CriticEvol, InstructionSubject
from core.synthesis.parsing import extract_code, parse_verdict, split_sections
from core.synthesis.steps import Exchange, Failed, Filtered, PairDraft, Turn
from tests import synth_answers as answers

SUBJECT = CommitSubject(7, "Fix total on empty lists", "calc.py", "python",
                        "def total(xs):\n    return reduce(add, xs)\n", "def total(xs):\n    return sum(xs)\n")
PAIR_NAMES = ("INSTRUCTION", "CRITERION", "NAIVE CODE", "IMPROVED CODE", "FEEDBACK")


@pytest.mark.parametrize("text, expected", [
    ("Yes.", True), ("[YES]\nbecause", True), ("**YES**", True), ("**No.** It only renames.", False),
    ("Sure, here is my view.\nVerdict: NO\nThe change is cosmetic.", False),
    ("I think the answer is YES, it fixes a bug.", True), ("no, it is a version bump", False),
    ("Hard to say.", None), ("", None),
    ("This change does not improve the code in a way a reviewer could teach.", False),  # SmolLM2, verbatim
    ("It improves nothing. The diff does not improve it.", None),  # only the first sentence counts
])
def test_verdicts(text: str, expected: bool | None) -> None:
    assert parse_verdict(text) is expected


def test_sections_in_brackets_markdown_and_bold_any_order() -> None:
    for text in (answers.PAIR_BRACKETS, answers.PAIR_MARKDOWN):
        sections = split_sections(text, PAIR_NAMES)
        assert set(sections) == set(PAIR_NAMES)
        assert "def " in extract_code(sections["NAIVE CODE"]) and "def " in extract_code(sections["IMPROVED CODE"])
    markdown = split_sections(answers.PAIR_MARKDOWN, PAIR_NAMES)
    assert markdown["FEEDBACK"].startswith("Checking membership")
    assert "Let me know" in markdown["FEEDBACK"]  # trailing prose stays in the last section


def test_headings_inside_code_are_not_sections() -> None:
    text = "[IMPROVED CODE]\n```python\n# Feedback:\nx = 1\n```\n[FEEDBACK]\nfine"
    sections = split_sections(text, PAIR_NAMES)
    assert extract_code(sections["IMPROVED CODE"]) == "# Feedback:\nx = 1\n"
    assert sections["FEEDBACK"] == "fine"


def test_code_extraction_survives_missing_and_truncated_fences() -> None:
    assert extract_code("```python\ndef f():\n    return 1\n```") == "def f():\n    return 1\n"
    assert extract_code("Here:\n```python\ndef f():\n    return 1") == "def f():\n    return 1\n"
    assert extract_code("The code is below.\ndef f():\n    return 1") == "def f():\n    return 1\n"
    assert extract_code("no code at all, only words") == ""
    assert extract_code("```\n```") == ""
    unclosed = "[IMPROVED CODE]\n```python\ny = 2\n[FEEDBACK]\nbetter"
    sections = split_sections(unclosed, PAIR_NAMES)
    assert extract_code(sections["IMPROVED CODE"]) == "y = 2\n" and sections["FEEDBACK"] == "better"


def run_commit(subject: CommitSubject, replies: list[str], finish: str = "stop") -> object:
    machine = CommitInstruct()
    exchanges: tuple[Exchange, ...] = ()
    for reply in replies:
        step = machine.next_step(subject, exchanges)
        assert isinstance(step, Turn)
        exchanges = (*exchanges, Exchange(step, reply, finish))
    return machine.next_step(subject, exchanges)


def test_commit_instruct_steps_and_pair() -> None:
    machine = CommitInstruct()
    first = machine.next_step(SUBJECT, ())
    assert isinstance(first, Turn) and first.step == "explain"
    assert "Fix total on empty lists" in first.messages[-1]["content"] and "+    return sum(xs)" in first.messages[-1]["content"]
    outcome = run_commit(SUBJECT, [answers.EXPLANATION, "Yes.", answers.PAIR_BRACKETS])
    assert isinstance(outcome, PairDraft)
    assert outcome.chosen == "def total(xs):\n    return sum(xs)\n"  # comments stripped
    assert "#" not in outcome.rejected and outcome.criteria.startswith("Correctness")


@pytest.mark.parametrize("replies, kind, reason", [
    ([answers.EXPLANATION, answers.VERDICT_NO], Filtered, "verdict NO: The change only bumps"),
    ([answers.EXPLANATION, "Hard to say."], Failed, "no YES/NO verdict"),
    (["", ], Failed, "explanation is empty"),
    ([answers.EXPLANATION, "[YES]", answers.PAIR_MISSING], Failed, "no INSTRUCTION section"),
    ([answers.EXPLANATION, "[YES]", answers.PAIR_SAME], Filtered, "both codes are the same"),
    ([answers.EXPLANATION, "[YES]", answers.PAIR_NOT_PARSING], Filtered, "does not parse"),
    ([answers.EXPLANATION, "[YES]", answers.PAIR_BRACKETS.replace(
        "def total(xs):\n    # the built-in handles empty lists\n    return sum(xs)\n", "")], Failed, "holds no code"),
])
def test_commit_instruct_outcomes(replies: list[str], kind: type, reason: str) -> None:
    outcome = run_commit(SUBJECT, replies)
    assert isinstance(outcome, kind), outcome
    assert reason in outcome.reason  # type: ignore[attr-defined]


def test_truncated_answer_fails_with_the_reason() -> None:
    cut = answers.PAIR_BRACKETS[: answers.PAIR_BRACKETS.index("[IMPROVED CODE]") + 30]
    outcome = run_commit(SUBJECT, [answers.EXPLANATION, "Yes", cut], finish="length")
    assert isinstance(outcome, Failed) and "truncated" in outcome.reason


def test_critic_evol_improve_and_stop() -> None:
    machine = CriticEvol()
    subject = InstructionSubject(3, "Count the words in a text.")
    draft = machine.next_step(subject, ())
    assert isinstance(draft, Turn) and draft.role == "draft"
    critique = machine.next_step(subject, (Exchange(draft, answers.DRAFT),))
    assert isinstance(critique, Turn) and critique.role == "critic"
    assert len(critique.messages) == 1 + 2 * 5 + 1  # system, five worked examples, the attempt
    pair = machine.next_step(subject, (Exchange(draft, answers.DRAFT), Exchange(critique, answers.CRITIQUE_IMPROVE)))
    assert isinstance(pair, PairDraft) and "Counter" in pair.chosen and "counts = {}" in pair.rejected
    stop = machine.next_step(subject, (Exchange(draft, answers.DRAFT), Exchange(critique, answers.CRITIQUE_STOP)))
    assert isinstance(stop, Filtered) and stop.reason.startswith("critic: good enough")
    empty = machine.next_step(subject, (Exchange(draft, "I cannot help with that."),))
    assert isinstance(empty, Failed) and "no code" in empty.reason
