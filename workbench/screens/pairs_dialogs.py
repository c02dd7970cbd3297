"""Dialogs of the Pairs screen: criteria editor, bulk action, export, sort order and the contamination CDF."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, OptionList, RadioButton, RadioSet, Static, TextArea
from textual.widgets.option_list import Option

from core.curation.rules import ACTIONS
from workbench.screens.dialogs import DIALOG_CSS, CheckedDialog
from workbench.widgets.plain import code, line

STATUSES = ("pending", "accepted", "rejected", "flagged")
# Sort keys of the pair list: (store name, label); the store sorts empty values last.
SORTS: tuple[tuple[str, str], ...] = (
    ("id", "id"), ("status", "status"), ("source", "source"), ("cc_delta", "Δ complexity (Δcc)"),
    ("bandit_delta", "Δ bandit findings"), ("contamination", "contamination"), ("duplicate", "duplicates"),
    ("lines", "length (lines of the longer side)"),
)


def status_mix(by_status: dict[str, int]) -> str:
    """`pending 2 · accepted 3`: the statuses present, in review order."""
    parts = [f"{status} {by_status.get(status, 0):,}" for status in STATUSES if by_status.get(status)]
    parts += [f"{status} {count:,}" for status, count in sorted(by_status.items()) if status not in STATUSES and count]
    return " · ".join(parts) or "no pairs"


class CriteriaEditor(CheckedDialog[Any]):
    """Edits a pair's criteria; ctrl+s saves (through `attempt`, which stores them), escape cancels. Control
    characters show as visible stand-ins."""

    DEFAULT_CSS = DIALOG_CSS.format(name="CriteriaEditor") + "CriteriaEditor TextArea { height: 10; }"
    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]
    FIELD = "TextArea"

    def __init__(self, criteria: str, attempt: Callable[[str], Any] | None = None) -> None:
        super().__init__(attempt)
        self.criteria = criteria
        self.shown = code(criteria)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Edit criteria (ctrl+s saves, escape cancels)", classes="dialog-title")
            yield TextArea(self.shown, id="criteria-editor", soft_wrap=True)
            yield Static("", classes="dialog-error", id="criteria-error")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        if text == self.shown:
            self.dismiss(None)
        else:
            self.submit_value(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class BulkDialog(CheckedDialog[Any]):
    """Asks which action or rule file to apply to every pair of the current filter; `attempt` checks it (and
    counts what it would change) before the dialog closes."""

    DEFAULT_CSS = DIALOG_CSS.format(name="BulkDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, matching: int, filter_text: str, by_status: dict[str, int],
                 attempt: Callable[[str], Any] | None = None) -> None:
        super().__init__(attempt)
        self.matching = matching
        self.filter_text = filter_text
        self.by_status = by_status

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Apply to every pair of the filter", classes="dialog-title")
            yield Static(line(f"{self.matching:,} pairs match {self.filter_text or '(no filter: all pairs)'}"
                              f" · {status_mix(self.by_status)}"))
            yield Static(line(f"An action ({', '.join(ACTIONS)}) or a rule file; enter, then confirm."))
            bulk = Input(id="bulk-input",
                         placeholder="accept | reject | flag | pending | recipes/curation-default.yaml")
            bulk.border_title = "action or rule file"
            yield bulk
            yield Static("", classes="dialog-error", id="bulk-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        choice = event.value.strip()
        if not choice:
            self.refuse(f"give an action ({', '.join(ACTIONS)}) or the path of a rule file")
            return
        self.submit_value(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ExportChoice:
    """What the export dialog returns."""

    out_dir: str
    formats: tuple[str, ...]
    accepted_only: bool


class ExportDialog(CheckedDialog[Any]):
    """Shows the filter's status mix, offers "accepted only" (the default here) or the CLI's default filter,
    the formats, and the output folder; `attempt` checks the export before the dialog closes."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ExportDialog") + """
    ExportDialog RadioSet { width: 1fr; }
    ExportDialog #default-filter { color: $text-muted; margin-bottom: 1; }
    ExportDialog #formats { height: auto; margin-bottom: 1; }
    ExportDialog Checkbox { width: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    FIELD = "#export-out"

    def __init__(self, filter_text: str, by_status: dict[str, int], accepted: int, default_count: int,
                 default_filter: str, attempt: Callable[[ExportChoice], Any] | None = None) -> None:
        super().__init__(attempt)
        self.filter_text = filter_text
        self.by_status = by_status
        self.accepted = accepted
        self.default_count = default_count
        self.default_filter = default_filter

    def compose(self) -> ComposeResult:
        from core.training.export import DEFAULT_FORMATS, FORMATS  # deferred: only an export needs it

        with Vertical(id="dialog"):
            yield Static("Export pairs for training", classes="dialog-title")
            yield Static(line(f"filter: {self.filter_text or '(none)'} · {status_mix(self.by_status)}"), id="mix")
            with RadioSet(id="scope"):
                yield RadioButton(line(f"accepted only: {self.accepted:,} pairs"), value=True, id="accepted-only")
                yield RadioButton(line(f"not rejected, flagged or duplicate: {self.default_count:,} pairs "
                                       "(the CLI default)"), id="not-rejected")
            # The CLI's filter on a line of its own, which wraps: a radio button's label is cut at the dialog's edge.
            yield Static(line(f"the CLI default is the filter {self.default_filter}"), id="default-filter",
                         classes="dialog-note")
            with Horizontal(id="formats"):
                for fmt in FORMATS:
                    yield Checkbox(fmt, value=fmt in DEFAULT_FORMATS, id=f"format-{fmt}")
            out = Input(id="export-out", placeholder="e.g. exports/run1")
            out.border_title = "output folder"
            yield out
            yield Static("", classes="dialog-error", id="export-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Export", variant="primary", id="start")

    def on_mount(self) -> None:
        self.query_one("#export-out", Input).focus()

    @on(Input.Submitted, "#export-out")
    @on(Button.Pressed, "#start")
    def submit(self) -> None:
        out = self.query_one("#export-out", Input).value.strip()
        formats = tuple(box.id.removeprefix("format-") for box in self.query(Checkbox) if box.value and box.id)
        accepted_only = self.query_one("#accepted-only", RadioButton).value
        problem = ""
        if not out:
            problem = "give an output folder"
        elif not formats:
            problem = "tick at least one format"
        elif (self.accepted if accepted_only else self.default_count) == 0:
            problem = "no pair to export with this choice: accept some first, or pick the other scope"
        else:
            from core.errors import OptionError
            from core.training.export import check_export_folder

            try:  # the runner's check: a non-empty folder that is not an earlier export is never replaced
                check_export_folder(out, replace=True, what="output folder")
            except OptionError as exc:
                problem = str(exc)
        if problem:
            self.refuse(problem)
            return
        self.submit_value(ExportChoice(out, formats, accepted_only))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class SortDialog(ModalScreen[tuple[str, bool] | None]):
    """Picks the column the pair list is sorted by, and the direction."""

    DEFAULT_CSS = DIALOG_CSS.format(name="SortDialog") + "SortDialog OptionList { height: auto; max-height: 20; }"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, sort: str, descending: bool) -> None:
        super().__init__()
        self.sort = sort
        self.descending = descending

    def compose(self) -> ComposeResult:
        options = []
        for key, label in SORTS:
            for descending in (False, True):
                arrow = "↓ largest first" if descending else "↑ smallest first"
                options.append(Option(line(f"{label} {arrow}"), id=f"{key}:{int(descending)}"))
        with Vertical(id="dialog"):
            yield Static("Sort pairs by (empty values last)", classes="dialog-title")
            yield OptionList(*options, id="sorts")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        option_list.highlighted = option_list.get_option_index(f"{self.sort}:{int(self.descending)}")
        option_list.focus()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        key, _, descending = str(event.option.id).partition(":")
        self.dismiss((key, descending == "1"))

    def action_cancel(self) -> None:
        self.dismiss(None)


class CdfDialog(ModalScreen[None]):
    """The top-1 similarity CDF of the latest decontamination run (the paper's Figure 16)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="CdfDialog") + """
    CdfDialog > Vertical { height: 80%; }
    CdfDialog #cdf-plot { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,g", "close", "Close")]

    def __init__(self, summary: dict[str, Any] | None) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        with Vertical(id="dialog"):
            if not self.summary or not self.summary.get("cdf"):
                yield Static("No decontamination run yet: run one from the command palette (ctrl+p, "
                             "Decontaminate) or `workbench decontaminate --bench DIR`.", markup=False)
                return
            s = self.summary
            yield Static(line(
                f"{s['contaminated_pairs']} of {s['pairs']} pairs have a side ≥ {s['threshold']:g} "
                f"(exact); CDF from an exact sample of {s['cdf_sample']} sides"))
            yield PlotextPlot(id="cdf-plot")

    def on_mount(self) -> None:
        from textual_plotext import PlotextPlot

        if self.summary and self.summary.get("cdf"):
            plot = self.query_one(PlotextPlot).plt
            xs = [point[0] for point in self.summary["cdf"]]
            ys = [point[1] for point in self.summary["cdf"]]
            plot.plot(xs, ys)
            plot.vline(self.summary["threshold"])
            plot.title("top-1 similarity to CodePrefBench (CDF)")
            plot.xlim(0, 100)
            plot.ylim(0, 1)

    def action_close(self) -> None:
        self.dismiss(None)
