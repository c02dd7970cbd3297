"""Tables of the training stage: runs, their metrics and DPO pair draws, and checkpoints from runs and merges."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from stores.tables import utcnow


class TrainRunRow(SQLModel, table=True):
    """A detached training run; its job row holds the state, pid and log path."""

    __tablename__ = "train_runs"

    job_id: int = Field(primary_key=True, foreign_key="jobs.id")
    name: str
    recipe_path: str
    recipe_json: str = Field(sa_column=Column(Text, nullable=False))
    run_dir: str
    command_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    step: int = 0
    total_steps: Optional[int] = None
    exit_code: Optional[int] = None
    events_offset: int = 0
    latest_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class TrainMetricRow(SQLModel, table=True):
    """One logged optimizer step of a run."""

    __tablename__ = "train_metrics"
    __table_args__ = (Index("ix_train_metrics_run_step", "job_id", "step"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="train_runs.job_id")
    step: int
    time: float
    loss: float
    lr: float
    grad_norm: Optional[float] = None
    tokens_per_s: Optional[float] = None
    samples_per_s: Optional[float] = None
    eta_s: Optional[float] = None
    gpu_mem_gb: Optional[float] = None
    gpu_util: Optional[float] = None


class TrainPairDrawRow(SQLModel, table=True):
    """The (chosen, rejected) pair a DPO run drew for one group (problem) at one epoch."""

    __tablename__ = "train_pair_draws"
    __table_args__ = (Index("ix_train_pair_draws_run_epoch", "job_id", "epoch"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="train_runs.job_id")
    epoch: int
    group_key: str
    row: int  # the pair's row in the run's prepared dataset
    pair_id: Optional[int] = None  # the stored pair, when the export named it


class CheckpointRow(SQLModel, table=True):
    """A checkpoint folder from a training run or a merge, with its verification and lineage."""

    __tablename__ = "checkpoints"

    id: Optional[int] = Field(default=None, primary_key=True)
    path: str = Field(index=True)
    kind: str = Field(index=True)  # train | merge
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    step: Optional[int] = None
    verified: bool = False
    problems: str = Field(default="", sa_column=Column(Text, nullable=False))
    lineage_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
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
