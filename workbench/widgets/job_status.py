"""JobStatus: one line on the screen that started jobs, following them in the store until they end."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual import on, work
from textual.message import Message
from textual.widgets import Static

from core.models import JobInfo
from core.textsafe import one_line
from stores.jobs import get_job, list_jobs

if TYPE_CHECKING:
    from workbench.jobs.detached import DetachedRun

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class _Watch:
    """What one start action is waiting for: a known job, or the jobs a detached process will record."""

    key: int
    label: str
    job_id: int | None = None
    kinds: tuple[str, ...] = ()
    after_id: int = 0
    run: DetachedRun | None = field(default=None, compare=False)


@dataclass(frozen=True)
class _Seen:
    watch: _Watch
    jobs: tuple[JobInfo, ...]
    exit_code: int | None
    log_tail: str


def job_line(job: JobInfo) -> str:
    """A job's state in a few words: `job 12 analyse running 300/1,200` or `job 12 analyse failed: why`."""
    progress = f" {job.done:,}/{job.total:,}" if job.total else (f" {job.done:,}" if job.done else "")
    text = f"job {job.id} {job.kind} {job.state}{progress if job.is_active or job.state == 'done' else ''}"
    if job.error:
        text += f": {job.error}"
    return text


class JobStatus(Static):
    """Follows the jobs its screen started (in any process) and says how each is doing, then how it ended.

    Posts `Ended` when a watched start is over, so the screen can re-read what the job changed;
    failures are shown in the error colour and as a notification.
    """

    DEFAULT_CSS = """
    JobStatus { height: auto; max-height: 2; padding: 0 1; color: $text-muted; display: none; }
    JobStatus.-shown { display: block; }
    JobStatus.-failed { color: $error; }
    JobStatus.-running { color: $text; }
    """

    class Ended(Message):
        """A watched start is over: its jobs (oldest first) and whether anything failed."""

        def __init__(self, label: str, jobs: tuple[JobInfo, ...], failed: bool, text: str) -> None:
            super().__init__()
            self.label = label
            self.jobs = jobs
            self.failed = failed
            self.text = text

    class _Polled(Message):
        def __init__(self, seen: list[_Seen]) -> None:
            super().__init__()
            self.seen = seen

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", markup=False, **kwargs)  # type: ignore[arg-type]
        self._watches: dict[int, _Watch] = {}
        self._keys = itertools.count(1)

    def on_mount(self) -> None:
        self.set_interval(POLL_SECONDS, self._poll)

    @property
    def watching(self) -> bool:
        """True while a started job (or detached process) has not ended."""
        return bool(self._watches)

    def follow(self, job_id: int, label: str) -> None:
        """Watch a job whose id is known."""
        watch = _Watch(next(self._keys), label, job_id=job_id)
        self._watches[watch.key] = watch
        self.say(f"{label}: job {job_id} started", running=True)
        self._poll()

    def follow_detached(self, run: DetachedRun, kinds: tuple[str, ...], after_id: int, label: str) -> None:
        """Watch the jobs of `kinds` that a detached process records (ids above `after_id`)."""
        watch = _Watch(next(self._keys), label, kinds=kinds, after_id=after_id, run=run)
        self._watches[watch.key] = watch
        self.say(f"{label}: started", running=True)

    def say(self, text: str, *, failed: bool = False, running: bool = False) -> None:
        """Show one line (untrusted parts are made visible here)."""
        self.update(one_line(text, 400))
        self.set_class(bool(text), "-shown")
        self.set_class(failed, "-failed")
        self.set_class(running and not failed, "-running")

    def _poll(self) -> None:
        if self._watches:
            self._read(tuple(self._watches.values()))

    @work(thread=True, exclusive=True, group="job-status", exit_on_error=False)
    def _read(self, watches: tuple[_Watch, ...]) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        seen = []
        for watch in watches:
            if watch.job_id is not None:
                jobs: tuple[JobInfo, ...] = (get_job(engine, watch.job_id),)
            else:
                found = [job for kind in watch.kinds for job in list_jobs(engine, kind=kind, limit=20)
                         if job.id > watch.after_id]
                jobs = tuple(sorted(found, key=lambda job: job.id))
            exit_code = watch.run.exit_code() if watch.run is not None else None
            tail = watch.run.log_tail() if watch.run is not None and exit_code not in (None, 0) else ""
            seen.append(_Seen(watch, jobs, exit_code, tail))
        self.post_message(self._Polled(seen))

    @on(_Polled)
    def _show(self, message: _Polled) -> None:
        message.stop()
        lines = []
        for seen in message.seen:
            watch = seen.watch
            if watch.key not in self._watches:
                continue
            over = (seen.exit_code is not None) if watch.run is not None else not seen.jobs[0].is_active
            jobs_text = "; ".join(job_line(job) for job in seen.jobs)
            if not over:
                lines.append((f"{watch.label}: {jobs_text or 'starting'}", False))
                continue
            del self._watches[watch.key]
            failed = any(job.state == "failed" for job in seen.jobs) or bool(seen.exit_code)
            text = f"{watch.label}: {jobs_text or 'no job was recorded'}"
            if seen.exit_code and not any(job.state == "failed" for job in seen.jobs):
                text += f"; the process ended with status {seen.exit_code}: {seen.log_tail}"
            lines.append((text, failed))
            self.app.notify(one_line(text, 300), severity="error" if failed else "information", markup=False,
                            timeout=8 if failed else 4)
            self.post_message(self.Ended(watch.label, seen.jobs, failed, text))
        if lines:
            self.say(" · ".join(text for text, _failed in lines), failed=any(failed for _t, failed in lines),
                     running=bool(self._watches))
