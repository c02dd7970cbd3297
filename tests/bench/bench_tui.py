"""TUI responsiveness on a 100,000-commit store: start-up, opening the commits screen, scrolling.

    python tests/bench/bench_tui.py [--commits 100000]

Builds a seeded store, then in one run measures (1) the `workbench` process start-up to the first
dashboard frame (imports, store open, first render, in a headless Pilot), (2) opening the commits
screen, (3) the latency of 300 page-down presses, which page more rows in from the store as the
cursor nears the end, and (4) the baseline the paged table avoids: a plain DataTable given every
row at once. Prints seconds and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

STARTUP_PROBE = """
import asyncio, sys, time
started = time.perf_counter()
import workbench.launcher  # the console script's module
from workbench.app import make_app
async def main():
    app = make_app(sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        print(time.perf_counter() - started)
asyncio.run(main())
"""


async def scroll_commits(db: Path, presses: int) -> tuple[float, list[float], int]:
    from workbench.app import make_app
    from workbench.widgets.commit_table import CommitTable

    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        started = time.perf_counter()
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        open_s = time.perf_counter() - started
        latencies = []
        for _ in range(presses):
            began = time.perf_counter()
            await pilot.press("pagedown")
            await pilot.pause()
            latencies.append(time.perf_counter() - began)
        await app.workers.wait_for_complete()
        rows = app.screen.query_one(CommitTable).row_count
    return open_s, latencies, rows


async def plain_table_presses(presses: int) -> list[float]:
    """The harness floor: page-down in a DataTable holding 10,000 rows in memory, no store."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Plain(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable(cursor_type="row")

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("id", "path", "subject")
            table.add_rows([(str(i), f"src/module_{i}.py", "change " * 5) for i in range(10_000)])

    latencies = []
    app = Plain()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for _ in range(presses):
            began = time.perf_counter()
            await pilot.press("pagedown")
            await pilot.pause()
            latencies.append(time.perf_counter() - began)
    return latencies


async def naive_table(db: Path) -> float:
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from stores.db import make_engine
    from stores.mining.commits import list_commits

    engine = make_engine(db)

    class Naive(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    app = Naive()
    async with app.run_test(size=(120, 40)) as pilot:
        started = time.perf_counter()
        table = app.query_one(DataTable)
        table.add_columns("id", "repo", "sha", "date", "author", "+", "-", "path", "subject")
        after = None
        while page := list_commits(engine, limit=10_000, after_id=after):
            table.add_rows([(Text(str(c.id)), Text(c.repository_name), Text(c.sha[:10]),
                             Text(c.authored_at.strftime("%Y-%m-%d")), Text(c.author), Text(str(c.lines_added)),
                             Text(str(c.lines_removed)), Text(c.path), Text(c.subject)) for c in page])
            after = page[-1].id
        await pilot.pause()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--presses", type=int, default=300)
    args = parser.parse_args()
    from tests.workbench.seed import seed_commits

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        seed_commits(db, args.commits).dispose()
        startup = [float(subprocess.run([sys.executable, "-c", STARTUP_PROBE, str(db)], cwd=ROOT, check=True,
                                        capture_output=True, text=True).stdout) for _ in range(3)]
        open_s, latencies, rows = asyncio.run(scroll_commits(db, args.presses))
        naive_s = asyncio.run(naive_table(db))
        small_db = Path(folder) / "small.db"
        seed_commits(small_db, 20_000).dispose()
        _small_open, small_latencies, _rows = asyncio.run(scroll_commits(small_db, args.presses))
        floor = sorted(asyncio.run(plain_table_presses(args.presses)))
    latencies.sort()
    print(f"store: {args.commits:,} commit records")
    print(f"start-up to first dashboard frame: median {statistics.median(startup):.2f} s (3 runs)")
    print(f"open commits screen: {open_s:.3f} s")
    print(f"page-down x{args.presses}: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {latencies[int(0.95 * len(latencies))] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
          f"{rows:,} rows loaded")
    small_latencies.sort()
    print(f"same presses on a 20,000-record store: median {statistics.median(small_latencies) * 1000:.1f} ms "
          f"(ratio 100k / 20k: {statistics.median(latencies) / statistics.median(small_latencies):.2f})")
    print(f"harness floor, page-down in an in-memory 10,000-row DataTable: median "
          f"{statistics.median(floor) * 1000:.1f} ms, p95 {floor[int(0.95 * len(floor))] * 1000:.1f} ms")
    print(f"baseline, a plain DataTable given all rows: {naive_s:.2f} s to show "
          f"({naive_s / open_s:.0f}x the paged screen's open time)")


if __name__ == "__main__":
    main()
