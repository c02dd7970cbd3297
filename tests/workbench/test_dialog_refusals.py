"""Every dialog and form keeps itself open on a refused value: the reason is shown inside it, the focus stays in
its field (so what the user types next corrects the value instead of reaching the screen as commands), and
nothing in the store changes; it closes only once the action is accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from textual.widgets import Input, Static, TextArea

from core.curation.pairs import NewPair
from stores.curation.pairs import get_pair, import_pairs, list_pairs
from stores.jobs import list_jobs
from tests.fixtures import HOSTILE_TEXT
from tests.workbench.helpers import assert_terminal_safe, settle
from tests.workbench.pilot import click
from workbench.app import make_app


def _seed_pairs(engine: Engine, count: int = 3) -> None:
    import_pairs(engine, [NewPair(f"task {i}", f"criteria {i}", f"def f():\n    return {i}\n",
                                  f"def f():\n    return -{i}\n") for i in range(count)])


def _store(engine: Engine) -> list[tuple[Any, ...]]:
    """What a refused dialog must leave alone: every pair's review fields, and the jobs."""
    pairs = [(p.id, p.status) for p in list_pairs(engine, limit=100)]
    details = [(get_pair(engine, pair_id).criteria, get_pair(engine, pair_id).chosen) for pair_id, _ in pairs]
    return [tuple(pairs), tuple(details), tuple(job.id for job in list_jobs(engine))]


def _error(dialog: Any, selector: str = ".dialog-error") -> str:
    return str(dialog.query_one(selector, Static).render())


async def _types_into(app: Any, pilot: Any, dialog: Any, field: str, text: str) -> None:
    """Type `text` as a user correcting the value would, and check every key went to the dialog's field."""
    widget = dialog.query_one(field)
    assert app.focused is widget, f"focus is on {app.focused!r}, not in {field}"
    before = widget.text if isinstance(widget, TextArea) else widget.value
    await pilot.press(*text)
    await settle(app, pilot)
    assert app.screen is dialog, "a typed key closed the dialog or switched the screen"
    after = widget.text if isinstance(widget, TextArea) else widget.value
    assert after == before + text or after.endswith(text) or text in after


async def test_bulk_dialog_keeps_a_bad_rule_file_and_the_keys_typed_next(tmp_path: Path, engine: Engine) -> None:
    _seed_pairs(engine)
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"a\xff\xfe" + HOSTILE_TEXT.encode())
    before = _store(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        await pilot.press("b")
        await settle(app, pilot)
        dialog = app.screen
        assert type(dialog).__name__ == "BulkDialog"
        await pilot.press(*str(garbage), "enter")
        await settle(app, pilot)
        assert app.screen is dialog
        assert "not UTF-8" in _error(dialog) or "garbage.jsonl" in _error(dialog)
        assert_terminal_safe(app)
        dialog.query_one("#bulk-input", Input).value = ""
        await _types_into(app, pilot, dialog, "#bulk-input", "accept")  # the report's `accept`: into the field
        assert _store(engine) == before
        dialog.query_one("#bulk-input", Input).value = ""
        await pilot.press("enter")  # an empty value is refused too, inside the dialog
        await settle(app, pilot)
        assert app.screen is dialog and "give an action" in _error(dialog)
        dialog.query_one("#bulk-input", Input).value = "nonsense"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is dialog and "nonsense" in _error(dialog)
        dialog.query_one("#bulk-input", Input).value = "accept"
        await pilot.press("enter")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "ConfirmDialog"  # accepted: on to the confirmation
    assert _store(engine) == before


async def test_mine_dialog_keeps_a_missing_repository(tmp_path: Path, engine: Engine) -> None:
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("c", "m")
        await settle(app, pilot)
        dialog = app.screen
        assert type(dialog).__name__ == "MineDialog"
        await pilot.press(*str(tmp_path / "nope"), "enter")
        await settle(app, pilot)
        assert app.screen is dialog
        assert "no such file" in _error(dialog, "#error")
        await _types_into(app, pilot, dialog, "#path", "accept")
        await click(pilot, "#start")  # a refused press of the button also leaves the focus in the field
        await settle(app, pilot)
        assert app.screen is dialog and app.focused is dialog.query_one("#path")
    assert list_jobs(engine) == []


async def test_jump_dialog_keeps_a_pair_id_that_does_not_exist(engine: Engine) -> None:
    _seed_pairs(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        await pilot.press("j")
        await settle(app, pilot)
        dialog = app.screen
        await pilot.press("9", "9", "enter")
        await settle(app, pilot)
        assert app.screen is dialog and "pair 99 does not exist" in _error(dialog)
        dialog.query_one("#ask-input", Input).value = ""
        await _types_into(app, pilot, dialog, "#ask-input", "3")
        await pilot.press("enter")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "PairsScreen" and app.screen.pair.id == 3


async def test_criteria_editor_keeps_empty_criteria(engine: Engine) -> None:
    _seed_pairs(engine)
    before = _store(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        await pilot.press("w")
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one(TextArea).load_text("   ")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is dialog and "criteria cannot be empty" in _error(dialog)
        await _types_into(app, pilot, dialog, "TextArea", "ar")  # `a` and `r` would accept and reject
        assert _store(engine) == before
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "PairsScreen"
    assert get_pair(engine, 1).criteria.strip() == "ar"


async def test_export_dialog_keeps_a_folder_the_export_refuses(tmp_path: Path, engine: Engine) -> None:
    from stores.curation.pairs import set_status

    _seed_pairs(engine)
    set_status(engine, [1, 2], "accept")
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    before = _store(engine)
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        await pilot.press("E")
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one("#export-out", Input).value = str(a_file)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is dialog and _error(dialog).strip()
        await _types_into(app, pilot, dialog, "#export-out", "ab")
    assert _store(engine) == before


async def test_decontaminate_dialog_keeps_a_folder_that_is_no_benchmark(tmp_path: Path, engine: Engine) -> None:
    _seed_pairs(engine)
    empty = tmp_path / "empty"
    empty.mkdir()
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        await app.run_action("screen.decontaminate")
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one("#ask-input", Input).value = str(empty)
        dialog.query_one("#ask-input", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is dialog and "benchmark file" in _error(dialog)
        await _types_into(app, pilot, dialog, "#ask-input", "x")
    assert list_jobs(engine) == []


async def test_train_dialog_keeps_a_garbage_recipe(tmp_path: Path, engine: Engine) -> None:
    recipe = tmp_path / "garbage.yaml"
    recipe.write_bytes(b"\xff\xfe: [" + HOSTILE_TEXT.encode())
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t", "n")
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one("#train-recipe-path", Input).value = str(recipe)
        await click(pilot, "#train-start")
        await settle(app, pilot)
        assert app.screen is dialog and "garbage.yaml" in _error(dialog)
        assert_terminal_safe(app)
        await _types_into(app, pilot, dialog, "#train-recipe-path", "nt")
    assert list_jobs(engine) == []


async def test_merge_dialog_keeps_an_output_folder_the_merge_refuses(tmp_path: Path, engine: Engine) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "model.safetensors").write_bytes(b"x")
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t", "m")
        await settle(app, pilot)
        dialog = app.screen
        dialog.query_one("#merge-inputs", Input).value = f"{tmp_path / 'a'} {tmp_path / 'b'}"
        dialog.query_one("#merge-out", Input).value = str(taken)
        await click(pilot, "#merge-start")  # the button keeps no focus: the refusal puts it in the field
        await settle(app, pilot)
        assert app.screen is dialog and "taken" in _error(dialog, "#merge-error")
        await _types_into(app, pilot, dialog, "#merge-out", "dc")
    assert list_jobs(engine) == []


async def test_synthesis_form_keeps_the_focus_when_the_queue_refuses(engine: Engine) -> None:
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#critic", Input).value = "openai:m@http://127.0.0.1:9/v1"
        await pilot.press("ctrl+s")  # from the list: no commits to synthesize from, refused when queued
        await settle(app, pilot)
        status = str(screen.query_one("#status", Static).render())
        assert "error" in status and isinstance(app.focused, Input)
        await pilot.press("p")  # typed into the form, not the key that opens the Pairs screen
        await settle(app, pilot)
        assert app.screen is screen
    assert list_jobs(engine) == []


async def test_evaluation_form_keeps_the_focus_when_the_queue_refuses(tmp_path: Path, engine: Engine) -> None:
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#judge", Input).value = "openai:m@http://127.0.0.1:9/v1"
        screen.query_one("#bench", Input).value = str(tmp_path / "no-bench")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        status = str(screen.query_one("#eval-status", Static).render())
        assert "error" in status and isinstance(app.focused, Input)
        await pilot.press("p")
        await settle(app, pilot)
        assert app.screen is screen
    assert list_jobs(engine) == []


async def test_arena_form_keeps_the_focus_on_a_missing_value(engine: Engine) -> None:
    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        screen = app.screen
        await click(pilot, "#arena-start")  # nothing entered: refused inside the panel
        await settle(app, pilot)
        assert "enter the set first" in str(screen.query_one("#arena-status", Static).render())
        assert app.focused is screen.query_one("#arena-set", Input)
        await pilot.press("p")
        await settle(app, pilot)
        assert app.screen is screen and screen.query_one("#arena-set", Input).value == "p"
    assert list_jobs(engine) == []


async def test_escape_waits_while_a_value_is_being_tried(engine: Engine) -> None:
    """Escape during the check would leave an accepted action (a queued job) followed by no screen."""
    import threading

    from workbench.screens.dialogs import AskDialog

    release = threading.Event()
    results: list[object] = []

    def attempt(value: str) -> str:
        release.wait(10)
        return value.upper()

    app = make_app(engine=engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        dialog = AskDialog("Try", "a value", attempt=attempt)
        app.push_screen(dialog, results.append)
        await settle(app, pilot)
        await pilot.press("o", "k", "enter")
        await pilot.pause(0.2)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is dialog and results == [] and "checking" in _error(dialog)
        release.set()
        for _ in range(50):
            await pilot.pause(0.1)
            if results:
                break
        assert results == ["OK"] and app.screen is not dialog
