"""Duplicate pairs: exact after normalisation, and near-duplicate clusters (MinHash LSH, verified).

Near duplicates: each text's character 5-grams go into a datasketch `MinHash`; a `MinHashLSH`
index proposes every pair likely to pass, and rapidfuzz's ratio confirms each proposed pair, so
every link is a real match. Clusters are the connected components of the links (scipy).
MinHash and LSH as in Broder, "On the resemblance and containment of documents" (1997), and
Leskovec, Rajaraman & Ullman, Mining of Massive Datasets, chapter 3.
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
NUM_PERM = 128
_SHINGLE = 5
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


def squash(text: str) -> str:
    """Whitespace runs collapsed to one space: the text near-duplicate matching compares."""
    return _SPACES.sub(" ", text).strip()


def shingle_hashes(text: str) -> np.ndarray:
    """The distinct character 5-grams of a text as 32-bit values (a fixed polynomial hash, the same in every process)."""
    import numpy as np  # deferred: numpy costs a tenth of a second at start-up

    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    if codes.size < _SHINGLE:
        codes = np.pad(codes, (0, _SHINGLE - codes.size))
    hashes = np.zeros(codes.size - _SHINGLE + 1, dtype=np.uint64)
    for offset in range(_SHINGLE):
        hashes = (hashes * np.uint64(1_000_003) + codes[offset:codes.size - _SHINGLE + 1 + offset]) & np.uint64(0xFFFFFFFF)
    return np.unique(hashes)


def lsh_threshold(near_threshold: float) -> float:
    """The Jaccard threshold of the LSH index for a ratio threshold (0-100).

    Pairs at a ratio of 90 share as few as a third of their 5-grams when edits are spread out
    (renamed identifiers), so the index asks for less than the ratio: 0.3 at the default, where a
    test against brute force holds recall at or above 0.95.
    """
    return min(0.9, max(0.1, near_threshold / 100 - 0.6))


def _identity(value: int) -> int:
    return value


def near_links(texts: Sequence[str], near_threshold: float, *, seed: int = 1) -> list[tuple[int, int]]:
    """Index pairs (i < j) of `texts` whose rapidfuzz ratio is at least `near_threshold`, among the LSH candidates."""
    from datasketch import MinHash, MinHashLSH
    from rapidfuzz import fuzz

    # The shingles are already 32-bit hashes: MinHash takes them as they are. Drawing the
    # permutations once, not per text, keeps the MinHash objects cheap.
    template = MinHash(num_perm=NUM_PERM, seed=seed)
    signatures = []
    for text in texts:
        signature = MinHash(num_perm=NUM_PERM, seed=seed, hashfunc=_identity, permutations=template.permutations,
                            scheme=template.scheme)
        signature.update_batch(shingle_hashes(text).tolist())
        signatures.append(signature)
    index = MinHashLSH(threshold=lsh_threshold(near_threshold), num_perm=NUM_PERM)
    with index.insertion_session() as session:
        for position, signature in enumerate(signatures):
            session.insert(position, signature)
    links = []
    for position, signature in enumerate(signatures):
        for other in sorted(index.query(signature)):
            if other > position and fuzz.ratio(texts[position], texts[other], score_cutoff=near_threshold):
                links.append((position, other))
    return links


def find_clusters(items: Sequence[DedupeItem], *, near_threshold: float | None = DEFAULT_NEAR_THRESHOLD,
                  seed: int = 1) -> list[Cluster]:
    """Clusters of two or more pairs: exact key matches, joined by verified near matches of their first members."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    first_with_key: dict[str, int] = {}
    edges: list[tuple[int, int]] = []
    for position, item in enumerate(items):
        first = first_with_key.setdefault(item.exact_key, position)
        if first != position:
            edges.append((first, position))
    near_linked: set[int] = set()
    if near_threshold is not None:
        representatives = sorted(first_with_key.values())
        links = near_links([squash(items[position].text) for position in representatives], near_threshold, seed=seed)
        for left, right in links:
            edges.append((representatives[left], representatives[right]))
            near_linked.update((representatives[left], representatives[right]))
    count = len(items)
    graph = coo_matrix((np.ones(len(edges)), ([a for a, _ in edges], [b for _, b in edges])), shape=(count, count))
    _components, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = defaultdict(list)
    for position, label in enumerate(labels):
        groups[int(label)].append(position)
    clusters = []
    for positions in groups.values():
        if len(positions) > 1:
            members = tuple(sorted(items[position].pair_id for position in positions))
            kind = "near" if any(position in near_linked for position in positions) else "exact"
            clusters.append(Cluster(members[0], members, kind))
    return sorted(clusters, key=lambda cluster: cluster.representative)
