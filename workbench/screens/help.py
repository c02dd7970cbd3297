"""HelpScreen: the keys of every screen and where each stage lives."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP_TEXT = """\
# CodeFavor Workbench

**Screens** (keys work everywhere)

| key | screen |
|-----|--------|
{screen_rows}

**Everywhere**: `?` this help · `ctrl+p` command palette · `q` quit · `escape` close a dialog.

**Commits screen**: `/` filter · `enter` open a commit · `m` mine a repository ·
in a commit: `v` side by side / unified diff · `escape` back.

**Dashboard**: running and recent jobs refresh every second; `enter` on a job shows its details.
"""


class HelpScreen(ModalScreen[None]):
    """Shows the keys of each screen."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; height: 80%; border: thick $primary; background: $panel; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        from workbench.app import SCREEN_MODES

        rows = "\n".join(f"| `{key}` | {title} |" for _mode, _screen, key, title in SCREEN_MODES)
        with VerticalScroll():
            yield Markdown(HELP_TEXT.format(screen_rows=rows))
