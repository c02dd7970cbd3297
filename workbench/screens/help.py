"""HelpScreen: the keys of every screen, read from the screens' own bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# CodeFavor Workbench

Every stage is a job recorded in the store: what one TUI or CLI starts, any other sees.

**Everywhere**: `?` this help · `ctrl+p` every action of every stage · `q` quit · `escape` leaves a text
field for the list (then the keys below work), closes a dialog or goes back.

| key | screen |
|-----|--------|
"""


def _key_name(key: str) -> str:
    names = {"question_mark": "?", "slash": "/", "escape": "esc", "enter": "enter",
             "right_square_bracket": "]", "left_square_bracket": "["}
    return " / ".join(names.get(part, part) for part in key.split(","))


def screen_keys(screen_class: type) -> list[tuple[str, str]]:
    """The (key, description) pairs a screen class binds, in order, without duplicates."""
    pairs: list[tuple[str, str]] = []
    for binding in screen_class.__dict__.get("BINDINGS", []):  # its own keys, not inherited ones
        if isinstance(binding, Binding):
            key, description = binding.key, binding.description
        elif isinstance(binding, tuple) and len(binding) >= 3:
            key, description = binding[0], binding[2]
        else:
            continue
        if description and (key, description) not in pairs:
            pairs.append((key, description))
    return pairs


def help_markdown() -> str:
    """The help text: the screens and their keys."""
    from workbench.app import SCREEN_MODES, screen_class

    text = INTRO + "\n".join(f"| `{key}` | {title} |" for _mode, _screen, key, title in SCREEN_MODES)
    for _mode, path, key, title in SCREEN_MODES:
        shown_class = screen_class(path)
        sections = [(f"{title} (`{key}`)", shown_class)]
        sections += [(_title_of(sub), sub) for sub in getattr(shown_class, "SUBSCREENS", ())]
        for heading, shown in sections:
            keys = screen_keys(shown)
            if keys:
                text += f"\n\n## {heading}\n\n" + " · ".join(
                    f"`{_key_name(k)}` {description}" for k, description in keys
                )
    return text + "\n"


def _title_of(screen_class: type) -> str:
    name = screen_class.__name__.removesuffix("Screen")
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return words[:1].upper() + words[1:]


class HelpScreen(ModalScreen[None]):
    """Shows the keys of each screen."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; height: 85%; border: thick $primary; background: $panel; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(help_markdown())
