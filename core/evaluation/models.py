"""Plain data of evaluation runs that crosses from the store to the front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.evaluation.scoring import RunScores


@dataclass(frozen=True, slots=True)
class EvalRunInfo:
    """An evaluation run as stored, with how many results it has."""

    id: int
    judge_spec: str
    judge_kind: str
    bench_dir: str
    bench_version: str
    objectives: tuple[str, ...]
    orders: str
    task_limit: int | None
    strip_comments: bool | None
    lineage: dict[str, Any]
    parser_version: str
    state: str
    total: int
    done: int
    job_id: int | None
    created_at: datetime
    finished_at: datetime | None
    objective_totals: dict[str, int] = field(default_factory=dict)
    protocol: str = "codefavor"


@dataclass(frozen=True, slots=True)
class EvalResultInfo:
    """One stored decision with its raw output."""

    id: int
    run_id: int
    objective: str
    task_id: str
    order: str
    gt: str
    decision: str
    raw_output: str
    latency_s: float
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class EvalProgress:
    """Emitted after each committed batch: counts so far and the scores they give."""

    run_id: int
    done: int
    total: int
    done_by_objective: dict[str, int]
    total_by_objective: dict[str, int]
    scores: RunScores


@dataclass(frozen=True, slots=True)
class EvalFinished:
    """The run ended: done, stopped (cancelled) or failed with an error line."""

    run_id: int
    state: str
    scores: RunScores
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """One run's line in the leaderboard."""

    run: EvalRunInfo
    scores: RunScores
    extra: dict[str, Any] = field(default_factory=dict)
