"""Execution-labelled preference pairs (Code-Optimise, arXiv 2406.12502, section 3).

For a problem with enough passing and failing solutions: correctness pairs prefer a passing
solution to a failing one; efficiency pairs prefer the quicker of two passing solutions whose
runtimes are stable and differ by at least a minimum relative gap. Solutions are compared by their
code with comments and blank lines removed, so two samples of the same code count once; a code
seen both passing and failing (flaky) and any truncated answer stay out of every pair.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from core.curation.pairs import NewPair
from core.curation.stripping import strip_comments
from core.evaluation.bench import CRITERIA
from core.execution.problems import Problem
from core.execution.solutions import instruction
from core.synthesis.parsing import normalise_code

SOURCE = "code-optimise"
OBJECTIVES = ("correctness", "efficiency")


@dataclass(frozen=True, slots=True)
class ExecutedSolution:
    """One executed sample: its code, verdict (passed, failed, timeout), and runtime when stable."""

    solution_id: int
    code: str
    status: str
    truncated: bool = False
    median_s: float | None = None
    stable: bool = False
    detail: str = ""

    @property
    def passed(self) -> bool:
        """The tests passed."""
        return self.status == "passed"


@dataclass(frozen=True, slots=True)
class PairOptions:
    """Which problems give pairs and how many: at least `min_passing` passing and `min_failing`
    failing distinct codes; an efficiency pair needs slow >= quick * (1 + `min_relative_gap`);
    at most `max_pairs` pairs per problem and objective, drawn with `seed`."""

    min_passing: int = 2
    min_failing: int = 1
    min_relative_gap: float = 0.2
    max_pairs: int = 32
    seed: int = 0
    objectives: tuple[str, ...] = OBJECTIVES


@dataclass(frozen=True, slots=True)
class SolutionPair:
    """A preferred and a dispreferred solution of one problem, and the objective that tells them apart."""

    objective: str
    chosen: ExecutedSolution
    rejected: ExecutedSolution


@dataclass(frozen=True, slots=True)
class ProblemPairs:
    """The pairs of one problem, or why it gave none."""

    pairs: tuple[SolutionPair, ...]
    passing: int
    failing: int
    skipped_reason: str = ""


def _key(code: str) -> str:
    return normalise_code(strip_comments(code))


def distinct_solutions(solutions: Sequence[ExecutedSolution]) -> tuple[list[ExecutedSolution], list[ExecutedSolution]]:
    """Passing and failing solutions with one per distinct code; flaky codes and truncated answers left out."""
    by_code: dict[str, list[ExecutedSolution]] = {}
    for solution in sorted(solutions, key=lambda s: s.solution_id):  # the same set gives the same pairs
        if solution.truncated or not solution.code.strip():
            continue
        by_code.setdefault(_key(solution.code), []).append(solution)
    passing, failing = [], []
    for group in by_code.values():
        verdicts = {s.passed for s in group}
        if len(verdicts) > 1:
            continue
        if group[0].passed:
            stable = [s for s in group if s.stable and s.median_s is not None]
            passing.append(stable[0] if stable else group[0])
        else:
            failing.append(group[0])
    return passing, failing


def _draw(pairs: list[SolutionPair], limit: int, rng: random.Random) -> list[SolutionPair]:
    return pairs if len(pairs) <= limit else sorted(rng.sample(pairs, limit), key=lambda p: (p.chosen.solution_id, p.rejected.solution_id))


def select_pairs(solutions: Sequence[ExecutedSolution], options: PairOptions) -> ProblemPairs:
    """The correctness and efficiency pairs of one problem's executed solutions."""
    passing, failing = distinct_solutions(solutions)
    if len(passing) < options.min_passing or len(failing) < options.min_failing:
        return ProblemPairs((), len(passing), len(failing),
                            f"{len(passing)} passing and {len(failing)} failing distinct solutions "
                            f"(needs {options.min_passing} and {options.min_failing})")
    rng = random.Random(options.seed)
    pairs: list[SolutionPair] = []
    if "correctness" in options.objectives:
        candidates = [SolutionPair("correctness", good, bad) for good in passing for bad in failing]
        pairs += _draw(candidates, options.max_pairs, rng)
    if "efficiency" in options.objectives:
        timed = sorted((s for s in passing if s.stable and s.median_s), key=lambda s: (s.median_s or 0.0, s.solution_id))
        candidates = [
            SolutionPair("efficiency", quick, slow)
            for index, quick in enumerate(timed) for slow in timed[index + 1:]
            if (slow.median_s or 0.0) >= (quick.median_s or 0.0) * (1.0 + options.min_relative_gap)
        ]
        pairs += _draw(candidates, options.max_pairs, rng)
    return ProblemPairs(tuple(pairs), len(passing), len(failing))


def _feedback(pair: SolutionPair) -> str:
    if pair.objective == "correctness":
        why = "times out" if pair.rejected.status == "timeout" else "fails them"
        cause = pair.rejected.detail.split(":", 1)[0].strip()
        return (f"The chosen code passes every test of the problem, while the rejected code {why}"
                + (f" ({cause})." if cause and pair.rejected.status != "timeout" else "."))
    quick, slow = pair.chosen.median_s or 0.0, pair.rejected.median_s or 0.0
    return (f"Both codes pass every test; the chosen code needs {quick * 1e3:.3g} ms of CPU time per run of "
            f"the tests against {slow * 1e3:.3g} ms for the rejected code ({slow / quick:.2g}x as long).")


def new_pair(problem: Problem, problem_id: int, pair: SolutionPair, *, extra: dict[str, object] | None = None) -> NewPair:
    """A pair for the pairs table: the problem's instruction, the objective's criteria, lineage in meta.

    `meta["group"]` is the problem id: a DPO trainer draws one pair per group per epoch.
    """
    meta: dict[str, object] = {
        "group": problem_id, "objective": pair.objective, "problem_id": problem_id, "task_id": problem.task_id,
        "chosen_solution_id": pair.chosen.solution_id, "rejected_solution_id": pair.rejected.solution_id,
        **(extra or {}),
    }
    if pair.objective == "efficiency":
        meta["chosen_runtime_s"] = pair.chosen.median_s
        meta["rejected_runtime_s"] = pair.rejected.median_s
    else:
        meta["rejected_status"] = pair.rejected.status
    return NewPair(
        instruction=instruction(problem), criteria=CRITERIA[pair.objective], chosen=pair.chosen.code,
        rejected=pair.rejected.code, feedback=_feedback(pair), source=SOURCE, meta=meta,
    )
