"""JobStatus: one line on the screen that started jobs, following them in the store until they end."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from textual import on, work
from textual.message import Message
from textual.widgets import Static

from core.jobs import JobInfo
from core.textsafe import one_line
from stores.jobs import get_job

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class _Watch:
    """What one start action is waiting for: a queued job."""

    key: int
    label: str
    job_id: int


@dataclass(frozen=True)
class _Seen:
    watch: _Watch
    job: JobInfo


def job_line(job: JobInfo) -> str:
    """A job's state in a few words: `job 12 analyse running 300/1,200` or `job 12 analyse failed: why`."""
    progress = f" {job.done:,}/{job.total:,}" if job.total else (f" {job.done:,}" if job.done else "")
    text = f"job {job.id} {job.kind} {job.state}{progress if job.is_active or job.state == 'done' else ''}"
    if job.error:
        text += f": {job.error}"
    return text


class JobStatus(Static):
    """Follows the jobs its screen queued (a worker runs them) and says how each is doing, then how it ended.

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
        """True while a queued job has not ended."""
        return bool(self._watches)

    def follow(self, job_id: int, label: str) -> None:
        """Watch a job whose id is known."""
        watch = _Watch(next(self._keys), label, job_id=job_id)
        self._watches[watch.key] = watch
        self.say(f"{label}: job {job_id} started", running=True)
        self._poll()

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
        self.post_message(self._Polled([_Seen(watch, get_job(engine, watch.job_id)) for watch in watches]))

    @on(_Polled)
    def _show(self, message: _Polled) -> None:
        message.stop()
        lines = []
        for seen in message.seen:
            watch, job = seen.watch, seen.job
            if watch.key not in self._watches:
                continue
            if job.is_active:
                waiting = " (waiting for a worker)" if job.state == "queued" else ""
                lines.append((f"{watch.label}: {job_line(job)}{waiting}", False))
                continue
            del self._watches[watch.key]
            failed = job.state == "failed"
            text = f"{watch.label}: {job_line(job)}"
            lines.append((text, failed))
            self.app.notify(one_line(text, 300), severity="error" if failed else "information", markup=False,
                            timeout=8 if failed else 4)
            self.post_message(self.Ended(watch.label, (job,), failed, text))
        if lines:
            self.say(" · ".join(text for text, _failed in lines), failed=any(failed for _t, failed in lines),
                     running=bool(self._watches))
