"""Side-by-side alignment and word-level changes."""

from __future__ import annotations

from core.sidebyside import align, word_changes


def test_equal_lines_stay_level_and_changes_pair_in_order() -> None:
    old = "a\nb\nc\nd\n"
    new = "a\nB\nc\nd\ne\nf\n"
    diff = align(old, new)
    assert [(r.kind, r.left_no, r.right_no) for r in diff.rows] == [
        ("equal", 1, 1), ("replace", 2, 2), ("equal", 3, 3), ("equal", 4, 4), ("insert", None, 5), ("insert", None, 6),
    ]
    assert diff.changes == (1, 4)
    assert (diff.added, diff.removed, diff.left_count, diff.right_count) == (3, 1, 4, 6)
    assert diff.change_at_or_after(2) == 1 and diff.change_at_or_after(5) is None


def test_a_replaced_block_pads_the_shorter_side() -> None:
    diff = align("x\none\ntwo\nthree\ny\n", "x\nuno\ny\n")
    assert [(r.kind, r.left, r.right) for r in diff.rows] == [
        ("equal", "x", "x"), ("replace", "one", "uno"), ("delete", "two", None), ("delete", "three", None),
        ("equal", "y", "y"),
    ]


def test_identical_and_empty_texts() -> None:
    assert align("a\nb\n", "a\nb\n").changes == ()
    empty = align("", "")
    assert empty.rows == () and empty.changes == ()
    added = align("", "x\n")
    assert [(r.kind, r.right) for r in added.rows] == [("insert", "x")] and added.changes == (0,)


def test_word_changes_mark_only_the_words_that_differ() -> None:
    left, right = word_changes("    total = sum(xs)", "    total = math.fsum(xs)")
    assert ["    total = sum(xs)"[a:b] for a, b in left] == ["sum"]
    assert ["    total = math.fsum(xs)"[a:b] for a, b in right] == ["math.fsum"]
    assert word_changes("same", "same") == ([], [])


def test_word_changes_of_very_long_lines_cover_them_whole() -> None:
    long_line = "x" * 3000
    assert word_changes(long_line, "y") == ([(0, 3000)], [(0, 1)])


def test_a_5000_line_pair_aligns_quickly_with_every_change_found() -> None:
    import time

    from tests.workbench.seed import big_pair

    rejected, chosen = big_pair(5000)
    started = time.perf_counter()
    diff = align(rejected, chosen)
    assert len(diff.rows) == 5000 and len(diff.changes) == 100
    assert time.perf_counter() - started < 5  # a sanity bound, not a benchmark (tests/bench/bench_tui.py)
