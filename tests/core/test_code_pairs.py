"""Solutions from answers, runtime stability, pass@k, and execution-labelled pairs."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from core.evaluation.bench import CRITERIA
from core.execution.metrics import ProblemOutcome, pass_at_k, policy_metrics
from core.execution.pairs import ExecutedSolution, PairOptions, new_pair, select_pairs
from core.execution.problems import Problem
from core.execution.runtime import runtime_stats
from core.execution.sampling import SampleSubject, SolutionSampler
from core.execution.solutions import instruction, read_answer, solution_code, solution_program
from core.llm.base import SamplingParams
from core.synthesis.steps import Answered, Exchange, Turn

PROBLEM = Problem(
    task_id="Demo/1", prompt='from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum xs."""\n',
    entry_point="total", test="def check(candidate):\n    assert candidate([1, 2]) == 3\n",
)


@pytest.mark.parametrize(("answer", "expected"), [
    ("Here you go:\n```python\ndef total(xs):\n    return sum(xs)\n```\nDone.", "def total(xs):\n    return sum(xs)\n"),
    ("```python\nprint(total([1]))\n```\n```python\ndef total(xs):\n    return sum(xs)\n```\n```python\n# a much longer example block\nassert total([1, 2, 3]) == 6\n```",
     "def total(xs):\n    return sum(xs)\n"),
    ("```\ndef total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n", "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n"),
    ("Sure! The answer is:\ndef total(xs):\n    return sum(xs)\n", "def total(xs):\n    return sum(xs)\n"),
    ("I cannot help with that.", ""),
])
def test_code_comes_from_the_block_defining_the_entry_point(answer: str, expected: str) -> None:
    assert solution_code(answer, "total") == expected


def test_program_puts_the_prompt_first_for_functions_and_completes_bodies() -> None:
    whole = solution_program(PROBLEM, "def total(xs):\n    return sum(xs)\n")
    body = solution_program(PROBLEM, "    return sum(xs)\n")
    assert whole.startswith(PROBLEM.prompt) and whole.endswith("def total(xs):\n    return sum(xs)\n")
    assert body == PROBLEM.prompt + "    return sum(xs)\n"
    for program in (whole, body):
        namespace: dict[str, object] = {}
        exec(compile(program, "p", "exec"), namespace)  # our own fixed code, not model output
        assert namespace["total"]([1, 2]) == 3  # type: ignore[operator]


def test_sampler_asks_once_with_a_seed_per_sample_and_keeps_the_answer() -> None:
    sampler = SolutionSampler(SamplingParams(max_tokens=64, temperature=0.8, top_p=0.95, seed=100))
    first = sampler.next_step(SampleSubject(1, PROBLEM, 0), ())
    third = sampler.next_step(SampleSubject(3, PROBLEM, 2), ())
    assert isinstance(first, Turn) and isinstance(third, Turn)
    assert first.messages == third.messages and first.messages[0]["content"] == instruction(PROBLEM)
    assert (first.params.seed, third.params.seed) == (100, 102)
    assert "```python\nfrom typing import List" in instruction(PROBLEM)
    done = sampler.next_step(SampleSubject(1, PROBLEM, 0), (Exchange(first, "```python\nx\n```", "length"),))
    assert done == Answered("```python\nx\n```", "length")
    assert read_answer("```python\nx = 1\n```", "length", PROBLEM).truncated


def test_runtime_is_stable_only_with_enough_runs_under_the_cv_target() -> None:
    steady = runtime_stats([1.0, 1.02, 0.98, 1.01, 0.99])
    noisy = runtime_stats([1.0, 2.0, 1.0, 2.0, 1.0])
    short = runtime_stats([1.0, 1.0])
    assert steady.stable and steady.median_s == 1.0 and steady.cv is not None and steady.cv < 0.02
    assert not noisy.stable and noisy.cv is not None and noisy.cv > 0.3
    assert not short.stable and not runtime_stats([]).stable


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    draws = list(itertools.combinations(range(n), k))
    return sum(1 for draw in draws if any(i < c for i in draw)) / len(draws)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 1), (5, 1, 1), (5, 2, 3), (6, 3, 2), (8, 7, 5), (7, 2, 7)])
def test_pass_at_k_matches_counting_every_draw(n: int, c: int, k: int) -> None:
    assert math.isclose(pass_at_k(n, c, k), _brute_pass_at_k(n, c, k), abs_tol=1e-12)
    assert math.isclose(pass_at_k(n, c, 1), c / n)


def test_pass_at_k_refuses_k_above_n_and_metrics_skip_such_problems() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    metrics = policy_metrics([
        ProblemOutcome(1, "a", 10, 5, (0.002, 0.004), (100, 300), (3, 5)),
        ProblemOutcome(2, "b", 10, 0, (), (50,), (2,)),
        ProblemOutcome(3, "c", 2, 2, (0.003,), (10, 10), (1, 1)),
    ], ks=(1, 5))
    assert metrics.pass_at[1] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert metrics.pass_at[5] == pytest.approx((1 - math.comb(5, 5) / math.comb(10, 5) + 0.0) / 2)
    assert metrics.mean_runtime_s == pytest.approx(0.003)
    assert metrics.mean_length_chars == pytest.approx(94.0)
    assert (metrics.problems, metrics.samples, metrics.passed) == (3, 22, 7)


def _solution(i: int, code: str, status: str, median: float | None = None, *, stable: bool = True,
              truncated: bool = False) -> ExecutedSolution:
    return ExecutedSolution(i, code, status, truncated, median, stable and median is not None, "AssertionError: x")


def test_pairs_need_enough_distinct_passing_and_failing_codes() -> None:
    same = [_solution(i, "def total(xs):\n    return sum(xs)\n", "passed", 0.001) for i in range(5)]
    failing = [_solution(9, "def total(xs):\n    return 0\n", "failed")]
    # Five samples of one code (comments aside) are one distinct solution.
    same.append(_solution(6, "def total(xs):\n    # sum them\n    return sum(xs)\n", "passed", 0.001))
    result = select_pairs(same + failing, PairOptions())
    assert result.pairs == () and result.passing == 1 and "needs 2" in result.skipped_reason
    assert select_pairs(same + failing, PairOptions(min_passing=1)).pairs


def test_correctness_and_efficiency_pairs_with_the_gap_and_exclusions() -> None:
    solutions = [
        _solution(1, "def total(xs):\n    return sum(xs)\n", "passed", 0.0010),
        _solution(2, "def total(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n", "passed", 0.0030),
        _solution(3, "def total(xs):\n    return sum(list(xs))\n", "passed", 0.0011),
        _solution(4, "def total(xs):\n    import time\n    return sum(xs)\n", "passed", 0.0050, stable=False),
        _solution(5, "def total(xs):\n    return 0\n", "failed"),
        _solution(6, "def total(xs):\n    while True:\n        pass\n", "timeout"),
        _solution(7, "def total(xs):\n    return len(xs)\n", "failed", truncated=True),
        _solution(8, "def total(xs):\n    return max(xs)\n", "passed", 0.002),
        _solution(9, "def total(xs):\n    return max(xs)\n", "failed"),  # flaky: same code both ways
    ]
    result = select_pairs(solutions, PairOptions(min_relative_gap=0.2))
    correctness = {(p.chosen.solution_id, p.rejected.solution_id) for p in result.pairs if p.objective == "correctness"}
    efficiency = {(p.chosen.solution_id, p.rejected.solution_id) for p in result.pairs if p.objective == "efficiency"}
    assert correctness == {(good, bad) for good in (1, 2, 3, 4) for bad in (5, 6)}
    # 4 is unstable and 1 vs 3 differ by 10 %: only pairs at least 1.2x apart.
    assert efficiency == {(1, 2), (3, 2)}


def test_pair_counts_are_capped_per_objective_and_seeded() -> None:
    passing = [_solution(i, f"def total(xs):\n    return sum(xs) + {i} - {i}\n", "passed", 0.001 * 1.5 ** i) for i in range(10)]
    failing = [_solution(100 + i, f"def total(xs):\n    return {i}\n", "failed") for i in range(10)]
    options = PairOptions(max_pairs=7, seed=3)
    first = select_pairs(passing + failing, options)
    again = select_pairs(list(reversed(passing + failing)), options)
    assert sum(p.objective == "correctness" for p in first.pairs) == 7
    assert sum(p.objective == "efficiency" for p in first.pairs) == 7
    assert {(p.chosen.solution_id, p.rejected.solution_id) for p in first.pairs} == \
        {(p.chosen.solution_id, p.rejected.solution_id) for p in select_pairs(passing + failing, options).pairs}
    assert len(again.pairs) == 14


def test_new_pair_carries_criteria_feedback_and_lineage_with_the_group() -> None:
    quick = _solution(1, "def total(xs):\n    return sum(xs)\n", "passed", 0.001)
    slow = _solution(2, "def total(xs):\n    return sum([x for x in xs])\n", "passed", 0.004)
    bad = _solution(3, "def total(xs):\n    return 0\n", "failed")
    pairs = select_pairs([quick, slow, bad], PairOptions(min_relative_gap=0.5)).pairs
    made = {p.objective: new_pair(PROBLEM, 42, p) for p in pairs if p.rejected.solution_id in (2, 3) and p.chosen.solution_id == 1}
    correctness, efficiency = made["correctness"], made["efficiency"]
    assert correctness.source == efficiency.source == "code-optimise"
    assert correctness.criteria == CRITERIA["correctness"] and efficiency.criteria == CRITERIA["efficiency"]
    assert correctness.instruction == instruction(PROBLEM)
    assert correctness.meta["group"] == 42 and correctness.meta["problem_id"] == 42
    assert (correctness.meta["chosen_solution_id"], correctness.meta["rejected_solution_id"]) == (1, 3)
    assert "AssertionError" in correctness.feedback and "the rejected code" in correctness.feedback
    assert efficiency.meta["rejected_runtime_s"] == 0.004 and "4x as long" in efficiency.feedback


def test_selection_is_independent_of_input_order() -> None:
    rng = random.Random(0)
    solutions = [_solution(i, f"def total(xs):\n    return sum(xs) * {i % 3 + 1} // {i % 3 + 1} + 0 * {i}\n",
                           "passed" if i % 4 else "failed", 0.001 * (1 + i)) for i in range(20)]
    shuffled = solutions[:]
    rng.shuffle(shuffled)
    key = lambda r: sorted((p.objective, p.chosen.solution_id, p.rejected.solution_id) for p in r.pairs)  # noqa: E731
    assert key(select_pairs(solutions, PairOptions(max_pairs=5))) == key(select_pairs(shuffled, PairOptions(max_pairs=5)))
