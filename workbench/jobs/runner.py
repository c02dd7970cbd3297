"""The job lifecycle as seen by the code doing a job: throttled progress, cancel checks, the ending."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from stores.jobs import create_job, finish_job, is_cancel_requested, update_job


class JobHandle:
    """A running job as seen by the code doing it: throttled progress, cancel checks, the ending."""

    def __init__(
        self,
        engine: Engine,
        job_id: int,
        *,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.job_id = job_id
        self._min_interval = min_interval
        self._clock = clock
        self._last_write = float("-inf")
        self._last_cancel_check = float("-inf")
        self._cancelled = False

    @classmethod
    def start(
        cls, engine: Engine, kind: str, title: str, params: dict[str, Any] | None = None
    ) -> JobHandle:
        """Create a running job owned by this process."""
        return cls(engine, create_job(engine, kind, title, params))

    def progress(
        self,
        done: int,
        total: int | None = None,
        summary: dict[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Write progress at most every `min_interval` seconds unless forced."""
        now = self._clock()
        if not force and now - self._last_write < self._min_interval:
            return
        self._last_write = now
        update_job(self.engine, self.job_id, done=done, total=total, summary=summary)

    def cancel_requested(self) -> bool:
        """Poll the store (at most once a second) for a cancel request from any front end."""
        now = self._clock()
        if not self._cancelled and now - self._last_cancel_check >= 1.0:
            self._last_cancel_check = now
            self._cancelled = is_cancel_requested(self.engine, self.job_id)
        return self._cancelled

    def finish(
        self,
        state: str,
        *,
        error: str | None = None,
        summary: dict[str, Any] | None = None,
        done: int | None = None,
    ) -> None:
        """Record how the job ended."""
        finish_job(self.engine, self.job_id, state, error=error, summary=summary, done=done)
