"""Offline pair sources as jobs: rule-based mutation of mined functions, and commit-signal pairs.

Both read the Python commit records in id order, a batch at a time, and store their pairs through
the pairs import path with lineage to the commit record; re-running stores nothing twice (content
hashes), and the same seed gives the same pairs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Engine

from core.curation.analysis import BanditRunner
from core.curation.pairs import NewPair
from core.errors import DataError, OptionError
from core.jobs import JobInfo
from core.synthesis.commit_instruct import CommitSubject
from core.synthesis.mutation import (
    COMMIT_SIGNAL_SOURCE,
    MUTATION_OBJECTIVES,
    MUTATION_SOURCE,
    MutationCounts,
    OfflineFinished,
    OfflineProgress,
    commit_signal_pairs,
    mutate_source,
)
from stores.curation.pairs import import_pairs
from stores.synthesis.runs import load_commit_subjects, select_commit_ids
from workbench.jobs.registry import JobKind, job_kind, register
from workbench.jobs.runner import JobContext, JobStarted, run_foreground

OfflineEvent = OfflineProgress | OfflineFinished
# Commit records per batch: a kill loses at most one batch of pairs, which a re-run makes again.
BATCH = 50


@dataclass(frozen=True, slots=True)
class MutationConfig:
    """Which objectives to mutate for, on how many commit records, with which seed."""

    objectives: tuple[str, ...] = MUTATION_OBJECTIVES
    limit: int | None = None
    seed: int = 0

    def validate(self) -> None:
        """Raise OptionError for a config that cannot run."""
        unknown = [o for o in self.objectives if o not in MUTATION_OBJECTIVES]
        if unknown or not self.objectives:
            raise OptionError(f"unknown objective {unknown[0] if unknown else '(none)'!r}; choose from "
                              f"{', '.join(MUTATION_OBJECTIVES)}")
        if self.limit is not None and self.limit < 1:
            raise OptionError("limit must be at least 1")


def parse_objectives(values: list[str] | None) -> tuple[str, ...]:
    """`--objective` values (repeated or comma lists) in the fixed order; none means all three."""
    wanted = [part.strip() for value in values or () for part in value.split(",") if part.strip()]
    unknown = [name for name in wanted if name not in MUTATION_OBJECTIVES]
    if unknown:
        raise OptionError(f"unknown objective {unknown[0]!r}; choose from {', '.join(MUTATION_OBJECTIVES)}")
    return tuple(o for o in MUTATION_OBJECTIVES if o in wanted) or MUTATION_OBJECTIVES


def _records(engine: Engine, limit: int | None) -> list[int]:
    ids = select_commit_ids(engine, limit=limit, language="python")
    if not ids:
        raise DataError("no mined Python commit records in the store: run `workbench mine REPO` first")
    return ids


@dataclass(frozen=True, slots=True)
class CommitSignalParams:
    """How many Python commit records to read (None: all)."""

    limit: int | None = None


@dataclass(frozen=True, slots=True)
class OfflineSummary:
    """An offline source's job: records read of `total`, pairs stored and already stored, and the
    maker's own counters (functions, pairs by kind, drops by reason)."""

    done: int = 0
    total: int = 0
    stored: int = 0
    already_stored: int = 0
    counters: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        """The counters with `stored` and `already_stored`, as OfflineProgress and OfflineFinished carry them."""
        return {**self.counters, "stored": self.stored, "already_stored": self.already_stored}


def _run(
    ctx: JobContext, ids: list[int], make_pairs: Callable[[CommitSubject], list[NewPair]],
    counters: Callable[[], dict[str, Any]],
) -> Generator[OfflineProgress, None, OfflineSummary]:
    engine = ctx.engine
    summary = OfflineSummary(total=len(ids))
    ctx.progress(0, len(ids), summary, force=True)
    for start in range(0, len(ids), BATCH):
        ctx.check()
        batch_ids = ids[start : start + BATCH]
        subjects = load_commit_subjects(engine, batch_ids)
        pairs = [pair for commit_id in batch_ids if commit_id in subjects for pair in make_pairs(subjects[commit_id])]
        new, known = import_pairs(engine, pairs, job_id=ctx.job_id)
        summary = replace(summary, done=summary.done + len(batch_ids), stored=summary.stored + new,
                          already_stored=summary.already_stored + known, counters=counters())
        ctx.progress(summary.done, len(ids), summary)
        yield OfflineProgress(ctx.job_id, summary.done, len(ids), summary.flat())
    return summary


def run_mutate(ctx: JobContext, config: MutationConfig) -> Generator[OfflineProgress, None, OfflineSummary]:
    """Make mutation pairs from the new side of every Python commit record, as a `mutate` job."""
    config.validate()
    ids = _records(ctx.engine, config.limit)
    bandit = BanditRunner()
    counts = MutationCounts()
    seen: set[str] = set()

    def make_pairs(subject: CommitSubject) -> list[NewPair]:
        pairs = mutate_source(subject.new_text, objectives=config.objectives, seed=config.seed, bandit=bandit,
                              counts=counts, seen=seen)
        return [
            NewPair(instruction=p.instruction, criteria=p.criteria, chosen=p.chosen, rejected=p.rejected,
                    feedback=p.feedback, source=MUTATION_SOURCE, language="python", commit_id=subject.commit_id,
                    meta={"objective": p.objective, "mutation": p.kind, "site": p.site, "function": p.function,
                          "path": subject.path, "seed": config.seed, "bandit_added": list(p.added_findings)})
            for p in pairs
        ]

    return (yield from _run(ctx, ids, make_pairs, counts.snapshot))


def run_commit_signal(ctx: JobContext, params: CommitSignalParams) -> Generator[OfflineProgress, None, OfflineSummary]:
    """Pair each function a commit changed so that a bandit finding went away (new code chosen)."""
    ids = _records(ctx.engine, params.limit)
    bandit = BanditRunner()
    counts: dict[str, int] = {"records": 0, "pairs": 0}

    def make_pairs(subject: CommitSubject) -> list[NewPair]:
        counts["records"] += 1
        pairs = commit_signal_pairs(subject.old_text, subject.new_text, bandit=bandit)
        counts["pairs"] += len(pairs)
        return [
            NewPair(instruction=p.instruction, criteria=p.criteria, chosen=p.chosen, rejected=p.rejected,
                    feedback=p.feedback, source=COMMIT_SIGNAL_SOURCE, language="python", commit_id=subject.commit_id,
                    meta={"objective": "security", "function": p.function, "path": subject.path,
                          "bandit_removed": list(p.removed_findings)})
            for p in pairs
        ]

    return (yield from _run(ctx, ids, make_pairs, lambda: dict(counts)))


def _check_mutate(engine: Engine, config: MutationConfig) -> None:
    config.validate()
    _records(engine, 1)


def _check_commit_signal(engine: Engine, params: CommitSignalParams) -> None:
    if params.limit is not None and params.limit < 1:
        raise OptionError("limit must be at least 1")
    _records(engine, 1)


_HINT = "re-run it to resume: pairs already stored are not stored twice (workbench jobs resume {job_id})"
MUTATE = register(JobKind(
    name="mutate", params_type=MutationConfig, summary_type=OfflineSummary, run=run_mutate,
    title=lambda config: f"mutation pairs ({', '.join(config.objectives)})", check=_check_mutate, resume_hint=_HINT,
))
COMMIT_SIGNAL = register(JobKind(
    name="commit-signal", params_type=CommitSignalParams, summary_type=OfflineSummary, run=run_commit_signal,
    title=lambda _params: "commit-signal pairs", check=_check_commit_signal, resume_hint=_HINT,
))


def _foreground(engine: Engine, kind: str, params: Any, cancel: Callable[[], bool]) -> Generator[OfflineEvent, None, None]:
    """Run an offline source in the foreground; its progress, then one OfflineFinished however it ended."""
    stop = threading.Event()
    events = run_foreground(engine, kind, params, cancel=stop)
    job_id = 0
    while True:
        if cancel():
            stop.set()
        try:
            event = next(events)
        except StopIteration as end:
            info: JobInfo = end.value
            break
        if isinstance(event, JobStarted):
            job_id = event.job_id
        elif isinstance(event, OfflineProgress):
            yield event
    summary = job_kind(kind).load_summary(info.summary) or OfflineSummary()
    yield OfflineFinished(job_id or info.id, info.state.value, summary.done, summary.total, summary.flat(), info.error)


def run_mutation_job(
    engine: Engine, config: MutationConfig, *, cancel: Callable[[], bool] = lambda: False
) -> Generator[OfflineEvent, None, None]:
    """Make mutation pairs from the new side of every Python commit record, as a `mutate` job in the foreground."""
    _check_mutate(engine, config)
    yield from _foreground(engine, MUTATE.name, config, cancel)


def run_commit_signal_job(
    engine: Engine, *, limit: int | None = None, cancel: Callable[[], bool] = lambda: False
) -> Generator[OfflineEvent, None, None]:
    """Commit-signal pairs as a `commit-signal` job in the foreground."""
    params = CommitSignalParams(limit)
    _check_commit_signal(engine, params)
    yield from _foreground(engine, COMMIT_SIGNAL.name, params, cancel)
