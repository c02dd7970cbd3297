"""CommitsScreen: mined commit records, paged from the store, with filters and a mining panel."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Header, Input, Select, Static
from textual.worker import get_current_worker

from core.mining.events import MineFinished, MineProgress, MineStarted
from core.mining.records import RepositoryInfo, StoredCommit
from core.textsafe import one_line
from stores.jobs import get_job, request_cancel
from stores.mining.commits import count_commits, list_commits, list_repositories
from stores.versions import Stamp, commits_stamp
from workbench.screens.base import StageScreen
from workbench.screens.commit_view import CommitViewScreen
from workbench.screens.dialogs import confirm
from workbench.screens.mine_dialog import MineDialog, MineRequest
from workbench.widgets.commit_table import FIRST_PAGE_SIZE, PAGE_SIZE, CommitTable
from workbench.widgets.plain import line

POLL_SECONDS = 1.0
NO_COMMITS = "No commits mined yet: press m to mine a git repository (or run `workbench mine PATH`)."
NO_MATCH = "No record matches the filters: change them (/ focuses the path filter, escape returns to the list)."


def mining_summary(job_id: int, state: str, summary: dict[str, Any], error: str | None) -> str:
    """How a mining job ended, from what the job stored (the same numbers `workbench jobs show` gives)."""
    stored = summary.get("records_stored", summary.get("records_kept", 0))
    text = (f"job {job_id} {state}: {stored:,} records stored from {summary.get('commits_seen', 0):,} commits"
            + (f" in {summary['elapsed_s']:.1f}s" if isinstance(summary.get("elapsed_s"), (int, float)) else ""))
    skipped = summary.get("skipped") or {}
    if isinstance(skipped, dict) and any(skipped.values()):
        text += " (skipped: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(skipped.items()) if v) + ")"
    if error:
        text += f": {error}"
    return text


class CommitsScreen(StageScreen):
    """Lists commit records a page at a time; filters by repository, path and message; starts mining."""

    CSS_PATH = "commits.tcss"
    MAIN = "#commits"
    SUBSCREENS = (CommitViewScreen,)
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("m", "mine", "Mine repo"),
        Binding("ctrl+x", "stop_mining", "Stop mining"),
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

    class StoreChanged(Message):
        def __init__(self, stamp: Stamp) -> None:
            super().__init__()
            self.stamp = stamp

    class MineProgressed(Message):
        def __init__(self, text: str, finished: bool = False, failed: bool = False, job_id: int | None = None) -> None:
            super().__init__()
            self.text = text
            self.finished = finished
            self.failed = failed
            self.job_id = job_id

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, CommitsScreen.MineProgressed) and not message.finished

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filters"):
            yield Select[int]([], prompt="all repositories", id="repo-filter", compact=True)
            yield Input(placeholder="path contains…", id="path-filter", compact=True)
            yield Input(placeholder="message or sha…", id="text-filter", compact=True)
            yield Static("", id="count")
        yield CommitTable(id="commits")
        yield Static("", id="empty", classes="muted")
        yield Static("", id="mine-status")
        yield Footer(compact=True)

    @property
    def commit_table(self) -> CommitTable:
        return self.query_one(CommitTable)

    def on_mount(self) -> None:
        self._generation = 0
        self._filters: dict[str, Any] = {"path": None, "text": None, "repository_id": None}
        self._stamp: Stamp | None = None
        self._mining_job: int | None = None
        self.load_first_page(self._generation, self._filters)
        self.load_repositories()
        self.set_interval(POLL_SECONDS, self.check_store_if_written)

    def on_screen_resume(self) -> None:
        self.check_store()

    def _filter_inputs(self) -> dict[str, object]:
        repository = self.query_one("#repo-filter", Select).value
        return {
            "path": self.query_one("#path-filter", Input).value.strip() or None,
            "text": self.query_one("#text-filter", Input).value.strip() or None,
            "repository_id": repository if isinstance(repository, int) else None,
        }

    # store -----------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="commits-stamp", exit_on_error=False)
    def check_store(self) -> None:
        self.post_message(self.StoreChanged(commits_stamp(self.engine)))

    @on(StoreChanged)
    def follow_store(self, message: StoreChanged) -> None:
        if self._stamp is None:
            self._stamp = message.stamp
            return
        if message.stamp == self._stamp:
            return
        self._stamp = message.stamp
        # New records are appended past the last loaded page; the count and repositories are re-read.
        self.load_repositories()
        self.load_count(self._generation, self._filters)
        table = self.commit_table
        if table.exhausted:
            table.exhausted = False
            if table.last_id is None:
                self.load_first_page(self._generation, self._filters)
            else:
                self.load_page_after(self._generation, self._filters, table.last_id)

    @work(thread=True, exclusive=True, group="commits-repos", exit_on_error=False)
    def load_repositories(self) -> None:
        self.post_message(self.RepositoriesLoaded(list_repositories(self.engine)))

    @on(RepositoriesLoaded)
    def show_repositories(self, message: RepositoriesLoaded) -> None:
        select = self.query_one("#repo-filter", Select)
        current = select.value
        options = [(line(f"{r.name} ({r.commit_count:,})", 40), r.id) for r in message.repositories]
        select.set_options(options)
        if isinstance(current, int) and any(r.id == current for r in message.repositories):
            with select.prevent(Select.Changed):
                select.value = current

    @work(thread=True, exclusive=True, group="commits-page", exit_on_error=False)
    def load_first_page(self, generation: int, filters: dict[str, Any]) -> None:
        commits = list_commits(self.engine, limit=FIRST_PAGE_SIZE, **filters)
        self.post_message(self.PageLoaded(generation, commits, None, first=True))
        self.post_message(self.PageLoaded(generation, [], count_commits(self.engine, **filters), first=False))

    @work(thread=True, exclusive=True, group="commits-count", exit_on_error=False)
    def load_count(self, generation: int, filters: dict[str, Any]) -> None:
        self.post_message(self.PageLoaded(generation, [], count_commits(self.engine, **filters), first=False))

    @work(thread=True, exclusive=True, group="commits-more", exit_on_error=False)
    def load_page_after(self, generation: int, filters: dict[str, Any], after_id: int) -> None:
        commits = list_commits(self.engine, limit=PAGE_SIZE, after_id=after_id, **filters)
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
            self.query_one("#count", Static).update(line(f"{message.total:,} records"))
            filtered = any(value is not None for value in self._filters.values())
            empty = "" if message.total else (NO_MATCH if filtered else NO_COMMITS)
            self.query_one("#empty", Static).update(line(empty))
            self.query_one("#empty").display = bool(empty)

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
        self.load_repositories()

    # mining ----------------------------------------------------------------------------------

    def action_mine(self) -> None:
        if any(w.group == "mine" and w.is_running for w in self.workers):
            self.app.notify("A mining run is already going (ctrl+x stops it).", severity="warning", markup=False)
            return
        self.app.push_screen(MineDialog(), self._start_mining)

    def _start_mining(self, request: MineRequest | None) -> None:
        if request is not None:
            self.query_one("#mine-status", Static).update(line(f"mining {request.path}…"))
            self.run_mine(request)

    @work(thread=True, exclusive=True, group="mine", exit_on_error=False)
    def run_mine(self, request: MineRequest) -> None:
        # Deferred: GitPython is only needed once a run starts, not to open the app.
        from core.mining.mine import MineOptions
        from workbench.jobs.mine import MineJobStarted, run_mine_job

        options = MineOptions(rev=request.rev or None, languages=request.languages)
        worker = get_current_worker()
        job_id = None
        try:
            for event in run_mine_job(self.engine, request.path, options, cancel=worker.cancelled_event):
                if isinstance(event, MineJobStarted):
                    job_id = event.job_id
                    self.post_message(self.MineProgressed(f"job {job_id}: starting", job_id=job_id))
                elif isinstance(event, MineStarted):
                    self.post_message(self.MineProgressed(
                        f"job {job_id}: mining {event.repository_path} (license {event.license or 'unknown'})",
                        job_id=job_id))
                elif isinstance(event, MineProgress):
                    self.post_message(self.MineProgressed(
                        f"job {job_id}: {event.commits_seen:,} commits, {event.records_kept:,} records, "
                        f"{event.elapsed_s:.1f}s", job_id=job_id))
                elif isinstance(event, MineFinished) and job_id is not None:
                    # The numbers come from the job row, so they are what the store holds.
                    job = get_job(self.engine, job_id)
                    self.post_message(self.MineProgressed(
                        mining_summary(job_id, job.state, job.summary, job.error), finished=True, job_id=job_id))
        except Exception as exc:
            self.post_message(self.MineProgressed(f"mining failed: {exc}", finished=True, failed=True))

    @on(MineProgressed)
    def show_mine_progress(self, message: MineProgressed) -> None:
        status = self.query_one("#mine-status", Static)
        status.update(line(message.text, 400))
        status.set_class(message.failed, "-failed")
        self._mining_job = None if message.finished else message.job_id
        if message.finished:
            self.notify(one_line(message.text, 300), severity="error" if message.failed else "information",
                        markup=False, timeout=6)
            self.reload()
            self.load_repositories()

    def action_stop_mining(self) -> None:
        job_id = self._mining_job
        if job_id is None:
            self.notify("No mining run started here is going.", markup=False)
            return
        confirm(self.app, f"Stop mining job {job_id}?",
                "It stops after the current batch; what it stored stays, and mining again resumes.", "Stop mining",
                lambda: self.stop_mining(job_id))

    @work(thread=True, exclusive=True, group="mine-stop", exit_on_error=False)
    def stop_mining(self, job_id: int) -> None:
        request_cancel(self.engine, job_id)
