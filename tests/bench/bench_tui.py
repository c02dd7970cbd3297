"""TUI responsiveness: start-up, a 100,000-commit store, and a 5,000-line pair.

    python tests/bench/bench_tui.py [--commits 100000] [--pair-lines 5000]

Builds seeded stores, then in one run measures (1) the `workbench` process start-up to the first
dashboard frame (imports, store open, first render, in a headless Pilot), (2) opening the commits
screen, (3) the latency of 300 page-down presses, which page more rows in from the store as the
cursor nears the end, (4) the baseline the paged table avoids: a plain DataTable given every row at
once, (5) opening the Pairs screen on a 5,000-line pair until its aligned diff is shown, and the
latency of page-down in that diff, against (6) the baseline the line-API diff avoids: both sides
rendered whole as Syntax in a scrolling container. Prints seconds and the ratios.
Targets (issue #15): first paint < 1 s; commits page-down p95 < 150 ms; the pair opens in < 1 s and
pages in < 100 ms.
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
# The floor for start-up: Python, Textual and a first frame of a bare app, no store, no workbench code.
STARTUP_FLOOR_PROBE = """
import asyncio, time
started = time.perf_counter()
from textual.app import App
from textual.widgets import DataTable, Footer, Header
class Bare(App):
    def compose(self):
        yield Header()
        yield DataTable()
        yield Footer()
async def main():
    async with Bare().run_test(size=(120, 40)) as pilot:
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


async def open_big_pair(db: Path, presses: int) -> tuple[float, list[float]]:
    """Seconds from pressing `p` until the 5,000-line pair's diff is shown; page-down latencies in the diff."""
    from workbench.app import make_app
    from workbench.widgets.diff_view import DiffView

    app = make_app(db)
    async with app.run_test(size=(160, 45)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        started = time.perf_counter()
        await pilot.press("p")
        while True:
            views = app.screen.query(DiffView)
            if views and views.first().diff is not None and len(views.first().diff.rows) > 1000:
                break
            await pilot.pause(0.005)
        await pilot.pause()  # the first frame with the diff
        open_s = time.perf_counter() - started
        views.first().focus()
        latencies = []
        for _ in range(presses):
            began = time.perf_counter()
            await pilot.press("pagedown")
            await pilot.pause()
            latencies.append(time.perf_counter() - began)
    return open_s, latencies


async def whole_syntax_pair(rejected: str, chosen: str, presses: int) -> tuple[float, list[float]]:
    """The baseline: both sides as Syntax renderables, rendered whole inside a scrolling container."""
    from rich.syntax import Syntax
    from textual.app import App, ComposeResult
    from textual.containers import Horizontal, VerticalScroll
    from textual.widgets import Static

    class Whole(App[None]):
        def compose(self) -> ComposeResult:
            with VerticalScroll(id="review"), Horizontal(id="sides"):
                yield Static(id="rejected")
                yield Static(id="chosen")

        CSS = "#sides { height: auto; } #sides Static { width: 1fr; height: auto; }"

    app = Whole()
    async with app.run_test(size=(160, 45)) as pilot:
        started = time.perf_counter()
        for widget_id, code in (("#rejected", rejected), ("#chosen", chosen)):
            app.query_one(widget_id, Static).update(Syntax(code, "python", line_numbers=True, word_wrap=True))
        await pilot.pause()
        open_s = time.perf_counter() - started
        app.query_one("#review").focus()
        latencies = []
        for _ in range(presses):
            began = time.perf_counter()
            await pilot.press("pagedown")
            await pilot.pause()
            latencies.append(time.perf_counter() - began)
    return open_s, latencies


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--pair-lines", type=int, default=5000)
    args = parser.parse_args()
    from core.curation.pairs import NewPair
    from stores.curation.pairs import import_pairs
    from stores.db import make_engine
    from tests.workbench.seed import big_pair, seed_commits

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        seed_commits(db, args.commits).dispose()
        startup = [float(subprocess.run([sys.executable, "-c", STARTUP_PROBE, str(db)], cwd=ROOT, check=True,
                                        capture_output=True, text=True).stdout) for _ in range(3)]
        startup_floor = [float(subprocess.run([sys.executable, "-c", STARTUP_FLOOR_PROBE], cwd=ROOT, check=True,
                                              capture_output=True, text=True).stdout) for _ in range(3)]
        open_s, latencies, rows = asyncio.run(scroll_commits(db, args.presses))
        naive_s = asyncio.run(naive_table(db))
        small_db = Path(folder) / "small.db"
        seed_commits(small_db, 20_000).dispose()
        _small_open, small_latencies, _rows = asyncio.run(scroll_commits(small_db, args.presses))
        floor = sorted(asyncio.run(plain_table_presses(args.presses)))
        pair_db = Path(folder) / "pair.db"
        rejected, chosen = big_pair(args.pair_lines)
        pair_engine = make_engine(pair_db)
        import_pairs(pair_engine, [NewPair("a long module", "efficiency", chosen, rejected)])
        pair_engine.dispose()
        pair_open_s, pair_pages = asyncio.run(open_big_pair(pair_db, 100))
        whole_open_s, whole_pages = asyncio.run(whole_syntax_pair(rejected, chosen, 20))
    latencies.sort()
    print(f"store: {args.commits:,} commit records")
    print(f"start-up to first dashboard frame: median {statistics.median(startup):.2f} s (3 runs); a bare Textual "
          f"app's first frame: {statistics.median(startup_floor):.2f} s "
          f"(ratio {statistics.median(startup) / statistics.median(startup_floor):.2f})")
    print(f"open commits screen: {open_s:.3f} s")
    print(f"page-down x{args.presses}: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {latencies[int(0.95 * len(latencies))] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
          f"{rows:,} rows loaded (p95 / harness floor p95: {_p95(latencies) / _p95(floor):.2f})")
    small_latencies.sort()
    print(f"same presses on a 20,000-record store: median {statistics.median(small_latencies) * 1000:.1f} ms "
          f"(ratio 100k / 20k: {statistics.median(latencies) / statistics.median(small_latencies):.2f})")
    print(f"harness floor, page-down in an in-memory 10,000-row DataTable: median "
          f"{statistics.median(floor) * 1000:.1f} ms, p95 {floor[int(0.95 * len(floor))] * 1000:.1f} ms")
    print(f"baseline, a plain DataTable given all rows: {naive_s:.2f} s to show "
          f"({naive_s / open_s:.0f}x the paged screen's open time)")
    print(f"{args.pair_lines:,}-line pair: Pairs screen to its diff in {pair_open_s:.3f} s; page-down x100 in the "
          f"diff: median {statistics.median(pair_pages) * 1000:.1f} ms, p95 {_p95(pair_pages) * 1000:.1f} ms, "
          f"max {max(pair_pages) * 1000:.1f} ms (p95 / harness floor p95: {_p95(pair_pages) / _p95(floor):.2f})")
    print(f"baseline, both sides rendered whole (Syntax in a scroll container): {whole_open_s:.2f} s to show "
          f"({whole_open_s / pair_open_s:.1f}x), page-down median {statistics.median(whole_pages) * 1000:.1f} ms "
          f"({statistics.median(whole_pages) / statistics.median(pair_pages):.1f}x the diff's)")
    print(f"targets: first paint < 1 s: {'met' if statistics.median(startup) < 1 else 'MISSED'}; "
          f"commits page-down p95 < 150 ms: {'met' if _p95(latencies) < 0.150 else 'MISSED'}; "
          f"pair opens < 1 s: {'met' if pair_open_s < 1 else 'MISSED'}; "
          f"pair pages < 100 ms (p95): {'met' if _p95(pair_pages) < 0.100 else 'MISSED'}")


if __name__ == "__main__":
    main()
