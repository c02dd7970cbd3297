"""Benchmark: one Commit-Instruct run shared by 1, 2 and 4 worker processes on one PostgreSQL store.

Run: PYTHONPATH=. python tests/bench/bench_workers.py [--commits 400] [--delay 0.2] [--concurrency 4]
The LLM is the loopback server (its own process) answering every request after `--delay` seconds.
For each worker count: a fresh database with the same commits, the workers started and idle, then
one synthesis job queued and timed until it ends. Prints items/s per worker count and the ratio
to one worker, measured in the same run (PostgreSQL is started here unless WORKBENCH_TEST_PG_URL
names a server).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from stores.db import make_engine  # noqa: E402
from stores.jobs import get_job, list_workers  # noqa: E402
from tests.pg_server import start, stop  # noqa: E402
from tests.synth_fixtures import add_commits, commit_messages  # noqa: E402
from workbench.jobs.queue import enqueue  # noqa: E402
from workbench.jobs.synthesize import SynthConfig  # noqa: E402


def start_llm(delay: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--delay", str(delay), "--script", "synth"], cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline().split()[1])
    return process, f"http://127.0.0.1:{port}/v1"


def new_database(server_url: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


def run_once(server_url: str, llm_url: str, workers: int, commits: int, concurrency: int) -> tuple[float, int, float]:
    """Seconds for `workers` workers to finish one run of `commits` items, how many items ended, and
    the CPU seconds the workers used."""
    url = new_database(server_url)
    engine = make_engine(url)
    add_commits(engine, commit_messages(commits))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [subprocess.Popen([sys.executable, "-m", "workbench.jobs.worker", "--db", url, "--kinds", "synth",
                                   "--concurrency", "1"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        while len(list_workers(engine, lease_s=60)) < workers:  # all started and idle before the clock starts
            time.sleep(0.1)
        cpu_before = sum(_cpu_seconds(process.pid) for process in processes)
        config = SynthConfig("commit-instruct", critic=f"openai:critic@{llm_url}?concurrency={concurrency}",
                             concurrency=concurrency)
        started = time.perf_counter()
        job = enqueue(engine, "synth", config, start_worker=False)
        while get_job(engine, job.id).is_active:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu = sum(_cpu_seconds(process.pid) for process in processes) - cpu_before
        final = get_job(engine, job.id)
        ended = final.summary["items_pair"] + final.summary["items_filtered"] + final.summary["items_failed"]
        # The mix has commits whose answers are unusable by design: their items fail, and the job
        # ends `failed` saying so; what matters here is that every item ended, once.
        if final.state not in ("done", "failed") or ended != commits:
            raise SystemExit(f"job {job.id} ended {final.state} with {ended} of {commits} items: {final.error}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        engine.dispose()
    return seconds, int(ended), cpu


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (Linux /proc; start-up imports excluded by
    taking the difference over the timed run)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=400)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=4, help="LLM requests in flight per worker")
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    own_server = None
    server_url = os.environ.get("WORKBENCH_TEST_PG_URL")
    if not server_url:
        server_url, own_server = start(Path(tempfile.mkdtemp(prefix="bench-pg-")))
    llm, llm_url = start_llm(args.delay)
    try:
        rows = []
        for workers in counts:
            seconds, ended, cpu = run_once(server_url, llm_url, workers, args.commits, args.concurrency)
            rows.append((workers, seconds, ended / seconds, cpu / ended))
            print(f"  {workers} worker(s): {ended} items in {seconds:.1f}s", file=sys.stderr, flush=True)
    finally:
        llm.terminate()
        if own_server is not None:
            stop(own_server)
    base = rows[0][2]
    # 3 requests per item (explain, verdict, example) at `delay` each, `concurrency` items per worker.
    ideal_per_worker = args.concurrency / (3 * args.delay)
    print(f"\nCommit-Instruct, {args.commits} commits, PostgreSQL, LLM latency {args.delay * 1000:.0f} ms, "
          f"{args.concurrency} requests in flight per worker (machine: {os.cpu_count()} CPUs)")
    print(f"{'workers':>7}  {'seconds':>8}  {'items/s':>8}  {'vs 1 worker':>11}  {'of ideal':>8}  {'worker CPU/item':>15}")
    for workers, seconds, rate, cpu_per_item in rows:
        print(f"{workers:>7}  {seconds:>8.1f}  {rate:>8.1f}  {rate / base:>10.2f}x  "
              f"{rate / (ideal_per_worker * workers):>7.0%}  {1000 * cpu_per_item:>12.0f} ms")
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} CPUs at the end: a machine short of CPU caps the total)")


if __name__ == "__main__":
    main()
