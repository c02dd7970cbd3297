"""Arena core: reading sets, laying out pairings, reading verdicts, scoring with a bootstrap interval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import DataError, OptionError
from core.evaluation.arena import (
    UNDECIDED,
    ArenaJudgeMethod,
    candidate_verdict,
    decision_verdict,
    judge_prompt,
    pairing,
    parse_position_verdict,
    read_arena_answers,
    read_arena_questions,
)
from core.evaluation.arena_report import BREAKDOWN_COLUMNS, breakdown_rows, render
from core.evaluation.arena_scoring import ScoredJudgement, bootstrap_interval, order_consistency, score_arena
from core.synthesis.steps import Answered, Exchange, Turn


def _write(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _question(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"q{i}", "question": f"How do I {i}?", "category": "web", "language": "Python", **extra}


def test_reading_a_set_keeps_file_order_lowercases_languages_and_hashes_the_content(tmp_path: Path) -> None:
    path = _write(tmp_path / "set.jsonl", [_question(1, baseline_answer="use x"), _question(2), {**_question(3), "id": 3}])
    first = read_arena_questions(path)
    assert [q.external_id for q in first.questions] == ["q1", "q2", "3"]
    assert first.questions[0].baseline_answer == "use x" and first.questions[1].baseline_answer is None
    assert {q.language for q in first.questions} == {"python"}
    assert read_arena_questions(path).content_hash == first.content_hash
    _write(path, [_question(1, baseline_answer="use y"), _question(2), {**_question(3), "id": 3}])
    assert read_arena_questions(path).content_hash != first.content_hash


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([json.dumps(_question(1)), "{not json"], "set.jsonl:2:2: not valid JSON"),
        ([json.dumps(_question(1)), json.dumps(_question(1))], "set.jsonl:2: duplicate id 'q1' (first on line 1)"),
        ([json.dumps({"id": "a", "question": "q", "language": "go"})], "set.jsonl:1: missing field 'category'"),
        ([json.dumps({"id": "a", "question": 3, "category": "c", "language": "go"})], "field 'question' must be text"),
        ([json.dumps({"question": "q", "category": "c", "language": "go"})], "set.jsonl:1: missing field 'id'"),
        ([json.dumps({"id": "a", "question": "  ", "category": "c", "language": "go"})], "field 'question' is empty"),
        (['{"id": "a", "question": "\\ud800", "category": "c", "language": "go"}'], "lone surrogate"),
        (["[1, 2]"], "set.jsonl:1: expected a JSON object"),
        (["", "   "], "no records"),
    ],
)
def test_bad_sets_are_refused_with_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_arena_questions(path)


def test_non_utf8_and_answer_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(json.dumps(_question(1)).encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(DataError, match="bad.jsonl:2:9: not UTF-8"):
        read_arena_questions(path)
    answers = _write(tmp_path / "a.jsonl", [{"id": "q1", "answer": "A1"}, {"id": 2, "response": "A2"}])
    assert [(a.external_id, a.text) for a in read_arena_answers(answers)] == [("q1", "A1"), ("2", "A2")]
    _write(answers, [{"id": "q1"}])
    with pytest.raises(DataError, match="missing field 'answer'"):
        read_arena_answers(answers)


def test_the_candidate_is_answer_a_in_the_given_order_and_answer_b_swapped() -> None:
    given = pairing(7, "given", "Q?", "web", "go", (1, "cand"), (2, "base"))
    swapped = pairing(7, "swapped", "Q?", "web", "go", (1, "cand"), (2, "base"))
    assert (given.answer_a, given.answer_b, given.candidate_side) == ("cand", "base", "A")
    assert (swapped.answer_a, swapped.answer_b, swapped.candidate_side) == ("base", "cand", "B")
    assert swapped.judge_item().gt == "B" and swapped.judge_item().code_b == "cand"
    prompt = judge_prompt(swapped)
    assert prompt.index("[ANSWER_A]\nbase") < prompt.index("[ANSWER_B]\ncand")
    assert "[[A>>B]] answer A is much better" in prompt and "(in go)" in prompt
    with pytest.raises(OptionError):
        pairing(7, "sideways", "Q?", "web", "go", (1, "cand"), (2, "base"))


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Reasons...\nVerdict: [[A>>B]]", "A>>B"),
        ("My final verdict is [[B>A]].", "A<B"),
        ("[[B>>A]]", "A<<B"),
        ("Verdict: [[A=B]]", "A=B"),
        ("Verdict: [[ A < B ]]", "A<B"),
        ("Verdict: [[A≫B]]", "A>>B"),
        ("Verdict: A>B", "A>B"),
        ("Final: B >> A", "A<<B"),
        ("I first thought [[A>B]], but after testing, the verdict is [[B>A]].", "A<B"),
        ("Answer B is slightly better than answer A.", "A<B"),
        ("Overall, Assistant A is significantly better.", "A>>B"),
        ("Answer A is much worse than answer B.", "A<<B"),
        ("Verdict: B is better", "A<B"),
        ("Both answers are equally good.", "A=B"),
        ("Neither answer is better.\nVerdict: tie", "A=B"),
        ("Answer A is better in style. In the end it's a tie.", "A=B"),
        # The scale echoed back, hedges, refusals and nothing at all are not verdicts.
        ("[[A>>B]] answer A is much better\n[[A>B]] answer A is better\n[[A=B]] tie\n[[A<B]] worse\n[[A<<B]] much worse",
         UNDECIDED),
        ("Verdict: [[A>B]] or [[A=B]]", UNDECIDED),
        ("I'm sorry, I cannot judge code.", UNDECIDED),
        ("", UNDECIDED),
        ("The answers differ in style.", UNDECIDED),
        ("Verdict: [[A>A]]", UNDECIDED),
    ],
)
def test_verdicts_are_read_robustly(text: str, verdict: str) -> None:
    assert parse_position_verdict(text) == verdict


def test_verdicts_are_read_from_the_candidates_side() -> None:
    assert [candidate_verdict(v, "A") for v in ("A>>B", "A>B", "A=B", "A<B", "A<<B")] == [
        "much better", "better", "tie", "worse", "much worse"]
    assert [candidate_verdict(v, "B") for v in ("A>>B", "A>B", "A=B", "A<B", "A<<B")] == [
        "much worse", "worse", "tie", "better", "much better"]
    assert candidate_verdict(UNDECIDED, "A") == UNDECIDED
    assert decision_verdict("B", "B") == ("A<B", "better")
    assert decision_verdict("A", "B") == ("A>B", "worse")
    assert decision_verdict("?", "A") == (UNDECIDED, UNDECIDED)


def test_the_judge_method_sends_one_turn_then_reads_the_verdict_from_the_candidates_side() -> None:
    method = ArenaJudgeMethod()
    item = pairing(1, "swapped", "Q?", "web", "python", (1, "cand"), (2, "base"))
    turn = method.next_step(item, ())
    assert isinstance(turn, Turn) and turn.params.temperature == 0.0
    outcome = method.next_step(item, (Exchange(turn, "Verdict: [[B>>A]]"),))
    assert isinstance(outcome, Answered)
    assert outcome.meta == {"position_verdict": "A<<B", "verdict": "much better"}


def _judgements(spec: list[tuple[int, str, str, str, str]]) -> list[ScoredJudgement]:
    return [ScoredJudgement(q, c, lang, o, v) for q, c, lang, o, v in spec]


def test_scores_count_outcomes_per_group_and_consistency_over_both_orders() -> None:
    judgements = _judgements([
        (1, "web", "go", "given", "much better"), (1, "web", "go", "swapped", "better"),  # consistent win
        (2, "web", "python", "given", "tie"), (2, "web", "python", "swapped", "worse"),  # inconsistent
        (3, "data", "python", "given", "undecided"), (3, "data", "python", "swapped", "undecided"),  # never agrees
        (4, "data", "go", "given", "much worse"),  # one order only: not in consistency
    ])
    scores = score_arena(judgements)
    overall = scores.overall
    assert (overall.judgements, overall.questions, overall.wins, overall.ties, overall.losses, overall.undecided) == (
        7, 4, 2, 1, 2, 2)
    assert overall.win_rate == pytest.approx((2 + 0.5 * 3) / 7)
    assert [(g.name, g.wins, g.ties, g.losses, g.undecided) for g in scores.by_category] == [
        ("data", 0, 0, 1, 2), ("web", 2, 1, 1, 0)]
    assert [(g.name, g.judgements) for g in scores.by_language] == [("go", 3), ("python", 4)]
    assert (scores.consistency, scores.paired_questions) == (pytest.approx(1 / 3), 3)
    assert scores.verdicts == {"much better": 1, "better": 1, "tie": 1, "worse": 1, "much worse": 1, "undecided": 2}
    assert order_consistency([]) == (None, 0)


def test_the_bootstrap_interval_is_seeded_brackets_the_estimate_and_resamples_questions() -> None:
    judgements = _judgements(
        [(q, "c", "go", order, "better" if q % 3 else "worse") for q in range(30) for order in ("given", "swapped")]
    )
    low, high = bootstrap_interval(judgements)
    point = score_arena(judgements).overall.win_rate
    assert low < point < high and (low, high) == bootstrap_interval(judgements)
    # 30 independent questions (not 60 judgements): close to the normal interval 2/3 ± 1.96·√(2/9/30).
    half_width = 1.96 * (2 / 9 / 30) ** 0.5
    assert low == pytest.approx(point - half_width, abs=0.03) and high == pytest.approx(point + half_width, abs=0.03)
    # Both orders of a question move together: duplicating every judgement leaves the interval unchanged.
    assert bootstrap_interval(judgements + judgements) == pytest.approx((low, high))
    all_wins = _judgements([(q, "c", "go", "given", "better") for q in range(5)])
    assert bootstrap_interval(all_wins) == (1.0, 1.0)
    assert bootstrap_interval(all_wins[:1]) == (1.0, 1.0)
    assert bootstrap_interval([]) == (0.0, 0.0)


def test_reports_render_as_markdown_csv_and_json() -> None:
    scores = score_arena(_judgements([(1, "web|x", "go", "given", "better"), (2, "data", "go", "given", "tie")]))
    rows = breakdown_rows(3, "cand\nx", scores)
    assert [(r["group"], r["name"]) for r in rows] == [
        ("overall", "overall"), ("category", "data"), ("category", "web|x"), ("language", "go")]
    markdown = render(rows, BREAKDOWN_COLUMNS, "md")
    assert "| web\\|x |" in markdown and "cand x" in markdown and len(markdown.splitlines()) == 6
    assert render(rows, BREAKDOWN_COLUMNS, "csv").splitlines()[1].startswith('3,"cand\nx"'.split("\n")[0])
    assert json.loads(render(rows, BREAKDOWN_COLUMNS, "json"))[0]["win rate %"] == 75.0
    with pytest.raises(OptionError):
        render(rows, BREAKDOWN_COLUMNS, "xml")
