"""Benchmark: the OpenAI-compatible client against a loopback server, as a fraction of the ideal rate.

Run: PYTHONPATH=. python tests/bench/bench_llm_driver.py [--compare-with OLD_CHECKOUT]

Two shapes, each in one run: concurrency 256 with 200 ms answers (a local vLLM under load) and
concurrency 64 with 2 s answers (a hosted model). The ideal rate is concurrency / latency; the
client's throughput is printed as a fraction of it, with the client's CPU per request. The server
runs in its own process and each measurement in a fresh one, so only the client's CPU is counted.
`--compare-with DIR` measures the client of another checkout (e.g. `git worktree add /tmp/old HEAD~1`)
in the same run and prints after/before ratios. Targets (issue #14): >= 60 % of ideal at 256 / 200 ms,
>= 95 % at 64 / 2 s, <= 0.5 ms client CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPES = ((256, 0.2, 5000), (64, 2.0, 640))  # (concurrency, server latency s, requests)


def start_server(delay: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--delay", str(delay), "--script", "canned"], cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline().split()[1])
    return process, f"http://127.0.0.1:{port}/v1"


def measure(base_url: str, requests: int, concurrency: int) -> dict[str, float]:
    """Wall and CPU seconds for `requests` chats through the importable client, connections opened first."""
    from core.llm.base import ChatRequest, SamplingParams
    from core.llm.openai_client import OpenAIChatBackend

    request = ChatRequest(({"role": "user", "content": "Write a function that adds two numbers."},),
                          SamplingParams(max_tokens=64))

    async def run() -> dict[str, float]:
        backend = OpenAIChatBackend("bench", base_url, concurrency=concurrency, timeout_s=60)
        try:
            await backend.chat_many([request] * concurrency)  # open every connection before timing
            wall, cpu = time.perf_counter(), time.process_time()
            results = await backend.chat_many([request] * requests)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            await backend.aclose()
        assert all(r.text == "ok" for r in results)
        return {"wall": wall, "cpu": cpu}

    return asyncio.run(run())


def measure_in(tree: Path, base_url: str, requests: int, concurrency: int) -> dict[str, float]:
    """`measure` in a fresh process that imports the client of `tree`."""
    answer = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", base_url, str(requests), str(concurrency)],
        env={**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}, cwd=tree,
        capture_output=True, text=True, check=True,
    )
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare-with", type=Path, help="another checkout whose client to measure too")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        base_url, requests, concurrency = args.measure
        print(json.dumps(measure(base_url, int(requests), int(concurrency))))
        return
    trees = [("after (this checkout)", REPO_ROOT)]
    if args.compare_with:
        trees.insert(0, ("before (" + str(args.compare_with) + ")", args.compare_with.resolve()))
    for concurrency, delay, requests in SHAPES:
        requests = int(requests * args.scale)
        server, base_url = start_server(delay)
        try:
            ideal = concurrency / delay
            print(f"{requests} requests, concurrency {concurrency}, server latency {delay * 1000:.0f} ms, "
                  f"ideal {ideal:.0f} req/s")
            rows = []
            for name, tree in trees:
                result = measure_in(tree, base_url, requests, concurrency)
                throughput = requests / result["wall"]
                cpu_ms = result["cpu"] / requests * 1000
                rows.append((throughput, cpu_ms))
                print(f"  {name:40s} {throughput:8.1f} req/s  {throughput / ideal:6.1%} of ideal  "
                      f"{cpu_ms:.3f} ms client CPU/request")
            if len(rows) == 2:
                print(f"  after / before: throughput {rows[1][0] / rows[0][0]:.2f}x, "
                      f"CPU per request {rows[1][1] / rows[0][1]:.2f}x")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
