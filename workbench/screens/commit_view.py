"""CommitViewScreen: one commit record, old and new file side by side or as a unified diff."""

from __future__ import annotations

import difflib

from rich.syntax import Syntax
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TextArea

from core.mining.records import CommitDetail
from stores.mining.commits import get_commit

TEXTAREA_LANGUAGES = {"python", "javascript", "java", "go", "rust", "c", "cpp", "typescript", "ruby",
                      "php", "kotlin", "swift", "scala", "csharp", "shell"}


class CommitViewScreen(Screen[None]):
    """Shows a commit's header and message, then both sides of the file or their diff."""

    CSS_PATH = "commit_view.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("v", "toggle_view", "Side by side / diff"),
    ]
    unified = reactive(False)

    class Loaded(Message):
        def __init__(self, commit: CommitDetail) -> None:
            super().__init__()
            self.commit = commit

    def __init__(self, commit_id: int) -> None:
        super().__init__()
        self.commit_id = commit_id
        self.commit: CommitDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading…", id="commit-header")
        with Horizontal(id="sides"):
            with Vertical():
                yield Static("old", id="old-title", classes="side-title")
                yield TextArea("", read_only=True, id="old", show_line_numbers=True, soft_wrap=False)
            with Vertical():
                yield Static("new", id="new-title", classes="side-title")
                yield TextArea("", read_only=True, id="new", show_line_numbers=True, soft_wrap=False)
        with VerticalScroll(id="unified"):
            yield Static("", id="diff")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#unified").display = False
        self.load()

    @work(thread=True, exclusive=True, group="commit-view", exit_on_error=False)
    def load(self) -> None:
        self.post_message(self.Loaded(get_commit(self.app.engine, self.commit_id)))  # type: ignore[attr-defined]

    @on(Loaded)
    def show_commit(self, message: Loaded) -> None:
        commit = self.commit = message.commit
        renamed = f" (renamed from {commit.old_path})" if commit.old_path != commit.path else ""
        header = (
            f"{commit.repository_name} · {commit.sha[:12]} · {commit.author} · "
            f"{commit.authored_at:%Y-%m-%d %H:%M} · +{commit.lines_added} -{commit.lines_removed}\n"
            f"{commit.path}{renamed}\n\n{commit.message.strip()}"
        )
        self.query_one("#commit-header", Static).update(Content(header))
        language = commit.language if commit.language in TEXTAREA_LANGUAGES else None
        for widget_id, text in (("#old", commit.old_text), ("#new", commit.new_text)):
            area = self.query_one(widget_id, TextArea)
            area.load_text(text)
            if language is not None:
                try:
                    area.language = "bash" if language == "shell" else language
                except Exception:  # noqa: BLE001  a grammar missing locally: plain text is fine
                    area.language = None
        self.query_one("#old-title", Static).update(Content(f"old · {commit.old_path}"))
        self.query_one("#new-title", Static).update(Content(f"new · {commit.path}"))
        diff = "".join(difflib.unified_diff(
            commit.old_text.splitlines(keepends=True), commit.new_text.splitlines(keepends=True),
            fromfile=f"a/{commit.old_path}", tofile=f"b/{commit.path}"))
        self.query_one("#diff", Static).update(Syntax(diff or "(no textual change)", "diff", word_wrap=False))

    def action_toggle_view(self) -> None:
        self.unified = not self.unified

    def watch_unified(self, unified: bool) -> None:
        self.query_one("#sides").display = not unified
        self.query_one("#unified").display = unified
