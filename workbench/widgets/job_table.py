"""JobTable: a table of jobs with their state and progress."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from core.jobs import JobInfo
from workbench.widgets.plain import cell
from workbench.widgets.tables import fill_table

_STATE_STYLE = {"running": "bold green", "queued": "yellow", "failed": "red", "cancelled": "dim", "done": "",
                "stalled": "bold yellow"}
TITLE_LIMIT = 200


class JobTable(DataTable[Text]):
    """Shows jobs, running first; posts JobSelected when one is chosen."""

    class JobSelected(Message):
        def __init__(self, job_id: int) -> None:
            super().__init__()
            self.job_id = job_id

    COLUMNS = ("id", "kind", "state", "progress", "title")

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self.jobs: list[JobInfo] = []

    def on_mount(self) -> None:
        self.add_columns(*self.COLUMNS)

    @property
    def current_job(self) -> JobInfo | None:
        """The job under the cursor."""
        if 0 <= self.cursor_row < len(self.jobs):
            return self.jobs[self.cursor_row]
        return None

    def show_jobs(self, jobs: list[JobInfo]) -> None:
        """Replace the rows, keeping the cursor on the same job (or the same row index).

        A running job whose worker stopped heartbeating shows `stalled` until another worker takes it over.
        """
        now = datetime.now(timezone.utc)
        if [(j.id, _state(j, now), j.done, j.total, j.title) for j in jobs] == [
            (j.id, _state(j, now), j.done, j.total, j.title) for j in self.jobs
        ]:
            self.jobs = jobs
            return
        current = self.current_job
        row = self.cursor_row
        self.jobs = jobs
        rows = [
            (cell(job.id), cell(job.kind), cell(_state(job, now), style=_STATE_STYLE.get(_state(job, now), "")),
             cell(_progress(job)), cell(job.title, TITLE_LIMIT))
            for job in jobs
        ]
        fill_table(self, rows)
        if jobs:
            ids = [job.id for job in jobs]
            target = ids.index(current.id) if current is not None and current.id in ids else min(row, len(jobs) - 1)
            self.move_cursor(row=target, animate=False)

    @on(DataTable.RowSelected)
    def select_job(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.jobs):
            self.post_message(self.JobSelected(self.jobs[event.cursor_row].id))


def _state(job: JobInfo, now: datetime) -> str:
    return "stalled" if job.is_stalled(now) else job.state.value


def _progress(job: JobInfo) -> str:
    if job.total:
        return f"{job.done:,}/{job.total:,} ({100 * job.done // max(job.total, 1)}%)"
    return f"{job.done:,}"
