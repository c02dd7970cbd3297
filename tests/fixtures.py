"""Shared test data."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.curation.pairs import PairDetail

HOSTILE_TEXT = "a[/b] [bold]x[/bold] [@click=app.quit]q[/] arr[0]"


def stored_pairs(engine: Engine) -> list[PairDetail]:
    """Every stored pair in full, through the pairs store (one reader for all stages)."""
    from stores.curation.pairs import get_pair, list_pairs

    return [get_pair(engine, summary.id) for summary in list_pairs(engine, limit=10_000)]
