"""Runtime of a passing solution: median of its timing samples and their coefficient of variation.

Code-Optimise (arXiv 2406.12502, section 3) re-runs each passing solution until the coefficient of
variation (population standard deviation over mean) of its runtimes is at most 0.1; a solution
that never gets there within the cap is unstable and stays out of efficiency pairs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CV_TARGET = 0.1


@dataclass(frozen=True, slots=True)
class RuntimeStats:
    """Median seconds per run, coefficient of variation, sample count, and whether it is stable."""

    median_s: float | None
    cv: float | None
    runs: int
    stable: bool


def coefficient_of_variation(samples: Sequence[float]) -> float | None:
    """Population standard deviation over mean; None for no samples or a zero mean."""
    if not samples:
        return None
    mean = statistics.fmean(samples)
    if mean <= 0:
        return None
    return statistics.pstdev(samples) / mean


def runtime_stats(samples: Sequence[float], *, cv_target: float = CV_TARGET, min_runs: int = 5) -> RuntimeStats:
    """Stats of timing samples (seconds): stable when there are `min_runs` or more and CV <= target."""
    if not samples:
        return RuntimeStats(None, None, 0, False)
    cv = coefficient_of_variation(samples)
    stable = cv is not None and len(samples) >= min_runs and cv <= cv_target + 1e-12
    return RuntimeStats(statistics.median(samples), cv, len(samples), stable)
