"""Position-aware scores: accuracy with undecided as half, a 95% band, order consistency.

Per objective: the given-order accuracy (the benchmark's own order, as the CodeFavor paper reports
it, Section 4.1), the both-order accuracy (every task judged in both orders, so a judge that always
answers "A" scores 50), a 95% band for each, and the order consistency (the share of tasks whose two
answers pick the same code).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.evaluation.bench import OBJECTIVES, VERIFIABLE_OBJECTIVES

Z_95 = 1.959964


@dataclass(frozen=True, slots=True)
class ScoredResult:
    """What scoring needs of one stored result."""

    objective: str
    task_id: str
    order: str
    gt: str
    decision: str


@dataclass(frozen=True, slots=True)
class ObjectiveScore:
    """One objective's scores over the results so far."""

    objective: str
    results: int
    tasks: int
    accuracy: float  # over every result so far
    band: float  # half-width of the 95% interval, in accuracy units
    consistency: float | None  # None when no task has both orders yet
    undecided: int
    always_a: float
    given_accuracy: float | None = None  # over the given-order results; comparable with the paper
    given_band: float = 0.0
    both_accuracy: float | None = None  # over the tasks judged in both orders
    both_band: float = 0.0

    @property
    def headline(self) -> float:
        """The given-order accuracy when there is one (the paper's figure), else the overall one."""
        return self.given_accuracy if self.given_accuracy is not None else self.accuracy

    @property
    def low(self) -> float:
        """Lower end of the band."""
        return max(0.0, self.accuracy - self.band)

    @property
    def high(self) -> float:
        """Upper end of the band."""
        return min(1.0, self.accuracy + self.band)


@dataclass(frozen=True, slots=True)
class RunScores:
    """Scores per objective, the average of the verifiable ones, human preference apart.

    The averages use the given-order accuracy when an objective has given-order results.
    """

    objectives: tuple[ObjectiveScore, ...]
    verifiable_average: float | None
    human_preference: float | None
    verifiable_both_average: float | None = None

    def get(self, objective: str) -> ObjectiveScore | None:
        """The score of one objective, if it has results."""
        return next((score for score in self.objectives if score.objective == objective), None)


def credit(decision: str, gt: str) -> float:
    """1 for the right answer, 0.5 for undecided, 0 for the wrong one."""
    if decision == gt:
        return 1.0
    return 0.0 if decision in ("A", "B") else 0.5


def _mean_and_band(samples: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% normal interval (0 for fewer than two samples)."""
    if not samples:
        return 0.0, 0.0
    mean = sum(samples) / len(samples)
    if len(samples) < 2:
        return mean, 0.0
    variance = sum((s - mean) ** 2 for s in samples) / (len(samples) - 1)
    return mean, Z_95 * math.sqrt(variance / len(samples))


def score_objective(objective: str, results: Sequence[ScoredResult]) -> ObjectiveScore:
    """Score one objective; each band treats a task (both orders averaged) as one sample."""
    per_task: dict[str, list[ScoredResult]] = defaultdict(list)
    for result in results:
        per_task[result.task_id].append(result)
    task_scores = [sum(credit(r.decision, r.gt) for r in rs) / len(rs) for rs in per_task.values()]
    tasks = len(task_scores)
    accuracy = sum(credit(r.decision, r.gt) for r in results) / len(results) if results else 0.0
    _, band = _mean_and_band(task_scores)
    given = [credit(r.decision, r.gt) for r in results if r.order == "given"]
    given_accuracy, given_band = _mean_and_band(given)
    paired = [rs for rs in per_task.values() if {r.order for r in rs} >= {"given", "swapped"}]
    both = [sum(credit(r.decision, r.gt) for r in rs) / len(rs) for rs in paired]
    both_accuracy, both_band = _mean_and_band(both)
    consistency = None
    if paired:
        consistent = sum(1 for rs in paired if _follows_the_code(rs)) / len(paired)
        consistency = consistent
    return ObjectiveScore(
        objective=objective,
        results=len(results),
        tasks=tasks,
        accuracy=accuracy,
        band=band,
        consistency=consistency,
        undecided=sum(1 for r in results if r.decision not in ("A", "B")),
        always_a=sum(1 for r in results if r.gt == "A") / len(results) if results else 0.0,
        given_accuracy=given_accuracy if given else None,
        given_band=given_band,
        both_accuracy=both_accuracy if both else None,
        both_band=both_band,
    )


def _follows_the_code(results: Sequence[ScoredResult]) -> bool:
    given = next(r for r in results if r.order == "given")
    swapped = next(r for r in results if r.order == "swapped")
    return {given.decision, swapped.decision} == {"A", "B"}


def score_run(results: Iterable[ScoredResult]) -> RunScores:
    """Scores of every objective that has results, in benchmark order."""
    by_objective: dict[str, list[ScoredResult]] = defaultdict(list)
    for result in results:
        by_objective[result.objective].append(result)
    scores = tuple(
        score_objective(objective, by_objective[objective])
        for objective in OBJECTIVES
        if by_objective.get(objective)
    )
    verifiable = [s.headline for s in scores if s.objective in VERIFIABLE_OBJECTIVES]
    both = [s.both_accuracy for s in scores if s.objective in VERIFIABLE_OBJECTIVES and s.both_accuracy is not None]
    human = next((s.headline for s in scores if s.objective == "human-preference"), None)
    return RunScores(
        objectives=scores,
        verifiable_average=sum(verifiable) / len(verifiable) if verifiable else None,
        human_preference=human,
        verifiable_both_average=sum(both) / len(both) if both and len(both) == len(verifiable) else None,
    )


def format_score(score: ObjectiveScore) -> str:
    """`61.2 ± 3.1` in percent."""
    return f"{100 * score.accuracy:.1f} ± {100 * score.band:.1f}"


def format_accuracy(value: float | None, band: float) -> str:
    """`61.2 ± 3.1` in percent, or empty when there is no value."""
    return "" if value is None else f"{100 * value:.1f} ± {100 * band:.1f}"
