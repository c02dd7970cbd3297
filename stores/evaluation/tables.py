"""Tables of evaluation: CodePrefBench runs and results; arena sets, answers, runs and judgements."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from stores.tables import utcnow


class EvalRunRow(SQLModel, table=True):
    """An evaluation of one judge on one benchmark version, with what it needs to resume."""

    __tablename__ = "eval_runs"

    id: Optional[int] = Field(default=None, primary_key=True)
    judge_spec: str
    judge_kind: str = Field(index=True)
    bench_dir: str
    bench_version: str = Field(index=True)
    objectives_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    orders: str = "both"
    task_limit: Optional[int] = None
    strip_comments: Optional[bool] = None  # None: the default per objective
    # The evaluation protocol (core.evaluation.protocols); runs stored before it existed used "workbench".
    protocol: str = Field(default="codefavor", sa_column_kwargs={"server_default": "workbench"})
    lineage_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    parser_version: str = ""
    total: int = 0
    objective_totals_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    # The latest job that ran the run: its state is the run's (no state of the run's own).
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    created_at: datetime = Field(default_factory=utcnow)


class EvalResultRow(SQLModel, table=True):
    """A judge's decision on one task in one order, with its raw output and cost."""

    __tablename__ = "eval_results"
    __table_args__ = (
        UniqueConstraint("run_id", "objective", "task_id", "task_order", name="uq_eval_result"),
        Index("ix_eval_results_run_objective", "run_id", "objective", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_runs.id")
    objective: str
    task_id: str
    task_order: str  # given | swapped
    gt: str
    decision: str  # A | B | ?
    raw_output: str = Field(default="", sa_column=Column(Text, nullable=False))
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class ArenaSetRow(SQLModel, table=True):
    """A set of arena questions imported once (CodeArena, arXiv 2412.05210)."""

    __tablename__ = "arena_sets"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(sa_column_kwargs={"unique": True})
    source: str = ""
    content_hash: str = Field(sa_column_kwargs={"unique": True})
    question_count: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class ArenaQuestionRow(SQLModel, table=True):
    """One coding question of a set, with its category and language."""

    __tablename__ = "arena_questions"
    __table_args__ = (UniqueConstraint("set_id", "external_id", name="uq_arena_question"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    set_id: int = Field(foreign_key="arena_sets.id", index=True)
    position: int
    external_id: str
    question: str = Field(sa_column=Column(Text, nullable=False))
    category: str
    language: str


class ArenaAnswerRow(SQLModel, table=True):
    """One model's answer to one question: from the set, imported, or generated (with lineage)."""

    __tablename__ = "arena_answers"
    __table_args__ = (UniqueConstraint("question_id", "model", name="uq_arena_answer"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="arena_questions.id", index=True)
    model: str = Field(index=True)
    source: str  # set | imported | generated
    text: str = Field(sa_column=Column(Text, nullable=False))
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    lineage_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    created_at: datetime = Field(default_factory=utcnow)


class ArenaRunRow(SQLModel, table=True):
    """A judging of a candidate's answers against a baseline's on one set; the same command resumes it."""

    __tablename__ = "arena_runs"
    __table_args__ = (
        UniqueConstraint("set_id", "candidate", "baseline", "judge_spec", "orders", name="uq_arena_run"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    set_id: int = Field(foreign_key="arena_sets.id", index=True)
    candidate: str
    baseline: str
    judge_spec: str
    judge_kind: str
    orders: str = "both"
    prompt_version: str = ""
    parser_version: str = ""
    lineage_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    state: str = "created"  # created | running | done | stopped | failed
    total: int = 0
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None


class ArenaJudgementRow(SQLModel, table=True):
    """A judge's verdict on one question in one order, from the candidate's side, with its raw output."""

    __tablename__ = "arena_judgements"
    __table_args__ = (
        UniqueConstraint("run_id", "question_id", "judge_order", name="uq_arena_judgement"),
        Index("ix_arena_judgements_run", "run_id", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="arena_runs.id")
    question_id: int = Field(foreign_key="arena_questions.id")
    judge_order: str  # given (candidate is answer A) | swapped (candidate is answer B)
    candidate_side: str
    candidate_answer_id: int = Field(foreign_key="arena_answers.id")
    baseline_answer_id: int = Field(foreign_key="arena_answers.id")
    position_verdict: str  # A>>B | A>B | A=B | A<B | A<<B | undecided
    verdict: str  # much better | better | tie | worse | much worse | undecided (the candidate's side)
    raw_output: str = Field(default="", sa_column=Column(Text, nullable=False))
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    created_at: datetime = Field(default_factory=utcnow)


__all__ = [
    "ArenaAnswerRow",
    "ArenaJudgementRow",
    "ArenaQuestionRow",
    "ArenaRunRow",
    "ArenaSetRow",
    "EvalResultRow",
    "EvalRunRow",
]
