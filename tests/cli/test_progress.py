"""The progress line of long commands: rich's, on stderr, and only on a terminal."""

from __future__ import annotations

import io
import sys

import pytest
from rich.console import Console

from workbench.cli.progress import CommandProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_renders_on_a_terminal_with_plain_text_descriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    console = Console(file=terminal, force_terminal=True, width=120)
    with CommandProgress("analysing pairs", total=10, console=console) as progress:
        assert progress.enabled
        progress.update(3)
        progress.update(7, description="pairs of a[/b] [bold]x[/bold]")  # data, never markup
    output = terminal.getvalue()
    assert "7/10" in output
    assert "pairs of a[/b] [bold]x[/bold]" in output


def test_progress_is_silent_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    console = Console(file=piped, width=120)
    with CommandProgress("mining", console=console) as progress:
        assert not progress.enabled
        for done in range(100):
            progress.update(done)
    assert piped.getvalue() == ""
