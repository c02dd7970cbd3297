"""Benchmark: our async client vs a thread-pool client against a loopback server answering in 200 ms.

Run: PYTHONPATH=. python tests/bench/bench_llm_driver.py [--requests 5000] [--concurrency 256]
Prints throughput of each client, ours as a fraction of the ideal (concurrency / delay), and client
CPU per request. The server runs in its own process so its CPU is not counted as the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from core.llm.base import ChatRequest, SamplingParams  # noqa: E402
from core.llm.openai_client import OpenAIChatBackend  # noqa: E402

REQUEST = ChatRequest(({"role": "user", "content": "Write a function that adds two numbers."},),
                      SamplingParams(max_tokens=64))


def start_server(delay: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--delay", str(delay), "--script", "canned"], cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    port = int(line.split()[1])
    return process, f"http://127.0.0.1:{port}/v1"


def bench_ours(base_url: str, requests: int, concurrency: int) -> tuple[float, float]:
    """Wall and CPU seconds for `requests` chats through our client, its pool warmed first."""
    async def run() -> tuple[float, float]:
        backend = OpenAIChatBackend("bench", base_url, concurrency=concurrency, timeout_s=30)
        await backend.chat_many([REQUEST] * concurrency)  # open every connection before timing
        wall, cpu = time.perf_counter(), time.process_time()
        results = await backend.chat_many([REQUEST] * requests)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert all(r.text == "ok" for r in results)
        await backend.aclose()
        return wall, cpu

    return asyncio.run(run())


def bench_threads(base_url: str, requests: int, concurrency: int) -> tuple[float, float]:
    """The reference scripts' approach: a pool of threads sharing one blocking client, warmed first."""
    payload = {"model": "bench", "messages": list(REQUEST.messages), "max_tokens": 64, "temperature": 0.0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=base_url, limits=limits, timeout=60) as client:
        def one(_index: int) -> str:
            response = client.post("/chat/completions", json=payload)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(concurrency)))
            wall, cpu = time.perf_counter(), time.process_time()
            assert all(text == "ok" for text in pool.map(one, range(requests)))
            return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    server, base_url = start_server(args.delay)
    try:
        ideal = args.concurrency / args.delay
        rows = []
        for name, bench in (("async client (ours)", bench_ours), ("thread pool (baseline)", bench_threads)):
            wall, cpu = bench(base_url, args.requests, args.concurrency)
            rows.append((name, args.requests / wall, cpu / args.requests * 1000))
        print(f"{args.requests} requests, concurrency {args.concurrency}, server delay {args.delay * 1000:.0f} ms, "
              f"ideal {ideal:.0f} req/s")
        for name, throughput, cpu_ms in rows:
            print(f"{name:24s} {throughput:8.1f} req/s  {throughput / ideal:6.1%} of ideal  "
                  f"{cpu_ms:.3f} ms client CPU/request")
        print(f"ours / thread pool throughput: {rows[0][1] / rows[1][1]:.2f}x, "
              f"CPU per request: {rows[0][2] / rows[1][2]:.2f}x")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
