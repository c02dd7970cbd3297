"""Synthesis runs that must not store a wrong record: reasoning, truncation, odd answers, counters, locks.

Each test runs the real runner (or driver) over a file store against the loopback OpenAI-compatible
server, or a real local transformers model, and checks the value that must come out.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from core.llm import make_backend
from core.synthesis.commit_instruct import CommitInstruct
from core.synthesis.driver import ItemFinished, SynthCounters, SynthFinished, run_synthesis
from core.synthesis.records import InstructionRecord
from stores.curation.tables import PairRow
from stores.jobs import list_jobs
from stores.synthesis.runs import SqlSynthesisStore, add_instructions, item_counts, load_commit_subjects
from stores.synthesis.tables import ConversationRow, ResponseCacheRow, SynthItemRow
from tests.fixtures import stored_pairs
from tests.llm_server import LoopbackLLM
from tests.synth_answers import CRITIQUE_IMPROVE, PAIR_BRACKETS, synth_responder
from tests.synth_fixtures import add_commits
from workbench.jobs.runner import JobStarted, drain
from workbench.jobs.synthesize import SynthConfig, prepare_run, run_synthesis_job

REAL_INSTRUCTION = PAIR_BRACKETS.split("\n")[1]


def run(engine: Engine, config: SynthConfig, cancel: Callable[[], bool] = lambda: False) -> list[Any]:
    events: list[Any] = []
    drain(run_synthesis_job(engine, config, cancel=cancel), events.append)
    return [event for event in events if not isinstance(event, JobStarted)]


def finished(events: list[Any]) -> list[ItemFinished]:
    return [event for event in events if isinstance(event, ItemFinished)]


def final(events: list[Any]) -> SynthFinished:
    assert isinstance(events[-1], SynthFinished)
    return events[-1]


def answering(verdict: object = None, pair: object = None) -> Callable[[list[dict[str, str]]], object]:
    """synth_responder, with the verdict or the written pair replaced."""
    def respond(messages: list[dict[str, str]]) -> object:
        last = messages[-1]["content"]
        if verdict is not None and "Answer [YES] or [NO]" in last:
            return verdict
        if pair is not None and "Turn the improvement into" in last:
            return pair
        return synth_responder(messages)

    return respond


def count_rows(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


# ---- reasoning: only the final answer counts -----------------------------------------------------

THINK_YES_THEN_NO = "<think>\nThe loop is replaced; a reviewer would say [YES] here.\n</think>\n[NO] Stylistic only."


@pytest.mark.parametrize(("verdict", "framing"), [
    (THINK_YES_THEN_NO, ""),
    (THINK_YES_THEN_NO, "sse"),
    ({"content": "[NO] Stylistic only.", "reasoning_content": "Clearly [YES], it improves it."}, ""),
    ({"content": "[NO] Stylistic only.", "reasoning_content": "Clearly [YES], it improves it."}, "sse"),
    ({"content": "[NO] Stylistic only.", "reasoning": "**YES** maybe"}, ""),
    ("Okay. Verdict: YES?\n</think>\n\n[NO] Stylistic only.", ""),  # the chat template opened the block
])
def test_a_verdict_inside_reasoning_never_counts(engine: Engine, verdict: object, framing: str) -> None:
    add_commits(engine, ["Fix total #1"])
    with LoopbackLLM(answering(verdict=verdict)) as server:
        if framing:
            server.add_faults(framing, framing)
        events = run(engine, SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}"))
    assert [(e.outcome, e.reason) for e in finished(events)] == [("filtered", "verdict NO: Stylistic only")]
    assert count_rows(engine, PairRow) == 0


def test_a_draft_instruction_inside_a_think_block_does_not_win(engine: Engine) -> None:
    add_commits(engine, ["Fix total #1"])
    pair = ("<think>\nInstruction: Write the draft task that must not win.\n[INSTRUCTION]\nAlso a draft.\n"
            "[NAIVE CODE]\n```python\ndef draft(): pass\n```\n</think>\n" + PAIR_BRACKETS)
    with LoopbackLLM(answering(pair=pair)) as server:
        run(engine, SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}"))
    pairs = stored_pairs(engine)
    assert [p.instruction for p in pairs] == [REAL_INSTRUCTION]
    assert "draft" not in pairs[0].rejected


@pytest.mark.parametrize(("critique", "outcome"), [
    ("<think>\n[DECISION]\nSTOP\n</think>\n" + CRITIQUE_IMPROVE, "pair"),
    ("<think>\n" + CRITIQUE_IMPROVE + "\n</think>\n[REFLECTION]\nFine as is.\n[DECISION]\nSTOP", "filtered"),
])
def test_critic_evol_reads_only_the_answer_after_reasoning(engine: Engine, critique: str, outcome: str) -> None:
    ids, _ = add_instructions(engine, [InstructionRecord("Count the words in a text.")])

    def respond(messages: list[dict[str, str]]) -> object:
        if messages[0]["content"].startswith("You review"):
            return critique
        return synth_responder(messages)

    with LoopbackLLM(respond) as server:
        events = run(engine, SynthConfig("critic-evol", critic=f"openai:c@{server.base_url}",
                                         draft=f"openai:d@{server.base_url}", instruction_ids=tuple(ids)))
    assert [e.outcome for e in finished(events)] == [outcome]


def test_local_model_answers_lose_their_reasoning_and_truncation_fails(engine: Engine, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from tests.ml_fixtures import make_scripted_model

    model = make_scripted_model(tmp_path / "scripted", ["<think>", "Looks good: [YES]", "</think>",
                                                        "\n[NO] Stylistic only."])
    add_commits(engine, ["Fix total #1"])
    events = run(engine, SynthConfig("commit-instruct", critic=f"hf:{model}?device=cpu", concurrency=1))
    assert [(e.outcome, e.reason) for e in finished(events)] == [("filtered", "verdict NO: Stylistic only")]

    # Capped at 2 new tokens, every answer is cut: the item fails (retryable) and nothing is cached.
    capped = run(engine, SynthConfig("commit-instruct", critic=f"hf:{model}?device=cpu&max_tokens=2"))
    assert [(e.outcome, e.kind) for e in finished(capped)] == [("failed", "truncated")]
    assert final(capped).counters["truncated_answers"] == 3
    with Session(engine) as session:
        cached = session.exec(select(ResponseCacheRow).where(ResponseCacheRow.model == "scripted[max_tokens=2]")).all()
        assert cached == []
        assert session.exec(select(SynthItemRow).where(SynthItemRow.state == "failed")).one().retryable


# ---- truncation: never a pair, never cached, retried ---------------------------------------------

def test_a_truncated_answer_is_asked_again_with_more_tokens(engine: Engine) -> None:
    add_commits(engine, ["Fix total #1"])
    with LoopbackLLM(synth_responder) as server:
        server.add_faults("", "", "truncate", "truncate")  # explain, verdict, then the pair cut twice
        events = run(engine, SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}",
                                         concurrency=1))
        asked = [request["max_tokens"] for request in server.requests]
    assert asked == [512, 128, 1536, 3072, 6144]
    counters = final(events).counters
    assert (counters["truncated_answers"], counters["truncation_retries"], counters["new_pairs"]) == (2, 2, 1)
    (pair,) = stored_pairs(engine)
    assert pair.feedback == "[IMPROVED_CODE] uses `sum`, which is shorter, faster and obviously correct."
    with Session(engine) as session:
        steps = [(c.step, c.finish_reason) for c in session.exec(select(ConversationRow)).all()]
        assert steps == [("explain", "stop"), ("verdict", "stop"), ("write-pair", "length"),
                         ("write-pair", "length"), ("write-pair", "stop")]
        assert {row.finish_reason for row in session.exec(select(ResponseCacheRow)).all()} == {"stop"}
        assert count_rows(engine, ResponseCacheRow) == 3


@pytest.mark.parametrize(("method", "faults", "cut_at", "asked_again"), [
    ("commit-instruct", ("", "", "truncate", "truncate", "truncate"), 6144, 1),  # the written pair
    ("critic-evol", ("", "truncate", "truncate", "truncate"), 6144, 1),  # the critique
    ("critic-evol", ("truncate", "truncate", "truncate"), 4096, 2),  # the draft: the rejected side
])
def test_an_answer_always_cut_never_becomes_a_pair_and_a_rerun_recovers(
    engine: Engine, method: str, faults: tuple[str, ...], cut_at: int, asked_again: int
) -> None:
    ids, _ = add_instructions(engine, [InstructionRecord("Count the words in a text.")])
    add_commits(engine, ["Fix total #1"])
    with LoopbackLLM(synth_responder) as server:
        if method == "commit-instruct":
            config = SynthConfig(method, critic=f"openai:critic@{server.base_url}", concurrency=1)
        else:
            config = SynthConfig(method, critic=f"openai:c@{server.base_url}", draft=f"openai:d@{server.base_url}",
                                 instruction_ids=tuple(ids), concurrency=1)
        server.add_faults(*faults)
        events = run(engine, config)
        assert [(e.outcome, e.kind) for e in finished(events)] == [("failed", "truncated")]
        assert f"cut at max_tokens={cut_at} after 3 attempts" in finished(events)[0].reason
        assert count_rows(engine, PairRow) == 0
        sent = len(server.requests)

        again = run(engine, config)  # the server now answers in full: the item recovers
        assert [e.outcome for e in finished(again)] == ["pair"]
        assert len(server.requests) == sent + asked_again  # the cut turn and those after it; the rest is cached
    assert count_rows(engine, PairRow) == 1


# ---- answers that are not a plain JSON body; failed runs ------------------------------------------

def test_an_error_object_in_a_200_fails_items_verbatim_without_retries(engine: Engine) -> None:
    add_commits(engine, [f"Fix total #{i}" for i in range(3)])
    with LoopbackLLM(synth_responder) as server:
        server.add_faults(*["error200:404"] * 3)
        events = run(engine, SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}"))
        assert len(server.requests) == 3
    counters = final(events).counters
    assert (counters["failed"], counters["requests"], counters["retries"]) == (3, 3, 0)
    assert counters["failed_by_kind"] == {"llm:error_body": 3}
    assert all("The model `critic` does not exist." in e.reason for e in finished(events))
    job = list_jobs(engine, kind="synth")[0]
    assert job.state == "failed" and (job.error or "").startswith("3 of 3 items failed: 3 LLM requests failed (e.g. ")


def test_a_bad_chunk_fails_one_item_and_the_run_goes_on(engine: Engine) -> None:
    add_commits(engine, [f"Fix total #{i}" for i in range(3)])
    with LoopbackLLM(synth_responder) as server:
        server.add_faults("badchunk")
        events = run(engine, SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}",
                                         concurrency=1))
    assert final(events).stop_reason == "done"
    assert sorted((e.outcome, e.kind) for e in finished(events)) == [
        ("failed", "llm:protocol"), ("pair", ""), ("pair", "")]


# ---- counters that tell the truth ------------------------------------------------------------------

def test_attempts_retries_and_failure_kinds_match_what_the_server_saw(engine: Engine) -> None:
    add_commits(engine, [f"Fix total #{i}" for i in range(4)])
    with LoopbackLLM(synth_responder) as server:
        server.add_faults("429:0.01", "500", "drop", "badjson", "503", "error200:503")
        events = run(engine, SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}?retries=6",
                                         concurrency=2))
        seen = len(server.requests)
    counters = final(events).counters
    assert counters["requests"] == seen == 4 * 3 + 6
    assert (counters["retries"], counters["answers"], counters["pairs"]) == (6, 12, 4)
    assert counters["http_failures"] == {"http_429": 1, "http_5xx": 2, "connect": 1, "malformed": 1, "error_body": 1}
    usage = final(events).usage_by_model["critic"]
    assert usage["requests"] == 12  # answers paid for


def test_duplicate_pairs_are_counted_apart_from_new_ones(engine: Engine) -> None:
    add_commits(engine, ["Fix total #1", "Fix total #2", "Speed up total #3"])
    with LoopbackLLM(answering(pair=PAIR_BRACKETS)) as server:  # every commit yields the same pair
        events = run(engine, SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}"))
    counters = final(events).counters
    assert (counters["pairs"], counters["new_pairs"], counters["duplicate_pairs"]) == (3, 1, 2)
    assert count_rows(engine, PairRow) == 1


def test_a_narrower_limit_is_honoured_on_resume(engine: Engine) -> None:
    add_commits(engine, [f"Fix total #{i}" for i in range(8)])
    with LoopbackLLM(synth_responder) as server:
        spec = f"openai:critic@{server.base_url}"
        seen: list[int] = []

        def stop_after_first() -> bool:
            return bool(seen)

        # A --limit 6 run stopped after its first item, like a killed one.
        for event in run_synthesis_job(engine, SynthConfig("commit-instruct", critic=spec, limit=6, concurrency=1),
                                       cancel=stop_after_first):
            if isinstance(event, ItemFinished):
                seen.append(event.item_id)
        key = prepare_run(engine, SynthConfig("commit-instruct", critic=spec, limit=6))
        assert item_counts(engine, key).pending == 5
        events = run(engine, SynthConfig("commit-instruct", critic=spec, limit=4))
    assert final(events).counters["done"] == 3
    with Session(engine) as session:
        items = {item.subject_id: item.state for item in session.exec(select(SynthItemRow)).all()}
    assert [items[subject] for subject in sorted(items)] == ["pair"] * 4 + ["pending"] * 2
    assert list_jobs(engine, kind="synth")[0].summary["items_pending"] == 2


# ---- the store off the event loop ------------------------------------------------------------------

async def test_requests_in_flight_complete_while_the_store_is_write_locked(engine: Engine, db_path: Path) -> None:
    add_commits(engine, [f"Fix total #{i}" for i in range(24)])
    with LoopbackLLM(synth_responder, delay_s=0.2) as server:
        spec = f"openai:critic@{server.base_url}"
        config = SynthConfig("commit-instruct", critic=spec, concurrency=8)
        key = prepare_run(engine, config)
        store = SqlSynthesisStore(engine, job_id=None, method="commit-instruct", key=key,
                                  load_subjects=load_commit_subjects)
        backend = make_backend(spec)
        counters = SynthCounters()
        window: dict[str, float] = {}
        beats: list[tuple[float, int]] = []

        def hold_write_lock() -> None:
            connection = sqlite3.connect(db_path, timeout=10, isolation_level=None)
            for _try in range(50):  # take the lock at a moment when requests are in flight
                connection.execute("BEGIN IMMEDIATE")
                if counters.in_flight:
                    break
                connection.execute("COMMIT")
                time.sleep(0.02)
            answered = counters.answers  # read first: an answer landing between the two reads still counts
            window["start"], window["in_flight"] = time.monotonic(), counters.in_flight
            # Held at least 3 s, and until the requests in flight have come back (a loaded machine answers late).
            while time.monotonic() - window["start"] < 3 or (
                    counters.answers - answered < window["in_flight"] and time.monotonic() - window["start"] < 30):
                time.sleep(0.05)
            window["end"], window["answered"] = time.monotonic(), counters.answers - answered
            connection.execute("COMMIT")
            connection.close()

        async def heartbeat() -> None:
            while True:
                beats.append((time.monotonic(), counters.answers))
                if not locker.is_alive() and "start" not in window and counters.answers >= 10 \
                        and counters.in_flight >= 2:
                    locker.start()
                await asyncio.sleep(0.05)

        locker = threading.Thread(target=hold_write_lock)
        beating = asyncio.create_task(heartbeat())
        try:
            async for event in run_synthesis(CommitInstruct(), store, {"critic": backend}, concurrency=8,
                                             counters=counters):
                if isinstance(event, SynthFinished):
                    assert event.stop_reason == "done"
        finally:
            beating.cancel()
            await backend.aclose()
            if locker.is_alive() or "start" in window:
                locker.join()
    during = [(moment, answers) for moment, answers in beats if window["start"] <= moment <= window["end"]]
    gaps = [later[0] - earlier[0] for earlier, later in zip(during, during[1:])]
    # A loop that waited for the store would stop beating for the whole 3 s; a busy machine delays a beat far less.
    assert window["in_flight"] >= 1 and max(gaps) < 1.5, f"the event loop waited for the store: {window}, {gaps}"
    # Counted where the lock is released: the last heartbeat of the window may predate the last answer.
    completed = window["answered"]
    assert completed >= window["in_flight"], f"requests in flight did not complete: {completed}, {window}"
    assert item_counts(engine, key).pair == 24 and counters.done == 24
