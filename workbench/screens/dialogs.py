"""Small modal dialogs shared by the screens: confirm a destructive action, ask for one value, show text, and
the base of every dialog that closes only once what it asks for is accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from core.errors import WorkbenchError
from workbench.widgets.plain import block, line

ResultT = TypeVar("ResultT")

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical, {name} > VerticalScroll {{
    width: 80; max-width: 95%; height: auto; max-height: 90%;
    border: thick $primary; background: $panel; padding: 1 2;
}}
{name} .dialog-title {{ text-style: bold; margin-bottom: 1; }}
{name} Label {{ width: 1fr; }}
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


class CheckedDialog(ModalScreen[ResultT], Generic[ResultT]):
    """A dialog that closes only once its value is accepted.

    `attempt` gets the value in a thread (it may read files or the store, or queue a job) and returns what
    the dialog gives back; a WorkbenchError it raises is shown inside the dialog (in `ERROR`), which stays
    open with the focus back in its field (`FIELD`), so what the user types next corrects the value instead
    of reaching the screen below as commands. Without `attempt` the value itself is given back.
    """

    ERROR = ".dialog-error"
    FIELD = "Input"

    class Settled(Message):
        """The attempt ended: accepted with `result`, or refused for `problem`."""

        def __init__(self, result: object, problem: str | None) -> None:
            super().__init__()
            self.result = result
            self.problem = problem

    def __init__(self, attempt: Callable[[Any], ResultT] | None = None) -> None:
        super().__init__()
        self.attempt = attempt
        self.trying = False

    def submit_value(self, value: Any) -> None:
        """Try `value`; a second submit while one is being tried is ignored."""
        if self.trying:
            return
        if self.attempt is None:
            self.dismiss(value)
            return
        self.trying = True
        self.show_problem("checking…")
        for button in self.query("#cancel"):
            button.disabled = True
        self._run_attempt(value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While a value is tried, escape waits for the answer: closing now would leave an accepted action
        # (a queued job) followed by no screen, or a refusal shown nowhere.
        return not (self.trying and action == "cancel")

    @work(thread=True, exclusive=True, group="dialog-attempt", exit_on_error=False)
    def _run_attempt(self, value: Any) -> None:
        assert self.attempt is not None
        try:
            result = self.attempt(value)
        except WorkbenchError as exc:
            self.post_message(self.Settled(None, str(exc) or type(exc).__name__))
        except Exception as exc:  # noqa: BLE001 - an unexpected failure must not leave the dialog waiting
            self.post_message(self.Settled(None, f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(self.Settled(result, None))

    @on(Settled)
    def settle(self, message: Settled) -> None:
        self.trying = False
        for button in self.query("#cancel"):
            button.disabled = False
        self.show_problem("")
        if message.problem is None:
            self.dismiss(message.result)  # type: ignore[arg-type]
        else:
            self.refuse(message.problem)

    def refuse(self, problem: str, field: str | None = None) -> None:
        """Show why the value was refused inside the dialog, and put the focus back in its field (`field`, a
        selector, or the dialog's own)."""
        self.show_problem(problem)
        self.query(field or self.FIELD).first().focus()

    def show_problem(self, problem: str) -> None:
        self.query_one(self.ERROR, Static).update(line(problem, 500))


class AskDialog(CheckedDialog[Any]):
    """Asks for one value; `check` returns a problem to show (the dialog stays) or None to accept; then
    `attempt`, when given, is tried with the value (see CheckedDialog)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="AskDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, label: str, *, placeholder: str = "", value: str = "",
                 check: Callable[[str], str | None] | None = None, input_type: str = "text",
                 attempt: Callable[[str], Any] | None = None) -> None:
        super().__init__(attempt)
        self.title_text = title
        self.label = label
        self.placeholder = placeholder
        self.value = value
        self.check = check
        self.input_type = input_type

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(line(self.title_text), classes="dialog-title")
            yield Static(line(self.label))
            yield Input(self.value, placeholder=self.placeholder, id="ask-input",
                        type=self.input_type)  # type: ignore[arg-type]
            yield Static("", classes="dialog-error", id="ask-error")

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        problem = self.check(value) if self.check is not None else None
        if problem:
            self.refuse(problem)
            return
        self.submit_value(value)

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
