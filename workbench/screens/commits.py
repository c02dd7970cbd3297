"""CommitsScreen: mined commit records, paged from the store, with filters and a mining panel."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Select, Static

from core.errors import WorkbenchError
from core.jobs import JobInfo
from core.mining.records import RepositoryInfo, StoredCommit
from stores.mining.commits import count_commits, list_commits, list_repositories
from workbench.screens.commit_view import CommitViewScreen
from workbench.screens.mine_dialog import MineDialog, MineRequest
from workbench.widgets.commit_table import PAGE_SIZE, CommitTable
from workbench.widgets.polling import poll_unless_busy

MINE_POLL_SECONDS = 1.0


class CommitsScreen(Screen[None]):
    """Lists commit records a page at a time; filters by path and message; starts mining."""

    CSS_PATH = "commits.tcss"
    AUTO_FOCUS = "#commits"
    SUBSCREENS = (CommitViewScreen,)
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("m", "mine", "Mine repo"),
        Binding("r", "reload", "Reload"),
    ]

    class PageLoaded(Message):
        """A page for one generation of filters; pages of an older generation are dropped."""

        def __init__(self, generation: int, commits: list[StoredCommit], total: int | None, first: bool) -> None:
            super().__init__()
            self.generation = generation
            self.commits = commits
            self.total = total
            self.first = first

    class RepositoriesLoaded(Message):
        def __init__(self, repositories: list[RepositoryInfo]) -> None:
            super().__init__()
            self.repositories = repositories

    class MineProgressed(Message):
        """The mining job this screen follows changed (queued, counters, ended)."""

        def __init__(self, text: str, job: JobInfo | None) -> None:
            super().__init__()
            self.text = text
            self.job = job

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filters"):
            yield Select[int]([], prompt="all repositories", id="repo-filter")
            yield Input(placeholder="path contains…", id="path-filter")
            yield Input(placeholder="message contains (or sha prefix)…", id="text-filter")
            yield Static("", id="count")
        yield CommitTable(id="commits")
        yield Static("", id="mine-status")
        yield Footer()

    @property
    def commit_table(self) -> CommitTable:
        return self.query_one(CommitTable)

    def on_mount(self) -> None:
        self._mine_job: JobInfo | None = None
        self.watch_mining()
        self.set_interval(MINE_POLL_SECONDS, poll_unless_busy(self, "mine-watch", self.watch_mining))
        self._generation = 0
        self._filters: dict[str, Any] = {"path": None, "text": None, "repository_id": None}
        self.load_first_page(self._generation, self._filters)
        self.load_repositories()

    def _filter_inputs(self) -> dict[str, object]:
        repository = self.query_one("#repo-filter", Select).value
        return {
            "path": self.query_one("#path-filter", Input).value.strip() or None,
            "text": self.query_one("#text-filter", Input).value.strip() or None,
            "repository_id": repository if isinstance(repository, int) else None,
        }

    @work(thread=True, exclusive=True, group="commits-repos", exit_on_error=False)
    def load_repositories(self) -> None:
        self.post_message(self.RepositoriesLoaded(list_repositories(self.app.engine)))  # type: ignore[attr-defined]

    @on(RepositoriesLoaded)
    def show_repositories(self, message: RepositoriesLoaded) -> None:
        select = self.query_one("#repo-filter", Select)
        current = select.value
        select.set_options(
            [(Content(f"{r.name} ({r.commit_count:,})"), r.id) for r in message.repositories]
        )
        if isinstance(current, int) and any(r.id == current for r in message.repositories):
            select.value = current

    @work(thread=True, exclusive=True, group="commits-page", exit_on_error=False)
    def load_first_page(self, generation: int, filters: dict[str, Any]) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        commits = list_commits(engine, limit=PAGE_SIZE, **filters)
        self.post_message(self.PageLoaded(generation, commits, None, first=True))
        self.post_message(self.PageLoaded(generation, [], count_commits(engine, **filters), first=False))

    @work(thread=True, exclusive=True, group="commits-more", exit_on_error=False)
    def load_page_after(self, generation: int, filters: dict[str, Any], after_id: int) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        commits = list_commits(engine, limit=PAGE_SIZE, after_id=after_id, **filters)
        self.post_message(self.PageLoaded(generation, commits, None, first=False))

    @on(PageLoaded)
    def show_page(self, message: PageLoaded) -> None:
        if message.generation != self._generation:
            return
        table = self.commit_table
        if message.first:
            table.reset()
        if message.commits or message.first:
            table.append_page(message.commits)
        if message.total is not None:
            self.query_one("#count", Static).update(Content(f"{message.total:,} records"))

    @on(CommitTable.NeedMore)
    def load_more(self, message: CommitTable.NeedMore) -> None:
        if message.after_id == self.commit_table.last_id:  # not a request left over from before a reset
            self.load_page_after(self._generation, self._filters, message.after_id)

    @on(Input.Submitted)
    @on(Input.Changed)
    @on(Select.Changed)
    def apply_filters(self) -> None:
        filters = self._filter_inputs()
        if filters != self._filters:
            self._filters = filters
            self.reload()

    def reload(self) -> None:
        """Start again from the first page of the current filters."""
        self._generation += 1
        self.commit_table.reset()
        self.load_first_page(self._generation, self._filters)

    @on(CommitTable.CommitChosen)
    def open_commit(self, message: CommitTable.CommitChosen) -> None:
        self.app.push_screen(CommitViewScreen(message.commit_id))

    def action_focus_filter(self) -> None:
        self.query_one("#path-filter", Input).focus()

    def action_reload(self) -> None:
        self.reload()

    def action_mine(self) -> None:
        if self._mine_job is not None and self._mine_job.is_active:
            self.app.notify(f"Mining job {self._mine_job.id} is {self._mine_job.state}.", severity="warning",
                            markup=False)
            return
        self.app.push_screen(MineDialog(), self._start_mining)

    def _start_mining(self, request: MineRequest | None) -> None:
        if request is not None:
            self.query_one("#mine-status", Static).update(Content(f"queueing a mining job for {request.path}…"))
            self.queue_mining(request)

    @work(thread=True, exclusive=True, group="mine", exit_on_error=False)
    def queue_mining(self, request: MineRequest) -> None:
        """Queue the run for a worker (started detached if none runs): quitting the TUI never stops it."""
        from pathlib import Path

        # Deferred: GitPython is only needed once a run is asked for, not to open the app.
        from core.mining.mine import MineOptions
        from workbench.jobs.mine import MINE, MineParams
        from workbench.jobs.queue import enqueue

        options = MineOptions(rev=request.rev or None, languages=request.languages)
        try:
            job = enqueue(self.app.engine, MINE.name,  # type: ignore[attr-defined]
                          MineParams(str(Path(request.path).expanduser().resolve()), options))
        except WorkbenchError as exc:
            self.post_message(self.MineProgressed(f"cannot mine: {exc}", job=None))
            return
        self.post_message(self.MineProgressed(mine_status(job), job=job))

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="mine-watch", exit_on_error=False)
    def watch_mining(self) -> None:
        """Follow the job shown (or the latest mining job, for a TUI opened while one runs)."""
        from stores.jobs import get_job, list_jobs

        engine = self.app.engine  # type: ignore[attr-defined]
        shown = self._mine_job
        if shown is None or not shown.is_active:
            latest = list_jobs(engine, kind="mine", limit=1)
            if not latest or (shown is None and not latest[0].is_active):
                return
            job = latest[0]
        else:
            job = get_job(engine, shown.id)
        if shown is not None and job.id == shown.id and job.updated_at == shown.updated_at:
            return
        self.post_message(self.MineProgressed(mine_status(job), job=job))

    @on(MineProgressed)
    def show_mine_progress(self, message: MineProgressed) -> None:
        self.query_one("#mine-status", Static).update(Content(message.text))
        ended = (self._mine_job is not None and self._mine_job.is_active and message.job is not None
                 and message.job.id == self._mine_job.id and not message.job.is_active)
        self._mine_job = message.job
        if ended:
            self.reload()
            self.load_repositories()


def mine_status(job: JobInfo) -> str:
    """One line on a mining job: queued, its counters while it runs, how it ended."""
    summary = job.summary
    counters = (f"{summary.get('commits_seen', 0):,} commits, {summary.get('records_kept', 0):,} records, "
                f"{summary.get('elapsed_s', 0.0):.1f}s")
    if job.state == "queued":
        return f"job {job.id} queued: waiting for a worker"
    if job.state == "running":
        return f"job {job.id} running: {counters}"
    line = f"job {job.id} {job.state}: {counters}"
    return f"{line} · {job.error}" if job.error else line
