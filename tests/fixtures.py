"""Shared test data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.curation.pairs import PairDetail

HOSTILE_TEXT = "a[/b] [bold]x[/bold] [@click=app.quit]q[/] arr[0]"
# Terminal attacks: a screen clear, a colour, an OSC 8 link, an OSC 52 clipboard write, NUL, C1 CSI,
# and a right-to-left override.
HOSTILE_CONTROLS = (
    "\x1b[2J\x1b[H \x1b[31mred \x1b]8;;http://x.test\x07link\x1b]8;;\x07 \x1b]52;c;aGk=\x07 nul\x00 \x9b2J "
    "\u202eevil"
)
HOSTILE_ALL = HOSTILE_TEXT + " " + HOSTILE_CONTROLS


def stored_pairs(engine: Engine) -> list[PairDetail]:
    """Every stored pair in full, through the pairs store (one reader for all stages)."""
    from stores.curation.pairs import get_pair, list_pairs

    return [get_pair(engine, summary.id) for summary in list_pairs(engine, limit=10_000)]


def _bench_dir() -> Path:
    """CodePrefBench beside the checkout (../shared/codeprefbench), or WORKBENCH_BENCH when that is absent."""
    beside = Path(__file__).resolve().parents[1] / ".." / "shared" / "codeprefbench"
    from_env = os.environ.get("WORKBENCH_BENCH", "")
    if not beside.is_dir() and from_env and Path(from_env).is_dir():
        return Path(from_env)
    return beside


BENCH_DIR = _bench_dir()
