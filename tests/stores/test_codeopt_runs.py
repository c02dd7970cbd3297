"""Code-Optimise end to end on a file store: sample from a loopback OpenAI server, run in the sandbox,
build pairs, evaluate pass@k; resume, cancel and failure paths keep every stored record right."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.errors import OptionError
from core.execution.pairs import PairOptions
from core.execution.problems import ProblemSelection
from core.execution.sandbox import SandboxError, SandboxLimits, TimingPolicy
from core.synthesis.driver import SynthFinished
from stores.curation.pairs import pair_stats
from stores.execution.evals import get_policy_eval, list_policy_evals
from stores.execution.problems import add_problems, get_problem, list_problems, select_problem_ids
from stores.execution.solutions import ExecutionScope, list_solutions
from stores.execution.tables import CodePairLinkRow, CodeSolutionRow, PolicyEvalProblemRow
from stores.jobs import get_job, list_jobs
from tests.codeopt_fixtures import PASSING_VARIANTS, PolicyStandIn, demo_problems
from tests.fixtures import stored_pairs
from tests.llm_server import LoopbackLLM
from workbench.jobs import codeopt
from workbench.jobs.codeopt import (
    ExecutionRun,
    ExecutionSummary,
    PolicyEvalFinished,
    PolicyEvalRun,
    SamplingRun,
    build_pairs,
    run_execution_job,
    run_policy_eval,
    run_sampling_job,
)

QUICK = SandboxLimits(timeout_s=5.0)
TIMING = TimingPolicy(budget_s=2.0)


def sample(engine: Engine, run: SamplingRun) -> SynthFinished:
    final = None
    for event in run_sampling_job(engine, run):
        if isinstance(event, SynthFinished):
            final = event
    assert final is not None
    return final


def execute(engine: Engine, **options: object) -> ExecutionSummary:
    events = list(run_execution_job(engine, ExecutionRun(workers=2, limits=QUICK, timing=TIMING, **options)))  # type: ignore[arg-type]
    summary = events[-1]
    assert isinstance(summary, ExecutionSummary)
    return summary


def test_problems_are_stored_once_and_listed_with_counts(engine: Engine) -> None:
    ids, added = add_problems(engine, demo_problems(3))
    again, added_again = add_problems(engine, [*demo_problems(3), *demo_problems(1, start=7)])
    assert added == 3 and added_again == 1 and again[:3] == ids
    listed = list_problems(engine)
    assert [p.task_id for p in listed] == ["Demo/0", "Demo/1", "Demo/2", "Demo/7"]
    assert listed[0].counts.samples == 0 and listed[0].pairs == 0
    assert get_problem(engine, ids[1]).problem.entry_point == "add_1"
    assert select_problem_ids(engine, ProblemSelection(task_prefix="Demo/", offset=1, limit=2)) == ids[1:3]


def test_sample_ten_for_ten_problems_run_them_and_get_pairs(engine: Engine) -> None:
    add_problems(engine, demo_problems(10))
    stand_in = PolicyStandIn()
    with LoopbackLLM(stand_in) as server:
        run = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=10, concurrency=8)
        finished = sample(engine, run)
        assert finished.stop_reason == "done" and finished.counters["answered"] == 100
        assert len(server.requests) == 100
        assert {r["seed"] for r in server.requests} == set(range(10))
        assert all(r["temperature"] == 0.8 and r["top_p"] == 0.95 for r in server.requests)
        again = sample(engine, run)  # resumable: every slot is sampled, nothing is asked again
        assert again.counters["done"] == 0 and len(server.requests) == 100

    summary = execute(engine)
    assert summary.stop_reason == "done"
    assert summary.executed + summary.reused == 100
    assert summary.reused == 20  # variants 0-2 share one code per problem: run once, reused twice
    assert summary.passed == 60 and summary.failed == 40 and summary.timeout == 0
    assert "namespaces" in summary.isolation or "audit hook" in summary.isolation
    assert execute(engine).executed == 0  # nothing left to run

    result = build_pairs(engine, PairOptions(min_relative_gap=0.5))
    assert result.problems == 10 and result.eligible == 10
    # 4 distinct passing codes x 3 distinct failing codes with code (the answer without code is left out).
    assert result.correctness == 120
    assert result.efficiency >= 10  # the slow variant against the quick ones whose runtimes are stable
    assert result.added == result.correctness + result.efficiency
    assert build_pairs(engine, PairOptions(min_relative_gap=0.5)).added == 0

    pairs = stored_pairs(engine)
    assert len(pairs) == result.added and {p.source for p in pairs} == {"code-optimise"}
    with Session(engine) as session:
        links = {link.pair_id: link for link in session.exec(select(CodePairLinkRow)).all()}
        solutions = {s.id: s for s in session.exec(select(CodeSolutionRow)).all()}
    for pair in pairs:
        link = links[pair.id]
        assert pair.meta["group"] == link.problem_id == pair.meta["problem_id"]
        chosen, rejected = solutions[link.chosen_solution_id], solutions[link.rejected_solution_id]
        assert (chosen.code, rejected.code) == (pair.chosen, pair.rejected)
        if link.objective == "correctness":
            assert chosen.status == "passed" and rejected.status != "passed" and rejected.code.strip()
        else:
            assert chosen.stable and rejected.stable
            assert rejected.runtime_median_s >= 1.5 * chosen.runtime_median_s  # type: ignore[operator]
    problem = list_problems(engine)[0]
    assert problem.counts.samples == 10 and problem.counts.passed == 6 and problem.counts.failing == 4
    assert problem.pairs == len([p for p in pairs if p.meta["problem_id"] == problem.id])
    kinds = {job.kind: job.state for job in list_jobs(engine, limit=50)}
    assert kinds["codeopt-sample"] == kinds["codeopt-execute"] == kinds["codeopt-pairs"] == "done"
    assert pair_stats(engine).by_source == {"code-optimise": len(pairs)}


def test_pass_at_k_of_a_policy_on_five_held_out_problems(engine: Engine) -> None:
    add_problems(engine, demo_problems(12))
    held_out = ProblemSelection(split="held-out", held_out_fraction=0.5, limit=5)
    assert len(select_problem_ids(engine, held_out)) == 5
    with LoopbackLLM(PolicyStandIn()) as server:
        run = PolicyEvalRun(
            SamplingRun(model=f"openai:policy@{server.base_url}", selection=held_out, samples_per_problem=10),
            ks=(1, 5, 10), execution=ExecutionRun(workers=2, limits=QUICK, timing=TIMING),
        )

        events = list(run_policy_eval(engine, run))
        asked = len(server.requests)
        fewer = dataclasses.replace(run, sampling=dataclasses.replace(run.sampling, samples_per_problem=4), ks=(1, 4))
        smaller = list(run_policy_eval(engine, fewer))[-1]
        assert len(server.requests) == asked  # the first four samples of each problem are reused
        assert isinstance(smaller, PolicyEvalFinished) and smaller.metrics is not None
        assert smaller.metrics.samples == 20  # n = 4 per problem, not every sample of the configuration
    final = events[-1]
    assert isinstance(final, PolicyEvalFinished) and final.state == "done" and final.metrics is not None
    assert final.metrics.pass_at[1] == pytest.approx(len(PASSING_VARIANTS) / 10)
    assert final.metrics.pass_at[5] == pytest.approx(1.0) and final.metrics.pass_at[10] == pytest.approx(1.0)
    assert final.metrics.problems == 5 and final.metrics.samples == 50 and final.metrics.passed == 30
    assert final.metrics.mean_runtime_s is not None and final.metrics.mean_runtime_s > 0
    assert final.metrics.mean_length_chars is not None and final.metrics.mean_length_chars > 10
    stored = get_policy_eval(engine, final.eval_id)
    assert stored.state == "done" and stored.metrics["pass_at"]["1"] == pytest.approx(0.6)
    assert stored.problem_ids == tuple(select_problem_ids(engine, held_out)) and stored.seen_problems == 0
    assert list_policy_evals(engine)[1].id == final.eval_id
    with Session(engine) as session:
        rows = session.exec(select(PolicyEvalProblemRow)).all()
    rows = [r for r in rows if r.eval_id == final.eval_id]
    assert len(rows) == 5 and all(json.loads(r.pass_at_json)["1"] == pytest.approx(0.6) for r in rows)
    assert get_job(engine, stored.job_id).state == "done"  # type: ignore[arg-type]


def test_k_above_the_samples_and_greedy_multi_sampling_are_refused(engine: Engine) -> None:
    add_problems(engine, demo_problems(2))
    with pytest.raises(OptionError, match="between 1 and the samples"):
        PolicyEvalRun(SamplingRun(model="openai:x@http://127.0.0.1:9/v1", samples_per_problem=4), ks=(5,)).validate()
    with pytest.raises(OptionError, match="temperature"):
        SamplingRun(model="openai:x@http://127.0.0.1:9/v1", samples_per_problem=3, temperature=0).validate()
    with pytest.raises(OptionError, match="no problems match"):
        codeopt.prepare_sampling(engine, SamplingRun(model="openai:x@http://127.0.0.1:9/v1",
                                                      selection=ProblemSelection(task_prefix="Nope/")))


def test_a_budget_stops_sampling_and_the_next_run_resumes(engine: Engine) -> None:
    add_problems(engine, demo_problems(4))
    with LoopbackLLM(PolicyStandIn()) as server:
        limited = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=5, concurrency=1, budget="40")
        first = sample(engine, limited)
        assert first.stop_reason == "budget" and 0 < first.counters["answered"] < 20
        full = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=5, concurrency=4)
        second = sample(engine, full)
        assert second.stop_reason == "done"
        assert first.counters["answered"] + second.counters["answered"] == 20
        assert len(server.requests) == 20
    assert len(list_solutions(engine)) == 20


def test_an_answer_cut_at_max_tokens_is_a_sample_and_is_not_asked_again(engine: Engine) -> None:
    # Re-asking a cut answer with more tokens (as synthesis does) would drop failing samples and
    # inflate pass@k; the cut solution is stored as it came back and runs like any other.
    add_problems(engine, demo_problems(2))

    def cut(messages: list[dict[str, str]]) -> dict[str, str]:
        return {"content": "```python\ndef add_", "finish_reason": "length"}

    with LoopbackLLM(cut) as server:
        run = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=3, concurrency=2)
        finished = sample(engine, run)
        assert finished.stop_reason == "done" and finished.counters["answered"] == 6
        assert finished.counters["failed"] == 0 and len(server.requests) == 6
    solutions = list_solutions(engine)
    assert len(solutions) == 6 and {s.finish_reason for s in solutions} == {"length"}
    assert execute(engine).failed == 6
    assert {s.status for s in list_solutions(engine)} <= {"failed", "error"}


def test_a_sandbox_that_cannot_start_fails_the_job_and_records_no_verdict(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    add_problems(engine, demo_problems(2))
    with LoopbackLLM(PolicyStandIn()) as server:
        sample(engine, SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=3))

    def broken(*_args: object, **_kwargs: object) -> object:
        raise SandboxError("sandbox setup failed: mount: Operation not permitted")

    monkeypatch.setattr(codeopt, "run_in_sandbox", broken)
    with pytest.raises(SandboxError):
        list(run_execution_job(engine, ExecutionRun(workers=2, limits=QUICK, timing=TIMING)))
    with Session(engine) as session:
        rows = session.exec(select(CodeSolutionRow)).all()
    assert {(r.exec_state, r.status) for r in rows} == {("pending", "")}
    job = [j for j in list_jobs(engine, limit=10) if j.kind == "codeopt-execute"][0]
    assert job.state == "failed" and "mount" in (job.error or "")


def test_cancel_keeps_finished_verdicts_and_releases_the_rest(engine: Engine) -> None:
    add_problems(engine, demo_problems(3))
    with LoopbackLLM(PolicyStandIn()) as server:
        sample(engine, SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=10))
    calls = {"n": 0}

    def cancel_after_first_progress() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    events = list(run_execution_job(engine, ExecutionRun(workers=2, limits=QUICK, timing=TIMING),
                                    cancel=cancel_after_first_progress))
    summary = events[-1]
    assert isinstance(summary, ExecutionSummary) and summary.stop_reason == "cancelled"
    with Session(engine) as session:
        states = [r.exec_state for r in session.exec(select(CodeSolutionRow)).all()]
    assert "claimed" not in states and states.count("done") == summary.executed + summary.reused < 30
    assert execute(engine, scope=ExecutionScope()).stop_reason == "done"
    with Session(engine) as session:
        assert {r.exec_state for r in session.exec(select(CodeSolutionRow)).all()} == {"done"}


def test_hf_backend_samples_with_a_seed_each_in_shared_batches(engine: Engine, tiny_model_dir: Path) -> None:
    add_problems(engine, demo_problems(2))
    run = SamplingRun(model=f"hf:{tiny_model_dir}?batch_size=8", samples_per_problem=3, max_tokens=8, concurrency=8)
    finished = sample(engine, run)
    assert finished.stop_reason == "done" and finished.counters["answered"] == 6
    solutions = list_solutions(engine)
    assert len(solutions) == 6 and all(s.finish_reason in ("stop", "length") for s in solutions)
    assert sample(engine, run).counters["requests"] == 0
