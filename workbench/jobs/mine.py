"""A mining run as a job: register the repository, mine into the store, record progress and the end."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.engine import Engine

from core.mining.events import CommitMined, MineEvent, MineFinished, MineProgress
from core.mining.mine import MineOptions, mine, probe_repository
from stores.mining.commits import (
    CommitRecorder,
    job_record_count,
    known_content_keys,
    stored_commit_shas,
    upsert_repository,
)
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, run_foreground


@dataclass(frozen=True, slots=True)
class MineParams:
    """What to mine: a local repository and the options."""

    path: str
    options: MineOptions = MineOptions()


@dataclass(frozen=True, slots=True)
class MineSummary:
    """A mining job's counters: commits walked, records kept and stored, skips by reason."""

    repository_id: int
    license: str | None = None
    commits_seen: int = 0
    changes_seen: int = 0
    records_kept: int = 0
    records_stored: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class MineJobStarted:
    """The repository is registered: front ends can show the job and repository ids."""

    job_id: int
    repository_id: int


def run_mine(ctx: JobContext, params: MineParams) -> Generator[MineEvent | MineJobStarted, None, MineSummary]:
    """Mine a repository into the store; a re-run resumes by skipping the commits already stored.

    The MineFinished it yields counts what the store received: a record that another run stored
    first (the same commit and path) counts as `already_stored`, not as kept. A cancel stops the
    run after the current batch; what was stored stays.
    """
    engine = ctx.engine
    probe = probe_repository(params.path, params.options)
    repository = upsert_repository(engine, probe.path, license=probe.license, head_sha=probe.head_sha)
    # A job taken over from a worker that died keeps what that worker stored: the counters are the job's.
    earlier = job_record_count(engine, ctx.job_id) if ctx.job.attempts > 1 else 0
    summary = MineSummary(repository_id=repository.id, license=probe.license, records_kept=earlier,
                          records_stored=earlier)
    ctx.progress(earlier, summary=summary, force=True)
    yield MineJobStarted(ctx.job_id, repository.id)
    stop = threading.Event()
    recorder = CommitRecorder(engine, repository.id, job_id=ctx.job_id)
    try:
        events = mine(probe.path, params.options, sink=recorder, cancel=stop,
                      skip_commits=stored_commit_shas(engine, repository.id), known_content_keys=known_content_keys(engine))
        for event in events:
            if isinstance(event, (CommitMined, MineProgress)) and ctx.should_stop():
                stop.set()  # mining stops after the current batch
            if isinstance(event, MineProgress):
                summary = replace(summary, commits_seen=event.commits_seen, changes_seen=event.changes_seen,
                                  records_kept=earlier + event.records_kept, skipped=dict(event.skipped),
                                  elapsed_s=round(event.elapsed_s, 2))
                ctx.progress(summary.records_kept, summary=summary)
            elif isinstance(event, MineFinished):
                recorder.close()
                event = _as_stored(event, recorder.stored_records)
                summary = replace(summary, commits_seen=event.commits_seen, changes_seen=event.changes_seen,
                                  records_kept=earlier + event.records_kept,
                                  records_stored=earlier + recorder.stored_records,
                                  skipped=dict(event.skipped), elapsed_s=round(event.elapsed_s, 2))
                ctx.progress(summary.records_kept, summary=summary, force=True)
                yield event
                if event.cancelled:
                    raise ctx.stop_exception()
                continue
            yield event
    except BaseException:
        _close_quietly(recorder)
        # Interrupted between progress events: the job ends with what the store holds, not the last
        # progress (the recorder writes what it buffered when it closes).
        stored = earlier + recorder.stored_records
        ctx.progress(stored, summary=replace(summary, records_kept=stored, records_stored=stored))
        raise
    return summary


def _as_stored(finished: MineFinished, stored_records: int) -> MineFinished:
    """The summary of what the store holds: records another run stored first count as already stored."""
    lost = finished.records_kept - stored_records
    if lost <= 0:
        return finished
    skipped = dict(finished.skipped)
    skipped["already_stored"] = skipped.get("already_stored", 0) + lost
    return replace(finished, records_kept=stored_records, skipped=skipped)


def _close_quietly(recorder: CommitRecorder) -> None:
    try:
        recorder.close()
    except Exception:  # noqa: BLE001  the original error matters more
        pass


def _check(_engine: Engine, params: MineParams) -> None:
    probe_repository(params.path, params.options, walk=True)


def _run_key(_engine: Engine, params: MineParams) -> str:
    # One mining job per repository at a time; a re-run of one whose worker died takes it over.
    return f"mine:{Path(params.path).expanduser().resolve()}"


MINE = register(JobKind(
    name="mine", params_type=MineParams, summary_type=MineSummary, run=run_mine,
    title=lambda params: f"mine {params.path}", check=_check, run_key=_run_key,
    resume_hint="re-run it to resume: stored commits are skipped (workbench jobs resume {job_id})",
))


def run_mine_job(engine: Engine, path: str, options: MineOptions = MineOptions(), *,
                 cancel: threading.Event | None = None) -> Generator[object, None, object]:
    """Mine `path` in the foreground as a job; raises the domain error (bad path, rev, language,
    license) before any job row is written. Yields the job's events; Ctrl-C or a cancel from any
    front end (`workbench jobs cancel`, or setting `cancel`) ends it cancelled after the current batch.
    """
    params = MineParams(path, options)
    _check(engine, params)
    return (yield from run_foreground(engine, MINE.name, params, cancel=cancel))
