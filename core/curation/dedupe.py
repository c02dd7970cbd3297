"""Duplicate pairs: exact after normalisation, and near-duplicate clusters (MinHash LSH, verified).

Near duplicates are found by MinHash over character 5-grams with banded LSH to propose
candidates, then confirmed with rapidfuzz's ratio, so every reported link is a real match.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DEFAULT_NEAR_THRESHOLD = 90.0
_SHINGLE = 5
_PERMUTATIONS = 32
_BANDS = 8  # 8 bands of 4 rows: pairs with Jaccard around 0.6 or more usually share a bucket
_PRIME = (1 << 31) - 1
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class DedupeItem:
    """One pair as dedupe sees it: an exact key (normalised hashes) and text for near matching."""

    pair_id: int
    exact_key: str
    text: str


@dataclass(frozen=True, slots=True)
class Cluster:
    """A group of duplicate pairs; the lowest id is the one kept."""

    representative: int
    members: tuple[int, ...]
    kind: str  # exact | near


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, first: int, second: int) -> None:
        a, b = self.find(first), self.find(second)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def squash(text: str) -> str:
    """Whitespace runs collapsed to one space: the text near-duplicate matching compares."""
    return _SPACES.sub(" ", text).strip()


def minhash(text: str, seeds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """MinHash signature of a text's character 5-grams."""
    import numpy as np  # deferred: numpy costs a tenth of a second at start-up

    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    if codes.size < _SHINGLE:
        codes = np.pad(codes, (0, _SHINGLE - codes.size))
    shingles = np.zeros(codes.size - _SHINGLE + 1, dtype=np.uint64)
    for offset in range(_SHINGLE):
        shingles = (shingles * np.uint64(1_000_003) + codes[offset:codes.size - _SHINGLE + 1 + offset]) & np.uint64(0xFFFFFFFF)
    shingles = np.unique(shingles)
    a, b = seeds
    return ((np.outer(a, shingles) + b[:, None]) % np.uint64(_PRIME)).min(axis=1)


def find_clusters(items: Sequence[DedupeItem], *, near_threshold: float | None = DEFAULT_NEAR_THRESHOLD,
                  seed: int = 0) -> list[Cluster]:
    """Clusters of two or more pairs: exact key matches first, then verified near matches."""
    import numpy as np
    from rapidfuzz import fuzz

    exact = _UnionFind()
    by_key: dict[str, int] = {}
    for item in items:
        exact.find(item.pair_id)
        if item.exact_key in by_key:
            exact.union(by_key[item.exact_key], item.pair_id)
        else:
            by_key[item.exact_key] = item.pair_id
    links = _UnionFind()
    for item in items:
        links.union(exact.find(item.pair_id), item.pair_id)
    near_linked: set[int] = set()
    if near_threshold is not None:
        rng = np.random.default_rng(seed)
        seeds = (rng.integers(1, _PRIME, _PERMUTATIONS, dtype=np.uint64),
                 rng.integers(0, _PRIME, _PERMUTATIONS, dtype=np.uint64))
        representatives = [item for item in items if exact.find(item.pair_id) == item.pair_id]
        texts = {item.pair_id: squash(item.text) for item in representatives}
        buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
        rows = _PERMUTATIONS // _BANDS
        for item in representatives:
            signature = minhash(texts[item.pair_id], seeds)
            for band in range(_BANDS):
                buckets[(band, signature[band * rows:(band + 1) * rows].tobytes())].append(item.pair_id)
        checked: set[tuple[int, int]] = set()
        for members in buckets.values():
            first = members[0]
            for other in members[1:]:
                if (first, other) in checked or links.find(first) == links.find(other):
                    continue
                checked.add((first, other))
                if fuzz.ratio(texts[first], texts[other], score_cutoff=near_threshold):
                    links.union(first, other)
                    near_linked.update((first, other))
    groups: dict[int, list[int]] = defaultdict(list)
    for item in items:
        groups[links.find(item.pair_id)].append(item.pair_id)
    clusters = []
    for root, members in groups.items():
        if len(members) > 1:
            kind = "near" if any(m in near_linked for m in members) else "exact"
            clusters.append(Cluster(root, tuple(sorted(members)), kind))
    return sorted(clusters, key=lambda c: c.representative)
