"""Curation tables: per-pair analysis, the review log used for undo (with the session of each action)."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from stores.tables import utcnow


class PairRow(SQLModel, table=True):
    """A preference pair: chosen is better than rejected on the criteria, for the instruction."""

    __tablename__ = "pairs"

    id: Optional[int] = Field(default=None, primary_key=True)
    source: str = Field(index=True)  # commit-instruct | critic-evol | import | exec
    status: str = Field(default="pending", index=True)  # pending | accepted | rejected | flagged
    instruction: str = Field(sa_column=Column(Text, nullable=False))
    criteria: str = Field(sa_column=Column(Text, nullable=False))
    chosen: str = Field(sa_column=Column(Text, nullable=False))
    rejected: str = Field(sa_column=Column(Text, nullable=False))
    feedback: str = Field(default="", sa_column=Column(Text, nullable=False))
    language: str = "python"
    commit_id: Optional[int] = Field(default=None, foreign_key="commits.id")
    instruction_id: Optional[int] = None
    conversation_id: Optional[int] = None
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    content_hash: str = Field(sa_column_kwargs={"unique": True})
    meta_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PairAnalysisRow(SQLModel, table=True):
    """Analysis of one pair, keyed by pair id; `content_hash` says which content it describes."""

    __tablename__ = "pair_analysis"
    __table_args__ = (Index("ix_pair_analysis_dup", "dup_cluster"),)

    pair_id: int = Field(primary_key=True, foreign_key="pairs.id")
    content_hash: str
    chosen_parses: bool = Field(index=True)
    rejected_parses: bool = Field(index=True)
    chosen_cc: float
    rejected_cc: float
    cc_delta: float
    chosen_mi: float
    rejected_mi: float
    mi_delta: float
    chosen_loc: int
    rejected_loc: int
    loc_delta: int
    chosen_volume: float
    rejected_volume: float
    volume_delta: float
    chosen_bandit: int
    rejected_bandit: int
    bandit_delta: int
    findings_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    diff_size: int
    length_ratio: float
    identical: bool
    chosen_norm_hash: str = Field(index=True)
    rejected_norm_hash: str
    dup_cluster: Optional[int] = None
    duplicate: bool = False
    contamination: Optional[float] = Field(default=None, index=True)
    contamination_chosen: Optional[float] = None
    contamination_rejected: Optional[float] = None
    contamination_task: Optional[str] = None
    analysed_at: datetime = Field(default_factory=utcnow)


class ReviewActionRow(SQLModel, table=True):
    """One review action (accept, reject, flip, edit, bulk rule) with what it changed, for undo."""

    __tablename__ = "review_actions"

    id: Optional[int] = Field(default=None, primary_key=True)
    action: str
    pair_count: int = 0
    before_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    undone: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ReviewSessionRow(SQLModel, table=True):
    """Which front-end session made a review action and what the action set, so that a session
    undoes only its own actions and leaves pairs changed since by anyone else alone."""

    __tablename__ = "review_sessions"

    action_id: int = Field(primary_key=True, foreign_key="review_actions.id")
    session_id: str = Field(index=True)
    after_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
