"""CommitTable draws its cells without Rich's layout: the result must equal DataTable's own rendering."""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import product

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from core.mining.records import StoredCommit
from tests.fixtures import HOSTILE_ALL, HOSTILE_TEXT
from tests.workbench.helpers import UNSAFE
from workbench.widgets.commit_table import COLUMNS, FIRST_PAGE_SIZE, PAGE_SIZE, CommitTable

TEXTS = [
    HOSTILE_ALL, "", "x", "ünïcödé", "宽字符的提交说明" * 6, "emoji 🎉🎉 done", "a" * 200, "tail end " * 20,
]


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield CommitTable()


class BothApp(App[None]):
    """A CommitTable beside a stock DataTable (fixed widths, Text cells) that gets the same rows at once."""

    CSS = "DataTable { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield CommitTable()
        yield DataTable(cursor_type="row", zebra_stripes=True, id="stock")

    def on_mount(self) -> None:
        stock = self.query_one("#stock", DataTable)
        for label, width, _style in COLUMNS:
            stock.add_column(label, width=width)


def _commits(count: int, first: int = 0) -> list[StoredCommit]:
    moment = datetime(2024, 5, 6, tzinfo=timezone.utc)
    return [
        StoredCommit(index + 1, 1, TEXTS[index % len(TEXTS)], f"{index:040x}", TEXTS[(index + 1) % len(TEXTS)],
                     moment, TEXTS[(index + 2) % len(TEXTS)], f"src/{TEXTS[(index + 3) % len(TEXTS)]}.py",
                     "python", index * 7, index % 5)
        for index in range(first, first + count)
    ]


def _cells(lines: list[list[Segment]]) -> list[list[tuple[str, Style | None]]]:
    """What a terminal shows: each character with its style, whatever the segments' boundaries."""
    return [[(char, segment.style) for segment in line for char in segment.text] for line in lines]


async def test_cells_render_as_datatable_renders_them() -> None:
    app = TableApp()
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(CommitTable)
        table.append_page(_commits(24))
        await pilot.pause()
        table.move_cursor(row=3)
        await pilot.pause()
        base = table.rich_style
        compared = 0
        for row, column in product(range(table.row_count), range(len(table.columns))):
            for width, cursor, hover in product((1, 2, 3, 5, 12, 40, 80), (False, True), (False, True)):
                table._cell_render_cache.clear()
                fast = table._render_cell(row, column, base, width, cursor, hover)
                table._cell_render_cache.clear()
                stock = DataTable._render_cell(table, row, column, base, width, cursor, hover)
                assert _cells(fast) == _cells(stock), (row, column, width, cursor, hover)
                compared += 1
        assert compared == 24 * 9 * 28


async def test_cells_are_plain_visible_text() -> None:
    app = TableApp()
    async with app.run_test(size=(260, 12)) as pilot:
        table = app.query_one(CommitTable)
        table.append_page(_commits(8))
        await pilot.pause()
        # Row 0 (line 1, under the header) holds HOSTILE_ALL as its repository, row 7 as its author.
        shown = [table.render_line(y).text for y in (1, 8)]
        assert HOSTILE_TEXT[:20] in shown[0] and HOSTILE_TEXT[:20] in shown[1]
        assert not any(UNSAFE.search(line) for line in shown)
        assert table.get_row_at(7)[6].startswith(HOSTILE_TEXT[:20])


async def test_pages_are_appended_with_fixed_widths() -> None:
    app = TableApp()
    seen: list[object] = []
    async with app.run_test(size=(120, 20), message_hook=seen.append) as pilot:
        table = app.query_one(CommitTable)
        table.append_page(_commits(FIRST_PAGE_SIZE))
        await pilot.pause()
        # As DataTable.add_row does when the first row makes a cursor position available (the message
        # is seen once on each node it bubbles through).
        highlighted = [m for m in seen if isinstance(m, DataTable.RowHighlighted)]
        assert highlighted and {(m.data_table, m.cursor_row) for m in highlighted} == {(table, 0)}
        widths = [column.get_render_width(table) for column in table.ordered_columns]
        assert not table.exhausted and table.last_id == FIRST_PAGE_SIZE
        table.append_page(_commits(PAGE_SIZE, FIRST_PAGE_SIZE))
        await pilot.pause()
        assert not table.exhausted and table.last_id == FIRST_PAGE_SIZE + PAGE_SIZE
        table.append_page(_commits(3, FIRST_PAGE_SIZE + PAGE_SIZE))
        await pilot.pause()
        rows = FIRST_PAGE_SIZE + PAGE_SIZE + 3
        assert table.exhausted and table.row_count == rows and table.last_id == rows
        assert [column.get_render_width(table) for column in table.ordered_columns] == widths
        assert table.virtual_size.height == rows + 1  # the rows and the header


def _screen_lines(table: DataTable) -> list[list[tuple[str, Style | None]]]:
    return _cells([list(table.render_line(y)) for y in range(table.size.height)])


async def test_pages_appended_show_what_a_datatable_given_every_row_shows() -> None:
    app = BothApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(CommitTable)
        stock = app.query_one("#stock", DataTable)
        pages = [_commits(FIRST_PAGE_SIZE), _commits(PAGE_SIZE, FIRST_PAGE_SIZE), _commits(50, FIRST_PAGE_SIZE + PAGE_SIZE)]
        for page in pages:  # rendered between pages, so cached lines would show if they went stale
            table.append_page(page)
            await pilot.pause()
            table.action_page_down()
            await pilot.pause()
        rows = []
        for row_index in range(table.row_count):
            rows.append(tuple(Text(value, style=style, no_wrap=True, overflow="ellipsis")
                              for value, (_label, _width, style) in zip(table.get_row_at(row_index), COLUMNS)))
        stock.add_rows(rows)
        await pilot.pause()
        last = FIRST_PAGE_SIZE + PAGE_SIZE + 49
        for row, scroll_x in ((0, 0), (7, 0), (45, 30), (FIRST_PAGE_SIZE - 1, 0), (FIRST_PAGE_SIZE + 3, 90), (last, 0)):
            for widget in (table, stock):
                widget.move_cursor(row=row, animate=False)
                widget.scroll_to(x=scroll_x, animate=False, immediate=True)
            await pilot.pause()
            assert table.scroll_offset == stock.scroll_offset
            shown = []
            for widget in (table, stock):  # each as the focused one, the way the screen has it
                widget.focus()
                await pilot.pause()
                shown.append(_screen_lines(widget))
            assert shown[0] == shown[1], (row, scroll_x)
