"""Untrusted text made safe for widgets: control characters shown visibly, never parsed as markup.

Every string from the store, a repository, a model or a file goes through one of these (or through
`core.textsafe` directly) before a DataTable, Static, Label, notification or title shows it.
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from core.textsafe import one_line, visible

TAB_SIZE = 4


def cell(text: object, limit: int | None = None, style: str = "") -> Text:
    """A one-line table cell: `one_line`, cut to `limit` characters."""
    return Text(one_line(str(text), limit), style=style, no_wrap=True, overflow="ellipsis")


def line(text: object, limit: int | None = None) -> Content:
    """One line of plain text for a Static or a title."""
    return Content(one_line(str(text), limit))


def block(text: str) -> Content:
    """Several lines of plain text for a Static (line feeds kept, tabs expanded)."""
    return Content(visible(text).expandtabs(TAB_SIZE))


def code(text: str) -> str:
    """Code or a log for a TextArea, a Log or a diff: controls made visible, tabs expanded."""
    return visible(text).expandtabs(TAB_SIZE)
