"""CommitsScreen: mined commit records, paged from the store, with filters and a mining panel."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static
from textual.worker import get_current_worker

from core.events import MineFinished, MineProgress, MineStarted
from core.mining import MineOptions
from core.models import StoredCommit
from stores.commits import count_commits, list_commits
from stores.mining_jobs import MineJobStarted, run_mine_job
from workbench.screens.commit_view import CommitViewScreen
from workbench.screens.mine_dialog import MineDialog, MineRequest
from workbench.widgets.commit_table import PAGE_SIZE, CommitTable


class CommitsScreen(Screen[None]):
    """Lists commit records a page at a time; filters by path and message; starts mining."""

    CSS_PATH = "commits.tcss"
    AUTO_FOCUS = "#commits"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("m", "mine", "Mine repo"),
        Binding("r", "reload", "Reload"),
    ]

    class PageLoaded(Message):
        def __init__(self, commits: list[StoredCommit], total: int | None, first: bool) -> None:
            super().__init__()
            self.commits = commits
            self.total = total
            self.first = first

    class MineProgressed(Message):
        def __init__(self, text: str, finished: bool = False) -> None:
            super().__init__()
            self.text = text
            self.finished = finished

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, CommitsScreen.MineProgressed) and not message.finished

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filters"):
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
        self.load_first_page()

    def _filters(self) -> dict[str, str | None]:
        return {
            "path": self.query_one("#path-filter", Input).value.strip() or None,
            "text": self.query_one("#text-filter", Input).value.strip() or None,
        }

    @work(thread=True, exclusive=True, group="commits-page", exit_on_error=False)
    def load_first_page(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        filters = self._filters_snapshot
        commits = list_commits(engine, limit=PAGE_SIZE, **filters)
        self.post_message(self.PageLoaded(commits, None, first=True))
        total = count_commits(engine, **filters)
        self.post_message(self.PageLoaded([], total, first=False))

    @work(thread=True, exclusive=False, group="commits-more", exit_on_error=False)
    def load_page_after(self, after_id: int) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        commits = list_commits(engine, limit=PAGE_SIZE, after_id=after_id, **self._filters_snapshot)
        self.post_message(self.PageLoaded(commits, None, first=False))

    @property
    def _filters_snapshot(self) -> dict[str, str | None]:
        return getattr(self, "_current_filters", {"path": None, "text": None})

    @on(PageLoaded)
    def show_page(self, message: PageLoaded) -> None:
        table = self.commit_table
        if message.first:
            table.reset()
        if message.commits or message.first:
            table.append_page(message.commits)
        if message.total is not None:
            self.query_one("#count", Static).update(Content(f"{message.total:,} records"))

    @on(CommitTable.NeedMore)
    def load_more(self, message: CommitTable.NeedMore) -> None:
        self.load_page_after(message.after_id)

    @on(Input.Submitted)
    @on(Input.Changed)
    def apply_filters(self) -> None:
        self._current_filters = self._filters()
        self.load_first_page()

    @on(CommitTable.CommitChosen)
    def open_commit(self, message: CommitTable.CommitChosen) -> None:
        self.app.push_screen(CommitViewScreen(message.commit_id))

    def action_focus_filter(self) -> None:
        self.query_one("#path-filter", Input).focus()

    def action_reload(self) -> None:
        self.load_first_page()

    def action_mine(self) -> None:
        if self.workers and any(w.group == "mine" and w.is_running for w in self.workers):
            self.app.notify("A mining run is already going.", severity="warning")
            return
        self.app.push_screen(MineDialog(), self._start_mining)

    def _start_mining(self, request: MineRequest | None) -> None:
        if request is not None:
            self.query_one("#mine-status", Static).update(Content(f"mining {request.path}…"))
            self.run_mine(request)

    @work(thread=True, exclusive=True, group="mine", exit_on_error=False)
    def run_mine(self, request: MineRequest) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        options = MineOptions(rev=request.rev or None, languages=request.languages)
        worker = get_current_worker()
        job_id = None
        try:
            for event in run_mine_job(engine, request.path, options, cancel=worker.cancelled_event):
                if isinstance(event, MineJobStarted):
                    job_id = event.job_id
                elif isinstance(event, MineStarted):
                    self.post_message(self.MineProgressed(
                        f"job {job_id}: mining {event.repository_path} (license {event.license or 'unknown'})"))
                elif isinstance(event, MineProgress):
                    self.post_message(self.MineProgressed(
                        f"job {job_id}: {event.commits_seen:,} commits, {event.records_kept:,} records, "
                        f"{event.elapsed_s:.1f}s"))
                elif isinstance(event, MineFinished):
                    state = "cancelled" if event.cancelled else "done"
                    self.post_message(self.MineProgressed(
                        f"job {job_id} {state}: {event.records_kept:,} records from {event.commits_seen:,} "
                        f"commits in {event.elapsed_s:.1f}s", finished=True))
        except Exception as exc:
            self.post_message(self.MineProgressed(f"mining failed: {exc}", finished=True))
            raise

    @on(MineProgressed)
    def show_mine_progress(self, message: MineProgressed) -> None:
        self.query_one("#mine-status", Static).update(Content(message.text))
        if message.finished:
            self.load_first_page()
