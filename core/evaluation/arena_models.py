"""Plain data of arena sets, answers and runs that crosses from the store to the front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.evaluation.arena_scoring import ArenaScores


@dataclass(frozen=True, slots=True)
class ArenaSetInfo:
    """An imported arena set with its question counts."""

    id: int
    name: str
    source: str
    content_hash: str
    questions: int
    categories: dict[str, int]
    languages: dict[str, int]
    models: dict[str, int]  # model name -> answers stored (the baseline among them)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ArenaQuestionInfo:
    """One stored question."""

    id: int
    set_id: int
    position: int
    external_id: str
    question: str
    category: str
    language: str


@dataclass(frozen=True, slots=True)
class ArenaAnswerInfo:
    """One model's stored answer to one question, with where it came from."""

    id: int
    question_id: int
    model: str
    source: str  # set | imported | generated
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    lineage: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ArenaRunInfo:
    """A judging of one candidate against one baseline on one set, by one judge."""

    id: int
    set_id: int
    set_name: str
    candidate: str
    baseline: str
    judge_spec: str
    judge_kind: str
    orders: str
    prompt_version: str
    parser_version: str
    lineage: dict[str, Any]
    state: str
    total: int
    done: int
    job_id: int | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ArenaJudgementInfo:
    """One stored judgement with the judge's raw output."""

    id: int
    run_id: int
    question_id: int
    external_id: str
    category: str
    language: str
    order: str
    candidate_side: str
    position_verdict: str
    verdict: str
    raw_output: str
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    cached: bool


@dataclass(frozen=True, slots=True)
class ArenaEntry:
    """A run with its scores: one line of the arena leaderboard."""

    run: ArenaRunInfo
    scores: ArenaScores


@dataclass(frozen=True, slots=True)
class ArenaProgress:
    """Counters of a running arena job (answers or judgements), emitted by time."""

    job_id: int
    done: int
    total: int
    counters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ArenaFinished:
    """An arena job ended: done, cancelled (also when the budget ran out) or failed, with its counters."""

    job_id: int
    state: str
    stop_reason: str
    done: int
    total: int
    counters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
