"""Position-aware scores: accuracy with undecided as half, a 95% band, order consistency."""

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
    accuracy: float
    band: float  # half-width of the 95% interval, in accuracy units
    consistency: float | None  # None when no task has both orders yet
    undecided: int
    always_a: float

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
    """Scores per objective, the average of the verifiable ones, human preference apart."""

    objectives: tuple[ObjectiveScore, ...]
    verifiable_average: float | None
    human_preference: float | None

    def get(self, objective: str) -> ObjectiveScore | None:
        """The score of one objective, if it has results."""
        return next((score for score in self.objectives if score.objective == objective), None)


def credit(decision: str, gt: str) -> float:
    """1 for the right answer, 0.5 for undecided, 0 for the wrong one."""
    if decision == gt:
        return 1.0
    return 0.0 if decision in ("A", "B") else 0.5


def score_objective(objective: str, results: Sequence[ScoredResult]) -> ObjectiveScore:
    """Score one objective; the band treats each task (both orders averaged) as one sample."""
    per_task: dict[str, list[ScoredResult]] = defaultdict(list)
    for result in results:
        per_task[result.task_id].append(result)
    task_scores = [sum(credit(r.decision, r.gt) for r in rs) / len(rs) for rs in per_task.values()]
    tasks = len(task_scores)
    accuracy = sum(credit(r.decision, r.gt) for r in results) / len(results) if results else 0.0
    band = 0.0
    if tasks > 1:
        mean = sum(task_scores) / tasks
        variance = sum((s - mean) ** 2 for s in task_scores) / (tasks - 1)
        band = Z_95 * math.sqrt(variance / tasks)
    paired = [rs for rs in per_task.values() if {r.order for r in rs} >= {"given", "swapped"}]
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
    verifiable = [s.accuracy for s in scores if s.objective in VERIFIABLE_OBJECTIVES]
    human = next((s.accuracy for s in scores if s.objective == "human-preference"), None)
    return RunScores(
        objectives=scores,
        verifiable_average=sum(verifiable) / len(verifiable) if verifiable else None,
        human_preference=human,
    )


def format_score(score: ObjectiveScore) -> str:
    """`61.2 ± 3.1` in percent."""
    return f"{100 * score.accuracy:.1f} ± {100 * score.band:.1f}"
