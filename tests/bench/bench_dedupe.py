"""Near-duplicate clustering vs brute force: recall and precision at the threshold, and time.

    python -m tests.bench.bench_dedupe [--items 2000] [--seeds 3] [--threshold 90]

Brute force compares every pair with rapidfuzz's ratio (the truth); find_clusters proposes pairs
with MinHash LSH and verifies each. Recall: truth pairs that share a cluster. Link precision:
verified links that are truth pairs. Cluster precision: pairs sharing a cluster that are truth
pairs (below 1 where a chain of links joins texts that are not near each other).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rapidfuzz import fuzz, process

from core.curation.dedupe import DedupeItem, find_clusters, near_links, squash
from tests.bench.corpus import near_duplicate_corpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=90.0)
    args = parser.parse_args()
    for seed in range(args.seeds):
        corpus = near_duplicate_corpus(args.items, seed=seed)
        texts = [squash(code) for code in corpus]
        started = time.perf_counter()
        scores = process.cdist(texts, texts, scorer=fuzz.ratio, score_cutoff=args.threshold, dtype=np.uint8, workers=1)
        truth = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(scores, 1)))}
        brute_s = time.perf_counter() - started
        started = time.perf_counter()
        clusters = find_clusters([DedupeItem(i, f"k{i}", code) for i, code in enumerate(corpus)],
                                 near_threshold=args.threshold)
        ours_s = time.perf_counter() - started
        links = set(near_links(texts, args.threshold))
        together = {(i, j) for c in clusters for n, i in enumerate(c.members) for j in c.members[n + 1:]}
        found = len(truth & together)
        print(f"seed {seed}: {len(truth)} pairs at >= {args.threshold:g}; recall {found / len(truth):.4f}; "
              f"link precision {len(links & truth) / max(len(links), 1):.4f}; "
              f"cluster precision {found / max(len(together), 1):.4f}; "
              f"time {ours_s:.2f}s vs brute force {brute_s:.2f}s ({ours_s / brute_s:.2f}x)")


if __name__ == "__main__":
    main()
