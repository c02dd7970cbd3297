"""Progress lines on stderr, only when stderr is a terminal, at most a few times a second."""

from __future__ import annotations

import sys
import time


class StderrProgress:
    """Overwrites one stderr line with `label done/total`; silent when stderr is not a TTY."""

    def __init__(self, label: str, *, interval: float = 0.25) -> None:
        self.label = label
        self.interval = interval
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def update(self, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < self.interval:
            return
        self._last = now
        sys.stderr.write(f"\r{self.label} {done}/{total}" if total else f"\r{self.label} {done}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
