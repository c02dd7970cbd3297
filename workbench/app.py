"""WorkbenchApp and make_app(), the one factory both the CLI and the tests use."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from textual import on
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.textsafe import one_line
from workbench.screens.help import HelpScreen

# Each stage adds its screen here: (mode name, "module:Class", key, title for help and palette).
# Screens are imported when first shown, so start-up pays only for the dashboard.
SCREEN_MODES: list[tuple[str, str, str, str]] = [
    ("dashboard", "workbench.screens.dashboard:DashboardScreen", "d", "Dashboard"),
    ("commits", "workbench.screens.commits:CommitsScreen", "c", "Commits"),
    ("synthesis", "workbench.screens.synthesis:SynthesisScreen", "s", "Synthesis"),
    ("problems", "workbench.screens.problems:ProblemsScreen", "k", "Problems"),
    ("pairs", "workbench.screens.pairs:PairsScreen", "p", "Pairs"),
    ("training", "workbench.screens.training:TrainingScreen", "t", "Training"),
    ("evaluation", "workbench.screens.evaluation:EvaluationScreen", "e", "Evaluation"),
]


def screen_class(path: str) -> type[Screen[Any]]:
    """Import a screen class from its "module:Class" path."""
    module_name, _, class_name = path.partition(":")
    screen = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(screen, type) and issubclass(screen, Screen)
    return screen


def _screen_factory(path: str) -> Callable[[], Screen[Any]]:
    return lambda: screen_class(path)()


class ScreenCommands(Provider):
    """Command-palette entries that open each screen."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for mode, _screen, key, title in SCREEN_MODES:
            score = matcher.match(f"Open {title}")
            if score > 0:
                yield Hit(score, matcher.highlight(f"Open {title}"), partial(self.app.switch_mode, mode),
                          help=f"key {key}")


class WorkbenchApp(App[None]):
    """The workbench: a dashboard plus one screen per pipeline stage, all over one store."""

    CSS_PATH = "app.tcss"
    TITLE = "CodeFavor Workbench"
    COMMANDS = App.COMMANDS | {ScreenCommands}
    MODES = {mode: _screen_factory(path) for mode, path, _key, _title in SCREEN_MODES}
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", title) for mode, _s, key, title in SCREEN_MODES),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.engine = engine
        self.clock = clock

    def on_mount(self) -> None:
        self.switch_mode("dashboard")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    @on(Worker.StateChanged)
    def report_worker_error(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            # Error messages quote paths, file contents and model output: untrusted text.
            self.notify(one_line(message, 300), title="Error", severity="error", markup=False, timeout=8)


def run_and_exit(app: WorkbenchApp) -> None:
    """Run the TUI, then end the process at once with its return code.

    Jobs run in workers and every store write is committed as it happens, so nothing is left to
    do after the screen closes; the interpreter's own teardown of the UI's modules took about two
    seconds on a busy machine before the shell prompt came back.
    """
    import os
    import sys

    app.run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)


def make_app(
    db_path: str | Path | None = None,
    *,
    engine: Engine | None = None,
    clock: Callable[[], float] = time.time,
) -> WorkbenchApp:
    """Build the app over the store at `db_path` (or an engine already opened)."""
    if engine is None:
        from stores.db import make_engine

        engine = make_engine(db_path)
    return WorkbenchApp(engine, clock=clock)
