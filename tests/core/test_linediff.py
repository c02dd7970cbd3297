"""Line counting in a helper process gives the same answers as in-process counting."""

from __future__ import annotations

import random

from core.mining.linediff import LineCounter, changed_region, changed_views, count_many, whitespace_only


def test_helper_process_counts_match_in_process_counts() -> None:
    rng = random.Random(3)
    regions = []
    for _ in range(200):
        old = "".join(f"line {rng.randint(0, 30)}\n" for _ in range(rng.randint(0, 60))).encode()
        new = "".join(f"line {rng.randint(0, 30)}\n" for _ in range(rng.randint(0, 60))).encode()
        regions.append(changed_region(old, new))
        views = changed_views(old, new)
        assert (bytes(views[0]), bytes(views[1])) == regions[-1]
    counter = LineCounter(min_bytes_for_process=0)  # always use the helper process
    try:
        views = [(memoryview(old), memoryview(new)) for old, new in regions]  # as the miner sends them
        futures = [counter.submit(views[i:i + 50]) for i in range(0, len(views), 50)]
        from_helper = [pair for future in futures for pair in future.result(timeout=60)]
    finally:
        counter.close()
    assert from_helper == count_many(regions)
    assert any(added and removed for added, removed, _spaces in from_helper)


def test_whitespace_only_looks_past_its_quick_check() -> None:
    body = b"".join(b"value_%d = compute(%d, other)\n" % (i, i) for i in range(100))
    reindented = body.replace(b"\n", b"\n    ").replace(b" = ", b"  =  ")
    assert len(body) > 1024 and whitespace_only(body, reindented)
    assert whitespace_only(body, body.replace(b"\n", b"\n\n"))
    assert not whitespace_only(body, body.replace(b" = ", b"="))  # joined tokens are a change
    late_change = body[:-10] + b"otherx)\n"  # differs only beyond the quick check's first bytes
    assert not whitespace_only(body, late_change)
    assert not whitespace_only(b"a = 1\n" * 200, b"a = 2\n" + b"a = 1\n" * 199)
