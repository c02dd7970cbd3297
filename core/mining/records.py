"""Mined commit records as plain data: what mining yields and what the store gives back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """One changed file in one non-merge commit, with both sides of the file.

    The sides are kept as the UTF-8 bytes git gave (checked to decode) so that a run never decodes
    hundreds of megabytes only for the store to encode them again; `old_text` and `new_text` decode
    on access.
    """

    sha: str
    parent_sha: str
    author: str
    author_email: str
    authored_at: datetime
    message: str
    path: str
    old_path: str
    old_blob: str
    new_blob: str
    old_data: bytes
    new_data: bytes
    lines_added: int
    lines_removed: int
    language: str

    @property
    def old_text(self) -> str:
        """The old side of the file."""
        return self.old_data.decode("utf-8")

    @property
    def new_text(self) -> str:
        """The new side of the file."""
        return self.new_data.decode("utf-8")


@dataclass(frozen=True, slots=True)
class RepositoryInfo:
    """A repository known to the store."""

    id: int
    path: str
    name: str
    license: str | None
    head_sha: str | None
    commit_count: int = 0


@dataclass(frozen=True, slots=True)
class StoredCommit:
    """A commit record as stored, without the file texts (list views)."""

    id: int
    repository_id: int
    repository_name: str
    sha: str
    author: str
    authored_at: datetime
    subject: str
    path: str
    language: str
    lines_added: int
    lines_removed: int


@dataclass(frozen=True, slots=True)
class CommitDetail:
    """A stored commit record with its message and both file texts."""

    id: int
    repository_id: int
    repository_name: str
    sha: str
    parent_sha: str
    author: str
    author_email: str
    authored_at: datetime
    message: str
    path: str
    old_path: str
    language: str
    lines_added: int
    lines_removed: int
    old_text: str
    new_text: str
