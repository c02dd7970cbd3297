"""Arena test data: a 40-question set in 8 categories and a loopback model that answers and judges it."""

from __future__ import annotations

import json
import re
from pathlib import Path

CATEGORIES = ("algorithms", "debugging", "web", "data", "systems", "testing", "refactoring", "security")
LANGUAGES = ("python", "javascript", "go", "rust")
QUESTIONS = 40


def category_of(index: int) -> str:
    return CATEGORIES[index % len(CATEGORIES)]


def language_of(index: int) -> str:
    return LANGUAGES[index // 10]


def write_set(path: Path, count: int = QUESTIONS, *, with_baseline: bool = True) -> Path:
    """`count` questions `Q{i}: ...`, 5 per category, 10 per language, with baseline answers."""
    with path.open("w", encoding="utf-8") as handle:
        for index in range(count):
            record = {"id": f"q{index}", "question": f"Q{index}: how do I do task {index}?",
                      "category": category_of(index), "language": language_of(index)}
            if with_baseline:
                record["baseline_answer"] = f"BASELINE answer {index}"
            handle.write(json.dumps(record) + "\n")
    return path


def write_answers(path: Path, answers: dict[int, str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for index, text in answers.items():
            handle.write(json.dumps({"id": f"q{index}", "answer": text}) + "\n")
    return path


def _question_index(text: str) -> int:
    match = re.search(r"Q(\d+):", text)
    assert match, text
    return int(match.group(1))


def judge_text(index: int, candidate_side: str) -> str:
    """What the loopback judge writes about question `index` when the candidate is `candidate_side`.

    By index mod 6: the candidate is much better, better, tied, worse, much worse, or the judge
    prefers answer A whatever it holds; the phrasing varies (labels, bare labels, words). When
    index mod 7 is 3 the judge refuses in the swapped order.
    """
    other = "B" if candidate_side == "A" else "A"
    if index % 7 == 3 and candidate_side == "B":
        return "I'm sorry, I cannot judge these answers."
    return {
        0: f"The candidate handles every case.\nVerdict: [[{candidate_side}>>{other}]]",
        1: f"Answer {candidate_side} is slightly better than answer {other}.",
        2: "Both are fine.\nVerdict: [[A=B]]",
        3: f"Verdict: {other}>{candidate_side}",
        4: f"Assistant {candidate_side} is much worse: it crashes.",
        5: "Verdict: [[A>B]]",
    }[index % 6]


def arena_responder(messages: list[dict[str, str]]) -> str:
    """Answers a question as `CANDIDATE answer i` (longer for larger i), or judges a prompt as above."""
    text = messages[-1]["content"]
    index = _question_index(text)
    if "[ANSWER_A]" not in text:
        return f"CANDIDATE answer {index}" + " x" * index
    answer_a = text.split("[ANSWER_A]\n", 1)[1].split("\n\n[ANSWER_B]", 1)[0]
    return judge_text(index, "A" if "CANDIDATE" in answer_a else "B")


def expected_verdict(index: int, order: str) -> str:
    """The candidate's verdict the loopback judge's text means, worked out from its rules by hand."""
    if index % 7 == 3 and order == "swapped":
        return "undecided"
    if index % 6 == 5:  # always answer A: the candidate wins when it is A (given order) and loses swapped
        return "better" if order == "given" else "worse"
    return ("much better", "better", "tie", "worse", "much worse")[index % 6]
