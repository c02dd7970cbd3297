"""Line counting in a helper process gives the same answers as in-process counting."""

from __future__ import annotations

import random

from core.linediff import LineCounter, changed_region, count_many


def test_helper_process_counts_match_in_process_counts() -> None:
    rng = random.Random(3)
    regions = []
    for _ in range(200):
        old = "".join(f"line {rng.randint(0, 30)}\n" for _ in range(rng.randint(0, 60))).encode()
        new = "".join(f"line {rng.randint(0, 30)}\n" for _ in range(rng.randint(0, 60))).encode()
        regions.append(changed_region(old, new))
    counter = LineCounter(min_bytes_for_process=0)  # always use the helper process
    try:
        futures = [counter.submit(regions[i:i + 50]) for i in range(0, len(regions), 50)]
        from_helper = [pair for future in futures for pair in future.result(timeout=60)]
    finally:
        counter.close()
    assert from_helper == count_many(regions)
    assert any(added and removed for added, removed, _spaces in from_helper)
