"""A mining run as a job: register the repository, mine into the store, record progress and the end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine

from core.errors import WorkbenchError
from core.mining.events import CommitMined, MineEvent, MineFinished, MineProgress
from core.mining.mine import MineOptions, mine, options_as_params, probe_repository
from stores.mining.commits import CommitRecorder, known_content_keys, stored_commit_shas, upsert_repository
from workbench.jobs.runner import JobHandle


@dataclass(frozen=True, slots=True)
class MineJobStarted:
    """The job row exists: front ends can show its id."""

    job_id: int
    repository_id: int


def run_mine_job(
    engine: Engine,
    path: str,
    options: MineOptions = MineOptions(),
    *,
    cancel: threading.Event | None = None,
) -> Iterator[MineEvent | MineJobStarted]:
    """Mine `path` into the store as a job; a re-run resumes by skipping commits already stored.

    The MineFinished it yields counts what the store received: a record that another run stored
    first (the same commit and path) counts as `already_stored`, not as kept.

    Raises the domain error (bad path, rev, language, license) before any job row is written.
    A cancel request from this process (`cancel`) or from any front end (`workbench jobs cancel`)
    stops the run after the current batch; what was stored stays.
    """
    probe = probe_repository(path, options, walk=True)
    repository = upsert_repository(engine, probe.path, license=probe.license, head_sha=probe.head_sha)
    job = JobHandle.start(engine, "mine", f"mine {probe.path}",
                          {"path": probe.path, **options_as_params(options)})
    yield MineJobStarted(job.job_id, repository.id)
    stop = cancel or threading.Event()
    recorder = CommitRecorder(engine, repository.id, job_id=job.job_id)
    summary: dict[str, object] = {"repository_id": repository.id, "license": probe.license}
    try:
        events = mine(
            probe.path,
            options,
            sink=recorder,
            cancel=stop,
            skip_commits=stored_commit_shas(engine, repository.id),
            known_content_keys=known_content_keys(engine),
        )
        for event in events:
            if isinstance(event, (CommitMined, MineProgress)) and job.cancel_requested():
                stop.set()  # polled at most once a second; mining stops after the current batch
            if isinstance(event, MineProgress):
                summary.update(commits_seen=event.commits_seen, changes_seen=event.changes_seen,
                               records_kept=event.records_kept, skipped=event.skipped)
                job.progress(event.records_kept, summary=summary)
            elif isinstance(event, MineFinished):
                recorder.close()
                event = _as_stored(event, recorder.stored_records)
                summary.update(commits_seen=event.commits_seen, changes_seen=event.changes_seen,
                               records_kept=event.records_kept, records_stored=recorder.stored_records, skipped=event.skipped,
                               elapsed_s=round(event.elapsed_s, 2))
                job.finish("cancelled" if event.cancelled else "done", summary=summary,
                           done=event.records_kept)
            yield event
    except WorkbenchError as exc:
        _close_quietly(recorder)
        job.finish("failed", error=str(exc), summary=summary)
        raise
    except BaseException as exc:
        _close_quietly(recorder)
        job.finish("cancelled" if isinstance(exc, (KeyboardInterrupt, GeneratorExit)) else "failed",
                   error=str(exc) or type(exc).__name__, summary=summary)
        raise


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
