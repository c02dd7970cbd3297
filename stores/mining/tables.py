"""Mining tables: repositories, per-file commit records and the file texts they point to."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from stores.tables import utcnow


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
