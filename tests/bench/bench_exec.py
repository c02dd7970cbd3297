"""Sandbox cost: wall time per execution against a bare `python -c` of the same program, and
executions per second with 2 workers, in one run.

Run from the repository root: `python -m tests.bench.bench_exec [--problems N] [--rounds R]`.
Each execution runs a HumanEval problem's canonical solution with its tests (verdict only, no
timing re-runs), interleaved so load on a shared machine hits every mode alike. Baselines:
`python -c` with the workbench's interpreter as a user would start it (site-packages and all),
and `python -I -S -c` with the base interpreter and the sandbox's own flags (the strict one, the
goal is <= 2x of it). The last lines give executions/s with 2 workers for the bare runs, for the
sandbox, and for the sandbox with runtime measurement as `workbench codeopt execute` does it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from core.execution.problems import load_humaneval
from core.execution.sandbox import SandboxJob, TimingPolicy, probe_isolation, python_executable, run_in_sandbox
from core.execution.solutions import solution_program


def bare_program(job: SandboxJob) -> str:
    return f"{job.solution}\n\n{job.test}\n\ncheck({job.entry_point})\n"


def run_bare(command: list[str], job: SandboxJob) -> None:
    result = subprocess.run([*command, bare_program(job)], capture_output=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"bare run failed: {result.stderr.decode()[-300:]}")


def run_sandboxed(job: SandboxJob, timing: TimingPolicy) -> None:
    result = run_in_sandbox(job, timing=timing)
    if not result.passed:
        raise RuntimeError(f"sandboxed run failed: {result.detail}")


def per_execution(modes: dict[str, Callable[[SandboxJob], None]], jobs: list[SandboxJob], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in modes}
    for _round in range(rounds):
        for job in jobs:
            for name, run in modes.items():
                started = time.perf_counter()
                run(job)
                times[name].append(time.perf_counter() - started)
    return times


def throughput(run: Callable[[SandboxJob], None], jobs: list[SandboxJob], workers: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, jobs))
    return len(jobs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [SandboxJob(solution_program(p, p.canonical_solution), p.test, p.entry_point)
            for p in load_humaneval()[: args.problems]]
    isolation = probe_isolation()
    print(f"isolation: {isolation.describe()}")
    verdict_only = TimingPolicy(measure=False)
    modes: dict[str, Callable[[SandboxJob], None]] = {
        "python -c": lambda job: run_bare([sys.executable, "-c"], job),
        "python -I -S -c": lambda job: run_bare([python_executable(), "-I", "-S", "-c"], job),
        "sandbox": lambda job: run_sandboxed(job, verdict_only),
    }
    times = per_execution(modes, jobs, args.rounds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:>16}: median {value * 1e3:7.1f} ms per execution ({len(times[name])} runs)")
    print(f"sandbox overhead: {medians['sandbox'] / medians['python -c']:.2f}x python -c, "
          f"{medians['sandbox'] / medians['python -I -S -c']:.2f}x python -I -S -c (goal <= 2x)")
    batch = jobs * args.rounds
    bare_rate = throughput(modes["python -I -S -c"], batch, args.workers)
    sandbox_rate = throughput(modes["sandbox"], batch, args.workers)
    measured_rate = throughput(lambda job: run_sandboxed(job, TimingPolicy()), jobs, args.workers)
    print(f"{args.workers} workers: bare {bare_rate:.1f} executions/s, sandbox {sandbox_rate:.1f} executions/s "
          f"({sandbox_rate / bare_rate:.2f}x bare); with runtime measurement {measured_rate:.1f} executions/s")


if __name__ == "__main__":
    main()
