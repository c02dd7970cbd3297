"""JobTable: a table of jobs with their state and progress."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from core.models import JobInfo

_STATE_STYLE = {"running": "bold green", "queued": "yellow", "failed": "red", "cancelled": "dim", "done": ""}


class JobTable(DataTable[Text]):
    """Shows jobs, newest first; posts JobSelected when one is chosen."""

    class JobSelected(Message):
        def __init__(self, job_id: int) -> None:
            super().__init__()
            self.job_id = job_id

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("id", "kind", "state", "progress", "title")

    def show_jobs(self, jobs: list[JobInfo]) -> None:
        """Replace the rows, keeping the cursor on the same row index."""
        row = self.cursor_row
        self.clear()
        self.add_rows(
            [
                (
                    Text(str(job.id)),
                    Text(job.kind),
                    Text(job.state, style=_STATE_STYLE.get(job.state, "")),
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


def _progress(job: JobInfo) -> str:
    if job.total:
        return f"{job.done}/{job.total} ({100 * job.done // max(job.total, 1)}%)"
    return str(job.done)
