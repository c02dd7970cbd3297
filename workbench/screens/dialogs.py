"""Small modal dialogs shared by the screens: confirm a destructive action, ask for one value, show text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from workbench.widgets.plain import block, line

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical, {name} > VerticalScroll {{
    width: 80; max-width: 95%; height: auto; max-height: 90%;
    border: thick $primary; background: $panel; padding: 1 2;
}}
{name} .dialog-title {{ text-style: bold; margin-bottom: 1; }}
{name} .dialog-error {{ color: $error; height: auto; }}
{name} .dialog-buttons {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} .dialog-buttons Button {{ margin-left: 2; }}
"""


class ConfirmDialog(ModalScreen[bool]):
    """Names an action and what it will change; `y` (or its button) does it, `n` or escape does not."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, title: str, body: str, confirm_label: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(line(self.title_text), classes="dialog-title")
            if self.body:
                yield Static(block(self.body), id="confirm-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("No (n)", id="no")
                yield Button(line(f"{self.confirm_label} (y)"), variant="error", id="yes")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


def confirm(app: Any, title: str, body: str, confirm_label: str, then: Callable[[], object]) -> None:
    """Ask with a ConfirmDialog and call `then` only on yes."""

    def answered(yes: bool | None) -> None:
        if yes:
            then()

    app.push_screen(ConfirmDialog(title, body, confirm_label), answered)


class AskDialog(ModalScreen[str | None]):
    """Asks for one value; `check` returns a problem to show (the dialog stays) or None to accept."""

    DEFAULT_CSS = DIALOG_CSS.format(name="AskDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, label: str, *, placeholder: str = "", value: str = "",
                 check: Callable[[str], str | None] | None = None, input_type: str = "text") -> None:
        super().__init__()
        self.title_text = title
        self.label = label
        self.placeholder = placeholder
        self.value = value
        self.check = check
        self.input_type = input_type

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(line(self.title_text), classes="dialog-title")
            yield Label(line(self.label))
            yield Input(self.value, placeholder=self.placeholder, id="ask-input",
                        type=self.input_type)  # type: ignore[arg-type]
            yield Static("", classes="dialog-error", id="ask-error")

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        problem = self.check(value) if self.check is not None else None
        if problem:
            self.query_one("#ask-error", Static).update(line(problem))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[None]):
    """Shows plain text (a pair's source, a task's details) until escape."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TextDialog").replace("width: 80;", "width: 110;")
    BINDINGS = [Binding("escape,q,o,i", "close", "Close")]

    def __init__(self, text: str, title: str = "") -> None:
        super().__init__()
        self.text = text
        self.title_text = title

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            if self.title_text:
                yield Static(line(self.title_text), classes="dialog-title")
            yield Static(block(self.text), id="dialog-text")

    def action_close(self) -> None:
        self.dismiss(None)
