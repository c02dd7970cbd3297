"""Pilot helpers shared by the TUI tests."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import Button


async def click(pilot: Any, selector: str) -> None:
    """Click `selector` as a user would, after a button's press effect from an earlier click has ended.

    Textual ignores a click on a button still showing its 0.2 s press effect, so two quick clicks in a
    test would otherwise race the clock.
    """
    widget = pilot.app.screen.query_one(selector)
    for _ in range(100):
        if not (isinstance(widget, Button) and widget.has_class("-active")):
            break
        await asyncio.sleep(0.02)
    await pilot.click(selector)
