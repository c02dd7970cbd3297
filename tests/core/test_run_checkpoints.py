"""Whether a stopped training run can be resumed, read from its folder without torch."""

from __future__ import annotations

from pathlib import Path

from core.training.checkpoints import TRAINER_STATE_FILE, VERIFIED_FILE, run_checkpoints


def _checkpoint(folder: Path, *files: str) -> Path:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("{}", encoding="utf-8")
    return folder


def test_only_an_unfinished_checkpoint_is_not_resumable(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "checkpoints" / "checkpoint-2", TRAINER_STATE_FILE)  # never verified
    found = run_checkpoints(tmp_path)
    assert found.complete == () and found.partial == (str(tmp_path / "checkpoints" / "checkpoint-2"),)
    assert found.describe().startswith("nothing resumable: only checkpoint-2")


def test_the_newest_complete_checkpoint_is_where_a_rerun_resumes(tmp_path: Path) -> None:
    for step in (4, 10, 6):
        _checkpoint(tmp_path / "checkpoints" / f"checkpoint-{step}", TRAINER_STATE_FILE, VERIFIED_FILE)
    _checkpoint(tmp_path / "checkpoints" / "checkpoint-12", VERIFIED_FILE)  # no state file: cut short
    found = run_checkpoints(tmp_path)
    assert [Path(p).name for p in found.complete] == ["checkpoint-4", "checkpoint-6", "checkpoint-10"]
    assert found.describe() == "resumable from checkpoint-10 (start the same recipe again)"
    assert run_checkpoints(tmp_path / "missing").describe().startswith("nothing resumable: no checkpoint")


def test_the_trainer_resumes_from_the_same_checkpoints(tmp_path: Path) -> None:
    """The torch-free reading agrees with the one the trainer resumes from."""
    from core.training.callbacks import verified_checkpoints

    folder = tmp_path / "checkpoints"
    _checkpoint(folder / "checkpoint-3", TRAINER_STATE_FILE, VERIFIED_FILE)
    _checkpoint(folder / "checkpoint-5", TRAINER_STATE_FILE)
    _checkpoint(folder / "checkpoint-7", VERIFIED_FILE)
    _checkpoint(folder / "checkpoint-9", TRAINER_STATE_FILE, VERIFIED_FILE)
    assert list(run_checkpoints(tmp_path).complete) == [str(path) for _step, path in verified_checkpoints(folder)]
