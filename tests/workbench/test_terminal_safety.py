"""Issue #13, the TUI half: with escape sequences, controls, NUL, bidi overrides and markup in every
text field, no screen or dialog sends a control character to the terminal, and the text stays visible."""

from __future__ import annotations

from pathlib import Path

from tests.workbench.helpers import assert_terminal_safe, settle
from tests.workbench.seed import seed_everything
from workbench.app import make_app

# How the hostile text looks once made visible: an escape, a bidi override and a markup-like tag.
SHOWN = ("␛[2J", "⟨U+202E⟩", "[@click=app.quit]")


async def test_no_screen_or_dialog_sends_raw_controls(tmp_path: Path) -> None:
    app = make_app(engine=seed_everything(tmp_path))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(app, pilot)

        async def check(*keys: str, shown: bool = True) -> None:
            for key in keys:
                await pilot.press(key)
                await settle(app, pilot)
            text = assert_terminal_safe(app)
            if shown:
                assert any(sample in text for sample in SHOWN), f"no hostile text visible after {keys}"

        await check()  # dashboard: job titles and the selected job's error
        await pilot.press("down", "down", "down")
        await check()
        await check("c")  # commit authors, paths, subjects
        await check("enter")  # commit view: header, message, both sides
        await check("v")  # the unified diff
        await check("escape", "s")  # conversations: model, reason, messages, answer
        await check("p")  # pairs: instruction, criteria, code, diff
        await check("i")  # the pair's full texts and feedback
        await check("escape", "o")  # the pair's source
        await check("escape", "w", shown=False)  # the criteria editor
        await check("escape", "t")  # training run name, log tail
        await check("e", shown=False)  # leaderboard and scores (baseline judges: nothing hostile to show)
        screen = app.screen
        screen.query_one("#scores").focus()
        await check("enter")  # results: task ids, raw outputs
        await check("enter")  # the task: instruction, codes, judge outputs
        await pilot.press("escape", "escape")
        await check("a", shown=False)  # the arena tab: set names and candidate models (cut to fit)
        await pilot.press("enter")  # the run's breakdown by (hostile) category and language
        await check()
        await pilot.press("a")
        app.notify("x")
        await check("p", "slash", *"cc_delta<", "enter", shown=False)  # an error toast quoting the filter
