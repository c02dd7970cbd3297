"""DashboardScreen: store counts, running and recent jobs, and the keys to every screen."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from core.jobs import JobInfo
from core.models import StoreSummary
from stores.jobs import get_job, list_jobs, request_cancel
from stores.summary import store_summary
from workbench.widgets.job_table import JobTable
from workbench.widgets.polling import poll_unless_busy

REFRESH_SECONDS = 1.0


class DashboardScreen(Screen[None]):
    """Shows what the store holds and which jobs run, refreshed every second."""

    CSS_PATH = "dashboard.tcss"
    AUTO_FOCUS = "#jobs"
    BINDINGS = [Binding("x", "cancel_job", "Cancel job", show=False)]  # in the help; the footer is full

    class Refreshed(Message):
        def __init__(self, summary: StoreSummary, jobs: list[JobInfo]) -> None:
            super().__init__()
            self.summary = summary
            self.jobs = jobs

    class JobLoaded(Message):
        """One job, read for the detail line."""

        def __init__(self, job: JobInfo) -> None:
            super().__init__()
            self.job = job

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="summary-row"):
            yield Static(id="summary", classes="panel")
            yield Static(id="keys", classes="panel")
        with Vertical(id="jobs-panel", classes="panel"):
            yield Static("Jobs (running first, then recent)", classes="title")
            yield JobTable(id="jobs")
            yield Static(id="job-detail", classes="muted")
        yield Footer()

    @property
    def job_table(self) -> JobTable:
        return self.query_one(JobTable)

    def on_mount(self) -> None:
        from workbench.app import SCREEN_MODES

        keys = "\n".join(f"{key}  {title}" for _mode, _screen, key, title in SCREEN_MODES)
        self.query_one("#keys", Static).update(Content(f"{keys}\n?  Help\nctrl+p  Commands"))
        self.refresh_data()
        self.set_interval(REFRESH_SECONDS, poll_unless_busy(self, "dashboard-refresh", self.refresh_data))

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="dashboard-refresh", exit_on_error=False)
    def refresh_data(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        summary = store_summary(engine)
        jobs = list_jobs(engine, limit=50)
        jobs.sort(key=lambda job: (not job.is_active, -job.id))
        self.post_message(self.Refreshed(summary, jobs))

    @on(Refreshed)
    def show_data(self, message: Refreshed) -> None:
        summary = message.summary
        lines = [
            f"repositories  {summary.repositories:,}",
            f"commits       {summary.commits:,}",
            *(f"{name:<13} {value:,}" for name, value in sorted(summary.extra.items())),
            f"jobs          {summary.jobs_total:,} ({summary.jobs_running} running)",
        ]
        self.query_one("#summary", Static).update(Content("\n".join(lines)))
        self.job_table.show_jobs(message.jobs)

    @on(JobTable.JobSelected)
    def show_job(self, message: JobTable.JobSelected) -> None:
        self.load_job(message.job_id)

    @work(thread=True, exclusive=True, group="dashboard-job", exit_on_error=False)
    def load_job(self, job_id: int) -> None:
        self.post_message(self.JobLoaded(get_job(self.app.engine, job_id)))  # type: ignore[attr-defined]

    @on(JobLoaded)
    def show_job_detail(self, message: JobLoaded) -> None:
        job = message.job
        detail = [f"job {job.id} · {job.kind} · {job.state} · {job.title}"]
        if job.worker_id:
            detail.append(f"worker: {job.worker_id}")
        if job.error:
            detail.append(f"error: {job.error}")
        detail.extend(f"{key}: {value}" for key, value in sorted(job.summary.items()))
        self.query_one("#job-detail", Static).update(Content("\n".join(detail)))

    def action_cancel_job(self) -> None:
        table = self.job_table
        if table.row_count:
            self.cancel_job(int(str(table.get_row_at(table.cursor_row)[0])))

    @work(thread=True, exclusive=True, group="dashboard-cancel", exit_on_error=False)
    def cancel_job(self, job_id: int) -> None:
        job = request_cancel(self.app.engine, job_id)  # type: ignore[attr-defined]
        note = f"job {job.id}: cancel requested" if job.is_active else f"job {job.id}: {job.state}"
        self.app.call_from_thread(self.app.notify, note, markup=False, timeout=3)
