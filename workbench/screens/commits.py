"""CommitsScreen: mined commit records, paged from the store, with filters."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class CommitsScreen(Screen[None]):
    """Lists mined commits."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("commits")
        yield Footer()
