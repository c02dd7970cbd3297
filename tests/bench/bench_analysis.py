"""Analysis throughput: the pooled, chunked analysis vs a naive one-bandit-manager-per-file baseline.

Run from the repository root: `python -m tests.bench.bench_analysis [--pairs N] [--baseline M]`.
Prints pairs per second for both, the speed-up, and the projection for 60,000 pairs. On a shared
machine use `--workers 1`: CPU time then measures the work whatever the load.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from core.curation.analysis import PairCode, analyse_stream, radon_metrics
from tests.bench.corpus import bench_choices, stdlib_snippets


def naive_pair(chosen: str, rejected: str, folder: Path) -> None:
    from bandit.core import config, manager

    for index, code in enumerate((chosen, rejected)):
        radon_metrics(code)
        path = folder / f"side{index}.py"
        path.write_text(code, encoding="utf-8")
        bandit = manager.BanditManager(config.BanditConfig(), "file", quiet=True)
        bandit.discover_files([str(path)])
        bandit.run_tests()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--baseline", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("bandit").setLevel(logging.CRITICAL)
    choices = bench_choices()
    extra = stdlib_snippets(args.pairs)
    pairs = [PairCode(i, choices[i % len(choices)][0], extra[i]) if i % 2 else
             PairCode(i, choices[i % len(choices)][0], choices[i % len(choices)][1]) for i in range(args.pairs)]

    started, cpu_started = time.perf_counter(), time.process_time()
    chunks = [pairs[i:i + 100] for i in range(0, len(pairs), 100)]
    done = sum(len(results) for results in analyse_stream(chunks, workers=args.workers))
    pooled = done / (time.perf_counter() - started)
    pooled_cpu = done / (time.process_time() - cpu_started)

    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        for pair in pairs[: args.baseline]:
            naive_pair(pair.chosen, pair.rejected, Path(folder))
    naive = args.baseline / (time.perf_counter() - started)
    naive_cpu = args.baseline / (time.process_time() - cpu_started)
    print(f"pooled ({args.workers} workers): {pooled:.0f} pairs/s -> {60_000 / pooled / 60:.1f} min for 60k pairs")
    print(f"naive (1 process, bandit per file): {naive:.0f} pairs/s -> {60_000 / naive / 60:.1f} min for 60k pairs")
    print(f"CPU-time rates (meaningful with --workers 1): chunked {pooled_cpu:.0f} pairs/CPU-s -> "
          f"{60_000 / pooled_cpu / 120:.1f} min for 60k pairs on 2 cores; naive {naive_cpu:.0f} pairs/CPU-s")
    print(f"speed-up: {pooled / naive:.1f}x wall, {pooled_cpu / naive_cpu:.1f}x CPU")


if __name__ == "__main__":
    main()
