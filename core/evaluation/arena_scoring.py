"""Arena scores: win / tie / loss rates per category and language, win rate with a bootstrap interval.

Each judgement of a question in one order, read from the candidate's side, is a win (much better,
better), a tie, a loss (worse, much worse) or undecided. The win rate against the baseline credits a
win 1, a tie or an undecided judgement ½ and a loss 0 (ties as in CodeArena's and Arena-Hard's win
rates; undecided as half, as the workbench scores CodePrefBench). Its 95% interval is a percentile
bootstrap over questions (both orders of a question resampled together, since they are not
independent), computed with `scipy.stats.bootstrap`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.evaluation.arena import UNDECIDED, VERDICTS

OUTCOMES: tuple[str, ...] = ("win", "tie", "loss", UNDECIDED)
_OUTCOME = {"much better": "win", "better": "win", "tie": "tie", "worse": "loss", "much worse": "loss"}
_CREDIT = {"win": 1.0, "tie": 0.5, "loss": 0.0, UNDECIDED: 0.5}
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class ScoredJudgement:
    """What scoring needs of one stored judgement."""

    question_id: int
    category: str
    language: str
    order: str
    verdict: str  # one of VERDICTS, or UNDECIDED


@dataclass(frozen=True, slots=True)
class GroupScore:
    """Counts and rates of one group of judgements (a category, a language, or all of them)."""

    name: str
    judgements: int
    questions: int
    wins: int
    ties: int
    losses: int
    undecided: int

    def rate(self, count: int) -> float:
        """`count` as a share of the judgements (0 when there are none)."""
        return count / self.judgements if self.judgements else 0.0

    @property
    def win_rate(self) -> float:
        """Wins plus half the ties and undecided, over all judgements."""
        return self.rate(self.wins) + 0.5 * self.rate(self.ties + self.undecided)


@dataclass(frozen=True, slots=True)
class ArenaScores:
    """The scores of one arena run."""

    overall: GroupScore
    interval: tuple[float, float]  # 95% bootstrap interval of the overall win rate
    consistency: float | None  # share of questions judged in both orders with the same outcome
    paired_questions: int
    verdicts: dict[str, int]  # the five-point scale (and undecided) from the candidate's side
    by_category: tuple[GroupScore, ...] = field(default_factory=tuple)
    by_language: tuple[GroupScore, ...] = field(default_factory=tuple)


def outcome(verdict: str) -> str:
    """win, tie, loss or undecided."""
    return _OUTCOME.get(verdict, UNDECIDED)


def credit(verdict: str) -> float:
    """1 for a win, ½ for a tie or undecided, 0 for a loss."""
    return _CREDIT[outcome(verdict)]


def group_score(name: str, judgements: Sequence[ScoredJudgement]) -> GroupScore:
    """Count the outcomes of a group of judgements."""
    counts = {key: 0 for key in OUTCOMES}
    for judgement in judgements:
        counts[outcome(judgement.verdict)] += 1
    return GroupScore(
        name=name, judgements=len(judgements), questions=len({j.question_id for j in judgements}),
        wins=counts["win"], ties=counts["tie"], losses=counts["loss"], undecided=counts[UNDECIDED],
    )


def bootstrap_interval(
    judgements: Sequence[ScoredJudgement], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the win rate, resampling questions with their judgements.

    Returns the point estimate twice when fewer than two questions have judgements.
    """
    import numpy as np
    from scipy.stats import bootstrap

    credit_sums: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)
    for judgement in judgements:
        credit_sums[judgement.question_id] += credit(judgement.verdict)
        counts[judgement.question_id] += 1
    sums = np.array(list(credit_sums.values()), dtype=float)
    sizes = np.array([counts[key] for key in credit_sums], dtype=float)
    if len(sums) < 2:
        point = float(sums.sum() / sizes.sum()) if len(sums) else 0.0
        return point, point

    def ratio(credit_sum: np.ndarray, size: np.ndarray, axis: int = -1) -> np.ndarray:
        return credit_sum.sum(axis=axis) / size.sum(axis=axis)  # type: ignore[no-any-return]

    result = bootstrap(
        (sums, sizes), ratio, paired=True, vectorized=True, method="percentile", n_resamples=resamples,
        confidence_level=confidence, rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(low), float(high)


def order_consistency(judgements: Iterable[ScoredJudgement]) -> tuple[float | None, int]:
    """Share of questions judged in both orders whose two outcomes agree, and how many there are.

    An undecided judgement never agrees: the judge did not follow the answers' content.
    """
    by_question: dict[int, dict[str, str]] = defaultdict(dict)
    for judgement in judgements:
        by_question[judgement.question_id][judgement.order] = outcome(judgement.verdict)
    paired = [orders for orders in by_question.values() if {"given", "swapped"} <= set(orders)]
    if not paired:
        return None, 0
    agree = sum(1 for o in paired if o["given"] == o["swapped"] and o["given"] != UNDECIDED)
    return agree / len(paired), len(paired)


def score_arena(judgements: Sequence[ScoredJudgement], *, seed: int = 0) -> ArenaScores:
    """Every score of a run: overall with its interval, per category, per language, consistency."""
    by_category: dict[str, list[ScoredJudgement]] = defaultdict(list)
    by_language: dict[str, list[ScoredJudgement]] = defaultdict(list)
    for judgement in judgements:
        by_category[judgement.category].append(judgement)
        by_language[judgement.language].append(judgement)
    consistency, paired = order_consistency(judgements)
    verdicts = {verdict: 0 for verdict in (*VERDICTS, UNDECIDED)}
    for judgement in judgements:
        verdicts[judgement.verdict if judgement.verdict in verdicts else UNDECIDED] += 1
    return ArenaScores(
        overall=group_score("overall", judgements),
        interval=bootstrap_interval(judgements, seed=seed),
        consistency=consistency,
        paired_questions=paired,
        verdicts=verdicts,
        by_category=tuple(group_score(name, by_category[name]) for name in sorted(by_category)),
        by_language=tuple(group_score(name, by_language[name]) for name in sorted(by_language)),
    )
