"""Events yielded by long jobs: facts and states, never callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.mining.records import CommitRecord


@dataclass(frozen=True, slots=True)
class MineStarted:
    """Mining began: the repository, its license, and how many commits the log lists."""

    repository_path: str
    license: str | None
    head_sha: str | None


@dataclass(frozen=True, slots=True)
class CommitMined:
    """All kept records of one commit; the sink stores them in one transaction with the commit."""

    sha: str
    records: tuple[CommitRecord, ...]
    blobs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MineProgress:
    """How far mining got; emitted at most about ten times a second."""

    commits_seen: int
    records_kept: int
    skipped: dict[str, int]
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class MineFinished:
    """Mining ended: completed, or cancelled part way."""

    commits_seen: int
    records_kept: int
    skipped: dict[str, int]
    elapsed_s: float
    cancelled: bool = False


MineEvent = MineStarted | CommitMined | MineProgress | MineFinished
