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
from textual.worker import get_current_worker

from core.mining.events import MineFinished, MineProgress, MineStarted
from core.mining.records import RepositoryInfo, StoredCommit
from stores.mining.commits import count_commits, list_commits, list_repositories
from workbench.screens.commit_view import CommitViewScreen
from workbench.screens.mine_dialog import MineDialog, MineRequest
from workbench.widgets.commit_table import PAGE_SIZE, CommitTable


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
        def __init__(self, text: str, finished: bool = False) -> None:
            super().__init__()
            self.text = text
            self.finished = finished

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, CommitsScreen.MineProgressed) and not message.finished

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
        # Deferred: GitPython is only needed once a run starts, not to open the app.
        from core.mining.mine import MineOptions
        from workbench.jobs.mine import MineJobStarted, run_mine_job

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
            self.reload()
            self.load_repositories()
