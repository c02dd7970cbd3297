"""Synthesis runs as jobs over a file store, against the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from core.synthesis.driver import ItemFinished, SynthFinished
from core.synthesis.records import InstructionRecord
from stores.curation.tables import PairRow
from stores.jobs import get_job
from stores.synthesis.runs import add_instructions, item_counts, list_conversations
from stores.synthesis.tables import ConversationRow, ResponseCacheRow
from tests.fixtures import stored_pairs
from tests.llm_server import LoopbackLLM
from tests.synth_answers import synth_responder
from tests.synth_fixtures import add_commits, commit_messages
from workbench.jobs.runner import JobStarted, drain
from workbench.jobs.synthesize import SynthConfig, prepare_run, run_synthesis_job


def run(engine: Engine, config: SynthConfig) -> list[object]:
    events: list[object] = []
    drain(run_synthesis_job(engine, config), events.append)
    return [event for event in events if not isinstance(event, JobStarted)]


def test_commit_instruct_turns_commits_into_pairs_filtered_and_failed(any_engine: Engine) -> None:
    add_commits(any_engine, commit_messages(14))
    with LoopbackLLM(synth_responder) as server:
        config = SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}", concurrency=4)
        events = run(any_engine, config)
        first_requests = len(server.requests)
        finished = [e for e in events if isinstance(e, ItemFinished)]
        final = events[-1]
        assert isinstance(final, SynthFinished) and final.stop_reason == "done"
        assert len(finished) == 14 and len({e.item_id for e in finished}) == 14
        by_outcome = {kind: sum(e.outcome == kind for e in finished) for kind in ("pair", "filtered", "failed")}
        # per 7: fix, speed-up -> pair; bump, same-code, broken-code -> filtered; refuse, mumble -> failed
        assert by_outcome == {"pair": 4, "filtered": 6, "failed": 4}
        pairs = stored_pairs(any_engine)
        assert len(pairs) == 4
        assert all(p.source == "commit-instruct" and p.commit_id and p.conversation_id for p in pairs)
        assert all("#" not in p.chosen for p in pairs)
        job = get_job(any_engine, final_job_id(any_engine))
        assert job.summary["items_pair"] == 4 and job.summary["items_failed"] == 4
        # Items that failed make the job fail, with one line saying how many and why.
        assert job.state == "failed" and (job.error or "").startswith("4 of 14 items failed: 4 unusable answers (e.g. ")
        assert final.counters["requests"] == len(server.requests) == final.counters["answers"]
        assert (final.counters["new_pairs"], final.counters["duplicate_pairs"]) == (4, 0)

        # A second run of the same config pays nothing and changes nothing.
        run(any_engine, config)
        assert len(server.requests) == first_requests
        assert len(stored_pairs(any_engine)) == 4
    reasons = {c.item_reason for c in list_conversations(any_engine, limit=500) if c.item_state == "failed"}
    assert any("no YES/NO verdict" in r for r in reasons) and any("no INSTRUCTION" in r for r in reasons)


def final_job_id(engine: Engine) -> int:
    from stores.jobs import list_jobs

    return list_jobs(engine, kind="synth")[0].id


def test_budget_stops_cleanly_and_resume_finishes_without_paying_twice(any_engine: Engine) -> None:
    add_commits(any_engine, [f"Fix total on empty input #{i}" for i in range(10)])
    with LoopbackLLM(synth_responder) as server:
        spec = f"openai:critic@{server.base_url}"
        capped = SynthConfig("commit-instruct", critic=spec, concurrency=2, budget="3000")
        events = run(any_engine, capped)
        final = events[-1]
        assert isinstance(final, SynthFinished) and final.stop_reason == "budget"
        job = get_job(any_engine, final_job_id(any_engine))
        assert job.state == "cancelled" and "budget reached" in (job.error or "")
        key = prepare_run(any_engine, capped)
        partial = item_counts(any_engine, key)
        assert partial.pending > 0 and partial.claimed == 0 and partial.total == 10
        sent_before = [json.dumps(r["messages"]) for r in server.requests]

        run(any_engine, SynthConfig("commit-instruct", critic=spec, concurrency=2))
        done = item_counts(any_engine, key)
        assert (done.pair, done.pending, done.claimed) == (10, 0, 0)
        resent = [json.dumps(r["messages"]) for r in server.requests[len(sent_before):]]
        with Session(any_engine) as session:
            stored = {row.messages_json for row in session.exec(select(ConversationRow)).all()}
            assert session.exec(select(func.count()).select_from(ResponseCacheRow)).one() == 30
            assert session.exec(select(func.count()).select_from(PairRow)).one() == 10
        assert len(resent) + len(sent_before) == 30  # every answer was paid for exactly once
        assert not set(resent) & set(sent_before)
        assert stored  # the conversations are kept


def test_critic_evol_from_instructions(any_engine: Engine, tmp_path: Path) -> None:
    ids, added = add_instructions(any_engine, [InstructionRecord("Count the words in a text."),
                                           InstructionRecord("Reverse a string."),
                                           InstructionRecord("Count the words in a text.")])
    assert added == 2 and len(ids) == 2
    with LoopbackLLM(synth_responder) as server:
        config = SynthConfig("critic-evol", critic=f"openai:critic@{server.base_url}",
                             draft=f"openai:drafter@{server.base_url}", instruction_ids=tuple(ids))
        events = run(any_engine, config)
    finished = {e.outcome for e in events if isinstance(e, ItemFinished)}
    assert finished == {"pair", "filtered"}
    pairs = stored_pairs(any_engine)
    assert len(pairs) == 1 and pairs[0].source == "critic-evol" and pairs[0].instruction_id == ids[0]
    models = {c.model for c in list_conversations(any_engine)}
    assert models == {"critic", "drafter"}
