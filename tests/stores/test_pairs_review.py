"""Pairs store: sort orders, positions, text search, per-session undo, and the change stamp."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from core.curation.pairs import NewPair
from core.curation.rules import Condition, parse_filter
from stores.curation.analyses import apply_rules
from stores.curation.pairs import (
    flip_pair,
    get_pair,
    import_pairs,
    last_session_action,
    list_pairs,
    pair_position,
    set_status,
    undo_action,
    undo_last,
)
from stores.versions import pairs_stamp


def _seed(engine: Engine) -> None:
    import_pairs(engine, [
        NewPair("i0", "c", "a = 1\n", "a = 2\n"),
        NewPair("i1", "c", "b = 1\nb = 2\nb = 3\n", "b = 0\n", feedback="uses needle"),
        NewPair("i2", "c", "needle = 1\n", "x = 1\n"),
        NewPair("i3", "c", "c = 1\nc = 2\n", "c = 3\n"),
    ])


def test_sort_by_length_and_positions(engine: Engine) -> None:
    _seed(engine)
    by_lines = list_pairs(engine, sort="lines", descending=True)
    assert [(p.id, p.lines) for p in by_lines] == [(2, 3), (4, 2), (1, 1), (3, 1)]  # ties by id
    assert [p.id for p in list_pairs(engine, sort="lines", descending=True, offset=2, limit=1)] == [1]
    assert pair_position(engine, (), 1, sort="lines", descending=True) == 2
    assert pair_position(engine, (), 3, sort="id") == 2
    assert pair_position(engine, (Condition("id", ">", 3.0),), 3) is None  # not in the filter
    # Empty values (no analysis yet) sort last, by id.
    assert [p.id for p in list_pairs(engine, sort="cc_delta")] == [1, 2, 3, 4]
    assert pair_position(engine, (), 4, sort="cc_delta", descending=True) == 3


def test_text_search_looks_in_instruction_criteria_code_and_feedback(engine: Engine) -> None:
    _seed(engine)
    assert [p.id for p in list_pairs(engine, parse_filter("text~NEEDLE"))] == [2, 3]
    assert [p.id for p in list_pairs(engine, parse_filter("text!=i0"))] == [2, 3, 4]


def test_undo_is_per_session_and_leaves_later_changes_alone(engine: Engine) -> None:
    _seed(engine)
    set_status(engine, [1, 2], "accept", label="bulk accept", session_id="tui-a")
    set_status(engine, [3], "reject")  # the CLI: no session
    flip_pair(engine, 4, session_id="tui-b")
    set_status(engine, [2], "flag", session_id="tui-b")  # another session changes pair 2 afterwards
    action = last_session_action(engine, "tui-a")
    assert action is not None and (action.action, action.pair_count) == ("bulk accept", 2)
    outcome = undo_action(engine, action.id)
    assert (outcome.restored, outcome.skipped) == (1, 1)
    assert [get_pair(engine, i).status for i in (1, 2, 3)] == ["pending", "flagged", "rejected"]
    assert last_session_action(engine, "tui-a") is None
    latest_b = last_session_action(engine, "tui-b")
    assert latest_b is not None and latest_b.action == "flag"  # set_status's label defaults to the action
    assert undo_last(engine) is not None  # the CLI's undo still takes the newest action of anyone


def test_rules_applied_by_a_session_are_undone_by_it(engine: Engine) -> None:
    from core.curation.rules import Rule

    _seed(engine)
    apply_rules(engine, [Rule("long", (Condition("id", ">=", 3.0),), "reject")], session_id="tui")
    action = last_session_action(engine, "tui")
    assert action is not None and action.action == "rule long"
    undo_action(engine, action.id)
    assert [get_pair(engine, i).status for i in (3, 4)] == ["pending", "pending"]


def test_the_pairs_stamp_changes_with_reviews_and_analysis(engine: Engine) -> None:
    from workbench.jobs.curate import analyse_store, dedupe_store

    _seed(engine)
    first = pairs_stamp(engine)
    assert pairs_stamp(engine) == first
    set_status(engine, [1], "accept")
    second = pairs_stamp(engine)
    assert second != first
    list(analyse_store(engine, workers=1))
    third = pairs_stamp(engine)
    assert third != second
    dedupe_store(engine)
    assert pairs_stamp(engine) != third
