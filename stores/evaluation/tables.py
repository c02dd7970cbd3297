"""Tables of CodePrefBench evaluation: one row per run, one per task and order judged."""

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


__all__ = ["EvalResultRow", "EvalRunRow"]
