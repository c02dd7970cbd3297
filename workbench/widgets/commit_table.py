"""CommitTable: commit records loaded a page at a time as the cursor nears the end."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from core.mining.records import StoredCommit
from workbench.widgets.plain import cell

PAGE_SIZE = 200
PREFETCH_ROWS = 60
PATH_LIMIT = 36
SUBJECT_LIMIT = 72
AUTHOR_LIMIT = 24


def _short_path(path: str) -> str:
    """A long path keeps its end (the file name), which says most."""
    return path if len(path) <= PATH_LIMIT else "…" + path[-(PATH_LIMIT - 1):]


class CommitTable(DataTable[Text]):
    """Shows commit records; asks its screen for the next page instead of holding every row."""

    class NeedMore(Message):
        """The cursor is near the last loaded row; `after_id` is the last id shown."""

        def __init__(self, after_id: int) -> None:
            super().__init__()
            self.after_id = after_id

    class CommitChosen(Message):
        def __init__(self, commit_id: int) -> None:
            super().__init__()
            self.commit_id = commit_id

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.last_id: int | None = None
        self.exhausted = False
        self._asked_after: int | None = None
        self._ids: list[int] = []

    def on_mount(self) -> None:
        # The subject comes early: at 100 columns everything from the author on may be off screen.
        # Fixed widths: pages are appended, and rows already rendered keep their width.
        for label, width in (("id", 7), ("date", 10), ("+", 5), ("-", 5), ("path", PATH_LIMIT),
                             ("subject", SUBJECT_LIMIT), ("author", AUTHOR_LIMIT), ("sha", 10), ("repo", 24)):
            self.add_column(label, width=width)

    def reset(self) -> None:
        """Drop every row before a new filter's first page."""
        self.clear()
        self._ids = []
        self.last_id = None
        self.exhausted = False
        self._asked_after = None

    def append_page(self, commits: list[StoredCommit]) -> None:
        """Add one page of rows (one add_rows call)."""
        if len(commits) < PAGE_SIZE:
            self.exhausted = True
        if not commits:
            return
        self.add_rows(
            [
                (
                    cell(c.id), cell(c.authored_at.strftime("%Y-%m-%d")),
                    cell(f"+{c.lines_added}", style="green"), cell(f"-{c.lines_removed}", style="red"),
                    cell(_short_path(c.path), PATH_LIMIT), cell(c.subject, SUBJECT_LIMIT),
                    cell(c.author, AUTHOR_LIMIT), cell(c.sha[:10]), cell(c.repository_name, 24),
                )
                for c in commits
            ]
        )
        self._ids.extend(c.id for c in commits)
        self.last_id = commits[-1].id

    @on(DataTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        self._maybe_ask_for_more(self.cursor_row)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._maybe_ask_for_more(int(new_value) + self.size.height)

    def _maybe_ask_for_more(self, row: int) -> None:
        if self.exhausted or self.last_id is None or self._asked_after == self.last_id:
            return
        if row >= self.row_count - PREFETCH_ROWS:
            self._asked_after = self.last_id
            self.post_message(self.NeedMore(self.last_id))

    @on(DataTable.RowSelected)
    def choose(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self._ids):
            self.post_message(self.CommitChosen(self._ids[event.cursor_row]))
