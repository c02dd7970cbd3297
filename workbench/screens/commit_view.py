"""CommitViewScreen: one commit record, old and new file aligned side by side, or as a unified diff."""

from __future__ import annotations

import difflib

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from core.mining.records import CommitDetail
from core.sidebyside import SideBySide, align
from workbench.widgets.diff_view import DiffView
from workbench.widgets.plain import block, code


def unified_text(commit: CommitDetail) -> str:
    """The commit's change as a unified diff (controls made visible)."""
    diff = "".join(difflib.unified_diff(
        code(commit.old_text).splitlines(keepends=True), code(commit.new_text).splitlines(keepends=True),
        fromfile=f"a/{code(commit.old_path)}", tofile=f"b/{code(commit.path)}"))
    return diff or "(no textual change)"


def _diff_styles(diff: str) -> Text:
    text = Text(no_wrap=True)
    for diff_line in diff.splitlines(keepends=True):
        style = "green" if diff_line.startswith("+") else "red" if diff_line.startswith("-") else (
            "cyan" if diff_line.startswith("@@") else "")
        text.append(diff_line, style=style)
    return text


class CommitViewScreen(Screen[None]):
    """Shows a commit's header and message, then both sides of the file aligned, or their unified diff."""

    CSS_PATH = "commit_view.tcss"
    AUTO_FOCUS = "#sides"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("v", "toggle_view", "Side by side / diff"),
        Binding("right_square_bracket", "next_change", "Next change"),
        Binding("left_square_bracket", "previous_change", "Previous change"),
    ]
    unified = reactive(False)

    class Loaded(Message):
        def __init__(self, commit: CommitDetail, diff: SideBySide) -> None:
            super().__init__()
            self.commit = commit
            self.diff = diff

    def __init__(self, commit_id: int) -> None:
        super().__init__()
        self.commit_id = commit_id
        self.commit: CommitDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading…", id="commit-header")
        yield DiffView(id="sides", placeholder="loading…")
        with VerticalScroll(id="unified"):
            yield Static("", id="diff")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#unified").display = False
        self.load()

    @work(thread=True, exclusive=True, group="commit-view", exit_on_error=False)
    def load(self) -> None:
        from stores.mining.commits import get_commit

        commit = get_commit(self.app.engine, self.commit_id)  # type: ignore[attr-defined]
        # Made safe and aligned here, off the event loop: a large file takes a while to compare.
        self.post_message(self.Loaded(commit, align(code(commit.old_text), code(commit.new_text))))

    @on(Loaded)
    def show_commit(self, message: Loaded) -> None:
        commit = self.commit = message.commit
        renamed = f" (renamed from {commit.old_path})" if commit.old_path != commit.path else ""
        header = (
            f"{commit.repository_name} · {commit.sha[:12]} · {commit.author} · "
            f"{commit.authored_at:%Y-%m-%d %H:%M} · +{commit.lines_added} -{commit.lines_removed}\n"
            f"{commit.path}{renamed}\n\n{commit.message.strip()}"
        )
        self.query_one("#commit-header", Static).update(block(header))
        self.query_one(DiffView).show(message.diff, left_title=f"old · {commit.old_path}",
                                      right_title=f"new · {commit.path}")
        if self.unified:
            self._show_unified()

    def _show_unified(self) -> None:
        if self.commit is not None:
            self.query_one("#diff", Static).update(_diff_styles(unified_text(self.commit)))

    def action_toggle_view(self) -> None:
        self.unified = not self.unified

    def watch_unified(self, unified: bool) -> None:
        self.query_one("#sides").display = not unified
        self.query_one("#unified").display = unified
        if unified:
            self._show_unified()
            self.query_one("#unified").focus()
        else:
            self.query_one("#sides").focus()

    def action_next_change(self) -> None:
        self.query_one(DiffView).action_next_change()

    def action_previous_change(self) -> None:
        self.query_one(DiffView).action_previous_change()
