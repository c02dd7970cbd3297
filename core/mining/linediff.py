"""Line counts of a change: trim the common leading and trailing lines, then match the rest.

Kept free of heavy imports: the counting of large batches runs in a spawned helper process.
"""

from __future__ import annotations

import marshal
import os
import queue
import struct
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path


def _common_prefix_length(a: bytes, b: bytes) -> int:
    # Bisect with memcmp: startswith() compares against a memoryview slice in place, without copies.
    view = memoryview(b)
    low, high = 0, min(len(a), len(b))
    if a.startswith(view[:high]):
        return high
    while high - low > 32:  # a[:low] == b[:low] and a[:high] != b[:high]
        middle = (low + high) // 2
        if a.startswith(view[low:middle], low):
            low = middle
        else:
            high = middle
    while low < high and a[low] == b[low]:
        low += 1
    return low


def _common_suffix_length(a: bytes, b: bytes, limit: int) -> int:
    view = memoryview(b)
    la, lb = len(a), len(b)
    low, high = 0, limit
    if a.endswith(view[lb - high:]):
        return high
    while high - low > 32:
        middle = (low + high) // 2
        if a.endswith(view[lb - middle:lb - low], 0, la - low):
            low = middle
        else:
            high = middle
    while low < high and a[la - low - 1] == b[lb - low - 1]:
        low += 1
    return low


_WHITESPACE = b" \t\n\r\x0b\x0c"


def _line_count(text: bytes) -> int:
    return text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)


def _changed_span(old: bytes, new: bytes) -> tuple[int, int]:
    """Bytes of whole lines the two sides share at the start and at the end."""
    prefix = _common_prefix_length(old, new)
    prefix = old.rfind(b"\n", 0, prefix) + 1  # keep whole lines only
    suffix = _common_suffix_length(old, new, min(len(old), len(new)) - prefix)
    if suffix:
        newline = old.find(b"\n", len(old) - suffix)
        suffix = len(old) - newline - 1 if newline >= 0 else 0
    return prefix, suffix


def changed_region(old: bytes, new: bytes) -> tuple[bytes, bytes]:
    """The changed middle of each side: whole lines, after the common leading and trailing lines."""
    prefix, suffix = _changed_span(old, new)
    return old[prefix:len(old) - suffix], new[prefix:len(new) - suffix]


def changed_views(old: bytes, new: bytes) -> tuple[memoryview, memoryview]:
    """changed_region without copying: views into the two sides (marshal sends them as bytes)."""
    prefix, suffix = _changed_span(old, new)
    return memoryview(old)[prefix:len(old) - suffix], memoryview(new)[prefix:len(new) - suffix]


_QUICK_BYTES = 512


def whitespace_only(old_middle: bytes, new_middle: bytes) -> bool:
    """True when the two sides differ only in whitespace."""
    # Quick no: if the whole sides agree without whitespace, so do the starts of their heads.
    old_head = old_middle[:_QUICK_BYTES].translate(None, _WHITESPACE)
    new_head = new_middle[:_QUICK_BYTES].translate(None, _WHITESPACE)
    shorter = min(len(old_head), len(new_head))
    if old_head[:shorter] != new_head[:shorter]:
        return False
    return (
        old_middle.translate(None, _WHITESPACE) == new_middle.translate(None, _WHITESPACE)
        and old_middle.split() == new_middle.split()
    )


def count_region_lines(old_middle: bytes, new_middle: bytes) -> tuple[int, int, bool]:
    """Lines added and removed (the lines of each middle not matched on the other, as a multiset),
    and whether the change is whitespace only."""
    spaces_only = whitespace_only(old_middle, new_middle)
    if not old_middle or not new_middle:  # a pure insertion or deletion of whole lines
        return _line_count(new_middle), _line_count(old_middle), spaces_only
    old_lines = old_middle.splitlines()
    new_lines = new_middle.splitlines()
    if not old_lines or not new_lines:
        return len(new_lines), len(old_lines), spaces_only
    old_counts, new_counts = Counter(old_lines), Counter(new_lines)
    shared = old_counts.keys() & new_counts.keys()
    # map/min keep the per-line work in C; Counter.__and__ loops in Python.
    common = sum(map(min, map(old_counts.__getitem__, shared), map(new_counts.__getitem__, shared)))
    return len(new_lines) - common, len(old_lines) - common, spaces_only


def compare_texts(old: bytes, new: bytes) -> tuple[int, int, bool]:
    """Lines added, lines removed, and whether the change is whitespace only.

    Memcmp-speed trimming of the common leading and trailing lines, then the lines of each side's
    middle not matched on the other (as a multiset): equal to git's numstat unless lines moved.
    """
    return count_region_lines(*changed_region(old, new))


def count_many(regions: Sequence[tuple[bytes | memoryview, bytes | memoryview]]) -> list[tuple[int, int, bool]]:
    """count_region_lines for a batch (the helper process's entry point; views are copied here)."""
    return [count_region_lines(bytes(old), bytes(new)) for old, new in regions]


class LineCounter:
    """Counts batches of changed regions, in a helper process once batches are large enough.

    Splitting lines and matching them is the miner's largest pure-Python cost; a helper process
    (`python -m core.mining.linediff`, fed over pipes with marshal) does it on the second core while the
    miner reads the next batch. If the helper cannot start or dies, counting goes on in-process.
    """

    def __init__(self, min_bytes_for_process: int = 1 << 20) -> None:
        self._min_bytes = min_bytes_for_process
        self._process: subprocess.Popen[bytes] | None = None
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._waiting: queue.Queue[tuple[Future[list[tuple[int, int, bool]]], list[tuple[memoryview, memoryview]]] | None] = (
            queue.Queue()
        )
        self._broken = False

    def submit(self, regions: list[tuple[memoryview, memoryview]]) -> Future[list[tuple[int, int, bool]]]:
        """Start counting; small batches (or all, without a helper) are counted at once here."""
        future: Future[list[tuple[int, int, bool]]] = Future()
        if self._broken or sum(len(old) + len(new) for old, new in regions) < self._min_bytes:
            future.set_result(count_many(regions))
            return future
        if self._process is None and not self._start():
            future.set_result(count_many(regions))
            return future
        self._waiting.put((future, regions))
        payload = marshal.dumps(regions)
        self._outbox.put(struct.pack("<Q", len(payload)))  # apart: joining would copy the payload
        self._outbox.put(payload)
        return future

    def _start(self) -> bool:
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "core.mining.linediff"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env,
            )
        except OSError:
            self._broken = True
            return False
        threading.Thread(target=self._write, name="linediff-writer", daemon=True).start()
        threading.Thread(target=self._read, name="linediff-reader", daemon=True).start()
        return True

    def _write(self) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            while (message := self._outbox.get()) is not None:
                self._process.stdin.write(message)
                self._process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        while (item := self._waiting.get()) is not None:
            future, regions = item
            try:
                header = stdout.read(8)
                body = stdout.read(struct.unpack("<Q", header)[0]) if len(header) == 8 else b""
                future.set_result(marshal.loads(body))
            except (OSError, ValueError, EOFError, struct.error, TypeError):
                self._broken = True  # the helper died: count here from now on
                future.set_result(count_many(regions))

    def close(self) -> None:
        """Stop the helper process if one was started."""
        if self._process is not None:
            self._outbox.put(None)
            self._waiting.put(None)
            try:
                self._process.kill()
                self._process.wait(timeout=5)
            except OSError:
                pass
            self._process = None


def _serve() -> None:
    """The helper process: read length-prefixed batches on stdin, write their counts on stdout."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while len(header := source.read(8)) == 8:
        regions = marshal.loads(source.read(struct.unpack("<Q", header)[0]))
        answer = marshal.dumps(count_many(regions))
        sink.write(struct.pack("<Q", len(answer)) + answer)
        sink.flush()


if __name__ == "__main__":
    _serve()
