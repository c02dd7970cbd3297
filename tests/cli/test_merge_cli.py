from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stores.db import make_engine
from stores.jobs import list_jobs
from stores.training.runs import list_checkpoints
from workbench.cli import app

pytest.importorskip("torch")


def test_merge_command_takes_spread_weights_and_records_lineage(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = shutil.copytree(tiny_model_dir, tmp_path / "a")
    second = shutil.copytree(tiny_model_dir, tmp_path / "b")
    db = tmp_path / "wb.db"
    result = CliRunner().invoke(app, ["--db", str(db), "merge", str(first), str(second),
                                      "--weights", "0.25", "0.75", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"merged 2 checkpoints into {tmp_path / 'm'}")
    assert "weights 0.25, 0.75" in result.stdout and result.stdout.strip().endswith("verified")
    engine = make_engine(db)
    assert list_jobs(engine, kind="merge")[0].state == "done"
    checkpoint = list_checkpoints(engine)[0]
    assert checkpoint.kind == "merge" and checkpoint.lineage["inputs"] == [str(first), str(second)]
    listed = CliRunner().invoke(app, ["--db", str(db), "train", "checkpoints"])
    assert "merge" in listed.stdout and "weights=[0.25, 0.75]" in listed.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "1"], "2 checkpoints but 1 weights; give one weight per checkpoint"),
        (["--weights", "1", "-1"], "merge weights must be positive numbers, not '-1'"),
        (["--weights", "inf", "1", "--no-verify"], "merge weight 'inf' is not a finite number"),
        (["--weights", "a", "b"], "merge weight 'a' is not a number"),
    ],
)
def test_merge_command_rejects_bad_weights_in_one_line(tiny_model_dir: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "wb.db"), "merge", str(tiny_model_dir),
                                      str(tiny_model_dir), *extra, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "m").exists()


def test_merge_command_names_a_missing_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "wb.db"), "merge", str(tiny_model_dir),
                                      str(tmp_path / "nope"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'}: no config.json; not a transformers checkpoint"
