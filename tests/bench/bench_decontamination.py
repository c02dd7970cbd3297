"""Decontamination throughput: pruned exact top-1 vs a plain all-pairs rapidfuzz pass, same run.

Run from the repository root: `python -m tests.bench.bench_decontamination [--snippets N] [--sample M]`.
Prints wall and CPU seconds per snippet for both, the speed-up, the projection for 60,000 pairs
(120,000 sides) x 2,728 benchmark snippets on 2 cores, and checks that both agree on the sample.
On a shared machine use `--workers 1`: CPU time then measures the work whatever the load.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rapidfuzz import fuzz, process

from core.curation.decontamination import DEFAULT_THRESHOLD, load_benchmark_snippets, scan
from core.curation.stripping import strip_comments
from tests.bench.corpus import BENCH, mixed_snippets

SIDES_60K_PAIRS = 120_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--snippets", type=int, default=4000)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    codes = [snippet.code for snippet in load_benchmark_snippets(BENCH)]
    snippets = mixed_snippets(args.snippets)
    print(f"{len(snippets)} snippets x {len(codes)} benchmark snippets, threshold {DEFAULT_THRESHOLD:g}, "
          f"{args.workers} workers")

    started, cpu_started = time.perf_counter(), time.process_time()
    chunks = [snippets[i:i + 200] for i in range(0, len(snippets), 200)]
    matches = [m for chunk in scan(chunks, codes, floor=DEFAULT_THRESHOLD, workers=args.workers) for m in chunk]
    pruned = (time.perf_counter() - started) / len(snippets)
    pruned_cpu = (time.process_time() - cpu_started) / len(snippets)

    sample = snippets[: args.sample]
    started, cpu_started = time.perf_counter(), time.process_time()
    stripped = [strip_comments(s) for s in sample]
    matrix = process.cdist(stripped, codes, scorer=fuzz.ratio, score_cutoff=DEFAULT_THRESHOLD,
                           workers=args.workers, dtype=np.float64)
    plain = (time.perf_counter() - started) / len(sample)
    plain_cpu = (time.process_time() - cpu_started) / len(sample)

    mismatches = 0
    for row, match in zip(matrix.max(axis=1), matches):
        expected = float(row) if row >= DEFAULT_THRESHOLD else None
        if (expected is None) != (match.score is None) or (expected is not None and abs(expected - match.score) > 1e-9):
            mismatches += 1
    flagged = sum(1 for m in matches if m.score is not None)
    for name, wall, cpu in (("pruned exact", pruned, pruned_cpu), ("plain cdist ", plain, plain_cpu)):
        print(f"{name}: wall {wall * 1000:.2f} ms/snippet -> {wall * SIDES_60K_PAIRS / 60:.1f} min for 60k pairs; "
              f"CPU {cpu * 1000:.2f} ms/snippet -> {cpu * SIDES_60K_PAIRS / 120:.1f} min on 2 cores (1-worker runs)")
    print(f"{flagged} of {len(snippets)} snippets >= threshold")
    print(f"speed-up (wall): {plain / pruned:.1f}x; disagreements on the {len(sample)}-snippet sample: {mismatches}")


if __name__ == "__main__":
    main()
