from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.evaluation.bench import judge_items, load_benchmark
from core.evaluation.judges import GenerativeJudge, make_judge, parse_judge_spec
from core.evaluation.models import EvalFinished, EvalProgress
from core.llm.base import ChatRequest, ChatResult
from stores.evaluation.runs import (
    create_run,
    get_run,
    leaderboard,
    list_results,
    list_runs,
    rescore_run,
    run_scores,
    task_results,
)
from stores.evaluation.tables import EvalResultRow
from stores.jobs import list_jobs
from workbench.jobs.evaluate import run_evaluation

REPO_ROOT = Path(__file__).resolve().parents[2]
from tests.fixtures import BENCH_DIR  # noqa: E402

pytestmark = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared/codeprefbench is absent")

# Feedback as chat models really write it: verdicts in several phrasings, a tie and a refusal.
REPLIES = [
    "Code A validates its input and handles the empty case; Code B raises IndexError on [].\n\n"
    "[CODE_A] is better than [CODE_B] on the mentioned criteria.",
    "**Analysis**\n- [CODE_A]: O(n^2) nested loops.\n- [CODE_B]: a single pass with a set.\n\n"
    "[CODE_B] is better than [CODE_A] on the mentioned criteria.",
    "Both are functionally identical and equally efficient, so neither is better.",
    "I'm sorry, but I can't assist with that request.",
    "Verdict: Code B",
]


class ReplayBackend:
    """A stand-in for a remote chat model: answers with recorded feedback texts, in turn."""

    model_name = "replay-judge"

    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, request: ChatRequest) -> ChatResult:
        reply = REPLIES[self.calls % len(REPLIES)]
        self.calls += 1
        prompt = request.messages[0]["content"]
        return ChatResult(reply, prompt_tokens=len(prompt) // 4, completion_tokens=len(reply) // 4, latency_s=0.25)

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        return [await self.chat(request) for request in requests]

    async def aclose(self) -> None:
        pass


def _start(engine: Engine, spec: str, *, limit: int, lineage: dict | None = None) -> int:
    benchmark = load_benchmark(BENCH_DIR)
    parsed = parse_judge_spec(spec)
    return create_run(
        engine, judge_spec=spec, judge_kind=parsed.kind, benchmark=benchmark,
        objectives=("correctness", "security", "human-preference"), task_limit=limit, lineage=lineage,
    )


def test_generative_judge_results_are_stored_and_rescored_without_calls(engine: Engine) -> None:
    backend = ReplayBackend()
    judge = GenerativeJudge(parse_judge_spec("openai:replay-judge"), backend)
    run_id = _start(engine, "openai:replay-judge", limit=5, lineage=judge.lineage)
    events = list(run_evaluation(engine, run_id, judge, load_benchmark(BENCH_DIR), chunk_size=7))
    judge.close()
    assert events[-1].state == "done"  # type: ignore[union-attr]
    run = get_run(engine, run_id)
    assert (run.done, run.total, run.state, run.lineage) == (30, 30, "done", {"model": "replay-judge"})
    results = list_results(engine, run_id)
    assert backend.calls == 30 and len(results) == 30
    by_reply = {r.raw_output: r.decision for r in results}
    assert [by_reply[reply] for reply in REPLIES] == ["A", "B", "?", "?", "B"]
    assert all(r.latency_s == 0.25 and r.prompt_tokens > 100 for r in results)
    before = run_scores(engine, run_id)
    assert before.get("security").undecided == sum(  # type: ignore[union-attr]
        1 for r in results if r.objective == "security" and r.decision == "?"
    )
    with Session(engine) as session:  # decisions as an older, worse parser left them
        for row in session.exec(select(EvalResultRow)).all():
            row.decision = "?"
            session.add(row)
        session.commit()
    assert rescore_run(engine, run_id) == sum(1 for r in results if r.decision != "?")
    assert run_scores(engine, run_id) == before and backend.calls == 30
    both = task_results(engine, run_id, "security", results[0].task_id if results[0].objective == "security" else "CSE/1566")
    assert [r.order for r in both] == ["given", "swapped"]
    assert [job.kind for job in list_jobs(engine)] == ["eval"]


def test_baseline_runs_rank_in_the_leaderboard(engine: Engine) -> None:
    for spec in ("baseline:always-a", "baseline:shorter"):
        run_id = _start(engine, spec, limit=40)
        list(run_evaluation(engine, run_id, make_judge(spec), load_benchmark(BENCH_DIR)))
    board = leaderboard(engine)
    averages = {entry.run.judge_spec: entry.scores.verifiable_average for entry in board}
    both = {entry.run.judge_spec: entry.scores.verifiable_both_average for entry in board}
    assert both["baseline:always-a"] == pytest.approx(0.5)  # always A is right in exactly one order
    benchmark = load_benchmark(BENCH_DIR)
    given_share = [sum(t.gt_choice == 0 for t in benchmark.tasks[o][:40]) / 40 for o in ("correctness", "security")]
    assert averages["baseline:always-a"] == pytest.approx(sum(given_share) / 2)  # the given order alone
    assert list(averages.values()) == sorted(averages.values(), reverse=True)
    assert [run.id for run in list_runs(engine)] == [2, 1]


def _cli(db_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WORKBENCH_BENCH": str(BENCH_DIR)}
    code = "import sys; from workbench.cli import main; sys.argv[0] = 'workbench'; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "--db", str(db_path), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _result_rows(engine: Engine) -> list[tuple[int, str, str, str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(EvalResultRow).order_by(EvalResultRow.id)).all()  # type: ignore[arg-type]
        return [(r.id, r.objective, r.task_id, r.task_order, r.decision, r.raw_output) for r in rows]  # type: ignore[misc]


def test_a_run_killed_with_sigkill_resumes_without_duplicates_or_gaps(
    engine: Engine, db_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["eval", "run", "--judge", f"pair-rm:{tiny_model_dir}", "--limit", "4", "--objectives",
            "efficiency", "--chunk-size", "1", "--batch-size", "1", "--device", "cpu"]
    process = _cli(db_path, *args)
    deadline = time.monotonic() + 60
    while len(_result_rows(engine)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before_kill = _result_rows(engine)
    assert 2 <= len(before_kill) < 8, "the run ended before the kill; give it more work"
    assert get_run(engine, 1).done == len(before_kill)
    monkeypatch.setenv("WORKBENCH_LEASE_S", "2")  # from here on, a heartbeat 2 s old has run out
    time.sleep(2.5)  # no process check, only the lease: the run reads stalled once it ran out
    assert get_run(engine, 1).state == "stalled"

    resumed = _cli(db_path, "eval", "run", "--resume", "1", "--device", "cpu")
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr.decode()
    after = _result_rows(engine)
    assert after[: len(before_kill)] == before_kill  # kept, not redone
    keys = [(objective, task, order) for _id, objective, task, order, _d, _r in after]
    assert len(keys) == len(set(keys)) == 8
    assert get_run(engine, 1).state == "done"

    # The same judge, uninterrupted and in this process, decides every item the same way.
    judge = make_judge(f"pair-rm:{tiny_model_dir}", device="cpu")
    items = judge_items(load_benchmark(BENCH_DIR), objectives=("efficiency",), limit=4)
    expected = {item.key: (output.decision, output.raw) for item, output in zip(items, judge.decide(items))}
    assert {(o, t, r): (d, raw) for _id, o, t, r, d, raw in after} == expected
    assert [(job.state, job.attempts) for job in list_jobs(engine, kind="eval")] == [("done", 2)]  # taken over


def test_a_stopped_run_resumes_to_the_same_scores(engine: Engine) -> None:
    import threading

    stop = threading.Event()
    benchmark = load_benchmark(BENCH_DIR)
    run_id = _start(engine, "baseline:random:5", limit=30)
    judge = make_judge("baseline:random:5")
    for event in run_evaluation(engine, run_id, judge, benchmark, chunk_size=16, cancel=stop):
        if isinstance(event, EvalProgress):
            stop.set()  # after the first chunk
    assert not isinstance(event, EvalFinished)
    assert (get_run(engine, run_id).state, get_run(engine, run_id).done) == ("cancelled", 16)
    assert list_jobs(engine)[0].state == "cancelled"
    list(run_evaluation(engine, run_id, judge, benchmark, chunk_size=16))
    resumed = run_scores(engine, run_id)
    other = _start(engine, "baseline:random:5", limit=30)
    list(run_evaluation(engine, other, judge, benchmark))
    assert get_run(engine, run_id).done == 180 and run_scores(engine, other) == resumed
