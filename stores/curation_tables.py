"""Curation tables: per-pair analysis, the review log used for undo, and exports with lineage."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from stores.tables import utcnow


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


class ExportRow(SQLModel, table=True):
    """An export: where it went, which pairs (filter and id hash), counts and the manifest."""

    __tablename__ = "exports"

    id: Optional[int] = Field(default=None, primary_key=True)
    out_dir: str
    formats: str
    filter_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    pair_ids_hash: str
    pair_count: int
    manifest_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    created_at: datetime = Field(default_factory=utcnow)
