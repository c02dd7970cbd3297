"""CommitsScreen: mined commit records, paged from the store, with filters and a mining panel."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Header, Input, Select, Static

from core.jobs import JobInfo
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
from workbench.widgets.polling import poll_unless_busy

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
        """The mining job this screen follows changed (queued, counters, ended), or could not be queued."""

        def __init__(self, text: str, job: JobInfo | None, failed: bool = False) -> None:
            super().__init__()
            self.text = text
            self.job = job
            self.failed = failed

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
        self._mine_job: JobInfo | None = None
        self.watch_mining()
        self.set_interval(POLL_SECONDS, poll_unless_busy(self, "mine-watch", self.watch_mining))
        self._generation = 0
        self._filters: dict[str, Any] = {"path": None, "text": None, "repository_id": None}
        self._stamp: Stamp | None = None
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
        if self._mine_job is not None and self._mine_job.is_active:
            self.app.notify(f"Mining job {self._mine_job.id} is {self._mine_job.state} (ctrl+x stops it).",
                            severity="warning", markup=False)
            return
        self.app.push_screen(MineDialog(self.queue_mining), self._mining_queued)

    def _mining_queued(self, job: JobInfo | None) -> None:
        if job is not None:
            self.post_message(self.MineProgressed(mine_status(job), job=job))

    def queue_mining(self, request: MineRequest) -> JobInfo:
        """Queue the run for a worker (started detached if none runs): quitting the TUI never stops it.

        Called by the mine dialog in a thread; a refused request raises the domain error the dialog shows.
        """
        from pathlib import Path

        # Deferred: GitPython is only needed once a run is asked for, not to open the app.
        from core.mining.mine import MineOptions
        from workbench.jobs.mine import MINE, MineParams
        from workbench.jobs.queue import enqueue

        options = MineOptions(rev=request.rev or None, languages=request.languages)
        return enqueue(self.engine, MINE.name, MineParams(str(Path(request.path).expanduser().resolve()), options))

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="mine-watch", exit_on_error=False)
    def watch_mining(self) -> None:
        """Follow the job shown (or the latest mining job, for a TUI opened while one runs)."""
        from stores.jobs import list_jobs

        shown = self._mine_job
        if shown is None or not shown.is_active:
            latest = list_jobs(self.engine, kind="mine", limit=1)
            if not latest or (shown is None and not latest[0].is_active) or (
                    shown is not None and latest[0].id == shown.id):
                return
            job = latest[0]
        else:
            job = get_job(self.engine, shown.id)
        if shown is not None and job.id == shown.id and job.updated_at == shown.updated_at:
            return
        self.post_message(self.MineProgressed(mine_status(job), job=job, failed=job.state == "failed"))

    @on(MineProgressed)
    def show_mine_progress(self, message: MineProgressed) -> None:
        status = self.query_one("#mine-status", Static)
        status.update(line(message.text, 400))
        status.set_class(message.failed, "-failed")
        ended = (self._mine_job is not None and self._mine_job.is_active and message.job is not None
                 and message.job.id == self._mine_job.id and not message.job.is_active)
        if message.job is not None or message.failed:
            self._mine_job = message.job
        if ended or message.failed:
            self.notify(one_line(message.text, 300), severity="error" if message.failed else "information",
                        markup=False, timeout=6)
        if ended:
            self.reload()
            self.load_repositories()

    def action_stop_mining(self) -> None:
        job = self._mine_job
        if job is None or not job.is_active:
            self.notify("No mining run is going.", markup=False)
            return
        confirm(self.app, f"Stop mining job {job.id}?",
                "It stops after the current batch; what it stored stays, and mining again resumes.", "Stop mining",
                lambda: self.stop_mining(job.id))

    @work(thread=True, exclusive=True, group="mine-stop", exit_on_error=False)
    def stop_mining(self, job_id: int) -> None:
        request_cancel(self.engine, job_id)


def mine_status(job: JobInfo) -> str:
    """One line on a mining job: queued, its counters while it runs, how it ended (as the store holds them)."""
    if job.state == "queued":
        return f"job {job.id} queued: waiting for a worker"
    summary = job.summary
    if job.state == "running":
        return (f"job {job.id} running: {summary.get('commits_seen', 0):,} commits, "
                f"{summary.get('records_kept', 0):,} records, {summary.get('elapsed_s', 0.0):.1f}s")
    return mining_summary(job.id, str(job.state), summary, job.error)
