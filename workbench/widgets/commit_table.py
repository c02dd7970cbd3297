"""CommitTable: commit records loaded a page at a time as the cursor nears the end."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import zip_longest

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on
from textual._types import SegmentLines
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import RowRenderables
from textual.widgets.data_table import Row, RowKey

from core.mining.records import StoredCommit
from core.textsafe import one_line

# The first page is small, so the screen opens at once; later pages are read ahead in a worker as the
# cursor nears the end. At a page-down of 30-40 rows a 200-row page lasted 5 presses, so every fifth
# press also paid a page's fixed costs (a worker, a query, a layout pass); 1,000 rows last 25 presses.
FIRST_PAGE_SIZE = 200
PAGE_SIZE = 1000
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
        self._pass_styles: dict[str, Style] = {}
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        # A few screens of rendered rows and cells (DataTable keeps 1,000 rows and 10,000 cells): the rest
        # lived long enough to reach the garbage collector's oldest generation and make its full passes.
        self._cell_render_cache = LRUCache(2000)
        self._row_render_cache = LRUCache(200)
        self._row_renderable_cache = LRUCache(200)
        self._line_cache = LRUCache(200)
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
        """Add one page of rows (one add_rows call): FIRST_PAGE_SIZE records first, then PAGE_SIZE."""
        if len(commits) < (FIRST_PAGE_SIZE if self.last_id is None else PAGE_SIZE):
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
        # DataTable.add_row, for a whole page at once: each call re-validates the cursor, wakes the idle
        # handler and bumps the update count, which keys every render cache. Appended rows change
        # nothing about the rows already there, so those caches stay valid and a page arriving
        # re-renders none of the rows on screen.
        column_keys = [column.key for column in self.ordered_columns]
        locations, data, table_rows, new_rows = self._row_locations, self._data, self.rows, self._new_rows
        first_index = len(table_rows)
        keys: list[RowKey] = []
        for index, cells in enumerate(rows, first_index):
            values = tuple(cells)
            if len(values) > len(column_keys):
                raise ValueError("More values provided than there are columns.")
            key = RowKey()
            locations[key] = index
            data[key] = dict(zip_longest(column_keys, values))
            table_rows[key] = Row(key, 1)
            new_rows.add(key)
            keys.append(key)
        if keys:
            self._require_update_dimensions = True
            self.cursor_coordinate = self.cursor_coordinate
            if first_index == 0 and self.columns and self.show_cursor and self.cursor_type != "none":
                self._highlight_cursor()  # a cursor position has opened up, as add_row announces it
            self.check_idle()
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

    def render_lines(self, crop: Region) -> list[Strip]:
        self._pass_styles = {}  # component styles are looked up once per rendering pass
        return super().render_lines(crop)

    def notify_style_update(self) -> None:
        self._pass_styles = {}
        super().notify_style_update()

    def _component_rich_style(self, name: str) -> Style:
        style = self._pass_styles.get(name)
        if style is None:
            style = self._pass_styles[name] = self.get_component_styles(name).rich_style
        return style

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        if row_index == -1:
            return self._component_rich_style("datatable--header")
        if row_index < self.fixed_rows:
            return self._component_rich_style("datatable--fixed")
        if self.zebra_stripes:
            return self._component_rich_style("datatable--odd-row" if row_index % 2 else "datatable--even-row")
        return base_style

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
                            hover_location: Coordinate) -> tuple[SegmentLines, SegmentLines]:
        # DataTable's own, less what this table never has (row labels, fixed columns, a cell or column
        # cursor), and with the styles it looks up for every line taken once per rendering pass.
        cursor_type = self.cursor_type
        if cursor_type != "row" or self.fixed_columns or self._should_render_row_labels:
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        show_cursor = self.show_cursor
        cache_key = (row_key, line_no, base_style, cursor_location, hover_location, cursor_type, show_cursor,
                     self._show_hover_cursor, self._update_count, self._pseudo_class_state)
        cached = self._row_render_cache.get(cache_key)
        if cached is not None:
            return cached
        should_highlight = self._should_highlight
        located = self._row_locations.get(row_key)
        row_index = -1 if located is None else located  # the header's key has no location
        row_style = self._get_row_style(row_index, base_style)
        widths = [column.get_render_width(self) for column in self.ordered_columns]
        scrollable_row: SegmentLines = []
        for column_index, width in enumerate(widths):
            cell_location = Coordinate(row_index, column_index)
            scrollable_row.append(self._render_cell(
                row_index, column_index, row_style, width,
                cursor=should_highlight(cursor_location, cell_location, cursor_type),
                hover=should_highlight(hover_location, cell_location, cursor_type),
            )[line_no])
        remaining_space = max(0, self.size.width - sum(widths))
        extend_style, _ = self._get_styles_to_render_cell(
            row_index == -1, False, False,
            should_highlight(hover_location, Coordinate(row_index or 0, 0), cursor_type),
            row_index == cursor_location.row, show_cursor, self._show_hover_cursor, False, False)
        extend_style = row_style + extend_style + Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        scrollable_row.append([Segment(" " * remaining_space, extend_style)])
        row_pair: tuple[SegmentLines, SegmentLines] = ([], scrollable_row)
        self._row_render_cache[cache_key] = row_pair
        return row_pair

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
