"""Table classes of the store. Later stages add their tables in modules imported at the end."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware UTC now, the one clock convention of the store (SQLModel refuses naive times)."""
    return datetime.now(timezone.utc)


class RepositoryRow(SQLModel, table=True):
    __tablename__ = "repositories"

    id: Optional[int] = Field(default=None, primary_key=True)
    path: str = Field(sa_column_kwargs={"unique": True})
    name: str
    license: Optional[str] = None
    head_sha: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)


# File texts live in their own SQLite file beside the store (see stores.db), attached under this
# schema name; on other databases the name maps to the default schema.
TEXTS_SCHEMA = "texts"


class BlobRow(SQLModel, table=True):
    """File contents stored once by git blob id: a file's new side is the next commit's old side."""

    __tablename__ = "blobs"
    __table_args__ = {"schema": TEXTS_SCHEMA}

    sha: str = Field(primary_key=True)
    size: int
    text: str = Field(sa_column=Column(Text, nullable=False))


class CommitRow(SQLModel, table=True):
    """One changed file in one non-merge commit."""

    __tablename__ = "commits"
    __table_args__ = (
        UniqueConstraint("repository_id", "sha", "path", name="uq_commit_file"),
        Index("ix_commits_repo_id", "repository_id", "id"),
        Index("ix_commits_content_key", "content_key"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    repository_id: int = Field(foreign_key="repositories.id")
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    sha: str = Field(index=True)
    parent_sha: str
    author: str
    author_email: str
    authored_at: datetime
    message: str = Field(sa_column=Column(Text, nullable=False))
    path: str = Field(index=True)
    old_path: str
    old_blob: str  # BlobRow.sha; no foreign key, SQLite cannot check one across files
    new_blob: str
    content_key: str
    lines_added: int
    lines_removed: int
    language: str = Field(index=True)


class JobRow(SQLModel, table=True):
    """A unit of pipeline work that any front end on any session can watch."""

    __tablename__ = "jobs"

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    title: str
    state: str = Field(default="queued", index=True)
    params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    done: int = 0
    total: Optional[int] = None
    pid: Optional[int] = None
    host: Optional[str] = None
    log_path: Optional[str] = None
    cancel_requested: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    summary_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


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


__all__ = [
    "TEXTS_SCHEMA",
    "BlobRow",
    "CommitRow",
    "JobRow",
    "PairRow",
    "RepositoryRow",
    "utcnow",
]
