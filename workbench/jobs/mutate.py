"""Offline pair sources as jobs: rule-based mutation of mined functions, and commit-signal pairs.

Both read the Python commit records in id order, a batch at a time, and store their pairs through
the pairs import path with lineage to the commit record; re-running stores nothing twice (content
hashes), and the same seed gives the same pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from core.curation.analysis import BanditRunner
from core.curation.pairs import NewPair
from core.errors import DataError, OptionError
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
from workbench.jobs.runner import JobHandle

OfflineEvent = OfflineProgress | OfflineFinished
# Commit records per batch: a kill loses at most one batch of pairs, which a re-run makes again.
BATCH = 50


@dataclass(frozen=True)
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


def _run(
    engine: Engine, kind: str, title: str, params: dict[str, Any], ids: list[int],
    make_pairs: Callable[[CommitSubject], list[NewPair]], counters: Callable[[], dict[str, Any]],
    cancel: Callable[[], bool],
) -> Iterator[OfflineEvent]:
    job = JobHandle.start(engine, kind, title, params)
    added = duplicates = done = 0
    state = "failed"
    error: str | None = "the run stopped before it finished"

    def summary() -> dict[str, Any]:
        return {**counters(), "stored": added, "already_stored": duplicates}

    try:
        for start in range(0, len(ids), BATCH):
            if cancel() or job.cancel_requested():
                state, error = "cancelled", "cancelled; re-run to resume"
                break
            batch_ids = ids[start : start + BATCH]
            subjects = load_commit_subjects(engine, batch_ids)
            pairs = [pair for commit_id in batch_ids if commit_id in subjects
                     for pair in make_pairs(subjects[commit_id])]
            new, known = import_pairs(engine, pairs, job_id=job.job_id)
            added, duplicates, done = added + new, duplicates + known, done + len(batch_ids)
            job.progress(done, len(ids), summary())
            yield OfflineProgress(job.job_id, done, len(ids), summary())
        else:
            state, error = "done", None
    except (KeyboardInterrupt, GeneratorExit):
        state, error = "cancelled", "interrupted; re-run to resume"
        raise
    except Exception as exc:
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise
    finally:
        job.finish(state, error=error, summary=summary(), done=done)
    yield OfflineFinished(job.job_id, state, done, len(ids), summary(), error)


def run_mutation_job(
    engine: Engine, config: MutationConfig, *, cancel: Callable[[], bool] = lambda: False
) -> Iterator[OfflineEvent]:
    """Make mutation pairs from the new side of every Python commit record, as a `mutate` job."""
    config.validate()
    ids = _records(engine, config.limit)
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

    params = {"objectives": list(config.objectives), "limit": config.limit, "seed": config.seed}
    yield from _run(engine, "mutate", f"mutation pairs ({', '.join(config.objectives)})", params, ids, make_pairs,
                    counts.snapshot, cancel)


def run_commit_signal_job(
    engine: Engine, *, limit: int | None = None, cancel: Callable[[], bool] = lambda: False
) -> Iterator[OfflineEvent]:
    """Pair each function a commit changed so that a bandit finding went away (new code chosen)."""
    if limit is not None and limit < 1:
        raise OptionError("limit must be at least 1")
    ids = _records(engine, limit)
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

    yield from _run(engine, "commit-signal", "commit-signal pairs", {"limit": limit}, ids, make_pairs,
                    lambda: dict(counts), cancel)
