"""Whether a stopped training run can be resumed, read from its folder without torch."""

from __future__ import annotations

from pathlib import Path

from core.training.checkpoints import TRAINER_STATE_FILE, run_checkpoints


def test_only_an_unfinished_checkpoint_is_not_resumable(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / "step-2.partial").mkdir(parents=True)
    found = run_checkpoints(tmp_path)
    assert found.complete == () and found.partial == (str(tmp_path / "checkpoints" / "step-2.partial"),)
    assert found.describe().startswith("nothing resumable: only step-2.partial")


def test_the_newest_complete_checkpoint_is_where_a_rerun_resumes(tmp_path: Path) -> None:
    for step in (4, 10, 6):
        folder = tmp_path / "checkpoints" / f"step-{step}"
        folder.mkdir(parents=True)
        (folder / TRAINER_STATE_FILE).write_text("{}", encoding="utf-8")
    (tmp_path / "checkpoints" / "step-12").mkdir()  # no state file: cut short
    found = run_checkpoints(tmp_path)
    assert [Path(p).name for p in found.complete] == ["step-4", "step-6", "step-10"]
    assert found.describe() == "resumable from step-10 (start the same recipe again)"
    assert run_checkpoints(tmp_path / "missing").describe().startswith("nothing resumable: no checkpoint")


def test_the_state_file_name_is_the_trainers() -> None:
    from core.training.trainer import STATE_FILE

    assert TRAINER_STATE_FILE == STATE_FILE
