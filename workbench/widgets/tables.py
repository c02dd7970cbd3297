"""Table helpers: replace a DataTable's rows with every column sized to its widest cell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable


def fill_table(table: DataTable[Any], rows: Sequence[Sequence[Text]]) -> None:
    """Replace the rows in one add_rows call, each column as wide as its label or widest cell.

    Widths are set here rather than left to DataTable's auto width, which after clear() can keep
    cells rendered at the old, narrower width (values cut short with an ellipsis).
    """
    table.clear()
    for index, column in enumerate(table.ordered_columns):
        column.width = max([column.label.cell_len, *(row[index].cell_len for row in rows if index < len(row))])
        column.auto_width = False
    table.add_rows(rows)
