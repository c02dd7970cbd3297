"""The one progress display of long commands: a rich.progress line on stderr, only on a terminal."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class CommandProgress:
    """A rich progress line (spinner, description, bar, done/total, elapsed, remaining) on stderr.

    Renders only when stderr is a terminal, so piped runs, logs and tests see nothing of it; the
    line goes away when the command ends, before its summary is printed. Descriptions are plain
    text (never markup), since they may hold counts next to names from the data.
    """

    def __init__(self, description: str, *, total: int | None = None, console: Console | None = None) -> None:
        from workbench.cli.common import stderr_console

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or stderr_console,
            transient=True,
            disable=not sys.stderr.isatty(),
        )
        self._task: TaskID = self._progress.add_task(description, total=total)

    @property
    def enabled(self) -> bool:
        """Whether the line is shown (stderr is a terminal)."""
        return not self._progress.disable

    def __enter__(self) -> CommandProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, done: int | None = None, total: int | None = None, description: str | None = None) -> None:
        """Set how many units are done, the total when it becomes known, or a new description."""
        self._progress.update(self._task, completed=done, total=total, description=description)
