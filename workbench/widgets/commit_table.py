"""CommitTable: commit records loaded a page at a time as the cursor nears the end."""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on
from textual._types import SegmentLines
from textual.cache import LRUCache
from textual.geometry import Region
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets._data_table import RowRenderables
from textual.widgets.data_table import Row, RowKey

from core.mining.records import StoredCommit
from core.textsafe import one_line

PAGE_SIZE = 200
PREFETCH_ROWS = 60
PATH_LIMIT = 36
SUBJECT_LIMIT = 72
AUTHOR_LIMIT = 24
# (label, width, style): the subject comes early, since at 100 columns everything from the author
# on may be off screen. Fixed widths: pages are appended, and rows already rendered keep their width.
COLUMNS = (("id", 7, ""), ("date", 10, ""), ("+", 5, "green"), ("-", 5, "red"), ("path", PATH_LIMIT, ""),
           ("subject", SUBJECT_LIMIT, ""), ("author", AUTHOR_LIMIT, ""), ("sha", 10, ""), ("repo", 24, ""))


def _short_path(path: str) -> str:
    """A long path keeps its end (the file name), which says most."""
    return path if len(path) <= PATH_LIMIT else "…" + path[-(PATH_LIMIT - 1):]


def _cells(commit: StoredCommit) -> tuple[str, ...]:
    """A row's cells: visible text (core.textsafe), never markup."""
    return (
        str(commit.id), commit.authored_at.strftime("%Y-%m-%d"), f"+{commit.lines_added}",
        f"-{commit.lines_removed}", one_line(_short_path(commit.path), PATH_LIMIT),
        one_line(commit.subject, SUBJECT_LIMIT), one_line(commit.author, AUTHOR_LIMIT), one_line(commit.sha[:10]),
        one_line(commit.repository_name, 24),
    )


class CommitTable(DataTable[str]):
    """Shows commit records; asks its screen for the next page instead of holding every row.

    Cells are held as plain strings, shown as plain text by `_compute_row_renderables` (a string
    cell in a DataTable would otherwise be parsed as markup): 100,000 records paged in are 900,000
    cells, and Text objects for each made the garbage collector's full passes stall key presses.
    """

    class NeedMore(Message):
        """The cursor is near the last loaded row; `after_id` is the last id shown."""

        def __init__(self, after_id: int) -> None:
            super().__init__()
            self.after_id = after_id

    class CommitChosen(Message):
        def __init__(self, commit_id: int) -> None:
            super().__init__()
            self.commit_id = commit_id

    def __init__(self, **kwargs: object) -> None:
        # Row order and line index, extended as pages are appended (see `ordered_rows`).
        self._indexed_locations: object = None
        self._rows_in_order: list[Row] = []
        self._line_index: list[tuple[RowKey, int]] = []
        self._row_tops: list[int] = []
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        # A few screens of cells (DataTable keeps 10,000): the rest only fed the garbage collector.
        self._cell_render_cache = LRUCache(2000)
        self.last_id: int | None = None
        self.exhausted = False
        self._asked_after: int | None = None
        self._ids: list[int] = []

    def on_mount(self) -> None:
        for label, width, _style in COLUMNS:
            self.add_column(label, width=width)

    def reset(self) -> None:
        """Drop every row before a new filter's first page."""
        self.clear()
        self._ids = []
        self.last_id = None
        self.exhausted = False
        self._asked_after = None

    def append_page(self, commits: list[StoredCommit]) -> None:
        """Add one page of rows (one add_rows call)."""
        if len(commits) < PAGE_SIZE:
            self.exhausted = True
        if not commits:
            return
        self.add_rows([_cells(commit) for commit in commits])
        self._ids.extend(c.id for c in commits)
        self.last_id = commits[-1].id

    def _compute_row_renderables(self, row_index: int) -> RowRenderables:
        if row_index < 0:  # the header
            return super()._compute_row_renderables(row_index)
        return RowRenderables(None, [
            Text(value, style=style, no_wrap=True, overflow="ellipsis")
            for value, (_label, _width, style) in zip(self.get_row_at(row_index), COLUMNS)
        ])

    # DataTable's per-page costs that a table of fixed-width, one-line, plain-text cells does not need ---

    def _index_rows(self) -> bool:
        """Bring the row order and line index up to date; False when they cannot be kept incrementally."""
        locations = self._row_locations
        if locations is not self._indexed_locations:
            # clear(), sort() and remove_row() replace the locations: start again.
            self._indexed_locations = locations
            self._rows_in_order = []
            self._line_index = []
            self._row_tops = []
        ordered, lines, tops, rows = self._rows_in_order, self._line_index, self._row_tops, self.rows
        for index in range(len(ordered), len(rows)):
            row_key = locations.get_key(index)
            row = rows[row_key] if row_key is not None else None
            if row is None or row.auto_height:  # its height is only known later
                self._indexed_locations = None
                return False
            ordered.append(row)
            tops.append(len(lines))
            lines.extend((row.key, y) for y in range(row.height))
        return True

    def add_rows(self, rows: Iterable[Iterable[str]]) -> list[RowKey]:
        # Appended rows change nothing about the rows already there, so the render caches (keyed by
        # DataTable's update count, which every added row bumps) stay valid: a page arriving then
        # costs no re-render of the rows on screen.
        update_count = self._update_count
        keys = super().add_rows(rows)
        if self._index_rows():
            self._update_count = update_count
        return keys

    @property
    def ordered_rows(self) -> list[Row]:
        # Pages are only appended: DataTable rebuilds this list (and the line index below) from every
        # row whenever any row is added, which at 10,000 rows made each new page stall a key press.
        return self._rows_in_order if self._index_rows() else super().ordered_rows

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        return self._line_index if self._index_rows() else DataTable._y_offsets.fget(self)  # type: ignore[attr-defined]

    def _get_row_region(self, row_index: int) -> Region:
        # DataTable sums the heights of every row above (each cursor move, 10,000 rows deep).
        if not self._index_rows() or not self.is_valid_row_index(row_index):
            return super()._get_row_region(row_index)
        row = self._rows_in_order[row_index]
        row_width = (sum(column.get_render_width(self) for column in self.columns.values())
                     + self._row_label_column_width)
        y = self._row_tops[row_index] + (self.header_height if self.show_header else 0)
        return Region(0, y, max(self.size.width, row_width), row.height)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Every column has a fixed width and every row one line, so the new rows' cells need no
        # measuring (DataTable measures each cell of each page only to size auto-width columns).
        super()._update_dimensions(())

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> SegmentLines:
        # Paging shows a screenful of new rows on every press; DataTable renders each of their cells
        # through Rich's Padding and Text layout. A one-line plain text cell comes out of that as
        # padding, the text cut to the column with an ellipsis, and filler: built here directly, with
        # the same characters and styles (tests/workbench/test_commit_table.py compares the two).
        row_key = self._row_locations.get_key(row_index) if row_index >= 0 else None
        column_key = self._column_locations.get_key(column_index) if column_index >= 0 else None
        plain = self._data[row_key].get(column_key) if row_key is not None and column_key is not None else None
        padding = self.cell_padding
        inner = width - 2 * padding
        if (row_key is None or column_key is None or type(plain) is not str or column_index >= len(COLUMNS)
                or row_index < self.fixed_rows or column_index < self.fixed_columns or inner < 2
                or self.rows[row_key].height != 1 or "\n" in plain or "\t" in plain):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor, self._update_count,
                     self._pseudo_class_state)
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        if cell_len(plain) > inner:
            plain = set_cell_size(plain, inner - 1) + "…"
        style = COLUMNS[column_index][2]
        text_style = pre_style + self.app.console.get_style(style) if style else pre_style
        blank_style = pre_style
        if post_style:
            text_style = text_style + post_style if text_style else post_style
            blank_style = blank_style + post_style if blank_style else post_style
        segments = [Segment(" " * padding, blank_style)] if padding else []
        if plain:
            segments.append(Segment(plain, text_style))
        if (fill := inner - cell_len(plain)) > 0:
            segments.append(Segment(" " * fill, blank_style))
        if padding:
            segments.append(Segment(" " * padding, blank_style))
        lines = [segments]
        self._cell_render_cache[cache_key] = lines
        return lines

    @on(DataTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        self._maybe_ask_for_more(self.cursor_row)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._maybe_ask_for_more(int(new_value) + self.size.height)

    def _maybe_ask_for_more(self, row: int) -> None:
        if self.exhausted or self.last_id is None or self._asked_after == self.last_id:
            return
        if row >= self.row_count - PREFETCH_ROWS:
            self._asked_after = self.last_id
            self.post_message(self.NeedMore(self.last_id))

    @on(DataTable.RowSelected)
    def choose(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self._ids):
            self.post_message(self.CommitChosen(self._ids[event.cursor_row]))
