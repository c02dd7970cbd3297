"""PairsScreen: filtered pairs paged from the store, and a side-by-side review of the selected one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Static, TextArea

from core.curation.analysis import changed_lines
from core.curation.pairs import PairDetail, PairSummary
from core.curation.rules import ACTIONS, Condition, load_rules, parse_filter
from core.errors import WorkbenchError
from core.textsafe import one_line
from core.training.export import DEFAULT_FORMATS, FORMATS, ExportOptions
from stores.curation.analyses import apply_rules
from stores.curation.pairs import (
    count_pairs,
    edit_criteria,
    flip_pair,
    get_pair,
    list_pairs,
    matching_ids,
    next_unreviewed,
    pair_source,
    set_status,
    status_counts,
    undo_last,
)
from stores.jobs import get_job, list_jobs
from stores.training.exports import export_conditions

PAGE_SIZE = 200
LOAD_MORE_MARGIN = 20  # rows from the end at which the next page is fetched
_STATUS_STYLE = {"accepted": "green", "rejected": "red", "flagged": "yellow", "pending": ""}


def _cells(pair: PairSummary) -> tuple[Text, ...]:
    return (
        Text(str(pair.id)), Text(pair.status, style=_STATUS_STYLE.get(pair.status, "")), Text(pair.source),
        Text(pair.parses), Text("" if pair.cc_delta is None else f"{pair.cc_delta:+.0f}"),
        Text("" if pair.bandit_delta is None else f"{pair.bandit_delta:+d}"),
        Text("" if pair.contamination is None else f"{pair.contamination:.0f}"),
        Text("dup" if pair.duplicate else ""),
        Text(" ".join(pair.criteria.split())[:80]),
    )


class PairTable(DataTable[Text]):
    """Pairs, one keyset page at a time; asks for more when the cursor nears the end."""

    class MoreWanted(Message):
        def __init__(self, after_id: int) -> None:
            super().__init__()
            self.after_id = after_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exhausted = False
        self.last_id: int | None = None

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for label, key in [("id", "id"), ("status", "status"), ("source", "source"), ("parse", "parse"),
                           ("Δcc", "cc"), ("Δbandit", "bandit"), ("contam", "contam"), ("dup", "dup"),
                           ("criteria", "criteria")]:
            self.add_column(label, key=key)

    def reset(self) -> None:
        """Forget every row: a new filter starts from the first page."""
        self.clear()
        self.exhausted = False
        self.last_id = None

    def add_page(self, pairs: list[PairSummary]) -> None:
        """Append one page of pairs."""
        for pair in pairs:
            self.add_row(*_cells(pair), key=str(pair.id))
        if pairs:
            self.last_id = pairs[-1].id
        self.exhausted = len(pairs) < PAGE_SIZE

    def replace_pair(self, pair: PairSummary) -> None:
        """Refresh the cells of one pair if it is shown."""
        key = str(pair.id)
        if key in self.rows:
            for column, cell in zip(self.columns, _cells(pair)):
                self.update_cell(key, column, cell)

    @property
    def current_id(self) -> int | None:
        """The id of the pair under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        return int(key) if key is not None else None

    @on(DataTable.RowHighlighted)
    def maybe_load_more(self, event: DataTable.RowHighlighted) -> None:
        if not self.exhausted and self.last_id is not None and event.cursor_row >= self.row_count - LOAD_MORE_MARGIN:
            self.post_message(self.MoreWanted(self.last_id))


class CriteriaEditor(ModalScreen[str | None]):
    """Edits a pair's criteria; ctrl+s saves, escape cancels."""

    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, criteria: str) -> None:
        super().__init__()
        self.criteria = criteria

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Edit criteria (ctrl+s save, escape cancel)", classes="title")
            yield TextArea(self.criteria, id="criteria-editor", soft_wrap=True)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class BulkDialog(ModalScreen[str | None]):
    """Asks which action or rule file to apply to every pair of the current filter."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, matching: int, filter_text: str) -> None:
        super().__init__()
        self.matching = matching
        self.filter_text = filter_text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content(f"{self.matching:,} pairs match the current filter: {self.filter_text or '(all)'}"))
            yield Static(Content(f"Type an action ({', '.join(ACTIONS)}) or a rule file path, then enter."))
            yield Input(id="bulk-input", placeholder="accept | reject | flag | pending | recipes/rules.yaml")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportDialog(ModalScreen[tuple[str, str] | None]):
    """Asks where to export the pairs of the current filter, and in which formats."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, matching: int, filter_text: str, by_status: dict[str, int] | None = None) -> None:
        super().__init__()
        self.matching = matching
        self.filter_text = filter_text
        self.by_status = by_status or {}

    def compose(self) -> ComposeResult:
        mix = ", ".join(f"{status} {count:,}" for status, count in sorted(self.by_status.items()) if count)
        with Vertical(id="dialog"):
            yield Static(Content(f"Export {self.matching:,} pairs matching: {self.filter_text or '(all)'}"
                                 + (f" ({mix})" if mix else "")))
            yield Input(id="export-out", placeholder="output folder, e.g. exports/run1")
            yield Input(",".join(DEFAULT_FORMATS), id="export-formats", placeholder=", ".join(FORMATS))

    def on_mount(self) -> None:
        self.query_one("#export-out", Input).focus()

    @on(Input.Submitted, "#export-out")
    def next_field(self) -> None:
        self.query_one("#export-formats", Input).focus()

    @on(Input.Submitted, "#export-formats")
    def submit(self) -> None:
        out = self.query_one("#export-out", Input).value.strip()
        if not out:
            self.query_one("#export-out", Input).focus()
            return
        self.dismiss((out, self.query_one("#export-formats", Input).value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[None]):
    """Shows plain text (a pair's source) until escape."""

    BINDINGS = [Binding("escape,q,o", "close", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(Content(self.text), id="dialog-text")

    def action_close(self) -> None:
        self.dismiss(None)


class CdfDialog(ModalScreen[None]):
    """The top-1 similarity CDF of the latest decontamination run (the paper's Figure 16)."""

    BINDINGS = [Binding("escape,q,g", "close", "Close")]

    def __init__(self, summary: dict[str, Any] | None) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        with Vertical(id="dialog"):
            if not self.summary or not self.summary.get("cdf"):
                yield Static("No decontamination run yet: run `workbench decontaminate --bench DIR`.")
                return
            s = self.summary
            yield Static(Content(
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


JOB_POLL_SECONDS = 1.0


class PairsScreen(Screen[None]):
    """Lists pairs with a filter and counts; reviews the highlighted pair side by side."""

    CSS_PATH = "pairs.tcss"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("a", "review('accept')", "Accept"),
        Binding("r", "review('reject')", "Reject"),
        Binding("x", "review('flag')", "Flag"),
        Binding("f", "flip", "Flip"),
        Binding("e", "edit_criteria", "Criteria"),
        Binding("n", "next_unreviewed", "Next"),
        Binding("u", "undo", "Undo"),
        Binding("b", "bulk", "Bulk"),
        Binding("o", "open_source", "Source"),
        Binding("g", "show_cdf", "CDF"),
        Binding("E", "export", "Export"),
        Binding("A", "analyse", "Analyse"),
    ]
    ANALYSE_WORKERS = 2

    class PageLoaded(Message):
        def __init__(self, pairs: list[PairSummary], first: bool, generation: int) -> None:
            super().__init__()
            self.pairs = pairs
            self.first = first
            self.generation = generation

    class CountsLoaded(Message):
        def __init__(self, total: int, by_status: dict[str, int]) -> None:
            super().__init__()
            self.total = total
            self.by_status = by_status

    class PairLoaded(Message):
        def __init__(self, pair: PairDetail) -> None:
            super().__init__()
            self.pair = pair

    class Changed(Message):
        """A review action finished: refresh the pair (and the counts)."""

        def __init__(self, pair_id: int | None, note: str, reload_list: bool = False) -> None:
            super().__init__()
            self.pair_id = pair_id
            self.note = note
            self.reload_list = reload_list

    class JobQueued(Message):
        """A job queued from this screen: followed until it ends."""

        def __init__(self, job_id: int, what: str) -> None:
            super().__init__()
            self.job_id = job_id
            self.what = what

    class JobEnded(Message):
        """A job queued from this screen ended; `note` says how."""

        def __init__(self, job_id: int, note: str) -> None:
            super().__init__()
            self.job_id = job_id
            self.note = note

    def __init__(self) -> None:
        super().__init__()
        self.conditions: tuple[Condition, ...] = ()
        self.filter_text = ""
        self.generation = 0
        self.pair: PairDetail | None = None
        self._watched: dict[int, str] = {}  # jobs queued from here: id -> what they do

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filter-row"):
            yield Input(id="filter", placeholder="filter: status=pending cc_delta<0 criteria~secure (enter)")
            yield Static(id="counts")
        yield PairTable(id="pairs")
        with VerticalScroll(id="review"):
            yield Static(id="pair-header")
            yield Static(id="instruction", classes="block")
            yield Static(id="criteria", classes="block")
            with Horizontal(id="sides"):
                with Vertical(classes="side"):
                    yield Static("rejected", classes="side-title")
                    yield Static(id="rejected-metrics", classes="metrics")
                    yield Static(id="rejected-code", classes="code")
                with Vertical(classes="side"):
                    yield Static("chosen", classes="side-title")
                    yield Static(id="chosen-metrics", classes="metrics")
                    yield Static(id="chosen-code", classes="code")
            yield Static(id="feedback", classes="block")
            yield Static(id="source", classes="muted")
        yield Footer()

    @property
    def pair_table(self) -> PairTable:
        return self.query_one(PairTable)

    @property
    def engine(self) -> Any:
        return self.app.engine  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.reload()
        self.pair_table.focus()
        self.set_interval(JOB_POLL_SECONDS, self.poll_jobs)  # skips a tick while the last check runs

    def on_screen_resume(self) -> None:
        if self.pair_table.row_count:
            self.load_counts()

    # loading -----------------------------------------------------------------------------------

    def reload(self) -> None:
        """Start again from the first page of the current filter."""
        self.generation += 1
        self.pair_table.reset()
        self.load_page(None, self.generation)
        self.load_counts()

    @work(thread=True, exclusive=True, group="pairs-page", exit_on_error=False)
    def load_page(self, after_id: int | None, generation: int) -> None:
        pairs = list_pairs(self.engine, self.conditions, limit=PAGE_SIZE, after_id=after_id)
        self.post_message(self.PageLoaded(pairs, after_id is None, generation))

    @work(thread=True, exclusive=True, group="pairs-counts", exit_on_error=False)
    def load_counts(self) -> None:
        by_status = status_counts(self.engine, self.conditions)
        self.post_message(self.CountsLoaded(sum(by_status.values()), by_status))

    @work(thread=True, exclusive=True, group="pair-detail", exit_on_error=False)
    def load_pair(self, pair_id: int) -> None:
        self.post_message(self.PairLoaded(get_pair(self.engine, pair_id)))

    @on(PageLoaded)
    def show_page(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return  # a page for a filter that has since changed
        self.pair_table.add_page(message.pairs)
        if message.first:
            if message.pairs:
                self.load_pair(message.pairs[0].id)
            else:
                self.show_pair(None)

    @on(PairTable.MoreWanted)
    def load_more(self, message: PairTable.MoreWanted) -> None:
        self.pair_table.exhausted = True  # until the page arrives; add_page sets it again
        self.load_page(message.after_id, self.generation)

    @on(CountsLoaded)
    def show_counts(self, message: CountsLoaded) -> None:
        parts = [f"{message.total:,} pairs"]
        parts += [f"{status} {message.by_status.get(status, 0):,}" for status in ("pending", "accepted", "rejected", "flagged")]
        self.query_one("#counts", Static).update(Content(" · ".join(parts)))

    @on(DataTable.RowHighlighted, "#pairs")
    def follow_cursor(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is not None:
            self.load_pair(int(key))

    @on(PairLoaded)
    def show_loaded_pair(self, message: PairLoaded) -> None:
        if self.pair_table.current_id == message.pair.id:
            self.show_pair(message.pair)

    def show_pair(self, pair: PairDetail | None) -> None:
        """Fill the review pane; every text from the pair is shown as plain text."""
        self.pair = pair
        if pair is None:
            for widget_id in ("pair-header", "instruction", "criteria", "rejected-metrics", "rejected-code",
                              "chosen-metrics", "chosen-code", "feedback", "source"):
                self.query_one(f"#{widget_id}", Static).update("")
            self.query_one("#pair-header", Static).update("No pairs match the filter.")
            return
        self.query_one("#pair-header", Static).update(
            Content(f"pair {pair.id} · {pair.status} · {pair.source} · {pair.language}"))
        self.query_one("#instruction", Static).update(Text.assemble(("instruction\n", "bold"), pair.instruction))
        self.query_one("#criteria", Static).update(Text.assemble(("criteria\n", "bold"), pair.criteria))
        rejected_changed, chosen_changed = changed_lines(pair.rejected, pair.chosen)
        for side, code, changed in (("rejected", pair.rejected, rejected_changed), ("chosen", pair.chosen, chosen_changed)):
            self.query_one(f"#{side}-code", Static).update(
                Syntax(code.rstrip("\n") or " ", "python", line_numbers=True, highlight_lines=changed, word_wrap=True,
                       theme="ansi_dark"))
            self.query_one(f"#{side}-metrics", Static).update(Text(_metrics_text(pair.analysis, side)))
        self.query_one("#feedback", Static).update(Text.assemble(("feedback\n", "bold"), pair.feedback or "(none)"))
        lineage = [f"commit {pair.commit_id}" if pair.commit_id else "", f"instruction {pair.instruction_id}"
                   if pair.instruction_id else "", f"conversation {pair.conversation_id}" if pair.conversation_id else ""]
        self.query_one("#source", Static).update(
            Content(f"source {pair.source} {' '.join(x for x in lineage if x)} · o opens the source"))

    # actions -----------------------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Submitted, "#filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        try:
            self.conditions = parse_filter(event.value)
        except WorkbenchError as exc:
            self.notify(one_line(str(exc), 300), severity="error", markup=False)
            return
        self.filter_text = event.value.strip()
        self.reload()
        self.pair_table.focus()

    def key_escape(self) -> None:
        self.pair_table.focus()

    def action_review(self, action: str) -> None:
        if self.pair is not None:
            self.run_change("status", self.pair.id, action)

    def action_flip(self) -> None:
        if self.pair is not None:
            self.run_change("flip", self.pair.id, "")

    def action_undo(self) -> None:
        self.run_change("undo", None, "")

    def action_edit_criteria(self) -> None:
        pair = self.pair
        if pair is None:
            return

        def save(criteria: str | None) -> None:
            if criteria is not None and criteria != pair.criteria:
                self.run_change("criteria", pair.id, criteria)

        self.app.push_screen(CriteriaEditor(pair.criteria), save)

    def action_next_unreviewed(self) -> None:
        self.find_next(self.pair_table.current_id)

    @work(thread=True, exclusive=True, group="pairs-next", exit_on_error=False)
    def find_next(self, after_id: int | None) -> None:
        found = next_unreviewed(self.engine, self.conditions, after_id=after_id)
        self.app.call_from_thread(self.go_to_pair, found)

    def go_to_pair(self, pair_id: int | None) -> None:
        """Move the cursor to a pair, loading pages until it is in the table."""
        if pair_id is None:
            self.notify("No pending pair matches the filter.", markup=False)
            return
        table = self.pair_table
        key = str(pair_id)
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key))
            return
        self.load_until(pair_id, self.generation)

    @work(thread=True, exclusive=True, group="pairs-page", exit_on_error=False)
    def load_until(self, pair_id: int, generation: int) -> None:
        after_id = self.pair_table.last_id
        pages: list[PairSummary] = []
        while True:
            page = list_pairs(self.engine, self.conditions, limit=PAGE_SIZE, after_id=after_id)
            pages += page
            if not page or page[-1].id >= pair_id:
                break
            after_id = page[-1].id
        self.post_message(self.PageLoaded(pages, False, generation))
        self.app.call_from_thread(self.go_to_pair_loaded, pair_id)

    def go_to_pair_loaded(self, pair_id: int) -> None:
        key = str(pair_id)
        if key in self.pair_table.rows:
            self.pair_table.move_cursor(row=self.pair_table.get_row_index(key))

    @work(thread=True, exclusive=False, group="pairs-change", exit_on_error=False)
    def run_change(self, kind: str, pair_id: int | None, value: str) -> None:
        if kind == "status" and pair_id is not None:
            set_status(self.engine, [pair_id], value)
            self.post_message(self.Changed(pair_id, f"pair {pair_id}: {value}"))
        elif kind == "flip" and pair_id is not None:
            flip_pair(self.engine, pair_id)
            self.post_message(self.Changed(pair_id, f"pair {pair_id}: chosen and rejected swapped"))
        elif kind == "criteria" and pair_id is not None:
            edit_criteria(self.engine, pair_id, value)
            self.post_message(self.Changed(pair_id, f"pair {pair_id}: criteria saved"))
        elif kind == "undo":
            undone = undo_last(self.engine)
            self.post_message(self.Changed(None, f"undid {undone}" if undone else "nothing to undo", reload_list=True))

    @on(Changed)
    def after_change(self, message: Changed) -> None:
        self.notify(message.note, markup=False, timeout=3)
        if message.reload_list:
            self.refresh_visible()
        elif message.pair_id is not None:
            self.refresh_pair(message.pair_id)
        self.load_counts()

    @work(thread=True, exclusive=False, group="pairs-refresh", exit_on_error=False)
    def refresh_pair(self, pair_id: int) -> None:
        page = list_pairs(self.engine, (Condition("id", "=", float(pair_id)),), limit=1)
        detail = get_pair(self.engine, pair_id)
        self.app.call_from_thread(self._apply_refresh, page, detail)

    @work(thread=True, exclusive=False, group="pairs-refresh", exit_on_error=False)
    def refresh_visible(self) -> None:
        table = self.pair_table
        if not table.row_count:
            return
        first = int(table.coordinate_to_cell_key(Coordinate(0, 0)).row_key.value or 0)
        page = list_pairs(self.engine, (Condition("id", ">=", float(first)),), limit=table.row_count)
        current = table.current_id
        detail = get_pair(self.engine, current) if current is not None else None
        self.app.call_from_thread(self._apply_refresh, page, detail)

    def _apply_refresh(self, page: list[PairSummary], detail: PairDetail | None) -> None:
        for pair in page:
            self.pair_table.replace_pair(pair)
        if detail is not None and detail.id == self.pair_table.current_id:
            self.show_pair(detail)

    def action_bulk(self) -> None:
        self.open_bulk()

    @work(thread=True, exclusive=True, group="pairs-bulk", exit_on_error=False)
    def open_bulk(self) -> None:
        matching = count_pairs(self.engine, self.conditions)
        self.app.call_from_thread(
            self.app.push_screen, BulkDialog(matching, self.filter_text), self.bulk_chosen)

    def bulk_chosen(self, choice: str | None) -> None:
        if choice:
            self.run_bulk(choice)

    @work(thread=True, exclusive=True, group="pairs-bulk", exit_on_error=False)
    def run_bulk(self, choice: str) -> None:
        if choice in ACTIONS:
            changed = set_status(self.engine, matching_ids(self.engine, self.conditions), choice,
                                 label=f"bulk {choice}")
            note = f"{choice}: {changed} pairs changed"
        else:
            rules = load_rules(Path(choice))
            scoped = [type(rule)(rule.name, (*self.conditions, *rule.conditions), rule.action) for rule in rules]
            counts = apply_rules(self.engine, scoped)
            note = "; ".join(f"{rule.name}: {rule.action} {count}" for rule, count in counts)
        self.post_message(self.Changed(None, note, reload_list=True))

    def action_analyse(self) -> None:
        self.queue_analysis()

    @work(thread=True, exclusive=True, group="pairs-analyse", exit_on_error=False)
    def queue_analysis(self) -> None:
        """Queue analysis and dedupe as one job for a worker; the screen reloads when it ends."""
        from workbench.jobs.curate import ANALYSE, AnalyseParams
        from workbench.jobs.queue import enqueue

        job = enqueue(self.engine, ANALYSE.name, AnalyseParams(workers=self.ANALYSE_WORKERS, dedupe=True))
        self.post_message(self.JobQueued(job.id, "analysis"))

    def action_export(self) -> None:
        self.open_export()

    @work(thread=True, exclusive=True, group="pairs-export", exit_on_error=False)
    def open_export(self) -> None:
        # The same default filter as `workbench export`: fields the screen's filter leaves open take it.
        conditions = export_conditions(self.conditions)
        by_status = status_counts(self.engine, conditions)
        self.app.call_from_thread(
            self.app.push_screen, ExportDialog(sum(by_status.values()), " ".join(map(str, conditions)), by_status),
            self.export_chosen)

    def export_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice is not None:
            self.queue_export(*choice)

    @work(thread=True, exclusive=True, group="pairs-export", exit_on_error=False)
    def queue_export(self, out: str, formats: str) -> None:
        from core.curation.rules import filter_spec
        from workbench.jobs.export import EXPORT, ExportParams
        from workbench.jobs.queue import enqueue

        options = ExportOptions(formats=tuple(f.strip() for f in formats.split(",") if f.strip()))
        params = ExportParams(out_dir=str(Path(out).expanduser().resolve()), where=tuple(filter_spec(self.conditions)),
                              options=options)
        job = enqueue(self.engine, EXPORT.name, params)
        self.post_message(self.JobQueued(job.id, "export"))

    @on(JobQueued)
    def follow_job(self, message: JobQueued) -> None:
        self._watched[message.job_id] = message.what
        self.notify(f"{message.what} queued as job {message.job_id} (see the dashboard)", markup=False, timeout=3)

    def poll_jobs(self) -> None:
        busy = any(worker.group == "pairs-jobs" and worker.is_running for worker in self.workers)
        if self._watched and not busy:
            self.check_jobs(dict(self._watched))

    @work(thread=True, group="pairs-jobs", exit_on_error=False)
    def check_jobs(self, watched: dict[int, str]) -> None:
        for job_id, what in watched.items():
            job = get_job(self.engine, job_id)
            if job.is_active:
                continue
            note = f"{what} job {job.id} {job.state}"
            summary = job.summary
            if job.kind == "analyse" and job.state == "done":
                note = f"analysed {summary.get('analysed', 0)} pairs (job {job.id}); duplicates marked"
            elif job.kind == "export" and job.state == "done":
                note = f"export {summary.get('export_id')}: {summary.get('pairs')} pairs (job {job.id})"
            elif job.error:
                note = f"{note}: {job.error}"
            self.post_message(self.JobEnded(job.id, note))

    @on(JobEnded)
    def job_ended(self, message: JobEnded) -> None:
        if self._watched.pop(message.job_id, None) is not None:
            self.post_message(self.Changed(None, message.note, reload_list=True))

    def action_open_source(self) -> None:
        if self.pair is not None:
            self.open_source(self.pair.id)

    @work(thread=True, exclusive=True, group="pairs-source", exit_on_error=False)
    def open_source(self, pair_id: int) -> None:
        text = pair_source(self.engine, pair_id)
        self.app.call_from_thread(self.app.push_screen, TextDialog(text))

    def action_show_cdf(self) -> None:
        self.open_cdf()

    @work(thread=True, exclusive=True, group="pairs-cdf", exit_on_error=False)
    def open_cdf(self) -> None:
        runs = [job for job in list_jobs(self.engine, kind="decontaminate", limit=20) if job.state == "done"]
        summary = runs[0].summary if runs else None
        self.app.call_from_thread(self.app.push_screen, CdfDialog(summary))


def _metrics_text(analysis: dict[str, Any] | None, side: str) -> str:
    if analysis is None:
        return "not analysed yet (workbench curate analyse)"
    parses = "parses" if analysis[f"{side}_parses"] else "DOES NOT PARSE"
    lines = [
        f"{parses} · cc {analysis[f'{side}_cc']:.0f} · mi {analysis[f'{side}_mi']:.1f} · "
        f"loc {analysis[f'{side}_loc']} · volume {analysis[f'{side}_volume']:.0f}"
    ]
    contamination = analysis.get(f"contamination_{side}")
    if contamination is not None:
        lines.append(f"benchmark similarity {contamination:.1f} ({analysis.get('contamination_task') or ''})")
    findings = analysis["findings"].get(side, [])
    lines += [f"bandit {f['test_id']} {f['severity']}/{f['confidence']} line {f['line']}" for f in findings]
    if not findings:
        lines.append("bandit: no findings")
    return "\n".join(lines)
