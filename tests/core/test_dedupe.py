"""Near-duplicate clusters against brute force: every pair at the threshold, found through MinHash LSH."""

from __future__ import annotations

import numpy as np
import pytest
from rapidfuzz import fuzz, process

from core.curation.dedupe import DEFAULT_NEAR_THRESHOLD, DedupeItem, find_clusters, squash
from tests.bench.corpus import near_duplicate_corpus


def brute_force_pairs(texts: list[str], threshold: float) -> set[tuple[int, int]]:
    scores = process.cdist(texts, texts, scorer=fuzz.ratio, score_cutoff=threshold, dtype=np.uint8, workers=1)
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(scores, 1)))}


def test_recall_against_brute_force_on_2000_pairs() -> None:
    corpus = near_duplicate_corpus(2000, seed=0)
    items = [DedupeItem(index, f"key{index}", code) for index, code in enumerate(corpus)]  # no exact keys shared
    truth = brute_force_pairs([squash(code) for code in corpus], DEFAULT_NEAR_THRESHOLD)
    assert len(truth) > 1000  # the corpus has near duplicates at every distance around the threshold
    cluster_of = {member: cluster.representative for cluster in find_clusters(items) for member in cluster.members}
    found = {(i, j) for i, j in truth if i in cluster_of and cluster_of.get(i) == cluster_of.get(j)}
    assert len(found) / len(truth) >= 0.95
    # Every cluster is held together by verified links: no member is unlike all the others.
    members: dict[int, list[int]] = {}
    for member, representative in cluster_of.items():
        members.setdefault(representative, []).append(member)
    linked = {i for pair in truth for i in pair}
    assert all(member in linked for group in members.values() for member in group)


def test_a_bucket_of_three_links_every_member() -> None:
    # Three near copies and one unrelated text: all three copies end in one cluster, whichever the
    # LSH index lists first.
    base = "def total(values):\n    result = 0\n    for value in values:\n        result += value\n    return result\n"
    items = [DedupeItem(1, "a", base), DedupeItem(2, "b", base + "# done"), DedupeItem(3, "c", "class X:\n    pass\n" * 4),
             DedupeItem(4, "d", base.replace("result", "resul"))]
    (cluster,) = find_clusters(items, near_threshold=85)
    assert cluster.members == (1, 2, 4) and cluster.kind == "near"


@pytest.mark.parametrize("near_threshold", [None, 90.0])
def test_exact_keys_cluster_without_near_matching(near_threshold: float | None) -> None:
    items = [DedupeItem(5, "k", "x = 1"), DedupeItem(2, "k", "x = 1  # c"), DedupeItem(9, "z", "y = [1, 2, 3]")]
    assert [(c.representative, c.members, c.kind) for c in find_clusters(items, near_threshold=near_threshold)] == [
        (2, (2, 5), "exact")]
    assert find_clusters([], near_threshold=near_threshold) == []
