"""Code-Optimise jobs as registered kinds, on SQLite and PostgreSQL: workers share a sampling run and
an execution run with no overlap, a second command on the same run joins it, an execution claim is a
lease that another worker takes over once its heartbeat stops, and a policy evaluation cancelled in
its sampling stage ends both jobs cancelled and resumes from what they stored."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.execution.runtime import RuntimeStats
from core.execution.sandbox import ExecutionResult, SandboxLimits, TimingPolicy
from core.synthesis.driver import SynthProgress
from stores.execution.evals import list_policy_evals
from stores.execution.problems import add_problems
from stores.execution.solutions import (
    ExecutionScope,
    claim_executions,
    open_executions,
    record_execution,
    release_executions,
)
from stores.execution.tables import CodeSolutionRow
from stores.jobs import get_job, heartbeat, list_jobs
from stores.synthesis.tables import SynthItemRow
from stores.tables import utcnow
from tests.codeopt_fixtures import PolicyStandIn, demo_problems, seed_samples
from tests.llm_server import LoopbackLLM
from tests.workers import wait_for_job, worker_thread
from workbench.jobs.codeopt import (
    ExecutionRun,
    PolicyEvalFinished,
    PolicyEvalRun,
    SamplingRun,
    run_policy_eval,
    run_sampling_job,
)
from workbench.jobs.queue import enqueue
from workbench.jobs.runner import JobStarted, drain

QUICK = SandboxLimits(timeout_s=5.0)
TIMING = TimingPolicy(budget_s=0.5)
SOLUTIONS = CodeSolutionRow.__table__  # type: ignore[attr-defined]


def _solutions(engine: Engine) -> list[CodeSolutionRow]:
    with Session(engine) as session:
        return list(session.exec(select(CodeSolutionRow)).all())


def _items(engine: Engine) -> list[SynthItemRow]:
    with Session(engine) as session:
        return list(session.exec(select(SynthItemRow)).all())


def test_two_workers_share_a_sampling_run_and_an_execution_run_with_no_overlap(any_engine: Engine) -> None:
    engine = any_engine
    add_problems(engine, demo_problems(4))
    with LoopbackLLM(PolicyStandIn(), delay_s=0.05) as server:
        run = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=10, concurrency=2)
        job = enqueue(engine, "codeopt-sample", run, start_worker=False)
        with worker_thread(engine, kinds=["codeopt-sample"], concurrency=1), \
                worker_thread(engine, kinds=["codeopt-sample"], concurrency=1):
            sampled = wait_for_job(engine, job.id)
        sent = len(server.requests)
    assert sampled.state == "done", sampled.error
    items = _items(engine)
    assert len(items) == 40 and {item.state for item in items} == {"sampled"}
    assert {item.attempts for item in items} == {1}, "a slot was claimed twice"
    assert sent == 40  # no slot was asked twice
    assert len({item.worker_id for item in items}) == 2, "the run was not shared"
    summary = sampled.summary  # the owner's summary adds the helper's counters
    assert (summary["answered"], summary["requests"], summary["sampled"], summary["open"]) == (40, 40, 40, 0)

    job = enqueue(engine, "codeopt-execute", ExecutionRun(workers=1, limits=QUICK, timing=TIMING), start_worker=False)
    with worker_thread(engine, kinds=["codeopt-execute"], concurrency=1), \
            worker_thread(engine, kinds=["codeopt-execute"], concurrency=1):
        executed = wait_for_job(engine, job.id, timeout=300)
    assert executed.state == "done", executed.error
    rows = _solutions(engine)
    assert {row.exec_state for row in rows} == {"done"} and {row.exec_attempts for row in rows} == {1}
    assert len({row.exec_worker_id for row in rows}) == 2, "the run was not shared"
    summary = executed.summary
    assert summary["executed"] + summary["reused"] == 40 and summary["passed"] == 24
    assert sum(1 for row in rows if row.status == "passed") == 24


def test_a_second_command_on_the_same_sampling_run_joins_it(any_engine: Engine) -> None:
    engine = any_engine
    add_problems(engine, demo_problems(3))
    with LoopbackLLM(PolicyStandIn(), delay_s=0.05) as server:
        run = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=10, concurrency=2)
        first = run_sampling_job(engine, run)
        owner = next(first)
        assert isinstance(owner, JobStarted) and owner.role == "owner"
        next(first)  # sampling: some slots are claimed by the first command
        second = run_sampling_job(engine, run)
        helper = next(second)
        assert isinstance(helper, JobStarted) and (helper.job_id, helper.role) == (owner.job_id, "helper")
        drain(second)
        finished = drain(first)
        sent = len(server.requests)
    assert finished.state == "done" and sent == 30
    items = _items(engine)
    assert {item.state for item in items} == {"sampled"} and {item.attempts for item in items} == {1}
    assert finished.summary["answered"] == 30
    assert [job.kind for job in list_jobs(engine)] == ["codeopt-sample"]  # one job, no rival


def test_an_execution_claim_is_a_lease_renewed_by_heartbeat_and_taken_over_when_it_stops(any_engine: Engine) -> None:
    engine = any_engine
    seed_samples(engine, demo_problems(2), 3)
    scope = ExecutionScope()
    first = [task.solution_id for task in claim_executions(engine, "w-1", 4, scope, lease_s=60)]
    second = [task.solution_id for task in claim_executions(engine, "w-2", 10, scope, lease_s=60)]
    assert len(first) == 4 and len(second) == 2 and not set(first) & set(second)
    assert open_executions(engine, scope, lease_s=60) == (0, 6)

    def age(worker_id: str) -> None:  # its heartbeats stopped two minutes ago
        with engine.begin() as connection:
            connection.execute(update(SOLUTIONS).where(SOLUTIONS.c.exec_worker_id == worker_id)
                               .values(exec_heartbeat_at=utcnow() - timedelta(seconds=120)))

    age("w-1")
    heartbeat(engine, "w-1")  # alive again: its claims are fresh
    assert claim_executions(engine, "w-2", 10, scope, lease_s=60) == []
    age("w-1")  # now it died
    assert open_executions(engine, scope, lease_s=60) == (4, 2)
    taken = [task.solution_id for task in claim_executions(engine, "w-2", 10, scope, lease_s=60)]
    assert taken == first
    verdict = ExecutionResult("passed", samples=(0.001,) * 5)
    stats = RuntimeStats(0.001, 0.01, 5, True)
    assert not record_execution(engine, first[0], verdict, stats, "x", worker_id="w-1")  # no longer its own
    assert record_execution(engine, first[0], verdict, stats, "x", worker_id="w-2")
    assert release_executions(engine, "w-1", first) == 0
    assert release_executions(engine, "w-2", [*first, *second]) == 5
    by_id = {row.id: row for row in _solutions(engine)}
    assert (by_id[first[0]].exec_state, by_id[first[0]].exec_attempts, by_id[first[0]].status) == ("done", 2, "passed")
    assert {row.exec_state for row in by_id.values() if row.id != first[0]} == {"pending"}


def test_a_policy_eval_cancelled_while_sampling_ends_both_jobs_cancelled_and_resumes(db_path: object) -> None:
    from stores.db import make_engine

    engine = make_engine(str(db_path))
    add_problems(engine, demo_problems(4))
    with LoopbackLLM(PolicyStandIn(), delay_s=0.05) as server:
        run = PolicyEvalRun(SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=5, concurrency=1),
                            ks=(1, 5), execution=ExecutionRun(workers=2, limits=QUICK, timing=TIMING))
        seen: list[object] = []
        stopped = drain(run_policy_eval(engine, run, cancel=lambda: any(isinstance(e, SynthProgress) for e in seen)),
                        seen.append)
        asked = len(server.requests)
        assert stopped.state == "cancelled" and stopped.error is not None and stopped.error.startswith("cancelled; ")
        stage = {job.kind: job for job in list_jobs(engine)}["codeopt-sample"]
        assert stage.state == "cancelled" and 0 < asked < 20
        assert list_policy_evals(engine)[0].state == "cancelled"
        assert not any(isinstance(event, PolicyEvalFinished) for event in seen)

        events: list[object] = []
        resumed = drain(run_policy_eval(engine, run), events.append)
        sent = len(server.requests)
    assert resumed.state == "done", resumed.error
    assert sent == 20  # what the cancelled run sampled is not asked again
    final = events[-1]
    assert isinstance(final, PolicyEvalFinished) and final.state == "done" and final.metrics is not None
    assert final.metrics.samples == 20
    evals = list_policy_evals(engine)
    assert [e.state for e in evals] == ["done", "cancelled"] and evals[0].job_id == resumed.id
    assert get_job(engine, resumed.id).summary["metrics"]["samples"] == 20
    engine.dispose()
