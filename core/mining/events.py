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
    """How far mining got; emitted at most about ten times a second.

    `skipped` counts file changes by reason; records_kept + sum(skipped) == changes_seen.
    """

    commits_seen: int
    records_kept: int
    skipped: dict[str, int]
    elapsed_s: float
    changes_seen: int = 0


@dataclass(frozen=True, slots=True)
class MineFinished:
    """Mining ended: completed, or cancelled part way.

    Every file change of every walked commit is either a record or counted once in `skipped` under
    the reason it was dropped: records_kept + sum(skipped) == changes_seen.
    """

    commits_seen: int
    records_kept: int
    skipped: dict[str, int]
    elapsed_s: float
    cancelled: bool = False
    changes_seen: int = 0


MineEvent = MineStarted | CommitMined | MineProgress | MineFinished
