"""Features of issue #15: the side-by-side diff, sorting, search, jumping, the palette's stage actions,
the training form, the checkpoint picker and labelled fields."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, SelectionList

from core.curation.pairs import NewPair
from core.sidebyside import align
from stores.curation.pairs import import_pairs
from stores.curation.tables import PairRow
from stores.db import make_engine
from stores.tables import utcnow
from tests.workbench.helpers import screen_text, settle
from tests.workbench.pilot import click
from workbench.app import STAGE_ACTIONS, make_app
from workbench.widgets.diff_view import DiffView


class _DiffApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DiffView()


async def test_diff_view_aligns_opens_at_the_first_change_and_steps_through_changes() -> None:
    old = "".join(f"line {i}\n" for i in range(100))
    new = old.replace("line 40\n", "line forty\n").replace("line 80\n", "line 80\nadded\n")
    app = _DiffApp()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(DiffView)
        view.show(align(old, new), left_title="rejected", right_title="chosen")
        await pilot.pause()
        assert view.current_change == 0 and view.scroll_y == 40 - 3
        title = "".join(segment.text for segment in view.render_line(0))
        assert "rejected" in title and "change 1/2" in title
        row = "".join(segment.text for segment in view.render_line(4))  # both panes on one row: one scroll
        assert "41-line40" in row.replace(" ", "") and "41+lineforty" in row.replace(" ", "")
        view.focus()
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert view.current_change == 1 and view.scroll_y == 81 - 3
        await pilot.press("right_square_bracket")  # the last change stays
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert view.current_change == 0


async def test_sort_by_any_column_search_text_and_jump_to_an_id(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "wb.db")
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(insert(PairRow), [
            {"source": "import", "status": "pending", "instruction": f"i{i}", "criteria": "c",
             "chosen": "x = 1\n" * (1 + i % 7), "rejected": "needle\n" if i == 444 else "x = 2\n", "feedback": "",
             "language": "python", "content_hash": f"h{i}", "meta_json": "{}", "created_at": now, "updated_at": now}
            for i in range(1, 701)
        ])
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        screen = app.screen
        table = screen.query_one("#pairs", DataTable)
        await pilot.press("O")  # sort: length, longest first
        await settle(app, pilot)
        option_list = app.screen.query_one("#sorts")
        option_list.highlighted = option_list.get_option_index("lines:1")
        await pilot.press("enter")
        await settle(app, pilot)
        lines = [int(str(table.get_row_at(row)[8])) for row in range(table.row_count)]
        assert lines[0] == 7 and lines == sorted(lines, reverse=True)
        assert "by length ↓" in screen_text(app)

        await pilot.press("j", *"690", "enter")  # not among the first page of this order
        await settle(app, pilot)
        assert screen.pair_table.current_id == 690
        assert "pair 690" in screen_text(app)

        await pilot.press("slash", *"text~needle", "enter")
        await settle(app, pilot)
        assert [int(str(table.get_row_at(row)[0])) for row in range(table.row_count)] == [444]


async def test_the_palette_offers_every_stage_action(tmp_path: Path) -> None:
    titles = " ".join(title for title, _mode, _action, _where in STAGE_ACTIONS)
    for word in ("Mine", "Synthesize", "Analyse", "Dedupe", "Decontaminate", "Export", "Train", "Merge",
                 "Evaluate", "Cancel a job"):
        assert word in titles
    engine = make_engine(tmp_path / "wb.db")
    import_pairs(engine, [NewPair("t", "c", "a = 1\n", "a = 2\n")])
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"export pairs")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        await settle(app, pilot)
        assert type(app.screen).__name__ == "ExportDialog"
        for _title, mode, action, _where in STAGE_ACTIONS:  # every entry names an action its screen has
            from workbench.app import SCREEN_MODES, screen_class

            path = next(p for m, p, _k, _t in SCREEN_MODES if m == mode)
            assert hasattr(screen_class(path), f"action_{action}"), (mode, action)


async def test_training_form_uses_an_export_as_the_dataset(tmp_path: Path) -> None:
    from core.curation.rules import Condition
    from core.training.export import ExportOptions
    from stores.curation.pairs import set_status
    from workbench.jobs.export import export_store

    engine = make_engine(tmp_path / "wb.db")
    import_pairs(engine, [NewPair(f"t{i}", "c", f"a = {i}\n", "a = 0\n") for i in range(1, 4)])
    set_status(engine, [1, 2, 3], "accept")
    info = export_store(engine, (Condition("status", "=", "accepted"),), tmp_path / "exp", ExportOptions())
    model = tmp_path / "model"  # a local model folder: the recipe's checks pass up to the launch
    model.mkdir()
    (model / "config.json").write_text('{"max_position_embeddings": 4096}', encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"name: tiny\nbase_model: {model}\nmodeling: classification\n"
        "datasets:\n  - path: /nonexistent/data\ndeepspeed:\n  stage: 3\n"
        f"output_dir: {tmp_path / 'run'}\n", encoding="utf-8")
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("t", "n")
        await settle(app, pilot)
        dialog = app.screen
        assert type(dialog).__name__ == "TrainDialog"
        assert "smollm2-135m-cpu-smoke.yaml" in screen_text(app) or dialog.recipes  # the shipped recipes
        assert dialog.query_one("#train-dataset").value == info.id  # the newest export by default
        dialog.query_one("#train-recipe-path", Input).value = str(recipe)
        await click(pilot, "#train-start")
        await settle(app, pilot)
        # The export replaced the recipe's missing dataset; the launch check stopped it before any job, and the
        # dialog stays open with the reason.
        assert app.screen is dialog
        assert "deepspeed" in str(dialog.query_one("#train-error").render()).lower()


async def test_merge_dialog_picks_checkpoints_from_the_store(tmp_path: Path) -> None:
    from stores.training.runs import record_checkpoint

    engine = make_engine(tmp_path / "wb.db")
    for name in ("a", "b"):
        record_checkpoint(engine, str(tmp_path / name), "train", verified=True, job_id=None, step=10)
    app = make_app(engine=engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("t", "m")
        await settle(app, pilot)
        picker = app.screen.query_one(SelectionList)
        picker.focus()
        await pilot.press("space", "down", "space")
        await pilot.pause()
        assert sorted(app.screen.query_one("#merge-inputs", Input).value.split()) == [
            str(tmp_path / "a"), str(tmp_path / "b")]


async def test_form_fields_are_labelled(tmp_path: Path) -> None:
    app = make_app(tmp_path / "wb.db")
    async with app.run_test(size=(160, 45)) as pilot:
        for key, fields in (("s", {"critic": "critic model", "limit": "limit", "concurrency": "concurrency",
                                   "budget": "budget"}),
                            ("e", {"judge": "judge", "bench": "benchmark", "limit": "limit"})):
            await pilot.press(key)
            await settle(app, pilot)
            for widget_id, label in fields.items():
                assert app.screen.query_one(f"#{widget_id}").border_title == label
