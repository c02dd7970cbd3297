"""Plain records of the execution stage that cross from the store to the runners and front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.execution.problems import Problem


@dataclass(frozen=True, slots=True)
class SolutionCounts:
    """How a problem's (or a run's) solutions stand: sampled, executed, and their verdicts."""

    samples: int = 0
    executed: int = 0
    passed: int = 0
    failed: int = 0
    timeout: int = 0
    stable: int = 0
    unstable: int = 0
    truncated: int = 0

    @property
    def failing(self) -> int:
        """Failed or timed out."""
        return self.failed + self.timeout


@dataclass(frozen=True, slots=True)
class ProblemInfo:
    """A stored problem as lists show it, with its solution and pair counts."""

    id: int
    task_id: str
    source: str
    entry_point: str
    counts: SolutionCounts
    pairs: int


@dataclass(frozen=True, slots=True)
class ProblemDetail:
    """A stored problem in full."""

    id: int
    problem: Problem
    counts: SolutionCounts
    pairs: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SolutionInfo:
    """One sampled solution with its verdict and runtime."""

    id: int
    problem_id: int
    config_key: str
    sample_index: int
    model: str
    code: str
    finish_reason: str
    exec_state: str
    status: str
    detail: str
    runtime_median_s: float | None
    runtime_cv: float | None
    runtime_runs: int
    stable: bool
    isolation: str


@dataclass(frozen=True, slots=True)
class ExecutionTask:
    """A claimed solution to run: its problem and its code."""

    solution_id: int
    problem_id: int
    problem: Problem
    code: str
    code_hash: str


@dataclass(frozen=True, slots=True)
class PolicyEvalInfo:
    """A policy evaluation: model, sampling, the problems, its state and the metrics."""

    id: int
    job_id: int | None
    model: str
    config_key: str
    samples_per_problem: int
    ks: tuple[int, ...]
    problem_ids: tuple[int, ...]
    selection: str
    state: str
    metrics: dict[str, Any] = field(default_factory=dict)
    seen_problems: int = 0
    created_at: datetime | None = None
    finished_at: datetime | None = None
