"""PairsScreen: filtered, sortable pairs paged from the store, and a side-by-side diff review of the selected one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.widgets.data_table import RowKey

from core.curation.pairs import PairDetail, PairSummary
from core.curation.rules import ACTIONS, Condition, filter_spec, load_rules, parse_filter
from core.errors import NotFoundError, WorkbenchError
from core.jobs import JobInfo
from core.sidebyside import SideBySide, align
from core.textsafe import one_line
from stores.curation.pairs import (
    count_pairs,
    edit_criteria,
    flip_pair,
    get_pair,
    last_session_action,
    list_pairs,
    matching_ids,
    next_unreviewed,
    pair_position,
    pair_source,
    set_status,
    status_counts,
    undo_action,
)
from stores.jobs import list_jobs
from stores.versions import Stamp, pairs_stamp

# Export, rules and training modules are imported by the actions that need them: opening the screen
# should not pay for them.
from workbench.screens.base import StageScreen
from workbench.screens.dialogs import AskDialog, TextDialog, confirm
from workbench.screens.pairs_dialogs import (
    SORTS,
    BulkDialog,
    CdfDialog,
    CriteriaEditor,
    ExportChoice,
    ExportDialog,
    SortDialog,
    status_mix,
)
from workbench.widgets.diff_view import DiffView
from workbench.widgets.job_status import JobStatus
from workbench.widgets.plain import cell, code, line

PAGE_SIZE = 200
LOAD_MORE_MARGIN = 20  # rows from the end at which the next page is fetched
REFRESH_LIMIT = 5_000  # loaded rows re-read when the store changes
POLL_SECONDS = 1.0
_STATUS_STYLE = {"accepted": "green", "rejected": "red", "flagged": "yellow", "pending": ""}
# Table columns: (label, key, the sort it offers or None, width). Fixed widths: pages are appended,
# and rows already rendered keep their width.
COLUMNS: tuple[tuple[str, str, str | None, int], ...] = (
    ("id", "id", "id", 7), ("status", "status", "status", 8), ("source", "source", "source", 15),
    ("parse", "parse", None, 5), ("Δcc", "cc", "cc_delta", 4), ("Δbandit", "bandit", "bandit_delta", 7),
    ("contam", "contam", "contamination", 6), ("dup", "dup", "duplicate", 3), ("lines", "lines", "lines", 6),
    ("criteria", "criteria", None, 60),
)
NO_PAIRS = ("No pairs yet: synthesize some (s, then ctrl+s starts a run) or import them with "
            "`workbench pairs import FILE`.")
NO_MATCH = "No pair matches the filter: press / to change it (an empty filter shows every pair)."


def _cells(pair: PairSummary) -> tuple[Text, ...]:
    return (
        cell(pair.id), cell(pair.status, style=_STATUS_STYLE.get(pair.status, "")), cell(pair.source, 15),
        cell(pair.parses), cell("" if pair.cc_delta is None else f"{pair.cc_delta:+.0f}"),
        cell("" if pair.bandit_delta is None else f"{pair.bandit_delta:+d}"),
        cell("" if pair.contamination is None else f"{pair.contamination:.0f}"),
        cell("dup" if pair.duplicate else ""), cell(pair.lines),
        cell(" ".join(pair.criteria.split()), 60),
    )


@dataclass(frozen=True)
class PairQuery:
    """What the list shows: the filter and the sort order."""

    conditions: tuple[Condition, ...] = ()
    sort: str = "id"
    descending: bool = False


class PairTable(DataTable[Text]):
    """Pairs, one page at a time; asks for more when the cursor nears the end."""

    class MoreWanted(Message):
        def __init__(self, after_id: int, offset: int) -> None:
            super().__init__()
            self.after_id = after_id
            self.offset = offset

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.exhausted = False
        self.last_id: int | None = None
        self.ids: list[int] = []
        self._keys: dict[int, RowKey] = {}

    def on_mount(self) -> None:
        for label, key, _sort, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def reset(self) -> None:
        """Forget every row: a new filter or order starts from the first page."""
        self.clear()
        self.ids, self._keys = [], {}
        self.exhausted = False
        self.last_id = None

    def add_page(self, pairs: list[PairSummary]) -> None:
        """Append one page of pairs (one add_rows call)."""
        fresh = [pair for pair in pairs if pair.id not in self._keys]
        keys = self.add_rows([_cells(pair) for pair in fresh])
        self._keys.update((pair.id, key) for pair, key in zip(fresh, keys, strict=True))
        self.ids.extend(pair.id for pair in fresh)
        if pairs:
            self.last_id = pairs[-1].id
        self.exhausted = len(pairs) < PAGE_SIZE

    def row_of(self, pair_id: int) -> int | None:
        """The row index of a loaded pair."""
        return self.get_row_index(self._keys[pair_id]) if pair_id in self._keys else None

    def replace_rows(self, pairs: list[PairSummary], exhausted: bool) -> None:
        """Show exactly these pairs (a re-read of the loaded rows), keeping the cursor on its pair if it is
        still there, else on the same row index."""
        current, row, scroll_y = self.current_id, self.cursor_row, self.scroll_y
        self.reset()
        self.add_page(pairs)
        self.exhausted = exhausted
        if pairs:
            target = self.row_of(current) if current is not None and current in self._keys else None
            self.move_cursor(row=target if target is not None else min(row, len(pairs) - 1), scroll=False)
            self.scroll_to(y=scroll_y, animate=False, immediate=True)

    def replace_pair(self, pair: PairSummary) -> None:
        """Refresh the cells of one pair if it is shown."""
        key = self._keys.get(pair.id)
        if key is not None:
            for (_label, column, _sort, _width), value in zip(COLUMNS, _cells(pair), strict=True):
                self.update_cell(key, column, value)

    @property
    def current_id(self) -> int | None:
        """The id of the pair under the cursor."""
        return self.ids[self.cursor_row] if 0 <= self.cursor_row < len(self.ids) else None

    @on(DataTable.RowHighlighted)
    def maybe_load_more(self, event: DataTable.RowHighlighted) -> None:
        if not self.exhausted and self.last_id is not None and event.cursor_row >= self.row_count - LOAD_MORE_MARGIN:
            self.exhausted = True  # until the page arrives; add_page sets it again
            self.post_message(self.MoreWanted(self.last_id, self.row_count))


def _metrics_line(analysis: dict[str, Any] | None, side: str) -> str:
    if analysis is None:
        return f"{side}: not analysed yet (A analyses, or `workbench curate analyse`)"
    parses = "parses" if analysis[f"{side}_parses"] else "DOES NOT PARSE"
    text = (f"{side}: {parses} · cc {analysis[f'{side}_cc']:.0f} · mi {analysis[f'{side}_mi']:.1f} · "
            f"loc {analysis[f'{side}_loc']} · volume {analysis[f'{side}_volume']:.0f}")
    findings = analysis["findings"].get(side, [])
    text += f" · bandit {', '.join(f['test_id'] for f in findings)}" if findings else " · bandit: no findings"
    contamination = analysis.get(f"contamination_{side}")
    if contamination is not None:
        text += f" · benchmark similarity {contamination:.1f}"
    return text


def details_text(pair: PairDetail) -> str:
    """Everything about a pair except its code, for the full-text view."""
    parts = [f"pair {pair.id} · {pair.status} · {pair.source} · {pair.language}", "", "INSTRUCTION", pair.instruction,
             "", "CRITERIA", pair.criteria, "", "FEEDBACK", pair.feedback or "(none)"]
    if pair.analysis is not None:
        parts += ["", "ANALYSIS"]
        for side in ("rejected", "chosen"):
            parts.append(_metrics_line(pair.analysis, side))
            parts += [f"  bandit {f['test_id']} {f['severity']}/{f['confidence']} line {f['line']}"
                      for f in pair.analysis["findings"].get(side, [])]
        if pair.analysis.get("duplicate"):
            parts.append(f"duplicate of pair {pair.analysis.get('dup_cluster')}")
        if pair.analysis.get("contamination_task"):
            parts.append(f"closest benchmark task: {pair.analysis['contamination_task']}")
    return "\n".join(parts)


class PairsScreen(StageScreen):
    """Lists pairs with a filter, a sort order and counts; reviews the highlighted pair as an aligned diff."""

    CSS_PATH = "pairs.tcss"
    MAIN = "#pairs"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("a", "review('accept')", "Accept"),
        Binding("r", "review('reject')", "Reject"),
        Binding("x", "review('flag')", "Flag"),
        Binding("f", "flip", "Flip"),
        Binding("n", "next_unreviewed", "Next"),
        Binding("u", "undo", "Undo"),
        Binding("b", "bulk", "Bulk"),
        Binding("E", "export", "Export"),
        Binding("A", "analyse", "Analyse", show=False),
        Binding("w", "edit_criteria", "Edit criteria", show=False),
        Binding("i", "details", "Full texts", show=False),
        Binding("o", "open_source", "Source", show=False),
        Binding("g", "show_cdf", "Contamination CDF", show=False),
        Binding("j", "jump", "Jump to id", show=False),
        Binding("O", "sort", "Sort", show=False),
        Binding("z", "zoom", "Zoom the diff", show=False),
        Binding("right_square_bracket", "next_change", "Next change", show=False),
        Binding("left_square_bracket", "previous_change", "Previous change", show=False),
    ]

    class PageLoaded(Message):
        def __init__(self, pairs: list[PairSummary], first: bool, generation: int,
                     goto: int | None = None) -> None:
            super().__init__()
            self.pairs = pairs
            self.first = first
            self.generation = generation
            self.goto = goto

    class RowsReread(Message):
        def __init__(self, pairs: list[PairSummary], exhausted: bool, generation: int) -> None:
            super().__init__()
            self.pairs = pairs
            self.exhausted = exhausted
            self.generation = generation

    class CountsLoaded(Message):
        def __init__(self, by_status: dict[str, int], store_total: int) -> None:
            super().__init__()
            self.by_status = by_status
            self.store_total = store_total

    class PairLoaded(Message):
        def __init__(self, pair: PairDetail, diff: SideBySide) -> None:
            super().__init__()
            self.pair = pair
            self.diff = diff

    class StoreChanged(Message):
        def __init__(self, stamp: Stamp) -> None:
            super().__init__()
            self.stamp = stamp

    class Changed(Message):
        """A review action finished: refresh the pair (or every loaded row) and the counts."""

        def __init__(self, pair_id: int | None, note: str, reload_list: bool = False, failed: bool = False) -> None:
            super().__init__()
            self.pair_id = pair_id
            self.note = note
            self.reload_list = reload_list
            self.failed = failed

    class Ask(Message):
        """A worker read what a dialog needs; the dialog opens on the event loop."""

        def __init__(self, kind: str, data: dict[str, Any]) -> None:
            super().__init__()
            self.kind = kind
            self.data = data


    def __init__(self) -> None:
        super().__init__()
        self.query_state = PairQuery()
        self.filter_text = ""
        self.generation = 0
        self.pair: PairDetail | None = None
        self.total_matching: int | None = None
        self._stamp: Stamp | None = None
        self._loading_pair: int | None = None
        self._store_total: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filter-row"):
            yield Input(id="filter", compact=True,
                        placeholder="/ filter: status=pending cc_delta<0 text~sum( (enter)")
            yield Static(id="counts")
        yield PairTable(id="pairs")
        with Vertical(id="review"):
            yield Static(id="pair-header")
            yield Static(id="instruction", classes="block")
            yield Static(id="criteria", classes="block")
            yield Static(id="rejected-metrics", classes="metrics")
            yield Static(id="chosen-metrics", classes="metrics")
            yield DiffView(id="diff", placeholder="")
        yield JobStatus(id="job-status")
        yield Footer(compact=True)

    @property
    def pair_table(self) -> PairTable:
        return self.query_one(PairTable)

    @property
    def diff_view(self) -> DiffView:
        return self.query_one(DiffView)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """The current filter."""
        return self.query_state.conditions

    @property
    def session_id(self) -> str:
        return str(self.app.session_id)  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(POLL_SECONDS, self.check_store_if_written)

    def on_screen_resume(self) -> None:
        self.check_store()

    # loading -----------------------------------------------------------------------------------

    def reload(self, keep: int | None = None) -> None:
        """Start again from the first page of the current filter and order (then go to `keep` if it matches)."""
        self.generation += 1
        self.pair_table.reset()
        self.load_page(self.query_state, None, 0, self.generation, keep)
        self.load_counts(self.query_state.conditions)

    @work(thread=True, exclusive=True, group="pairs-page", exit_on_error=False)
    def load_page(self, query: PairQuery, after_id: int | None, offset: int, generation: int,
                  goto: int | None = None) -> None:
        pairs = self._page(query, after_id, offset, PAGE_SIZE)
        self.post_message(self.PageLoaded(pairs, after_id is None and offset == 0, generation, goto))

    def _page(self, query: PairQuery, after_id: int | None, offset: int, limit: int) -> list[PairSummary]:
        if query.sort == "id":  # keyset pages
            return list_pairs(self.engine, query.conditions, limit=limit, after_id=after_id,
                              descending=query.descending)
        return list_pairs(self.engine, query.conditions, limit=limit, sort=query.sort, descending=query.descending,
                          offset=offset)

    @work(thread=True, exclusive=True, group="pairs-counts", exit_on_error=False)
    def load_counts(self, conditions: tuple[Condition, ...]) -> None:
        by_status = status_counts(self.engine, conditions)
        store_total = sum(by_status.values()) if not conditions else count_pairs(self.engine)
        self.post_message(self.CountsLoaded(by_status, store_total))

    def load_pair(self, pair_id: int) -> None:
        """Read and align a pair in a worker, unless that very pair is being read already."""
        if self._loading_pair != pair_id:
            self._loading_pair = pair_id
            self._read_pair(pair_id)

    @work(thread=True, exclusive=True, group="pair-detail", exit_on_error=False)
    def _read_pair(self, pair_id: int) -> None:
        pair = get_pair(self.engine, pair_id)
        # Made safe and aligned here, off the event loop: a 5,000-line pair takes a while to compare.
        self.post_message(self.PairLoaded(pair, align(code(pair.rejected), code(pair.chosen))))

    @on(PageLoaded)
    def show_page(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return  # a page for a filter or order that has since changed
        table = self.pair_table
        table.add_page(message.pairs)
        if message.goto is not None:
            self.go_to_pair(message.goto, quiet=True)
        elif message.first:
            if message.pairs:
                table.move_cursor(row=0)
                self.load_pair(message.pairs[0].id)
            else:
                self.show_pair(None, self._empty_text())

    @on(PairTable.MoreWanted)
    def load_more(self, message: PairTable.MoreWanted) -> None:
        self.load_page(self.query_state, message.after_id, message.offset, self.generation)

    @on(CountsLoaded)
    def show_counts(self, message: CountsLoaded) -> None:
        total = sum(message.by_status.values())
        self.total_matching = total
        order = dict(SORTS)[self.query_state.sort]
        arrow = "↓" if self.query_state.descending else "↑"
        text = f"{total:,} pairs · {status_mix(message.by_status)} · by {order.split(' (')[0]} {arrow}"
        self.query_one("#counts", Static).update(line(text))
        self._store_total = message.store_total
        if total == 0:
            self.show_pair(None, self._empty_text())

    def _empty_text(self) -> str:
        """What an empty list means: an empty store (how to fill it) or a filter that matches nothing."""
        return NO_MATCH if self.conditions and self._store_total != 0 else NO_PAIRS

    @on(DataTable.RowHighlighted, "#pairs")
    def follow_cursor(self) -> None:
        pair_id = self.pair_table.current_id
        if pair_id is not None and (self.pair is None or self.pair.id != pair_id):
            self.load_pair(pair_id)

    @on(DataTable.HeaderSelected, "#pairs")
    def sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        sort = next((s for _label, key, s, _width in COLUMNS if key == event.column_key.value), None)
        if sort is None:
            self.notify("This column does not sort; O lists the orders.", markup=False)
            return
        descending = not self.query_state.descending if sort == self.query_state.sort else sort != "id"
        self.apply_sort((sort, descending))

    @on(PairLoaded)
    def show_loaded_pair(self, message: PairLoaded) -> None:
        if self._loading_pair == message.pair.id:
            self._loading_pair = None
        if self.pair_table.current_id == message.pair.id:
            self.show_pair(message.pair, diff=message.diff)

    def show_pair(self, pair: PairDetail | None, empty: str = "", diff: SideBySide | None = None) -> None:
        """Fill the review pane; every text from the pair is shown as plain, visible text."""
        same_pair = pair is not None and self.pair is not None and self.pair.id == pair.id
        self.pair = pair
        if pair is None:
            for widget_id in ("instruction", "criteria", "rejected-metrics", "chosen-metrics"):
                self.query_one(f"#{widget_id}", Static).update("")
            self.query_one("#pair-header", Static).update(line(empty))
            self.diff_view.show(None, placeholder="")
            return
        lineage = " ".join(x for x in (
            f"commit {pair.commit_id}" if pair.commit_id else "",
            f"instruction {pair.instruction_id}" if pair.instruction_id else "",
            f"conversation {pair.conversation_id}" if pair.conversation_id else "") if x)
        self.query_one("#pair-header", Static).update(line(
            f"pair {pair.id} · {pair.status} · {pair.source} · {pair.language}"
            + (f" · {lineage}" if lineage else "") + " · i full texts · o source"))
        self.query_one("#instruction", Static).update(
            Text.assemble(("instruction ", "bold"), one_line(pair.instruction, 1000)))
        self.query_one("#criteria", Static).update(
            Text.assemble(("criteria ", "bold"), one_line(pair.criteria, 1000)))
        self.query_one("#rejected-metrics", Static).update(line(_metrics_line(pair.analysis, "rejected")))
        self.query_one("#chosen-metrics", Static).update(line(_metrics_line(pair.analysis, "chosen")))
        if diff is not None:
            self.diff_view.show(diff, left_title=f"rejected · {diff.left_count} lines",
                                right_title=f"chosen · {diff.right_count} lines", keep_position=same_pair)

    # freshness ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="pairs-stamp", exit_on_error=False)
    def check_store(self) -> None:
        self.post_message(self.StoreChanged(pairs_stamp(self.engine)))

    @on(StoreChanged)
    def follow_store(self, message: StoreChanged) -> None:
        if self._stamp is None:
            self._stamp = message.stamp
            return
        if message.stamp != self._stamp:
            self._stamp = message.stamp
            self.reread_rows()

    def reread_rows(self) -> None:
        """Re-read every loaded row (and the counts and the shown pair) from the store."""
        table = self.pair_table
        self.reread(self.query_state, max(table.row_count, PAGE_SIZE), self.generation)
        self.load_counts(self.query_state.conditions)
        if table.current_id is not None:
            self._loading_pair = None  # the shown pair may have changed: read it again
            self.load_pair(table.current_id)

    @work(thread=True, exclusive=True, group="pairs-reread", exit_on_error=False)
    def reread(self, query: PairQuery, rows: int, generation: int) -> None:
        limit = min(rows, REFRESH_LIMIT)
        pairs = self._page(query, None, 0, limit)
        self.post_message(self.RowsReread(pairs, len(pairs) < limit, generation))

    @on(RowsReread)
    def show_reread(self, message: RowsReread) -> None:
        if message.generation == self.generation:
            self.pair_table.replace_rows(message.pairs, message.exhausted)
            if not message.pairs:
                self.show_pair(None, self._empty_text())

    # filter, sort, jump --------------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Submitted, "#filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        try:
            conditions = parse_filter(event.value)
        except WorkbenchError as exc:
            # The field stays focused and marked: what is typed next corrects the filter.
            event.input.add_class("-invalid")
            event.input.focus()
            self.notify(one_line(str(exc), 300), severity="error", markup=False)
            return
        event.input.remove_class("-invalid")
        self.query_state = PairQuery(conditions, self.query_state.sort, self.query_state.descending)
        self.filter_text = " ".join(filter_spec(conditions))
        self.reload()
        self.pair_table.focus()

    def action_sort(self) -> None:
        self.app.push_screen(SortDialog(self.query_state.sort, self.query_state.descending), self.apply_sort)

    def apply_sort(self, choice: tuple[str, bool] | None) -> None:
        if choice is not None:
            self.query_state = PairQuery(self.query_state.conditions, *choice)
            self.reload(keep=self.pair_table.current_id)

    def action_jump(self) -> None:
        query = self.query_state

        def check(value: str) -> str | None:
            return None if value.isdigit() else "give a pair id (a whole number)"

        def locate(value: str) -> tuple[int, int]:
            pair_id = int(value)
            position = pair_position(self.engine, query.conditions, pair_id, sort=query.sort,
                                     descending=query.descending)
            if position is None:
                raise NotFoundError(f"pair {pair_id} does not exist or does not match the filter")
            return pair_id, position

        def chosen(found: tuple[int, int] | None) -> None:
            if found is not None and query == self.query_state:
                self.go_to_pair(*found)

        self.app.push_screen(AskDialog("Jump to a pair", "pair id", check=check, input_type="integer",
                                       attempt=locate), chosen)

    def action_next_unreviewed(self) -> None:
        self.find_next(self.pair_table.current_id, self.query_state, self.generation)

    @work(thread=True, exclusive=True, group="pairs-next", exit_on_error=False)
    def find_next(self, after_id: int | None, query: PairQuery, generation: int) -> None:
        found = next_unreviewed(self.engine, query.conditions, after_id=after_id)
        if found is None:
            self.post_message(self.Changed(None, "No pending pair matches the filter."))
            return
        position = pair_position(self.engine, query.conditions, found, sort=query.sort, descending=query.descending)
        self.post_message(self.Ask("goto", {"pair_id": found, "position": position, "generation": generation}))

    def go_to_pair(self, pair_id: int, position: int | None = None, *, quiet: bool = False) -> None:
        """Move the cursor to a pair, loading pages until it is in the table."""
        table = self.pair_table
        row = table.row_of(pair_id)
        if row is not None:
            table.move_cursor(row=row)
            return
        if position is None:
            if not quiet:
                self.notify(f"pair {pair_id} does not exist or does not match the filter.", markup=False)
            return
        self.load_until(self.query_state, table.last_id, table.row_count, position, pair_id, self.generation)

    @work(thread=True, exclusive=True, group="pairs-page", exit_on_error=False)
    def load_until(self, query: PairQuery, after_id: int | None, offset: int, position: int, pair_id: int,
                   generation: int) -> None:
        # One read up to the pair's position (plus a page past it), instead of a page per round trip.
        pairs = self._page(query, after_id, offset, max(PAGE_SIZE, position - offset + PAGE_SIZE))
        self.post_message(self.PageLoaded(pairs, False, generation, goto=pair_id))

    @on(Ask)
    def answer(self, message: Ask) -> None:
        data = message.data
        if message.kind == "goto":
            if data["generation"] == self.generation:
                self.go_to_pair(data["pair_id"], data["position"])
        elif message.kind == "bulk":
            conditions, filter_text = self.query_state.conditions, self.filter_text
            self.app.push_screen(BulkDialog(data["matching"], filter_text, data["by_status"],
                                            lambda choice: self.check_bulk(choice, conditions, filter_text)),
                                 self.confirm_bulk)
        elif message.kind == "export":
            from stores.training.exports import DEFAULT_EXPORT_FILTER

            conditions = self.query_state.conditions
            self.app.push_screen(ExportDialog(self.filter_text, data["by_status"], data["accepted"], data["default"],
                                              DEFAULT_EXPORT_FILTER, lambda choice: self.check_export(choice, conditions)),
                                 self.export_chosen)
        elif message.kind == "undo":
            action = data["action"]
            confirm(self.app, f"Undo “{action.action}”?",
                    f"It restores the {action.pair_count:,} pair(s) it changed; pairs changed since by another "
                    "session or the CLI are left as they are.", "Undo", lambda: self.run_undo(action.id))
        elif message.kind == "source":
            self.app.push_screen(TextDialog(data["text"], f"Source of pair {data['pair_id']}"))
        elif message.kind == "cdf":
            self.app.push_screen(CdfDialog(data["summary"]))

    def action_zoom(self) -> None:
        self.toggle_class("-zoom")

    def action_next_change(self) -> None:
        self.diff_view.action_next_change()

    def action_previous_change(self) -> None:
        self.diff_view.action_previous_change()

    def action_details(self) -> None:
        if self.pair is not None:
            self.app.push_screen(TextDialog(details_text(self.pair), f"Pair {self.pair.id}"))

    # review actions ----------------------------------------------------------------------------

    def action_review(self, action: str) -> None:
        if self.pair is not None:
            self.run_change("status", self.pair.id, action)

    def action_flip(self) -> None:
        if self.pair is not None:
            self.run_change("flip", self.pair.id, "")

    def action_edit_criteria(self) -> None:
        pair = self.pair
        if pair is None:
            return

        def save(criteria: str) -> str:  # in the editor's thread: an empty text is refused there
            edit_criteria(self.engine, pair.id, criteria, session_id=self.session_id)
            return criteria

        def saved(criteria: str | None) -> None:
            if criteria is not None:
                self.post_message(self.Changed(pair.id, f"pair {pair.id}: criteria saved"))

        self.app.push_screen(CriteriaEditor(pair.criteria, save), saved)

    @work(thread=True, exclusive=False, group="pairs-change", exit_on_error=False)
    def run_change(self, kind: str, pair_id: int, value: str) -> None:
        try:
            if kind == "status":
                set_status(self.engine, [pair_id], value, label=f"{value} pair {pair_id}", session_id=self.session_id)
                note = f"pair {pair_id}: {value}"
            else:
                flip_pair(self.engine, pair_id, session_id=self.session_id)
                note = f"pair {pair_id}: chosen and rejected swapped"
        except WorkbenchError as exc:
            self.post_message(self.Changed(pair_id, str(exc), failed=True))
            return
        self.post_message(self.Changed(pair_id, note))

    def action_undo(self) -> None:
        self.find_undo(self.session_id)

    @work(thread=True, exclusive=True, group="pairs-undo", exit_on_error=False)
    def find_undo(self, session_id: str) -> None:
        action = last_session_action(self.engine, session_id)
        if action is None:
            self.post_message(self.Changed(None, "Nothing to undo in this session (the CLI's and other sessions' "
                                                 "actions are theirs to undo)."))
            return
        self.post_message(self.Ask("undo", {"action": action}))

    @work(thread=True, exclusive=True, group="pairs-undo", exit_on_error=False)
    def run_undo(self, action_id: int) -> None:
        try:
            outcome = undo_action(self.engine, action_id)
        except WorkbenchError as exc:
            self.post_message(self.Changed(None, str(exc), failed=True))
            return
        note = f"undid {outcome.action}: {outcome.restored:,} pair(s) restored"
        if outcome.skipped:
            note += f", {outcome.skipped:,} left alone (changed since)"
        self.post_message(self.Changed(None, note, reload_list=True))

    @on(Changed)
    def after_change(self, message: Changed) -> None:
        self.notify(one_line(message.note, 300), markup=False, timeout=6 if message.failed else 3,
                    severity="error" if message.failed else "information")
        if message.reload_list:
            self.reread_rows()
        elif message.pair_id is not None:
            self.refresh_pair(message.pair_id)
            self.load_counts(self.query_state.conditions)

    @work(thread=True, exclusive=False, group="pairs-refresh", exit_on_error=False)
    def refresh_pair(self, pair_id: int) -> None:
        page = list_pairs(self.engine, (Condition("id", "=", float(pair_id)),), limit=1)
        self.post_message(self.RowsReread(page, True, -1))  # generation -1: one row, updated in place
        detail = get_pair(self.engine, pair_id)
        self.post_message(self.PairLoaded(detail, align(code(detail.rejected), code(detail.chosen))))

    @on(RowsReread)
    def update_one_row(self, message: RowsReread) -> None:
        if message.generation == -1:
            for pair in message.pairs:
                self.pair_table.replace_pair(pair)

    # bulk --------------------------------------------------------------------------------------

    def action_bulk(self) -> None:
        self.open_bulk(self.query_state.conditions)

    @work(thread=True, exclusive=True, group="pairs-bulk", exit_on_error=False)
    def open_bulk(self, conditions: tuple[Condition, ...]) -> None:
        by_status = status_counts(self.engine, conditions)
        self.post_message(self.Ask("bulk", {"matching": sum(by_status.values()), "by_status": by_status}))

    def check_bulk(self, choice: str, conditions: tuple[Condition, ...], filter_text: str) -> dict[str, str]:
        """Count what the action would change (rules: per rule, within the filter): what the confirmation says.

        Called by the bulk dialog in a thread; an unknown action or a bad rule file raises its domain error.
        """
        from stores.curation.analyses import apply_rules

        scope = filter_text or "every pair (no filter)"
        if choice in ACTIONS:
            matching = count_pairs(self.engine, conditions)
            title = f"{choice.capitalize()} {matching:,} pairs matching {scope}?"
            body = "One undoable step: u undoes it."
            label = choice.capitalize()
        else:
            rules = load_rules(Path(choice))
            scoped = [type(rule)(rule.name, (*conditions, *rule.conditions), rule.action) for rule in rules]
            counts = apply_rules(self.engine, scoped, dry_run=True)
            title = f"Apply {len(rules)} rule(s) from {choice} to the pairs matching {scope}?"
            body = "\n".join(f"{rule.name}: {rule.action} {count:,} pairs" for rule, count in counts)
            body += "\nEach rule is one undoable step (later rules win)."
            label = "Apply the rules"
        return {"title": title, "body": body, "label": label, "choice": choice}

    def confirm_bulk(self, data: dict[str, str] | None) -> None:
        if data is not None:
            conditions = self.query_state.conditions
            confirm(self.app, data["title"], data["body"], data["label"],
                    lambda: self.run_bulk(data["choice"], conditions))

    @work(thread=True, exclusive=True, group="pairs-bulk", exit_on_error=False)
    def run_bulk(self, choice: str, conditions: tuple[Condition, ...]) -> None:
        from stores.curation.analyses import apply_rules

        try:
            if choice in ACTIONS:
                changed = set_status(self.engine, matching_ids(self.engine, conditions), choice,
                                     label=f"bulk {choice} ({' '.join(filter_spec(conditions)) or 'all pairs'})",
                                     session_id=self.session_id)
                note = f"{choice}: {changed:,} pairs changed"
            else:
                rules = load_rules(Path(choice))
                scoped = [type(rule)(rule.name, (*conditions, *rule.conditions), rule.action) for rule in rules]
                counts = apply_rules(self.engine, scoped, session_id=self.session_id)
                note = "; ".join(f"{rule.name}: {rule.action} {count:,}" for rule, count in counts)
        except WorkbenchError as exc:
            self.post_message(self.Changed(None, str(exc), failed=True))
            return
        self.post_message(self.Changed(None, note, reload_list=True))

    # jobs: analyse, dedupe, decontaminate, export ----------------------------------------------
    # Each is queued in the store and run by a worker process (started detached when none runs):
    # process pools cannot start inside the TUI, and quitting it must not stop them.

    ANALYSE_WORKERS = 2

    def action_analyse(self) -> None:
        from workbench.jobs.curate import ANALYSE, AnalyseParams

        self.queue_job("analyse pairs", ANALYSE.name, AnalyseParams(workers=self.ANALYSE_WORKERS, dedupe=True))

    def action_dedupe(self) -> None:
        from workbench.jobs.curate import DEDUPE, DedupeParams

        self.queue_job("dedupe pairs", DEDUPE.name, DedupeParams())

    def action_decontaminate(self) -> None:
        import os

        from core.evaluation.bench import BENCH_ENV_VAR

        def check(value: str) -> str | None:
            return None if value and Path(value).expanduser().is_dir() else f"{value or '(empty)'}: not a folder"

        def queue(value: str) -> JobInfo:  # in the dialog's thread: a refused folder keeps the dialog open
            from workbench.jobs.curate import DECONTAMINATE, DecontaminateParams
            from workbench.jobs.queue import enqueue

            return enqueue(self.engine, DECONTAMINATE.name,
                           DecontaminateParams(bench_dir=str(Path(value).expanduser().resolve())))

        def queued(job: JobInfo | None) -> None:
            if job is not None:
                self.job_status.follow(job.id, "decontaminate")

        self.app.push_screen(AskDialog("Decontaminate against CodePrefBench", "benchmark folder",
                                       value=os.environ.get(BENCH_ENV_VAR, ""), check=check, attempt=queue), queued)

    @work(thread=True, exclusive=False, group="pairs-start", exit_on_error=False)
    def queue_job(self, label: str, kind: str, params: object) -> None:
        """Queue a job for a worker and follow it on this screen's status line until it ends."""
        from workbench.jobs.queue import enqueue

        try:
            job = enqueue(self.engine, kind, params)
        except WorkbenchError as exc:
            text = f"{label}: {exc}"
            self.app.call_from_thread(self.job_status.say, text, failed=True)
            self.app.call_from_thread(self.notify, one_line(text, 300), severity="error", markup=False, timeout=8)
            return
        self.app.call_from_thread(self.job_status.follow, job.id, label)

    @property
    def job_status(self) -> JobStatus:
        return self.query_one(JobStatus)

    @on(JobStatus.Ended)
    def job_ended(self, message: JobStatus.Ended) -> None:
        for job in message.jobs:
            if job.kind == "export" and job.state == "done":  # say where it went
                self.job_status.say(f"export {job.summary.get('export_id')}: {job.summary.get('pairs', 0):,} pairs → "
                                    f"{job.params.get('out_dir')}")
        self.reread_rows()

    def action_export(self) -> None:
        self.open_export(self.query_state.conditions)

    @work(thread=True, exclusive=True, group="pairs-export", exit_on_error=False)
    def open_export(self, conditions: tuple[Condition, ...]) -> None:
        from stores.training.exports import export_conditions

        by_status = status_counts(self.engine, conditions)
        accepted = count_pairs(self.engine, export_conditions((*conditions, Condition("status", "=", "accepted"))))
        default = count_pairs(self.engine, export_conditions(conditions))
        self.post_message(self.Ask("export", {"by_status": by_status, "accepted": accepted, "default": default}))

    def check_export(self, choice: ExportChoice, conditions: tuple[Condition, ...]) -> ExportChoice:
        """The export job's own checks of the folder and options, before the confirmation (run by the export
        dialog in a thread; a refused export raises its domain error)."""
        from workbench.jobs.export import EXPORT

        if EXPORT.check is not None:
            EXPORT.check(self.engine, self._export_params(choice, conditions))
        return choice

    def export_chosen(self, choice: ExportChoice | None) -> None:
        if choice is None:
            return
        out = Path(choice.out_dir).expanduser().resolve()
        scope = "accepted" if choice.accepted_only else "not rejected, flagged or duplicate"
        body = f"formats: {', '.join(choice.formats)}\nfolder: {out}"
        if out.is_dir() and any(out.iterdir()):
            body += ("\nThe folder holds an earlier export: it is replaced as a whole (its files are removed) "
                     "once this export is complete.")
        conditions = self.query_state.conditions
        confirm(self.app, f"Export the {scope} pairs of the filter?", body, "Export",
                lambda: self.queue_export(choice, conditions))

    def _export_params(self, choice: ExportChoice, conditions: tuple[Condition, ...]) -> Any:
        from core.training.export import ExportOptions
        from workbench.jobs.export import ExportParams

        if choice.accepted_only:
            conditions = (*conditions, Condition("status", "=", "accepted"))
        return ExportParams(out_dir=str(Path(choice.out_dir).expanduser().resolve()),
                            where=tuple(filter_spec(conditions)), options=ExportOptions(formats=choice.formats),
                            force=True)  # the confirmation said the earlier export is replaced

    def queue_export(self, choice: ExportChoice, conditions: tuple[Condition, ...]) -> None:
        from workbench.jobs.export import EXPORT

        self.queue_job("export", EXPORT.name, self._export_params(choice, conditions))

    # views of one pair -------------------------------------------------------------------------

    def action_open_source(self) -> None:
        if self.pair is not None:
            self.open_source(self.pair.id)

    @work(thread=True, exclusive=True, group="pairs-source", exit_on_error=False)
    def open_source(self, pair_id: int) -> None:
        self.post_message(self.Ask("source", {"text": pair_source(self.engine, pair_id), "pair_id": pair_id}))

    def action_show_cdf(self) -> None:
        self.open_cdf()

    @work(thread=True, exclusive=True, group="pairs-cdf", exit_on_error=False)
    def open_cdf(self) -> None:
        runs = [job for job in list_jobs(self.engine, kind="decontaminate", limit=20) if job.state == "done"]
        self.post_message(self.Ask("cdf", {"summary": runs[0].summary if runs else None}))

