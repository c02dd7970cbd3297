"""Helpers for Pilot tests: settle the app, read what the terminal would show, check it is safe."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from textual.worker import WorkerCancelled

# What must never reach the terminal as text: C0 controls (ESC, NUL, ...), DEL, C1 controls and
# bidirectional or invisible format characters.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


async def settle(app: Any, pilot: Any, rounds: int = 3) -> None:
    """Let workers finish and their messages land (a stale worker a newer one replaced is fine)."""
    for _ in range(rounds):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            pass
        await pilot.pause()


async def wait_until(app: Any, pilot: Any, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Pause until `condition()` holds (for work done by another process), or fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await pilot.pause(0.2)
        await settle(app, pilot, rounds=1)


def screen_text(app: Any) -> str:
    """The text of every cell the terminal would show for the current screen stack, line by line."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def assert_terminal_safe(app: Any) -> str:
    """Check no control, escape or bidirectional character reaches the terminal; return the screen text."""
    text = screen_text(app)
    found = sorted({f"U+{ord(char):04X}" for row in text.split("\n") for char in UNSAFE.findall(row)})
    assert not found, f"raw control characters on screen: {found}"
    return text


def off_the_event_loop(app: Any, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a blocking store call so that calling it on the app's event-loop thread fails the test."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        assert threading.get_ident() != app._thread_id, f"{function.__name__} ran on the event loop"
        return function(*args, **kwargs)

    return guarded
