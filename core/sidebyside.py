"""Side-by-side diffs: two texts aligned row by row, with change blocks and word-level changes.

A row holds one line of each side (or a blank filler where one side has no counterpart), so both
panes of a viewer scroll together and equal lines stay level. Changed blocks pair their lines in
order; `word_changes` finds the changed words of one such row. Lines are compared as given: callers
that show the text pass it already made safe for a terminal (`core.textsafe.visible`), so every
offset refers to the shown text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

RowKind = Literal["equal", "delete", "insert", "replace"]
# Pairing changed lines word by word costs O(len^2) in the worst case; very long lines are shown
# as changed whole instead.
MAX_WORD_DIFF_CHARS = 2_000
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One aligned row: a line number and text per side (None: that side has no line here)."""

    kind: RowKind
    left_no: int | None
    left: str | None
    right_no: int | None
    right: str | None


@dataclass(frozen=True, slots=True)
class SideBySide:
    """Two texts aligned for a side-by-side view.

    `changes` holds the index of the first row of each change block, in order; `added` and
    `removed` count changed lines on the right and left side; `max_*` are the longest lines'
    lengths in characters and `*_count` the sides' line counts.
    """

    rows: tuple[DiffRow, ...]
    changes: tuple[int, ...]
    added: int
    removed: int
    max_left: int
    max_right: int
    left_count: int
    right_count: int

    def change_at_or_after(self, row: int) -> int | None:
        """The index into `changes` of the first change block starting at `row` or later."""
        for index, start in enumerate(self.changes):
            if start >= row:
                return index
        return None


def align(left: str, right: str) -> SideBySide:
    """Align `left` (old, rejected) with `right` (new, chosen) line by line (difflib's matching blocks).

    Equal runs sit level; in a replaced block the i-th old line faces the i-th new line and the
    longer side's extra lines face blank fillers. Runs in O(n) for near-identical texts; difflib's
    popular-line heuristic keeps large unrelated texts fast.
    """
    left_lines = left.splitlines()
    right_lines = right.splitlines()
    matcher = SequenceMatcher(None, left_lines, right_lines, autojunk=len(left_lines) + len(right_lines) > 400)
    rows: list[DiffRow] = []
    changes: list[int] = []
    added = removed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(DiffRow("equal", i1 + k + 1, left_lines[i1 + k], j1 + k + 1, right_lines[j1 + k])
                        for k in range(i2 - i1))
            continue
        changes.append(len(rows))
        removed += i2 - i1
        added += j2 - j1
        for k in range(max(i2 - i1, j2 - j1)):
            has_left, has_right = i1 + k < i2, j1 + k < j2
            kind: RowKind = "replace" if has_left and has_right else ("delete" if has_left else "insert")
            rows.append(DiffRow(
                kind,
                i1 + k + 1 if has_left else None, left_lines[i1 + k] if has_left else None,
                j1 + k + 1 if has_right else None, right_lines[j1 + k] if has_right else None,
            ))
    return SideBySide(
        rows=tuple(rows), changes=tuple(changes), added=added, removed=removed,
        max_left=max((len(line) for line in left_lines), default=0),
        max_right=max((len(line) for line in right_lines), default=0),
        left_count=len(left_lines), right_count=len(right_lines),
    )


def word_changes(left: str, right: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Character spans (start, end) of the words that differ between two paired lines.

    Words are runs of word characters, runs of spaces, or single punctuation marks. Lines longer
    than MAX_WORD_DIFF_CHARS are reported as changed whole.
    """
    if len(left) + len(right) > MAX_WORD_DIFF_CHARS:
        return ([(0, len(left))] if left else []), ([(0, len(right))] if right else [])
    left_words = _TOKEN.findall(left)
    right_words = _TOKEN.findall(right)
    left_starts = _starts(left_words)
    right_starts = _starts(right_words)
    left_spans: list[tuple[int, int]] = []
    right_spans: list[tuple[int, int]] = []
    matcher = SequenceMatcher(None, left_words, right_words, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            _add_span(left_spans, left_starts[i1], left_starts[i2])
        if j2 > j1:
            _add_span(right_spans, right_starts[j1], right_starts[j2])
    return left_spans, right_spans


def _starts(words: list[str]) -> list[int]:
    starts = [0]
    for word in words:
        starts.append(starts[-1] + len(word))
    return starts


def _add_span(spans: list[tuple[int, int]], start: int, end: int) -> None:
    if spans and spans[-1][1] == start:
        spans[-1] = (spans[-1][0], end)
    else:
        spans.append((start, end))
