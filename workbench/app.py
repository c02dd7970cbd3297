"""WorkbenchApp and make_app(), the one factory both the CLI and the tests use."""

from __future__ import annotations

import importlib
import time
import uuid
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
from workbench.gc_policy import relax_young_collections

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


# Every action a stage offers, for the command palette: (title, mode, the screen's action, where its key is).
STAGE_ACTIONS: list[tuple[str, str, str, str]] = [
    ("Mine a git repository", "commits", "mine", "Commits · m"),
    ("Synthesize pairs (Commit-Instruct or Critic-Evol)", "synthesis", "focus_form", "Synthesis · ctrl+s starts"),
    ("Stop the synthesis job", "synthesis", "stop", "Synthesis · ctrl+x"),
    ("Analyse pairs (parse, complexity, bandit) and mark duplicates", "pairs", "analyse", "Pairs · A"),
    ("Dedupe pairs", "pairs", "dedupe", "Pairs · D"),
    ("Decontaminate pairs against CodePrefBench", "pairs", "decontaminate", "Pairs · C"),
    ("Export pairs for training", "pairs", "export", "Pairs · E"),
    ("Apply an action or rule file to the filtered pairs", "pairs", "bulk", "Pairs · b"),
    ("Undo my last review action", "pairs", "undo", "Pairs · u"),
    ("Sort pairs", "pairs", "sort", "Pairs · O"),
    ("Jump to a pair by id", "pairs", "jump", "Pairs · j"),
    ("Train a model from a recipe", "training", "new_run", "Training · n"),
    ("Merge checkpoints", "training", "merge", "Training · m"),
    ("Cancel the selected training run", "training", "cancel_run", "Training · ctrl+x"),
    ("Evaluate a judge on CodePrefBench", "evaluation", "focus_form", "Evaluation · ctrl+s starts"),
    ("Stop the evaluation run", "evaluation", "stop", "Evaluation · ctrl+x"),
    ("Cancel a job", "dashboard", "cancel_job", "Dashboard · ctrl+x"),
]


class ScreenCommands(Provider):
    """Command-palette entries: open each screen, and every action of every stage."""

    def _entries(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = self.app
        assert isinstance(app, WorkbenchApp)
        entries: list[tuple[str, Callable[[], Any], str]] = [
            (f"Open {title}", partial(app.switch_mode, mode), f"key {key}") for mode, _s, key, title in SCREEN_MODES
        ]
        entries += [(title, partial(app.run_stage_action, mode, action), where)
                    for title, mode, action, where in STAGE_ACTIONS]
        return entries

    async def discover(self) -> Hits:
        for title, command, where in self._entries():
            yield Hit(1.0, title, command, help=where)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, where in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=where)


class WorkbenchApp(App[None]):
    """The workbench: a dashboard plus one screen per pipeline stage, all over one store."""

    CSS_PATH = "app.tcss"
    TITLE = "CodeFavor Workbench"
    COMMANDS = App.COMMANDS | {ScreenCommands}
    MODES = {mode: _screen_factory(path) for mode, path, _key, _title in SCREEN_MODES}
    # The screen keys stay out of the footer (the dashboard and `?` list them), leaving it to each screen's keys.
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", title, show=False) for mode, _s, key, title in SCREEN_MODES),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        relax_young_collections()  # also when the app is not started by the console script
        self.engine = engine
        self.clock = clock
        self._data_version: Any = None  # stores.versions.DataVersion, made on first use
        # Review actions are recorded under this id, so `u` undoes this session's actions only.
        self.session_id = uuid.uuid4().hex

    def on_mount(self) -> None:
        self.switch_mode("dashboard")

    def on_unmount(self) -> None:
        if self._data_version is not None:
            self._data_version.close()

    def store_version(self) -> int | None:
        """A number that changes whenever any connection commits to the store (None: unknown, for a store
        that is not a SQLite file), read in microseconds on the event loop; polls compare it first."""
        if self._data_version is None:
            from stores.versions import DataVersion

            self._data_version = DataVersion(self.engine)
        version = self._data_version.read()
        assert version is None or isinstance(version, int)
        return version

    def action_help(self) -> None:
        # Imported here: it brings the Markdown widget and its parser, which the first frame does not need.
        from workbench.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def run_stage_action(self, mode: str, action: str) -> None:
        """Open a stage's screen and run one of its actions (for the command palette)."""
        await self.switch_mode(mode)
        await self.screen.run_action(action)

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
