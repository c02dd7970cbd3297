"""Polling the store on a timer without piling up: skip a tick while the last one still reads."""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode


def poll_unless_busy(node: DOMNode, group: str, start: Callable[[], object]) -> Callable[[], None]:
    """A timer callback that starts `start()` (a thread worker of `group`) unless one of that group still runs.

    The workers are not exclusive: an exclusive one would cancel the slow read instead, and on a
    busy machine every tick was cancelled and the screen never updated.
    """

    def tick() -> None:
        if not any(worker.group == group and worker.is_running for worker in node.workers):
            start()

    return tick
