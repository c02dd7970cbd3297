"""DiffView: two texts side by side, aligned line to line, rendered only where visible (line API)."""

from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.sidebyside import DiffRow, SideBySide, word_changes
from core.textsafe import one_line

CONTEXT_ROWS = 3  # rows of unchanged text kept above a change when jumping to it


class DiffView(ScrollView, can_focus=True):
    """Shows a SideBySide: old text left, new text right, one shared scroll position for both panes.

    Removed and added lines get a tinted background, the changed words a stronger one. `]` and
    `[` jump to the next and previous change; a new diff opens at its first change. Only the rows
    on screen are rendered, so a 5,000-line text pages as fast as a 50-line one.
    """

    DEFAULT_CSS = """
    DiffView { background: $surface; }
    DiffView > .diff-view--title { background: $boost; color: $text; text-style: bold; }
    DiffView > .diff-view--gutter { color: $text-muted; }
    DiffView > .diff-view--removed { background: $error 18%; }
    DiffView > .diff-view--removed-word { background: $error 55%; }
    DiffView > .diff-view--added { background: $success 18%; }
    DiffView > .diff-view--added-word { background: $success 55%; }
    DiffView > .diff-view--filler { background: $panel; }
    DiffView > .diff-view--separator { color: $primary-darken-2; }
    """
    COMPONENT_CLASSES = {
        "diff-view--title", "diff-view--gutter", "diff-view--removed", "diff-view--removed-word",
        "diff-view--added", "diff-view--added-word", "diff-view--filler", "diff-view--separator",
    }
    BINDINGS = [
        Binding("right_square_bracket", "next_change", "Next change", show=False),
        Binding("left_square_bracket", "previous_change", "Previous change", show=False),
    ]

    def __init__(self, *, placeholder: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.diff: SideBySide | None = None
        self.left_title = "old"
        self.right_title = "new"
        self.placeholder = placeholder
        self.current_change: int | None = None
        self._gutter = 2
        self._longest = 0
        # (side, changed) -> (text, changed words, gutter) styles; looked up once, not for every pane.
        self._pane_styles: dict[tuple[str, bool], tuple[Style, Style, Style]] = {}

    # content ---------------------------------------------------------------------------------

    def show(self, diff: SideBySide | None, *, left_title: str = "old", right_title: str = "new",
             placeholder: str | None = None, keep_position: bool = False) -> None:
        """Show a diff (None: the placeholder) and scroll to its first change; with `keep_position` (the
        same text read again) stay where the reader is."""
        self.diff = diff
        self.left_title, self.right_title = left_title, right_title
        if placeholder is not None:
            self.placeholder = placeholder
        self._row_strip.cache_clear()
        self._gutter = len(str(max(diff.left_count, diff.right_count) if diff else 0)) + 1
        self._longest = max(diff.max_left, diff.max_right) if diff else 0
        self._update_virtual_size()
        if keep_position and diff is not None:
            if self.current_change is not None and self.current_change >= len(diff.changes):
                self.current_change = len(diff.changes) - 1 if diff.changes else None
            self.refresh()
            return
        self.current_change = 0 if diff and diff.changes else None
        self.scroll_to(0, 0, animate=False, immediate=True)
        if self.current_change is not None:
            self.call_after_refresh(self._scroll_to_change, self.current_change)
        self.refresh()

    def _update_virtual_size(self) -> None:
        rows = len(self.diff.rows) if self.diff else 1
        text_width = self._text_width(self.size.width)
        overflow = max(0, self._longest - text_width) if self.diff else 0
        self.virtual_size = Size(self.size.width + overflow, rows + 1)

    def on_resize(self) -> None:
        self._row_strip.cache_clear()
        self._update_virtual_size()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._pane_styles = {}
        self._row_strip.cache_clear()

    # navigation ------------------------------------------------------------------------------

    def action_next_change(self) -> None:
        """Scroll to the next change block."""
        self._step_change(+1)

    def action_previous_change(self) -> None:
        """Scroll to the previous change block."""
        self._step_change(-1)

    def _step_change(self, step: int) -> None:
        if self.diff is None or not self.diff.changes:
            return
        top = int(self.scroll_y)
        if self.current_change is None or not self._change_visible(self.current_change, top):
            # The reader scrolled away: continue from the top of the view.
            following = self.diff.change_at_or_after(top + CONTEXT_ROWS + (1 if step > 0 else 0))
            if step > 0:
                index = following if following is not None else len(self.diff.changes) - 1
            else:
                index = (following if following is not None else len(self.diff.changes)) - 1
        else:
            index = self.current_change + step
        index = min(max(index, 0), len(self.diff.changes) - 1)
        self.current_change = index
        self._scroll_to_change(index)
        self.refresh(self.size.region)

    def _change_visible(self, index: int, top: int) -> bool:
        assert self.diff is not None
        start = self.diff.changes[index]
        return top <= start < top + max(1, self.size.height - 1)

    def _scroll_to_change(self, index: int) -> None:
        if self.diff is None or not self.diff.changes:
            return
        self.scroll_to(y=max(0, self.diff.changes[index] - CONTEXT_ROWS), animate=False, immediate=True)

    # rendering -------------------------------------------------------------------------------

    def _text_width(self, width: int) -> int:
        return max(1, (width - 1) // 2 - self._gutter)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._title_strip(width)
        if self.diff is None:
            text = self.placeholder if y == 1 else ""
            return Strip([Segment(" " + one_line(text), self.rich_style)]).adjust_cell_length(width, self.rich_style)
        index = int(self.scroll_y) + y - 1
        if index >= len(self.diff.rows):
            return Strip.blank(width, self.rich_style)
        return self._row_strip(index, int(self.scroll_x), width)

    def _title_strip(self, width: int) -> Strip:
        style = self.get_component_rich_style("diff-view--title")
        left_width = (width - 1) // 2
        right_width = width - 1 - left_width
        right = self.right_title
        if self.diff is not None:
            if self.diff.changes:
                right = f"change {(self.current_change or 0) + 1}/{len(self.diff.changes)} (] [) · {right}"
            else:
                right = f"no changes · {right}"
        cells = [
            Strip([Segment(" " + one_line(self.left_title), style)]).adjust_cell_length(left_width, style),
            Strip([Segment("│", self.get_component_rich_style("diff-view--separator"))]),
            Strip([Segment(" " + one_line(right), style)]).adjust_cell_length(right_width, style),
        ]
        return Strip.join(cells)

    @lru_cache(maxsize=512)
    def _row_strip(self, index: int, scroll_x: int, width: int) -> Strip:
        assert self.diff is not None
        row = self.diff.rows[index]
        left_width = (width - 1) // 2
        right_width = width - 1 - left_width
        left_spans: list[tuple[int, int]] = []
        right_spans: list[tuple[int, int]] = []
        if row.kind == "replace" and row.left is not None and row.right is not None:
            left_spans, right_spans = word_changes(row.left, row.right)
        return Strip.join([
            self._pane(row, "left", left_spans, scroll_x, left_width),
            self._separator(),
            self._pane(row, "right", right_spans, scroll_x, right_width),
        ])

    def _separator(self) -> Strip:
        return Strip([Segment("│", self.get_component_rich_style("diff-view--separator"))])

    def _styles_for(self, side: str, changed: bool) -> tuple[Style, Style, Style]:
        styles = self._pane_styles.get((side, changed))
        if styles is None:
            base = self.rich_style
            if changed:
                base = self.get_component_rich_style("diff-view--removed" if side == "left" else "diff-view--added")
            word = base + self.get_component_rich_style(
                "diff-view--removed-word" if side == "left" else "diff-view--added-word", partial=True)
            gutter = base + self.get_component_rich_style("diff-view--gutter", partial=True)
            styles = self._pane_styles[side, changed] = (base, word, gutter)
        return styles

    def _pane(self, row: DiffRow, side: str, spans: list[tuple[int, int]], scroll_x: int, width: int) -> Strip:
        number = row.left_no if side == "left" else row.right_no
        line = row.left if side == "left" else row.right
        if number is None or line is None:
            return Strip.blank(width, self.get_component_rich_style("diff-view--filler"))
        changed = row.kind != "equal"
        base, word, gutter_style = self._styles_for(side, changed)
        marker = ("-" if side == "left" else "+") if changed else " "
        segments = [Segment(f"{number:>{self._gutter - 1}}{marker}", gutter_style)]
        # Segments straight from the spans: cheaper than a rich Text for every visible row of every page.
        body: list[Segment] = []
        position = 0
        for start, end in spans:
            if start > position:
                body.append(Segment(line[position:start], base))
            body.append(Segment(line[start:end], word))
            position = end
        if position < len(line) or not body:
            body.append(Segment(line[position:], base))
        text_width = width - self._gutter
        return Strip.join([Strip(segments), Strip(body).crop_extend(scroll_x, scroll_x + text_width, base)])

    # scrolling without animation: a page is drawn once, not over a dozen frames -------------------

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def action_scroll_down(self) -> None:
        self.scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.scroll_up(animate=False)

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.scroll_end(animate=False)
