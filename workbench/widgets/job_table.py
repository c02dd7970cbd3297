"""JobTable: a table of jobs with their state and progress."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from core.jobs import JobInfo

_STATE_STYLE = {"running": "bold green", "queued": "yellow", "failed": "red", "cancelled": "dim", "done": "",
                "stalled": "bold yellow"}


class JobTable(DataTable[Text]):
    """Shows jobs, newest first; posts JobSelected when one is chosen."""

    class JobSelected(Message):
        def __init__(self, job_id: int) -> None:
            super().__init__()
            self.job_id = job_id

    COLUMNS = ("id", "kind", "state", "progress", "title")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*self.COLUMNS)

    def show_jobs(self, jobs: list[JobInfo]) -> None:
        """Replace the rows, keeping the cursor on the same row index.

        A running job whose worker stopped heartbeating shows `stalled` until another worker takes it over.
        """
        now = datetime.now(timezone.utc)
        row = self.cursor_row
        # Columns are rebuilt too: after clear() alone, auto widths keep the empty table's width.
        self.clear(columns=True)
        for label in self.COLUMNS[:-1]:
            self.add_column(label)
        # An explicit width: an auto-width column added to an empty table renders at its label's width.
        self.add_column(self.COLUMNS[-1], width=max([len(self.COLUMNS[-1]), *(len(job.title) for job in jobs)]))
        self.add_rows(
            [
                (
                    Text(str(job.id)),
                    Text(job.kind),
                    Text(_state(job, now), style=_STATE_STYLE.get(_state(job, now), "")),
                    Text(_progress(job)),
                    Text(job.title),
                )
                for job in jobs
            ]
        )
        if jobs:
            self.move_cursor(row=min(row, len(jobs) - 1))

    @on(DataTable.RowSelected)
    def select_job(self, event: DataTable.RowSelected) -> None:
        event.stop()
        cell = self.get_row_at(event.cursor_row)[0]
        self.post_message(self.JobSelected(int(str(cell))))


def _state(job: JobInfo, now: datetime) -> str:
    return "stalled" if job.is_stalled(now) else job.state.value


def _progress(job: JobInfo) -> str:
    if job.total:
        return f"{job.done}/{job.total} ({100 * job.done // max(job.total, 1)}%)"
    return str(job.done)
