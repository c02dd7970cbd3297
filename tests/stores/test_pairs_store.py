"""Pairs in a file store: import, filtered keyset paging, review actions with undo, analysis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.curation.pairs import NewPair, read_pairs_jsonl
from core.curation.rules import parse_filter
from core.errors import DataError
from stores.curation.pairs import (
    count_pairs,
    edit_criteria,
    flip_pair,
    get_pair,
    import_pairs,
    list_pairs,
    next_unreviewed,
    pair_stats,
    set_status,
    undo_last,
)
from stores.jobs import list_jobs
from tests.fixtures import HOSTILE_TEXT
from workbench.jobs.curate import analyse_store


def make_pairs(count: int) -> list[NewPair]:
    return [
        NewPair(f"task {i}", "security" if i % 2 else "readability", f"def f():\n    return {i}\n",
                "import os\nos.system('x')\n" if i % 2 else f"def f( :\n  {i}\n", source="import" if i % 3 else "commit-instruct")
        for i in range(count)
    ]


def test_import_is_idempotent_and_lists_in_keyset_pages(any_engine: Engine) -> None:
    assert import_pairs(any_engine, make_pairs(25)) == (25, 0)
    assert import_pairs(any_engine, make_pairs(30)) == (5, 25)
    first = list_pairs(any_engine, limit=10)
    second = list_pairs(any_engine, limit=10, after_id=first[-1].id)
    assert [p.id for p in first + second] == list(range(1, 21))
    assert count_pairs(any_engine, parse_filter("criteria~SECUR")) == 15
    assert count_pairs(any_engine, parse_filter("source=commit-instruct status=pending")) == 10


def test_read_jsonl_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    good = {"instruction": HOSTILE_TEXT, "criteria": "c", "chosen": "x=1", "rejected": "x=2", "feedback": "f"}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({"instruction": "i"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs.jsonl:3: missing .*criteria"):
        list(read_pairs_jsonl(path))


def test_review_actions_and_undo(any_engine: Engine) -> None:
    import_pairs(any_engine, make_pairs(4))
    assert set_status(any_engine, [1], "accept") == 1
    flip_pair(any_engine, 2)
    edit_criteria(any_engine, 3, HOSTILE_TEXT)
    assert get_pair(any_engine, 2).chosen.startswith("import os")
    assert get_pair(any_engine, 3).criteria == HOSTILE_TEXT
    assert next_unreviewed(any_engine, after_id=1) == 2
    assert undo_last(any_engine) == "edit criteria of pair 3" and get_pair(any_engine, 3).criteria == "readability"
    assert undo_last(any_engine) == "flip pair 2" and get_pair(any_engine, 2).chosen == "def f():\n    return 1\n"
    assert undo_last(any_engine) == "accept" and get_pair(any_engine, 1).status == "pending"
    assert undo_last(any_engine) is None


def test_analyse_store_is_a_job_and_skips_analysed_pairs(any_engine: Engine) -> None:
    import_pairs(any_engine, make_pairs(6))
    progress = list(analyse_store(any_engine, workers=1, chunk=4))
    assert progress[-1].done == 6
    pair = get_pair(any_engine, 2)
    assert pair.analysis is not None and pair.analysis["rejected_bandit"] >= 1
    assert pair.analysis["findings"]["rejected"][0]["test_id"].startswith("B")
    assert count_pairs(any_engine, parse_filter("rejected_parses=false")) == 3
    assert count_pairs(any_engine, parse_filter("bandit_delta<0")) == 3
    assert list(analyse_store(any_engine, workers=1)) == []  # nothing stale
    flip_pair(any_engine, 2)
    assert [p.done for p in analyse_store(any_engine, workers=1)] == [1]
    jobs = list_jobs(any_engine, kind="analyse")
    assert jobs[0].state == "done" and jobs[-1].summary["analysed"] == 6
    stats = pair_stats(any_engine)
    assert stats.total == 6 and stats.analysed == 6 and stats.by_source == {"commit-instruct": 2, "import": 4}


def _stored(engine: Engine, pair_id: int) -> tuple[dict[str, object], dict[str, object] | None]:
    """Every stored column of a pair (but `updated_at`, which records that the undo changed it) and of its analysis."""
    from sqlmodel import Session

    from stores.curation.tables import PairAnalysisRow, PairRow

    with Session(engine) as session:
        pair = session.get(PairRow, pair_id)
        analysis = session.get(PairAnalysisRow, pair_id)
        assert pair is not None
        return ({k: v for k, v in pair.model_dump().items() if k != "updated_at"},
                analysis.model_dump() if analysis is not None else None)


@pytest.mark.parametrize("analyse_between", [False, True])
def test_flip_then_undo_leaves_the_pair_and_its_analysis_as_before(any_engine: Engine, analyse_between: bool) -> None:
    from stores.curation.analyses import store_analysis_values
    from stores.curation.pairs import last_session_action, undo_action

    import_pairs(any_engine, make_pairs(4))
    list(analyse_store(any_engine, workers=1))
    # dedupe and decontamination columns too: an undo must put back every column, not only the metrics
    store_analysis_values(any_engine, {2: {"dup_cluster": 7, "duplicate": True, "contamination": 41.5,
                                           "contamination_chosen": 12.25, "contamination_rejected": 41.5,
                                           "contamination_task": "HumanEval/3"}})
    before = _stored(any_engine, 2)
    assert before[1] is not None and before[1]["cc_delta"] is not None
    flip_pair(any_engine, 2, session_id="tui")
    flipped = _stored(any_engine, 2)
    assert (flipped[0]["chosen"], flipped[0]["rejected"]) == (before[0]["rejected"], before[0]["chosen"])
    if analyse_between:  # an analysis of the flipped text, made before the undo
        list(analyse_store(any_engine, workers=1))
        assert _stored(any_engine, 2)[1] not in (None, before[1])
    action = last_session_action(any_engine, "tui")
    assert action is not None and undo_action(any_engine, action.id).restored == 1
    assert _stored(any_engine, 2) == before
    assert list(analyse_store(any_engine, workers=1)) == []  # the analysis put back is current for the text


def test_flip_then_cli_undo_puts_the_analysis_back(any_engine: Engine) -> None:
    import_pairs(any_engine, make_pairs(3))
    list(analyse_store(any_engine, workers=1))
    before = _stored(any_engine, 1)
    flip_pair(any_engine, 1)
    assert undo_last(any_engine) == "flip pair 1"
    assert _stored(any_engine, 1) == before
