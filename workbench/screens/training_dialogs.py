"""Dialogs of the Training screen: start a run from a recipe (optionally on an export), and merge checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from core.errors import OptionError
from core.outputs import check_output_folder
from core.training.runs import CheckpointInfo
from core.training.weights import merge_weights
from stores.training.exports import ExportInfo
from workbench.screens.dialogs import DIALOG_CSS, CheckedDialog
from workbench.widgets.plain import line

RECIPE_DATASETS = -1  # the dataset choice that keeps the recipe's own datasets


@dataclass(frozen=True)
class TrainRequest:
    """What the training dialog asks for."""

    recipe: str
    export_id: int | None
    output_dir: str


@dataclass(frozen=True)
class MergeRequest:
    """What the merge dialog asks for."""

    checkpoints: tuple[str, ...]
    weights: tuple[float, ...]
    out_dir: str


class TrainDialog(CheckedDialog[Any]):
    """Picks a recipe, the dataset (the recipe's own, or one of the exports) and the output folder; `attempt`
    starts the run (see CheckedDialog)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TrainDialog").replace("width: 80;", "width: 100;") + """
    TrainDialog Select, TrainDialog Input { margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    FIELD = "#train-recipe-path"

    def __init__(self, recipes: list[str], exports: list[ExportInfo],
                 attempt: Callable[[TrainRequest], Any] | None = None) -> None:
        super().__init__(attempt)
        self.recipes = recipes
        self.exports = exports

    def compose(self) -> ComposeResult:
        recipe_options = [(line(Path(path).name, 80), path) for path in self.recipes]
        dataset_options = [(line("the recipe's own datasets"), RECIPE_DATASETS)] + [
            (line(f"export {e.id}: {e.pair_count:,} pairs · {e.formats} · {e.out_dir}", 90), e.id)
            for e in self.exports
        ]
        with Vertical():
            yield Static("Start a training run (a detached process: it outlives this terminal)",
                         classes="dialog-title")
            if not self.recipes:
                yield Label("No recipes found under recipes/train: give a recipe path.")
            recipe = Select(recipe_options, prompt="pick a recipe", id="train-recipe")
            recipe.border_title = "recipe"
            yield recipe
            path = Input(placeholder="or a recipe file path", id="train-recipe-path")
            path.border_title = "recipe file (overrides the list)"
            yield path
            dataset = Select(dataset_options, value=self.exports[0].id if self.exports else RECIPE_DATASETS,
                             allow_blank=False, id="train-dataset")
            dataset.border_title = "dataset"
            yield dataset
            out = Input(placeholder="the recipe's output_dir", id="train-out")
            out.border_title = "output folder"
            yield out
            yield Static("", classes="dialog-error", id="train-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start", variant="primary", id="train-start")

    @on(Button.Pressed, "#train-start")
    @on(Input.Submitted)
    def submit(self) -> None:
        typed = self.query_one("#train-recipe-path", Input).value.strip()
        picked = self.query_one("#train-recipe", Select).value
        recipe = typed or (picked if isinstance(picked, str) else "")
        if not recipe:
            self.refuse("pick a recipe or give a recipe file")
            return
        if not Path(recipe).expanduser().is_file():
            self.refuse(f"{recipe}: no such recipe file")
            return
        dataset = self.query_one("#train-dataset", Select).value
        export_id = dataset if isinstance(dataset, int) and dataset != RECIPE_DATASETS else None
        self.submit_value(TrainRequest(recipe, export_id, self.query_one("#train-out", Input).value.strip()))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class MergeDialog(CheckedDialog[Any]):
    """Picks checkpoints (from the store, or typed folders), weights and an output folder; `attempt` queues the
    merge (see CheckedDialog)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="MergeDialog").replace("width: 80;", "width: 100;") + """
    MergeDialog SelectionList { height: auto; max-height: 8; margin-bottom: 1; }
    MergeDialog Input { margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss_dialog", "Close")]
    ERROR = "#merge-error"
    FIELD = "#merge-inputs"

    def __init__(self, preset: list[str], checkpoints: list[CheckpointInfo],
                 attempt: Callable[[MergeRequest], Any] | None = None) -> None:
        super().__init__(attempt)
        self._preset = preset
        self._checkpoints = checkpoints

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Merge checkpoints (a weighted average, streamed tensor by tensor)", classes="dialog-title")
            if self._checkpoints:
                picker: SelectionList[str] = SelectionList(*(
                    Selection(line(f"{c.path} · {c.kind}"
                                   + (f" · run {c.job_id} step {c.step}" if c.job_id is not None else ""), 90), c.path)
                    for c in self._checkpoints), id="merge-picker")
                picker.border_title = "verified checkpoints (space ticks)"
                yield picker
            else:
                yield Label("No verified checkpoints in the store yet: type the folders below.")
            inputs = Input(" ".join(self._preset), placeholder="folders, space-separated", id="merge-inputs")
            inputs.border_title = "checkpoints to merge"
            yield inputs
            weights = Input(placeholder="e.g. 0.5 0.5 (default: equal)", id="merge-weights")
            weights.border_title = "weights"
            yield weights
            out = Input(placeholder="a new folder", id="merge-out")
            out.border_title = "output folder"
            yield out
            yield Static(id="merge-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Merge", variant="primary", id="merge-start")

    @on(SelectionList.SelectedChanged)
    def picked(self, event: SelectionList.SelectedChanged[str]) -> None:
        self.query_one("#merge-inputs", Input).value = " ".join(event.selection_list.selected)

    def action_dismiss_dialog(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#merge-start")
    @on(Input.Submitted)
    def submit(self) -> None:
        inputs = self.query_one("#merge-inputs", Input).value.split()
        weights_text = self.query_one("#merge-weights", Input).value.replace(",", " ").split()
        out_dir = self.query_one("#merge-out", Input).value.strip()
        try:
            if not out_dir:
                raise OptionError("give an output folder")
            weights = merge_weights(weights_text, len(inputs))  # the CLI's checks, before any tensor is read
            check_output_folder(out_dir, what="output folder")
        except OptionError as exc:
            self.refuse(str(exc), "#merge-out" if not out_dir or "output folder" in str(exc) else None)
            return
        self.submit_value(MergeRequest(tuple(inputs), tuple(weights), out_dir))
