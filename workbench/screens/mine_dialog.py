"""MineDialog: asks for a repository path, a rev and languages, and gives back what its attempt (queueing the
mining job) returned; a refused request keeps the dialog open with the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from core.errors import WorkbenchError
from core.mining.languages import extension_map
from workbench.screens.dialogs import CheckedDialog


@dataclass(frozen=True)
class MineRequest:
    """What the user asked to mine."""

    path: str
    rev: str
    languages: tuple[str, ...]


class MineDialog(CheckedDialog[Any]):
    """Shows a small form to start a mining run; `attempt` gets the MineRequest (see CheckedDialog)."""

    DEFAULT_CSS = """
    MineDialog { align: center middle; }
    MineDialog > Vertical { width: 70; max-width: 95%; height: auto; max-height: 90%; border: thick $primary; background: $panel; padding: 1 2; }
    MineDialog Input { margin-bottom: 1; }
    MineDialog #error { color: $error; height: auto; }
    MineDialog Horizontal { height: auto; align-horizontal: right; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    ERROR = "#error"
    FIELD = "#path"

    def __init__(self, attempt: Callable[[MineRequest], Any] | None = None) -> None:
        super().__init__(attempt)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Mine a git repository")
            path = Input(placeholder="/path/to/repository", id="path")
            path.border_title = "repository"
            yield path
            rev = Input(placeholder="HEAD", id="rev")
            rev.border_title = "rev or range"
            yield rev
            languages = Input(value="python", placeholder="python, javascript", id="languages")
            languages.border_title = "languages (comma-separated)"
            yield languages
            yield Static("", id="error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Mine", variant="primary", id="start")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def start(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        languages = tuple(part.strip() for part in self.query_one("#languages", Input).value.split(",") if part.strip())
        if not path:
            self.refuse("Give the path of a local git repository.")
            return
        try:
            extension_map(languages or ("python",))
        except WorkbenchError as exc:
            self.refuse(str(exc), "#languages")
            return
        self.submit_value(MineRequest(path, self.query_one("#rev", Input).value.strip(), languages or ("python",)))
