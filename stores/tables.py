"""Shared tables of the store (jobs) and its clock convention; each stage keeps its own tables module."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware UTC now, the one clock convention of the store (SQLModel refuses naive times)."""
    return datetime.now(timezone.utc)










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


__all__ = ["JobRow", "utcnow"]
