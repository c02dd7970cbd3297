"""Many workers, one store: worker processes share a synthesis run and an eval run with no overlap.

The LLM is the loopback OpenAI-compatible server with seeded faults (429, 500, dropped
connections, malformed JSON, truncated answers, a refused key). Every item must end exactly once
(pair, filtered or failed), no pair twice, and, without a kill, every item claimed once and the
run's HTTP attempt count equal to what the server received. Killed with SIGKILL mid-run, a
worker's job and items are taken over by the others once their lease runs out; still exactly once.
The full-size runs of the acceptance (1,000 commits) are marked slow; the suite runs them smaller.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.jobs import JobInfo
from stores.curation.tables import PairRow
from stores.db import make_engine
from stores.evaluation.runs import get_run, list_results
from stores.jobs import get_job, job_shares, list_workers
from stores.synthesis.tables import ConversationRow, SynthItemRow
from tests.jobs.test_lifecycle import _bench
from tests.llm_server import LoopbackLLM
from tests.synth_answers import synth_responder
from tests.synth_fixtures import add_commits, commit_messages
from tests.workers import wait_for, wait_for_job, worker_process
from workbench.jobs.queue import enqueue
from workbench.jobs.synthesize import SynthConfig

FAULTS = ["429:0.01", "500", "drop", "badjson", "truncate", "401"]


def seeded_faults(server: LoopbackLLM, requests: int, *, seed: int = 7, rate: float = 0.04) -> int:
    """One fault in about 1/rate requests, in a seeded order; returns how many faults were queued."""
    rng = random.Random(seed)
    plan = [rng.choice(FAULTS) if rng.random() < rate else "" for _ in range(requests)]
    server.add_faults(*plan)
    return sum(1 for fault in plan if fault)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _start_workers(processes: list[subprocess.Popen[bytes]], url: str, count: int, kinds: str, tmp_path: Path,
                   *, lease_s: float) -> None:
    for index in range(count):
        processes.append(worker_process(url, "--kinds", kinds, "--concurrency", "1", lease_s=lease_s,
                                        log=tmp_path / f"worker-{index}.log"))


def _check_exactly_once(engine: Engine, total: int, *, claimed_once: bool) -> dict[str, int]:
    with Session(engine) as session:
        items = session.exec(select(SynthItemRow)).all()
        pairs = session.exec(select(PairRow)).all()
        ended = session.exec(select(ConversationRow).where(ConversationRow.outcome != "")).all()
    states = [item.state for item in items]
    assert len(items) == total
    assert set(states) <= {"pair", "filtered", "failed"}, "an item is still pending or claimed"
    assert len(pairs) == states.count("pair") == len({pair.content_hash for pair in pairs})
    assert sorted(pair.id for pair in pairs) == sorted(item.pair_id for item in items if item.state == "pair")
    assert len({json.loads(pair.meta_json)["item_id"] for pair in pairs}) == len(pairs)
    final = {conversation.id: conversation.outcome for conversation in ended}
    assert all(final.get(item.conversation_id) == item.state for item in items if item.conversation_id is not None)
    assert len(ended) == sum(1 for item in items if item.conversation_id is not None)  # one ending per item
    if claimed_once:
        assert {item.attempts for item in items} == {1}, "an item was claimed twice"
    return {state: states.count(state) for state in ("pair", "filtered", "failed")}


def _synth_run(url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]], *, commits: int, workers: int,
               kill: bool, lease_s: float) -> None:
    engine = make_engine(url)
    add_commits(engine, commit_messages(commits))
    with LoopbackLLM(synth_responder, delay_s=0.02) as server:
        faults = seeded_faults(server, 4 * commits)
        assert faults > 0
        config = SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}?concurrency=8",
                             concurrency=8)
        job = enqueue(engine, "synth", config, start_worker=False)
        _start_workers(processes, url, workers, "synth", tmp_path, lease_s=lease_s)
        if kill:
            victim = _kill_the_owner_mid_run(engine, job, processes, commits)
        finished = wait_for_job(engine, job.id, timeout=600)
        sent = len(server.requests)
    counts = _check_exactly_once(engine, commits, claimed_once=not kill)
    # The fixture's unusable answers fail some items, and items that failed fail the job, saying how many.
    expected = "failed" if counts["failed"] else "done"
    assert finished.state == expected, (finished.error, _logs(tmp_path))
    if counts["failed"]:
        assert (finished.error or "").startswith(f"{counts['failed']} of ")
    summary = finished.summary
    assert (summary["items_pair"], summary["items_filtered"], summary["items_failed"]) == (
        counts["pair"], counts["filtered"], counts["failed"])
    assert summary["items_pending"] == 0
    with Session(engine) as session:  # the worker that ended each item
        enders = set(session.exec(select(SynthItemRow.worker_id)).all())
    assert len(enders) >= 2, ("the run was not shared", _logs(tmp_path))
    if kill:
        assert finished.attempts == 2 and finished.worker_id != victim  # taken over by another worker
    else:
        assert summary["http_attempts"] == sent  # every request the server saw, retries included, counted once
    engine.dispose()


def _kill_the_owner_mid_run(engine: Engine, job: JobInfo, processes: list[subprocess.Popen[bytes]],
                            commits: int) -> str:
    """SIGKILL the worker that owns the job once a tenth of the items have ended; return its id."""

    def some_done() -> bool:
        with Session(engine) as session:
            return len(session.exec(select(SynthItemRow.id).where(
                SynthItemRow.state.in_(("pair", "filtered", "failed")))).all()) >= commits // 10  # type: ignore[attr-defined]

    wait_for(some_done, 300, "a tenth of the items")
    owner = get_job(engine, job.id).worker_id
    pid = next(int(w.label.rsplit(" ", 1)[1]) for w in list_workers(engine, lease_s=600) if w.id == owner)
    victim = next(process for process in processes if process.pid == pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert owner is not None
    return owner


def _logs(tmp_path: Path) -> str:
    return "\n".join(path.read_text()[-2000:] for path in sorted(tmp_path.glob("worker-*.log")))


@pytest.mark.postgres
def test_four_workers_on_postgresql_share_one_commit_instruct_run(
    pg_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    _synth_run(pg_url, tmp_path, processes, commits=84, workers=4, kill=False, lease_s=60)


@pytest.mark.postgres
def test_a_worker_killed_mid_run_on_postgresql_loses_nothing_and_duplicates_nothing(
    pg_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    _synth_run(pg_url, tmp_path, processes, commits=84, workers=4, kill=True, lease_s=3)


def test_two_workers_on_sqlite_share_one_run(
    db_path: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    _synth_run(str(db_path), tmp_path, processes, commits=56, workers=2, kill=False, lease_s=60)


def test_a_worker_killed_on_sqlite_is_taken_over(db_path: Path, tmp_path: Path,
                                                 processes: list[subprocess.Popen[bytes]]) -> None:
    _synth_run(str(db_path), tmp_path, processes, commits=56, workers=2, kill=True, lease_s=3)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("kill", [False, True])
def test_acceptance_1000_commits_on_four_postgresql_workers(
    pg_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]], kill: bool
) -> None:
    _synth_run(pg_url, tmp_path, processes, commits=1000, workers=4, kill=kill, lease_s=5 if kill else 60)


@pytest.mark.slow
@pytest.mark.parametrize("kill", [False, True])
def test_acceptance_1000_commits_on_two_sqlite_workers(
    db_path: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]], kill: bool
) -> None:
    _synth_run(str(db_path), tmp_path, processes, commits=1000, workers=2, kill=kill, lease_s=5 if kill else 60)


def _verdict(messages: list[dict[str, str]]) -> str:
    time.sleep(0)  # the server's delay_s spreads the work over time
    return "[CODE_A] is better than [CODE_B] on the mentioned criteria."


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_eval_run_split_across_three_workers_judges_each_task_and_order_once(
    store: str, tmp_path: Path, request: pytest.FixtureRequest, processes: list[subprocess.Popen[bytes]]
) -> None:
    from workbench.jobs.evaluate import EvalParams

    url = str(tmp_path / "wb.db") if store == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    bench = _bench(tmp_path / "bench", tasks=30)
    with LoopbackLLM(_verdict, delay_s=0.05) as server:
        params = EvalParams(judge=f"openai:judge@{server.base_url}?concurrency=4", bench_dir=str(bench), chunk_size=4)
        job = enqueue(engine, "eval", params, start_worker=False)
        _start_workers(processes, url, 3, "eval", tmp_path, lease_s=60)
        finished = wait_for_job(engine, job.id, timeout=600)
        sent = len(server.requests)
    assert finished.state == "done", (finished.error, _logs(tmp_path))
    run = get_run(engine, finished.summary["run_id"])
    results = list_results(engine, run.id, limit=10_000)
    keys = [(r.objective, r.task_id, r.order) for r in results]
    assert run.total == 4 * 30 * 2 == len(keys) == len(set(keys)) == run.done
    assert sent == run.total  # no task was judged twice (a judged chunk is stored before it is let go)
    helped = {share.worker_id for share in job_shares(engine, job.id)}
    assert len(helped) >= 2, ("the run was not shared", job_shares(engine, job.id), _logs(tmp_path))
    assert run.state == "done"
    engine.dispose()
