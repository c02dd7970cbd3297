"""Arena store: sets stored once, answers once per model, pairings of a run, judgements once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.errors import OptionError
from core.evaluation.arena import ArenaSetFile, read_arena_questions
from core.evaluation.arena import ImportedAnswer as Answer
from stores.evaluation.arena import (
    add_arena_set,
    arena_leaderboard,
    get_arena_run,
    get_arena_set,
    import_answers,
    list_arena_questions,
    missing_answers,
    open_run,
    record_judgements,
    run_pairings,
    set_run_state,
)
from stores.jobs import create_job, finish_job
from tests.arena_fixtures import write_set


def _set(engine: Engine, tmp_path: Path, count: int = 4) -> tuple[int, ArenaSetFile]:
    set_file = read_arena_questions(write_set(tmp_path / "s.jsonl", count))
    set_id, created = add_arena_set(engine, "s", "s.jsonl", set_file)
    assert created
    return set_id, set_file


def test_a_set_is_stored_once_and_a_taken_name_is_refused(engine: Engine, tmp_path: Path) -> None:
    set_id, set_file = _set(engine, tmp_path)
    assert add_arena_set(engine, "other name", "copy.jsonl", set_file) == (set_id, False)
    different = read_arena_questions(write_set(tmp_path / "t.jsonl", 5))
    with pytest.raises(OptionError, match="already holds other questions"):
        add_arena_set(engine, "s", "t.jsonl", different)
    info = get_arena_set(engine, "s")
    assert (info.id, info.questions, info.models) == (set_id, 4, {"baseline": 4})
    assert get_arena_set(engine, str(set_id)).name == "s"
    questions = list_arena_questions(engine, set_id, limit=2)
    assert [q.external_id for q in questions] == ["q0", "q1"]
    assert [q.external_id for q in list_arena_questions(engine, set_id, after_position=1)] == ["q2", "q3"]


def test_answers_are_kept_once_per_model_and_runs_skip_questions_without_both(engine: Engine, tmp_path: Path) -> None:
    set_id, _ = _set(engine, tmp_path)
    assert import_answers(engine, set_id, "m", [Answer("q0", "a0"), Answer("q2", "a2")], source="f") == (2, 0)
    assert import_answers(engine, set_id, "m", [Answer("q0", "changed"), Answer("q1", "a1")], source="f") == (1, 1)
    assert [s.question_id for s in missing_answers(engine, set_id, "m")] == [
        q.id for q in list_arena_questions(engine, set_id) if q.external_id == "q3"]
    run_id = open_run(engine, set_id=set_id, candidate="m", baseline="baseline", judge_spec="baseline:shorter",
                      judge_kind="baseline", orders="both", prompt_version="", parser_version="", lineage={})
    assert open_run(engine, set_id=set_id, candidate="m", baseline="baseline", judge_spec="baseline:shorter",
                    judge_kind="baseline", orders="both", prompt_version="", parser_version="", lineage={}) == run_id
    pending, total, missing = run_pairings(engine, run_id)
    assert (len(pending), total, missing) == (6, 6, 1)
    first = pending[0]
    assert (first.answer_a, first.answer_b) == ("a0", "BASELINE answer 0")
    values = [(item, "A>B", "better", "raw", 0.0, 0, 0, False) for item in pending[:4]]
    assert record_judgements(engine, run_id, values) == 4
    assert record_judgements(engine, run_id, values + [(pending[4], "A=B", "tie", "r", 0.0, 0, 0, False)]) == 1
    assert len(run_pairings(engine, run_id)[0]) == 1
    with pytest.raises(OptionError, match="both 'm'"):
        open_run(engine, set_id=set_id, candidate="m", baseline="m", judge_spec="j", judge_kind="baseline",
                 orders="both", prompt_version="", parser_version="", lineage={})


def test_a_run_whose_job_died_reads_as_interrupted(engine: Engine, tmp_path: Path) -> None:
    set_id, _ = _set(engine, tmp_path, 2)
    import_answers(engine, set_id, "m", [Answer("q0", "a"), Answer("q1", "b")], source="f")
    run_id = open_run(engine, set_id=set_id, candidate="m", baseline="baseline", judge_spec="j", judge_kind="baseline",
                      orders="given", prompt_version="", parser_version="", lineage={})
    job_id = create_job(engine, "arena-judge", "t")
    set_run_state(engine, run_id, "running", job_id=job_id, total=2)
    assert get_arena_run(engine, run_id).state == "running"
    finish_job(engine, job_id, "failed", error="killed")
    assert get_arena_run(engine, run_id).state == "interrupted"
    pending, _total, _missing = run_pairings(engine, run_id)
    record_judgements(engine, run_id, [(pending[0], "A<B", "worse", "", 0.0, 0, 0, False)])
    entry = arena_leaderboard(engine)[0]
    assert (entry.run.id, entry.run.done, entry.scores.overall.losses) == (run_id, 1, 1)
