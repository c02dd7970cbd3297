"""DashboardScreen: store counts, running and recent jobs, the next step, and the keys to every screen."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from core.errors import NotFoundError
from core.jobs import JobInfo
from core.models import StoreSummary
from core.textsafe import one_line
from stores.jobs import get_job, list_jobs, request_cancel
from stores.summary import store_summary
from workbench.screens.base import StageScreen
from workbench.screens.dialogs import confirm
from workbench.widgets.job_table import JobTable
from workbench.widgets.plain import block, line
from workbench.widgets.polling import poll_unless_busy

REFRESH_SECONDS = 1.0
EMPTY_STORE = (
    "The store is empty. Next: press c, then m, to mine a git repository "
    "(or run `workbench mine PATH`); `workbench pairs import FILE` brings in pairs you already have."
)
NO_PAIRS = "Next: s opens Synthesis, which turns mined commits into preference pairs (ctrl+s starts a run)."
NO_JOBS = "No jobs yet: every mining, synthesis, curation, training and evaluation run appears here."


def next_step(summary: StoreSummary) -> str:
    """What a user with this store should do next, in one sentence."""
    if not summary.commits and not summary.extra.get("pairs"):
        return EMPTY_STORE
    if not summary.extra.get("pairs"):
        return NO_PAIRS
    return "Next: p reviews pairs (a accept, r reject, f flip); t trains, e evaluates."


class DashboardScreen(StageScreen):
    """Shows what the store holds and which jobs run, refreshed every second; cancels a job (confirmed)."""

    CSS_PATH = "dashboard.tcss"
    MAIN = "#jobs"
    BINDINGS = [Binding("ctrl+x", "cancel_job", "Cancel job")]

    class Refreshed(Message):
        def __init__(self, summary: StoreSummary, jobs: list[JobInfo]) -> None:
            super().__init__()
            self.summary = summary
            self.jobs = jobs

    class JobLoaded(Message):
        def __init__(self, job: JobInfo) -> None:
            super().__init__()
            self.job = job

    class Cancelled(Message):
        def __init__(self, job: JobInfo) -> None:
            super().__init__()
            self.job = job

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="summary-row"):
            yield Static(id="summary", classes="panel")
            yield Static(id="keys", classes="panel")
        yield Static("", id="next-step")
        with Vertical(id="jobs-panel", classes="panel"):
            yield Static("Jobs (running first, then recent) · enter shows one · ctrl+x cancels it", classes="title")
            yield JobTable(id="jobs")
            yield Static(id="job-detail", classes="muted")
        yield Footer(compact=True)

    @property
    def job_table(self) -> JobTable:
        return self.query_one(JobTable)

    def on_mount(self) -> None:
        from workbench.app import SCREEN_MODES

        keys = "\n".join(f"{key}  {title}" for _mode, _screen, key, title in SCREEN_MODES)
        self.query_one("#keys", Static).update(block(f"{keys}\n?  keys of this screen\nctrl+p  every action"))
        self.refresh_data()
        self.set_interval(REFRESH_SECONDS, poll_unless_busy(self, "dashboard-refresh", self.refresh_data))

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="dashboard-refresh", exit_on_error=False)
    def refresh_data(self) -> None:
        summary = store_summary(self.engine)
        jobs = list_jobs(self.engine, limit=50)
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
        self.query_one("#summary", Static).update(block("\n".join(lines)))
        self.query_one("#next-step", Static).update(line(next_step(summary)))
        self.job_table.show_jobs(message.jobs)
        if not message.jobs:
            self.query_one("#job-detail", Static).update(line(NO_JOBS))

    @on(DataTable.RowHighlighted, "#jobs")
    def follow_cursor(self) -> None:
        job = self.job_table.current_job
        if job is not None:
            self.load_job(job.id)

    @on(JobTable.JobSelected)
    def show_job(self, message: JobTable.JobSelected) -> None:
        self.load_job(message.job_id)

    @work(thread=True, exclusive=True, group="dashboard-job", exit_on_error=False)
    def load_job(self, job_id: int) -> None:
        try:
            self.post_message(self.JobLoaded(get_job(self.engine, job_id)))
        except NotFoundError:
            pass  # deleted meanwhile; the next refresh drops the row

    @on(JobLoaded)
    def show_loaded_job(self, message: JobLoaded) -> None:
        job = message.job
        detail = [f"job {job.id} · {job.kind} · {job.state} · {job.title}"]
        if job.worker_id:
            detail.append(f"worker: {job.worker_id}")
        if job.error:
            detail.append(f"error: {job.error}")
        detail.extend(f"{key}: {value}" for key, value in _flat(job.summary))
        self.query_one("#job-detail", Static).update(block("\n".join(one_line(text, 300) for text in detail)))

    def action_cancel_job(self) -> None:
        job = self.job_table.current_job
        if job is None:
            self.notify("No job selected.", markup=False)
            return
        if not job.is_active:
            self.notify(f"job {job.id} is {job.state}: nothing to cancel.", markup=False)
            return
        body = ("It stops at its next check; what it already stored stays, and re-running it resumes. "
                "A training run saves a checkpoint first when it can.")
        confirm(self.app, f"Cancel job {job.id} ({job.kind}: {job.title})?", body, "Cancel the job",
                lambda: self.cancel_job(job.id))

    @work(thread=True, exclusive=True, group="dashboard-cancel", exit_on_error=False)
    def cancel_job(self, job_id: int) -> None:
        self.post_message(self.Cancelled(request_cancel(self.engine, job_id)))

    @on(Cancelled)
    def show_cancelled(self, message: Cancelled) -> None:
        job = message.job
        text = (f"job {job.id}: cancel requested" if job.is_active else f"job {job.id} had already ended ({job.state})")
        self.notify(one_line(text), markup=False)
        self.refresh_data()


def _flat(summary: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    """A job's summary as sorted `key: value` pairs, nested counters as `outer.inner`."""
    pairs: list[tuple[str, object]] = []
    for key, value in sorted(summary.items()):
        if isinstance(value, dict) and value:
            pairs.extend(_flat(value, f"{prefix}{key}."))
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs
