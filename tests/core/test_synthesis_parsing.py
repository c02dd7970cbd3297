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


# --- the reference's tags, mandatory feedback and the headings real models write ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from core.synthesis import commit_instruct, critic_evol  # noqa: E402


def test_a_feedback_line_that_starts_with_a_tag_stays_feedback() -> None:
    sections = split_sections("[FEEDBACK]\n[IMPROVED CODE] is better.", ("IMPROVED CODE", "FEEDBACK"))
    assert sections == {"FEEDBACK": "[IMPROVED CODE] is better."}
    answer = answers.PAIR_BRACKETS.replace(
        "The improved code uses `sum`, which is shorter, faster and obviously correct.",
        "[IMPROVED_CODE] uses `sum`.\n[NAIVE_CODE] indexes by hand.")
    sections = split_sections(answer, PAIR_NAMES)
    assert sections["FEEDBACK"] == "[IMPROVED_CODE] uses `sum`.\n[NAIVE_CODE] indexes by hand."
    assert "sum(xs)" in sections["IMPROVED CODE"]


def test_numbered_and_bold_headings_make_a_pair() -> None:
    outcome = run_commit(SUBJECT, [answers.EXPLANATION, "Yes.", answers.PAIR_NUMBERED])
    assert isinstance(outcome, PairDraft), outcome
    assert outcome.chosen == "def total(xs):\n    return sum(xs)\n" and outcome.criteria == "Readability: use the built-in."
    assert outcome.feedback == "[IMPROVED_CODE] is shorter; [NAIVE_CODE] accumulates by hand."


@pytest.mark.parametrize("answer", [answers.CRITIQUE_ATTEMPT_TAGS, answers.CRITIQUE_BOLD_ATTEMPT,
                                    answers.CRITIQUE_IMPROVE])
def test_critic_evol_reads_attempt_2_headings(answer: str) -> None:
    machine = CriticEvol()
    subject = InstructionSubject(3, "Count the words in a text.")
    draft = machine.next_step(subject, ())
    critique = machine.next_step(subject, (Exchange(draft, answers.DRAFT),))
    outcome = machine.next_step(subject, (Exchange(draft, answers.DRAFT), Exchange(critique, answer)))
    assert isinstance(outcome, PairDraft), outcome
    assert "Counter" in outcome.chosen and "counts = {}" in outcome.rejected
    assert "[IMPROVED_CODE]" in outcome.feedback or "[NAIVE_CODE]" in outcome.feedback
    assert "ATTEMPT" not in outcome.feedback


def test_critic_that_stops_after_its_reflection_is_filtered() -> None:
    machine = CriticEvol()
    subject = InstructionSubject(3, "Count the words in a text.")
    draft = machine.next_step(subject, ())
    critique = machine.next_step(subject, (Exchange(draft, answers.DRAFT),))
    outcome = machine.next_step(subject, (Exchange(draft, answers.DRAFT), Exchange(critique, answers.CRITIQUE_REFLECTION_ONLY)))
    assert isinstance(outcome, Filtered) and outcome.reason.startswith("critic: good enough")


@pytest.mark.parametrize(("feedback", "reason"), [
    ("", "no FEEDBACK section"),
    ("It is shorter and faster.", "the FEEDBACK names neither [IMPROVED_CODE] nor [NAIVE_CODE]"),
])
def test_feedback_is_mandatory_and_names_the_codes(feedback: str, reason: str) -> None:
    answer = answers.PAIR_BRACKETS.split("[FEEDBACK]")[0] + (f"[FEEDBACK]\n{feedback}" if feedback else "")
    outcome = run_commit(SUBJECT, [answers.EXPLANATION, "Yes.", answer])
    assert isinstance(outcome, Failed) and outcome.reason == reason


def test_reference_tags_and_temperatures() -> None:
    assert all(tag in commit_instruct.WRITE_PAIR for tag in ("[CRITERIA]", "[NAIVE_CODE]", "[IMPROVED_CODE]", "[FEEDBACK]"))
    assert 'Refer to the codes using "[IMPROVED_CODE]" and "[NAIVE_CODE]" only.' in commit_instruct.WRITE_PAIR
    assert {p.temperature for p in (commit_instruct.EXPLAIN_PARAMS, commit_instruct.VERDICT_PARAMS,
                                    commit_instruct.PAIR_PARAMS)} == {0.8}
    assert critic_evol.CRITIC_PARAMS.temperature == 0.5
    assert "[ATTEMPT_2]" in critic_evol.CRITIC_SYSTEM and "[CRITERIA]" in critic_evol.CRITIC_SYSTEM


def test_few_shot_examples_are_shuffled_per_item_and_seeded() -> None:
    def order(item_id: int) -> list[str]:
        messages = critic_evol.critic_messages("Count words.", "x = 1", "python", seed=item_id)
        return [m["content"] for m in messages if m["role"] == "user"][:-1]

    orders = {tuple(order(item)) for item in range(12)}
    assert len(orders) > 3 and order(5) == order(5)
    assert all(sorted(o) == sorted(order(0)) for o in orders)
    machine = CriticEvol()
    draft = machine.next_step(InstructionSubject(7, "Count."), ())
    turn = machine.next_step(InstructionSubject(7, "Count."), (Exchange(draft, answers.DRAFT),))
    assert isinstance(turn, Turn) and [m["content"] for m in turn.messages if m["role"] == "user"][:-1] == order(7)


# Property test: whatever heading style a model picks for each section, and whatever order, every
# section comes back with its body; feedback lines that start with a tag stay in the feedback.
_STYLES = [
    "[{tag}]", "**[{tag}]**", "**{title}:**", "**{title}**", "### {title}", "## {title}:", "{title}:",
    "1. **{title}:**", "-- BEGIN [{tag}] --",
]
_NAMES = {"INSTRUCTION": ("INSTRUCTION", "Instruction"), "CRITERION": ("CRITERIA", "Criteria"),
          "NAIVE CODE": ("NAIVE_CODE", "Naive code"), "IMPROVED CODE": ("IMPROVED_CODE", "Improved code"),
          "FEEDBACK": ("FEEDBACK", "Feedback")}
_BODIES = {"INSTRUCTION": "Write `f` that adds one.", "CRITERION": "Correctness first.",
           "NAIVE CODE": "```python\ndef f(x):\n    # Feedback: not a heading\n    return x\n```",
           "IMPROVED CODE": "```\ndef f(x):\n    return x + 1\n```",
           "FEEDBACK": "[IMPROVED_CODE] adds one.\n[NAIVE_CODE] returns x unchanged."}


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(_NAMES)), st.lists(st.sampled_from(_STYLES), min_size=5, max_size=5),
       st.sampled_from(["\n", "\n\n"]), st.booleans())
def test_any_heading_style_and_order_splits_into_the_same_sections(
    order: list[str], styles: list[str], gap: str, feedback_last: bool
) -> None:
    if feedback_last:
        order = [name for name in order if name != "FEEDBACK"] + ["FEEDBACK"]
    parts = []
    for name, style in zip(order, styles):
        tag, title = _NAMES[name]
        heading = style.format(tag=tag, title=title)
        end = f"\n-- END [{tag}] --" if style.startswith("-- BEGIN") else ""
        parts.append(f"{heading}\n{_BODIES[name]}{end}")
    sections = split_sections(gap.join(parts), PAIR_NAMES)
    assert sections == _BODIES
