"""Policy metrics on held-out problems, as Code-Optimise reports them (arXiv 2406.12502, section 4):
pass@k by the unbiased estimator of Chen et al. 2021 (eq. 1), the mean runtime of passing
solutions, and the mean length of the generated code."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


def pass_at_k(samples: int, correct: int, k: int) -> float:
    """Unbiased pass@k of one problem: 1 - C(n - c, k) / C(n, k), as a stable product.

    Raises ValueError unless 1 <= k <= n and 0 <= c <= n.
    """
    if k < 1 or samples < k or not 0 <= correct <= samples:
        raise ValueError(f"pass@{k} needs 1 <= k <= n and 0 <= c <= n (n={samples}, c={correct})")
    if samples - correct < k:
        return 1.0
    remaining = 1.0
    for size in range(samples - correct + 1, samples + 1):
        remaining *= 1.0 - k / size
    return 1.0 - remaining


@dataclass(frozen=True, slots=True)
class ProblemOutcome:
    """The executed samples of one problem: how many, how many passed, runtimes (s) and code lengths."""

    problem_id: int
    task_id: str
    samples: int
    passed: int
    passing_runtimes_s: tuple[float, ...] = ()
    code_lengths: tuple[int, ...] = ()
    code_lines: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyMetrics:
    """pass@k per k (mean over problems with at least k samples), mean runtime of passing solutions
    (seconds, medians of each), mean code length in characters and lines, and the counts."""

    pass_at: dict[int, float | None] = field(default_factory=dict)
    mean_runtime_s: float | None = None
    mean_length_chars: float | None = None
    mean_length_lines: float | None = None
    problems: int = 0
    samples: int = 0
    passed: int = 0


def policy_metrics(outcomes: Sequence[ProblemOutcome], ks: Sequence[int]) -> PolicyMetrics:
    """Aggregate per-problem outcomes into the paper's metrics."""
    pass_at: dict[int, float | None] = {}
    for k in ks:
        values = [pass_at_k(o.samples, o.passed, k) for o in outcomes if o.samples >= k]
        pass_at[k] = statistics.fmean(values) if values else None
    runtimes = [r for o in outcomes for r in o.passing_runtimes_s]
    lengths = [n for o in outcomes for n in o.code_lengths]
    lines = [n for o in outcomes for n in o.code_lines]
    return PolicyMetrics(
        pass_at=pass_at,
        mean_runtime_s=statistics.fmean(runtimes) if runtimes else None,
        mean_length_chars=statistics.fmean(lengths) if lengths else None,
        mean_length_lines=statistics.fmean(lines) if lines else None,
        problems=len(outcomes), samples=sum(o.samples for o in outcomes), passed=sum(o.passed for o in outcomes),
    )
